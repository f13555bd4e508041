import Foundation
import Testing
import WardenCore

@testable import WardenPolicy

/// `PolicySet.couldAllow`, which the tools door lists tools by ("listing = calling"): over random
/// policy sets, entities and contexts, a "no" is never contradicted by a request that is allowed, and
/// for sets whose conditions never read the context a "yes" is an allowed request.
@Suite struct CouldAllowTests {
    @Test(arguments: [UInt64(11), 12, 13])
    func aResourceThatCouldNotBeAllowedIsNeverAllowedWhateverTheContext(seed: UInt64) throws {
        var generator = RandomPolicies(seed: seed)
        var checked = 0
        var no = 0
        var exact = 0
        for _ in 0..<300 {
            let text = generator.policySet()
            guard let policies = try? PolicySet(text: text),
                let entities = try? Entities(json: generator.entitiesJSON())
            else { continue }
            let contextFree = !policies.policies.contains { $0.readsContext }
            for _ in 0..<3 {
                let base = try ConformanceSuite.request(from: try JSONValue.parse(generator.requestJSON()), schema: nil)
                let could = policies.couldAllow(
                    principal: base.principal, action: base.action, resource: base.resource, entities: entities)
                if !could { no += 1 }
                // Several contexts for the same principal, action and resource.
                for _ in 0..<6 {
                    let other = try ConformanceSuite.request(
                        from: try JSONValue.parse(generator.requestJSON()), schema: nil)
                    let request = AuthorizationRequest(
                        principal: base.principal, action: base.action, resource: base.resource,
                        context: other.context)
                    let allowed = policies.isAuthorized(request, entities: entities).decision == .allow
                    checked += 1
                    if allowed {
                        #expect(could, "allowed, yet not listed:\n\(text)\nrequest: \(request)")
                    }
                    if contextFree && could {
                        exact += 1
                        #expect(allowed, "context-free set listed it, yet denied:\n\(text)\nrequest: \(request)")
                    }
                }
            }
        }
        #expect(checked > 3000 && no > 100 && exact > 100, "checked \(checked), no \(no), exact \(exact)")
    }
}
