/// Where the audit log lives: the state directory's SQLite file, another SQLite file, or PostgreSQL.
///
/// Parsed once, by one rule set, for every flag, profile key and variable that names a store
/// (`--audit-store`, `audit_store`, `--store`, `WARDEN_AUDIT_STORE`), so they all accept the same text
/// and reject it with the same message.
public enum AuditStoreLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `STATE/audit/audit.sqlite`, the embedded default.
    case stateDirectory
    /// A SQLite file at an absolute path.
    case sqlite(path: String)
    /// A PostgreSQL server: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=…]`.
    case postgres(url: String)

    /// What every error names as accepted.
    public static let accepted = "postgres://USER@HOST:PORT/DB, sqlite:PATH or a file path"

    /// Parses `text`.
    ///
    /// - Parameters:
    ///   - field: the flag, key or variable it came from, for the error.
    ///   - workingDirectory: what a relative file path is relative to (made absolute here, so another
    ///     process in another directory, such as `warden stop`, finds the same file).
    /// - Throws: ``WardenError`` (`invalidInput`) naming the field and the accepted forms.
    public init(parsing text: String, field: String, workingDirectory: String) throws {
        let trimmed = text.trimmingSpaces()
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : workingDirectory + (workingDirectory.hasSuffix("/") ? "" : "/") + path
        }
        if trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") {
            guard trimmed.split(separator: "/", omittingEmptySubsequences: false).count >= 4 || trimmed.contains("@")
            else {
                throw WardenError.invalidInput(
                    "\(field): '\(text)' is not a PostgreSQL URL; use \(Self.accepted)")
            }
            self = .postgres(url: trimmed)
        } else if trimmed.hasPrefix("sqlite:") {
            let path = String(trimmed.dropFirst("sqlite:".count))
            guard !path.isEmpty else {
                throw WardenError.invalidInput("\(field): 'sqlite:' names no file; use sqlite:PATH")
            }
            self = .sqlite(path: absolute(path))
        } else if trimmed.isEmpty || trimmed.contains("://") {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not an audit store; use \(Self.accepted)")
        } else {
            self = .sqlite(path: absolute(trimmed))
        }
    }

    /// The form a person (and `run.json`) reads; parsing it gives the same location back.
    public var description: String {
        switch self {
        case .stateDirectory: "state"
        case .sqlite(let path): "sqlite:" + path
        case .postgres(let url): url
        }
    }

    /// The SQLite file, given the state directory; nil for PostgreSQL.
    public func sqlitePath(stateDirectory: String) -> String? {
        switch self {
        case .stateDirectory: stateDirectory + "/audit/audit.sqlite"
        case .sqlite(let path): path
        case .postgres: nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if text == "state" {
            self = .stateDirectory
        } else {
            self = try AuditStoreLocation(parsing: text, field: "audit store", workingDirectory: "/")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
