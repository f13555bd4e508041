import Testing

@testable import WardenCore

/// RFC 8785's number form (ECMAScript's Number::toString) for fractions and exponents, on the RFC's
/// and ECMAScript's own examples; big integers a double would change are still refused.
struct CanonicalNumberTests {
    @Test(arguments: [
        ("98.7", "98.7"), ("0.1", "0.1"), ("4.50", "4.5"), ("-0.0", "0"), ("1e21", "1e+21"), ("1E30", "1e+30"),
        ("1e20", "100000000000000000000"), ("1e-7", "1e-7"), ("0.000001", "0.000001"), ("123.456", "123.456"),
        ("333333333.33333329", "333333333.3333333"), ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"), ("-1.5e-10", "-1.5e-10"), ("12.0", "12"),
    ])
    func fractionsAndExponentsAreWrittenAsECMAScriptWritesThem(text: String, canonical: String) throws {
        #expect(try JSONValue.number(text).canonicalized(allowingFractions: true) == canonical)
    }

    @Test func integersADoubleWouldChangeAreRefused() {
        #expect(throws: JSONValue.CanonicalizationError.self) {
            try JSONValue.number("9007199254740993").canonicalized()
        }
        #expect(throws: JSONValue.CanonicalizationError.self) { try JSONValue.number("1e400").canonicalized() }
    }
}
