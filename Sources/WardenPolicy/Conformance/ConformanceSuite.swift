import Foundation
import WardenCore

/// Runs test files in the Cedar integration-test format and compares every request's decision, reasons
/// and erroring policies with the expectation.
///
/// A test file is JSON: `policies`, `entities`, `schema` (paths relative to the directory that holds the
/// suite, found by walking up from the test file), `shouldValidate`, and `requests` with `principal`,
/// `action`, `resource`, `context`, and the expected `decision`, `reason` and `errors`.
public struct ConformanceSuite: Sendable {
    public struct Failure: Sendable, Codable {
        public var file: String
        public var request: String
        public var message: String
    }

    public struct Outcome: Sendable, Codable {
        public var files = 0
        public var passed = 0
        public var failed = 0
        public var skipped = 0
        public var failures: [Failure] = []
        public var skipReasons: [String: Int] = [:]

        public static var empty: Outcome { Outcome() }

        public mutating func merge(_ other: Outcome) {
            files += other.files
            passed += other.passed
            failed += other.failed
            skipped += other.skipped
            failures += other.failures
            for (k, v) in other.skipReasons { skipReasons[k, default: 0] += v }
        }
    }

    public init() {}

    /// Finds test files under each path (a file or a directory, searched recursively), in sorted order.
    public static func testFiles(under paths: [String]) throws(WardenError) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw WardenError(code: .notFound, message: "\(path): no such file or directory")
            }
            if !isDirectory.boolValue {
                files.append(path)
                continue
            }
            let enumerator = FileManager.default.enumerator(atPath: path)
            var found: [String] = []
            while let relative = enumerator?.nextObject() as? String {
                if relative.hasSuffix(".json"), !relative.hasSuffix(".entities.json") {
                    found.append((path as NSString).appendingPathComponent(relative))
                }
            }
            files += found.sorted()
        }
        return files
    }

    /// Runs one test file. A file that cannot be read or parsed counts as one failure per request it
    /// declares (or one, if even that is unknown).
    public func run(file: String) -> Outcome {
        var outcome = Outcome()
        outcome.files = 1
        let name = file
        func fail(_ request: String, _ message: String) {
            outcome.failed += 1
            outcome.failures.append(Failure(file: name, request: request, message: message))
        }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            fail("-", "cannot read the file")
            return outcome
        }
        let test: JSONValue
        do {
            test = try JSONValue.parse(text)
        } catch {
            fail("-", "invalid JSON at \(error)")
            return outcome
        }
        guard case .array(let requests)? = test["requests"], let policiesPath = test["policies"]?.stringValue,
            let entitiesPath = test["entities"]?.stringValue
        else {
            fail("-", "not a Cedar integration test (needs policies, entities, requests)")
            return outcome
        }
        let directory = (file as NSString).deletingLastPathComponent
        guard let root = Self.root(for: policiesPath, startingAt: directory) else {
            fail("-", "cannot find \(policiesPath) in any directory above \(directory)")
            return outcome
        }
        let policySet: PolicySet
        let entities: Entities
        var schema: SchemaTypes?
        do {
            let policyText = try String(
                contentsOfFile: (root as NSString).appendingPathComponent(policiesPath), encoding: .utf8)
            policySet = try PolicySet(text: policyText)
            // Schema-based parsing as in Cedar's harness: the schema decides how attribute JSON is read.
            if let schemaPath = test["schema"]?.stringValue {
                let schemaText = try String(
                    contentsOfFile: (root as NSString).appendingPathComponent(schemaPath), encoding: .utf8)
                schema = try SchemaTypes(cedarSchema: schemaText)
            }
            let entityText = try String(
                contentsOfFile: (root as NSString).appendingPathComponent(entitiesPath), encoding: .utf8)
            entities = try Entities(json: entityText, schema: schema)
        } catch {
            for (i, _) in requests.enumerated() {
                fail("request \(i)", "cannot load the policies or entities: \(error)")
            }
            return outcome
        }
        for (i, requestJSON) in requests.enumerated() {
            let label = requestJSON["description"]?.stringValue ?? "request \(i)"
            do {
                let request = try Self.request(from: requestJSON, schema: schema)
                let response = policySet.isAuthorized(request, entities: entities)
                let expectedDecision = requestJSON["decision"]?.stringValue ?? ""
                let expectedReasons = Self.strings(requestJSON["reason"]).sorted()
                let expectedErrors = Self.strings(requestJSON["errors"]).sorted()
                let reasons = response.reasons.sorted()
                let errors = response.errors.map(\.policyID).sorted()
                if response.decision.rawValue == expectedDecision, reasons == expectedReasons, errors == expectedErrors
                {
                    outcome.passed += 1
                } else {
                    let details = response.errors.map { "\($0.policyID): \($0.message)" }.joined(separator: "; ")
                    fail(
                        label,
                        "expected \(expectedDecision) reasons \(expectedReasons) errors \(expectedErrors), got "
                            + "\(response.decision.rawValue) reasons \(reasons) errors \(errors)"
                            + (details.isEmpty ? "" : " (\(details))"))
                }
            } catch {
                fail(label, "invalid request: \(error)")
            }
        }
        return outcome
    }

    public func run(files: [String]) -> Outcome {
        var total = Outcome()
        for file in files { total.merge(run(file: file)) }
        return total
    }

    public static func root(for relativePath: String, startingAt directory: String) -> String? {
        var current = directory.isEmpty ? "." : directory
        for _ in 0..<8 {
            if FileManager.default.fileExists(atPath: (current as NSString).appendingPathComponent(relativePath)) {
                return current
            }
            current = (current as NSString).appendingPathComponent("..")
        }
        return nil
    }

    public static func strings(_ json: JSONValue?) -> [String] {
        guard case .array(let items)? = json else { return [] }
        return items.compactMap(\.stringValue)
    }

    public static func request(from json: JSONValue, schema: SchemaTypes?) throws(EntitiesError) -> AuthorizationRequest
    {
        func uid(_ key: String) throws(EntitiesError) -> EntityUID {
            guard let v = json[key], v != .null else {
                throw EntitiesError(message: "the request has no \(key)")
            }
            return try CedarJSON.entityUID(v, place: key)
        }
        let action = try uid("action")
        var context: [String: CedarValue] = [:]
        if let c = json["context"] {
            context = try CedarJSON.record(c, place: "context", type: schema?.contextType(of: action), schema: schema)
        }
        return AuthorizationRequest(
            principal: try uid("principal"), action: action, resource: try uid("resource"), context: context)
    }
}
