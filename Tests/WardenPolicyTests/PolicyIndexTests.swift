import Testing
import WardenBench
import WardenCore

@testable import WardenPolicy

struct PolicyIndexTests {
    /// The index must prune: on the 1,000-policy benchmark set a request evaluates a small fraction of
    /// the policies, and the pruned evaluation decides exactly as scanning every policy would.
    @Test func indexPrunesAndAgreesWithAFullScan() throws {
        let workload = PolicyWorkload.thousandPolicies(requests: 300)
        let group = try #require(workload.groups.first)
        let policies = try PolicySet(text: group.policies)
        let entities = try Entities(json: group.entitiesJSON)
        var total = 0
        for text in group.requestsJSON {
            let request = try ConformanceSuite.request(from: try JSONValue.parse(text), schema: nil)
            total += policies.candidateCount(for: request, entities: entities)
            // A full scan: every policy whose scope matches, evaluated without the index.
            var permits: [String] = []
            var forbids: [String] = []
            let evaluator = Evaluator(request: request, entities: entities)
            for policy in policies.policies where PolicySet.scopeMatches(policy, request, entities) {
                let satisfied = policy.conditions.allSatisfy { condition in
                    guard case .bool(let b)? = try? evaluator.evaluate(condition.body) else { return false }
                    return b == (condition.kind == .when)
                }
                if satisfied {
                    if policy.effect == .permit { permits.append(policy.id) } else { forbids.append(policy.id) }
                }
            }
            let response = policies.isAuthorized(request, entities: entities)
            #expect(response.reasons.sorted() == (forbids.isEmpty ? permits : forbids).sorted())
        }
        let average = Double(total) / Double(group.requestsJSON.count)
        print("1,000-policy set: \(average) policies evaluated per request on average")
        #expect(average < 50)
    }
}
