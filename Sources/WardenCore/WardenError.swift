/// An error a user can act on: an opaque code for programs, and a message that says what to do.
///
/// Modelled on swift-nio's `FileSystemError`: the message is the one line the CLI prints.
public struct WardenError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// A flag, profile field or argument has a value Warden does not accept.
        public static let invalidInput = Code("invalid-input")
        /// A confinement layer cannot be applied on this machine.
        public static let layerUnavailable = Code("layer-unavailable")
        /// A run, file or directory that was named does not exist.
        public static let notFound = Code("not-found")
        /// A system call failed.
        public static let systemCall = Code("system-call")
        /// A run could not be stopped completely.
        public static let stopIncomplete = Code("stop-incomplete")
        /// The request conflicts with the run's state.
        public static let conflict = Code("conflict")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func invalidInput(_ message: String) -> WardenError {
        WardenError(code: .invalidInput, message: message)
    }
}

extension WardenError {
    /// A one-line cause for an HTTP client's transport error (NIO's descriptions nest the underlying
    /// errno deeply): the known cause, else the description cut at 160 characters.
    public static func transportReason(_ error: any Error) -> String {
        let text = String(describing: error)
        for known in ["Connection refused", "connectTimeout", "deadlineExceeded", "readTimeout", "No such host"]
        where text.contains(known) {
            return known == "Connection refused" ? "connection refused" : known
        }
        return text.count > 160 ? String(text.prefix(160)) + "…" : text
    }
}
