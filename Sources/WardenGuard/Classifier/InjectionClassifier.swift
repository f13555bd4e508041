import Foundation
import WardenCore

/// The validation layer's classifier: the MiniLM encoder and the injection head (trained by
/// scripts/guard/train-head.py on AgentDojo data). A text's score is the highest of its windows'
/// (128 tokens, overlapping), so an injection anywhere in a long tool output counts. Never decides:
/// its score becomes a finding (`classifier`) in the decision's context.
public final class InjectionClassifier: Sendable {
    public static let name = "classifier"
    public static let version = InjectionHead.version
    /// The score from which a text is reported (0–1).
    public let threshold: Double
    let model: MiniLM

    /// - Throws: ``WardenError`` (`layerUnavailable`) when the weights or BLAS are missing: a door that
    ///   was asked to classify then refuses to start (fails closed).
    public init(model: MiniLM? = nil, threshold: Double = 0.5) throws {
        self.model = try model ?? MiniLM()
        self.threshold = threshold
    }

    /// One window's score: the head over its embedding.
    public func score(ids: [Int32]) -> Double {
        Self.head(model.embed(ids: ids))
    }

    static func head(_ embedding: [Float]) -> Double {
        var sum = InjectionHead.bias
        for (w, e) in zip(InjectionHead.weights, embedding) { sum += w * e }
        return 1 / (1 + exp(-Double(sum)))
    }

    /// The text's score (the highest window's), the number of windows, and the best window's index.
    public func score(_ text: String) -> (score: Double, windows: Int, worst: Int) {
        let windows = model.windows(text)
        var best = (score: 0.0, index: 0)
        for (i, window) in windows.enumerated() {
            let s = score(ids: window)
            if s > best.score { best = (s, i) }
        }
        return (best.score, windows.count, best.index)
    }

    /// A finding when the score reaches the threshold (the span is the whole text: windows are tokens,
    /// not bytes).
    public func findings(_ text: String) -> [Finding] { findings(score(text), bytes: text.utf8.count) }

    /// The finding of a text already scored (`bytes`: its UTF-8 length).
    public func findings(_ result: (score: Double, windows: Int, worst: Int), bytes: Int) -> [Finding] {
        guard result.score >= threshold else { return [] }
        return [
            Finding(
                detector: Self.name, version: Self.version, start: 0, end: bytes, confidence: result.score,
                detail:
                    "text that reads like an injected instruction (score \(String(format: "%.2f", result.score)), window \(result.worst + 1) of \(result.windows))"
            )
        ]
    }
}
