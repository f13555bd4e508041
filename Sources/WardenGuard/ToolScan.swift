/// Tool poisoning: instructions for the model hidden in a tool's own definition (its description,
/// title, or the names and descriptions in its input schema) — the MCP attack where a server's tool
/// list, not its output, carries the injection. The definition's texts go through the detectors; a
/// definition is poisoned when they find an injected instruction, hidden characters or a secret.
public enum ToolScan {
    /// A finding in one field of a definition (`description`, `inputSchema.properties.x.description`).
    public struct Hit: Sendable, Equatable, Codable {
        public var field: String
        public var finding: Finding
    }

    /// The detectors over each field's text.
    public static func scan(fields: [(field: String, text: String)], guard guardian: Guard = .standard) -> [Hit] {
        fields.flatMap { field, text in guardian.scan(text).map { Hit(field: field, finding: $0) } }
    }

    /// The detectors that make a definition poisoned, and how sure they must be.
    public static let poisonous: [String: Double] = ["injection": 0.75, "hidden_unicode": 0.7, "secrets": 0.75]

    public static func isPoisoned(_ hits: [Hit]) -> Bool {
        hits.contains { hit in poisonous[hit.finding.detector].map { hit.finding.confidence >= $0 } ?? false }
    }

    /// One line naming what was found where (for a record or a refusal).
    public static func describe(_ hits: [Hit]) -> String {
        hits.prefix(5).map { "\($0.field): \($0.finding.detector) (\($0.finding.detail))" }.joined(separator: "; ")
    }
}
