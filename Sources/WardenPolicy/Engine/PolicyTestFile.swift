import Foundation
import WardenCore

/// A user's policy unit tests: requests with the decisions they expect.
public enum PolicyTestFile {
    public struct CaseResult: Sendable, Codable {
        public var name: String
        public var passed: Bool
        public var expected: String
        public var decision: PolicyDecision
        public var message: String
    }

    public struct Outcome: Sendable, Codable {
        public var passed: Int
        public var failed: Int
        public var results: [CaseResult]
    }

    public static func run(path: String) throws(WardenError) -> Outcome {
        let text = try PolicyEngine.readFile(path)
        let json: JSONValue
        do {
            json = try JSONValue.parse(text)
        } catch {
            throw WardenError.invalidInput("\(path):\(error.line):\(error.column): \(error.message)")
        }
        let base = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") || base.isEmpty ? p : (base as NSString).appendingPathComponent(p)
        }
        var policyFiles: [String] = []
        switch json["policies"] {
        case .string(let p)?: policyFiles = [resolve(p)]
        case .array(let list)?: policyFiles = list.compactMap(\.stringValue).map(resolve)
        default: throw WardenError.invalidInput("\(path): \"policies\" must name a .cedar file or a list of them")
        }
        let entitiesFile = json["entities"]?.stringValue.map(resolve)
        let engine = try PolicyEngine(policyFiles: policyFiles, entitiesFile: entitiesFile)
        guard case .array(let cases)? = json["cases"], !cases.isEmpty else {
            throw WardenError.invalidInput("\(path): \"cases\" must be a non-empty list of requests")
        }
        var results: [CaseResult] = []
        for (i, c) in cases.enumerated() {
            let name = c["name"]?.stringValue ?? "case \(i + 1)"
            let place = "\(path): case \"\(name)\""
            guard let expect = c["expect"]?.stringValue, PolicyDecision.Kind(rawValue: expect) != nil else {
                throw WardenError.invalidInput("\(place): \"expect\" must be allow, deny or ask")
            }
            let request = AuthorizationRequest(
                principal: try PolicyRequestParsing.uid(c["principal"], place: "\(place) principal"),
                action: try PolicyRequestParsing.uid(c["action"], place: "\(place) action"),
                resource: try PolicyRequestParsing.uid(c["resource"], place: "\(place) resource"),
                context: try PolicyRequestParsing.context(c["context"] ?? .object([]), place: "\(place) context"))
            let decision = engine.decide(request)
            var problems: [String] = []
            if decision.kind.rawValue != expect { problems.append("expected \(expect), got \(decision.explanation)") }
            if case .array(let list)? = c["reasons"] {
                let want = list.compactMap(\.stringValue).sorted()
                let got = decision.reasons.map(\.policyID).sorted()
                if want != got { problems.append("expected reasons \(want), got \(got)") }
            }
            results.append(
                CaseResult(
                    name: name, passed: problems.isEmpty, expected: expect, decision: decision,
                    message: problems.joined(separator: "; ")))
        }
        let passed = results.filter(\.passed).count
        return Outcome(passed: passed, failed: results.count - passed, results: results)
    }
}
