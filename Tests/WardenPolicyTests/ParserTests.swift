import Testing

@testable import WardenPolicy

struct ParserTests {
    @Test func parsesAPolicyWithAnnotationsAndConditions() throws {
        let set = try PolicySet(text: #"@ask("needs review") permit(principal, action, resource) when { true };"#)
        #expect(set.policies.count == 1)
        #expect(set.policies[0].annotation("ask") == "needs review")
    }
}
