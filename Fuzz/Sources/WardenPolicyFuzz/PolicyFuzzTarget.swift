import WardenPolicy

/// Fixed entities and request for evaluating whatever the fuzzer manages to parse.
private let entities: Entities = {
    let json = """
        [{"uid": {"type": "User", "id": "alice"}, "attrs": {"n": 1, "s": "x", "r": {"a": [1, 2]}},
          "parents": [{"type": "Group", "id": "g"}], "tags": {"t": "v"}},
         {"uid": {"type": "Group", "id": "g"}, "attrs": {}, "parents": []}]
        """
    return (try? Entities(json: json)) ?? Entities()
}()

private let request = AuthorizationRequest(
    principal: EntityUID(type: "User", id: "alice"), action: EntityUID(type: "Action", id: "view"),
    resource: EntityUID(type: "Photo", id: "p"), context: ["n": .long(3), "s": .string("abc")])

/// libFuzzer's entry point: parse the input as policies (and as entity JSON); whatever parses is
/// authorized against a fixed request. A crash, a hang or an error positioned outside the input is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicyText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    do {
        let policies = try PolicySet(text: text)
        _ = policies.isAuthorized(request, entities: entities)
    } catch {
        // Lines as the lexer counts them: split at U+000A only ("\r\n" is one Character in Swift).
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        let line = error.location.line
        guard line >= 1, line <= lines.count, error.location.column >= 1,
            error.location.column <= lines[line - 1].count + 1, !error.message.isEmpty
        else {
            fatalError("parse error positioned outside the input: \(error) for \(lines.count) lines")
        }
    }
    _ = try? Entities(json: text)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// SwiftPM links executables with `main` renamed to `<target>_main`; hand control to libFuzzer's driver.
@_cdecl("WardenPolicyFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzPolicyText)
}
