#!/usr/bin/env bash
# AIPerf and infergate side by side against the same llama-server: the same
# model, input and output lengths, concurrency and request count; prints
# both tools' TTFT, ITL/TPOT, E2E and tokens/s in one table (the book's,
# docs/src/real-engine.md).
#
#   LLAMA_SERVER=../shared/bin/llama-server bash scripts/peers-aiperf.sh
#
# The server runs with one thread and --no-cache-prompt, so every request
# of either tool processes its whole prompt (AIPerf sends a different prompt
# each time; infergate's warm phase repeats one, which llama.cpp would
# otherwise serve from its prompt cache). Run it on an otherwise idle
# machine: the two tools run one after the other, alternating, twice.
#
# Environment: LLAMA_SERVER, INFERGATE_BIN (default: built here, release),
# INFERGATE_E2E_CACHE (default target/e2e),
# REQUESTS (per tool and round, default 12). Lengths are the quick suite's
# debugging/256 case: 256 prompt tokens as the server counts them, 32 out.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/llama-cpp-setup.sh
requests="${REQUESTS:-12}"
isl=256
osl=32

# AIPerf, the gguf reader and tokenizers in a venv of their own (uv when it
# is there: seconds instead of minutes).
venv="$cache/peers-venv"
if [ ! -x "$venv/bin/aiperf" ]; then
  if command -v uv > /dev/null; then
    uv venv --quiet "$venv"
    VIRTUAL_ENV="$venv" uv pip install --quiet aiperf==0.13.0 gguf==0.19.0
  else
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet aiperf==0.13.0 gguf==0.19.0
  fi
fi
# AIPerf needs a tokenizer folder to synthesise prompts: made from the GGUF's
# own vocabulary (it matches llama-server's /tokenize exactly).
tokenizer="$cache/gemma3-270m-tokenizer"
if [ ! -f "$tokenizer/tokenizer.json" ]; then
  "$venv/bin/python" scripts/gguf_tokenizer.py "$model" "$tokenizer"
fi

bin="${INFERGATE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --release --bin infergate
  bin="$PWD/target/release/infergate"
fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" -m "$model" -c 4096 -np 1 -t 1 --no-cache-prompt --metrics --host 127.0.0.1 --port "$port" \
  > "$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2> /dev/null; wait $server_pid 2> /dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  curl -sf "$url/health" > /dev/null 2>&1 && break
  sleep 0.5
done

# infergate sizes prompts as the server counts them, chat template included;
# AIPerf counts the text alone. Ask AIPerf for the text that makes the same
# server-side count.
overhead=$(python3 - "$url" "$model" <<'PY'
import json, sys, urllib.request
url, model = sys.argv[1], sys.argv[2]
def post(path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
text = "The quick brown fox jumps over the lazy dog."
plain = len(post("/tokenize", {"content": text})["tokens"])
chat = post("/v1/chat/completions", {"model": model, "max_tokens": 1,
            "messages": [{"role": "user", "content": text}]})["usage"]["prompt_tokens"]
print(chat - plain)
PY
)
echo "peers: chat template adds $overhead tokens; AIPerf asks for $((isl - overhead)) text tokens"

# Each tool's own CPU time (its process tree) goes to FILE.cpu: on a small
# machine a client that burns CPU slows the server it measures.
cpu() { # $1: file, then the command
  local out=$1
  shift
  /usr/bin/time -f "%e %U %S" -o "$out.cpu" "$@"
}
run_infergate() { # $1: output file
  cpu "$1" "$bin" -q run --base-url "$url" --model "$model" --suite quick --cases "debugging/$isl" \
    --repetitions "$requests" --warmup 1 --gpu off --out "$1" > /dev/null
}
run_aiperf() { # $1: artifact folder
  cpu "$1" "$venv/bin/aiperf" profile --model "$model" --url "$url" --endpoint-type chat --streaming \
    --tokenizer "$tokenizer" --prompt-input-tokens-mean $((isl - overhead)) --prompt-input-tokens-stddev 0 \
    --prompt-output-tokens-mean "$osl" --prompt-output-tokens-stddev 0 --extra-inputs ignore_eos:true \
    --use-server-token-count --concurrency 1 --request-count "$requests" --warmup-request-count 1 \
    --random-seed 1 --ui-type none --artifact-dir "$1" > "$1.log" 2>&1
}
for round in 1 2; do
  echo "peers: round $round: infergate"
  run_infergate "$work/infergate-$round.json"
  echo "peers: round $round: AIPerf"
  run_aiperf "$work/aiperf-$round"
done
python3 scripts/peers_table.py "$work" "$osl"
