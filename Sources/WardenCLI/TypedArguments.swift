import ArgumentParser
import WardenCore

// Modes and layers are parsed by the argument parser itself, so `--help` lists the values and a typo is
// one error naming them.

extension NetworkMode: ExpressibleByArgument {}

extension TamperAction: ExpressibleByArgument {}
extension BudgetAction: ExpressibleByArgument {}

extension MediatorLossAction: ExpressibleByArgument {}
extension DecisionRecords: ExpressibleByArgument {}

extension ReadView: ExpressibleByArgument {}

extension Layer: ExpressibleByArgument {
    /// Only the layers `--allow-degraded` accepts.
    public static var allValueStrings: [String] { degradable.map(\.degradedName) }

    /// Parses `--allow-degraded`'s value with the reason when a layer cannot be degraded.
    static func degradable(_ text: String) throws -> Layer {
        try Layer(degradable: text, field: "--allow-degraded")
    }
}
