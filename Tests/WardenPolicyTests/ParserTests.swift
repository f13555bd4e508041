import Testing

@testable import WardenPolicy

struct ParserTests {
    @Test func parsesAPolicyWithAnnotationsAndConditions() throws {
        let set = try PolicySet(text: #"@ask("needs review") permit(principal, action, resource) when { true };"#)
        #expect(set.policies.count == 1)
        #expect(set.policies[0].annotation("ask") == "needs review")
        #expect(set.policies[0].id == "policy0")
    }

    /// Garbage gets one positioned error, never a crash.
    @Test(arguments: [
        ("permit(principal, action, resource)", "1:36", "expected ';'"),
        ("permit(principal, action, resource) when { 1 + };", "1:48", "expected an expression"),
        ("permit(principal,\n  action == User::\"x\", resource);", "2:13", "expected an action entity"),
        ("permit(principal, action, resource) when { foo };", "1:44", "unknown variable 'foo'"),
        ("permit(principal, action, resource) when { \"abc };", "1:44", "unterminated string"),
        ("permit(principal, action, resource) when { \"\\q\" };", "1:44", "invalid escape"),
        ("permit(principal, action, resource) when { 9223372036854775808 };", "1:44", "does not fit in 64 bits"),
        ("permit(principal, action, resource) when { [1].foo() };", "1:48", "unknown method 'foo'"),
        ("permit(principal, action, resource) when { bar(1) };", "1:44", "unknown function 'bar'"),
        ("permit(principal, action, resource) when { {a: 1, a: 2} };", "1:51", "duplicate key"),
        ("permit(principal == ?principal, action, resource);", "1:21", "templates"),
        ("allow(principal, action, resource);", "1:1", "expected 'permit' or 'forbid'"),
        ("permit(principal, action, resource) when { 1 < 2 < 3 };", "1:50", "expected '}'"),
        ("permit(principal, action, resource) when { ------1 };", "1:44", "too many occurrences"),
        ("permit(principal, action, resource) when { a = 1 };", "1:44", "unknown variable"),
        ("@a(\"1\") @a(\"2\") permit(principal, action, resource);", "1:10", "duplicate annotation"),
        ("permit(principal, action, resource) when { \u{7} };", "1:44", "unexpected character U+7"),
    ])
    func garbageGetsAPositionedError(input: String, location: String, message: String) {
        do {
            _ = try PolicySet(text: input)
            Issue.record("parsed without error: \(input)")
        } catch {
            #expect("\(error.location)" == location, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func entityReferencesRoundTripThroughTheirDescription() throws {
        for text in [#"User::"alice""#, #"ns::Tool::"fs.write""#, #"A::"with \"quote\" and \\ and \n""#] {
            let uid = try EntityUID.parse(text)
            #expect(try EntityUID.parse(uid.description) == uid)
        }
    }
}
