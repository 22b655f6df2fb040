#!/usr/bin/env bash
# Client CPU per chunk: infergate, AIPerf and GuideLLM driving the same
# workload against the same `infergate sim`, one after the other, in one run.
#
#   bash scripts/peers-sim-bench.sh
#
# The simulator streams 256 tokens per request, one token per chunk, with no
# pacing (ITL_MS=0) and no slowdown, so each client is as busy as it can be;
# it runs as a separate process and its CPU is not counted. Each client's CPU
# time is that of its whole process tree (`/usr/bin/time`: user + system of
# the process and every child it waited for, which covers AIPerf's and
# GuideLLM's worker processes). The chunks are the ones the simulator sent
# (its --truth-log), the same count for every client.
#
# Environment: CONCURRENCY (default "64 256"), REQUESTS_PER_STREAM (default 4),
# OSL (output tokens, default 256), ITL_MS (default 0), INFERGATE_BIN
# (default: built here, release), AIPERF_BIN / GUIDELLM_BIN (default:
# installed into target/peers with uv, or pip without it), TOKENIZER (a
# local Hugging Face tokenizer folder, tokenizer.json and
# tokenizer_config.json, with which both peers synthesise prompts; without it
# AIPerf downloads tiktoken's o200k_base and GuideLLM cannot run offline).
#
# The figures are noisy on a small shared machine (the simulator and the
# client share its cores); compare the ratios, and rerun before trusting a
# single figure.
set -euo pipefail
cd "$(dirname "$0")/.."

concurrency="${CONCURRENCY:-64 256}"
per_stream="${REQUESTS_PER_STREAM:-4}"
osl="${OSL:-256}"
isl=256
itl="${ITL_MS:-0}"
tok="${TOKENIZER:-}"
peers="$PWD/target/peers"
mkdir -p "$peers"

install() { # $1: venv folder, then the packages
  local venv=$1
  shift
  if command -v uv > /dev/null; then
    uv venv --quiet "$venv"
    VIRTUAL_ENV="$venv" uv pip install --quiet "$@"
  else
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "$@"
  fi
}
aiperf="${AIPERF_BIN:-$peers/aiperf-venv/bin/aiperf}"
if [ ! -x "$aiperf" ]; then
  echo "peers: installing AIPerf into $peers/aiperf-venv"
  install "$peers/aiperf-venv" aiperf==0.13.0 || echo "peers: AIPerf could not be installed; left out"
fi
guidellm="${GUIDELLM_BIN:-$peers/guidellm-venv/bin/guidellm}"
if [ ! -x "$guidellm" ]; then
  echo "peers: installing GuideLLM into $peers/guidellm-venv"
  install "$peers/guidellm-venv" guidellm==0.8.1 || echo "peers: GuideLLM could not be installed; left out"
fi

bin="${INFERGATE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --release --bin infergate
  bin="$PWD/target/release/infergate"
fi
work=$(mktemp -d)
sim_pid=
stop_sim() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2> /dev/null || true
    wait "$sim_pid" 2> /dev/null || true
    sim_pid=
  fi
}
trap 'stop_sim; rm -rf "$work"' EXIT

# A fresh simulator per run, so each run's truth log holds its chunks alone.
start_sim() { # $1: truth log
  "$bin" sim --port 0 --itl-ms "$itl" --itl-jitter 0 --concurrency-slowdown 0 --truth-log "$1" \
    > "$work/sim.out" 2> "$work/sim.err" &
  sim_pid=$!
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$work/sim.out")
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "peers: the simulator did not start: $(cat "$work/sim.err")" >&2
  exit 1
}

cat > "$work/suite.toml" << EOF
name = "peers"
contexts = [$isl]
output_tokens = $osl

[[scenarios]]
name = "ingest"
instruction = "Write a long answer."
EOF

cpu() { # $1: file, then the command; writes "wall user system" to $1
  local out=$1
  shift
  /usr/bin/time -f "%e %U %S" -o "$out" "$@"
}
run_infergate() { # $1: concurrency, $2: requests, $3: output stem
  cpu "$3.cpu" "$bin" -q run --base-url "$url" --model sim --suite "$work/suite.toml" --repetitions "$2" \
    --warmup 0 --concurrency "$1" --gpu off --out "$3.json" > "$3.log" 2>&1
}
run_aiperf() {
  cpu "$3.cpu" "$aiperf" profile --model sim --url "$url" --endpoint-type chat --streaming --tokenizer "${tok:-builtin}" \
    --prompt-input-tokens-mean "$isl" --prompt-input-tokens-stddev 0 --prompt-output-tokens-mean "$osl" \
    --prompt-output-tokens-stddev 0 --extra-inputs ignore_eos:true --use-server-token-count \
    --concurrency "$1" --request-count "$2" --random-seed 1 --ui-type none --artifact-dir "$3.d" > "$3.log" 2>&1
}
run_guidellm() {
  cpu "$3.cpu" "$guidellm" run --backend "kind=openai_http,target=$url" --profile "kind=concurrent,streams=$1" \
    --constraint "kind=max_requests,count=$2" \
    --data "kind=synthetic_text,prompt_tokens=$isl,output_tokens=$osl" \
    ${tok:+--tokenizer "kind=huggingface_auto,model=$tok"} --disable-console --output "kind=json,path=$3.d.json" > "$3.log" 2>&1
}

tools="infergate"
[ -x "$aiperf" ] && tools="$tools aiperf"
[ -x "$guidellm" ] && tools="$tools guidellm"
rows="$work/rows.tsv"
: > "$rows"
for c in $concurrency; do
  requests=$((c * per_stream))
  for tool in $tools; do
    echo "peers: $tool, $c streams, $requests requests of $osl tokens"
    stem="$work/$tool-$c"
    start_sim "$stem.truth.jsonl"
    if "run_$tool" "$c" "$requests" "$stem"; then
      status=ok
    else
      status="failed (see below)"
      tail -5 "$stem.log" | sed "s/^/peers: $tool: /" >&2
    fi
    stop_sim
    chunks=$(python3 -c 'import json,sys; print(sum(len(json.loads(l)["emit_ms"]) for l in open(sys.argv[1]) if l.strip()))' \
      "$stem.truth.jsonl" 2> /dev/null || echo 0)
    printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$tool" "$chunks" "$(cat "$stem.cpu" 2> /dev/null | tail -1)" "$status" >> "$rows"
  done
done

python3 - "$rows" << 'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print()
print(f"{'streams':>7} {'client':<10} {'chunks':>8} {'wall s':>7} {'CPU s':>7} {'us/chunk':>9} {'chunks/CPU-s':>13} {'x infergate':>11}")
base = {}
for c, tool, chunks, times, status in rows:
    chunks = int(chunks)
    try:
        wall, user, system = map(float, times.split())
    except ValueError:
        print(f"{c:>7} {tool:<10} {status}")
        continue
    cpu = user + system
    us = cpu * 1e6 / chunks if chunks else float("nan")
    if tool == "infergate":
        base[c] = us
    ratio = us / base[c] if base.get(c) else float("nan")
    note = "" if status == "ok" else f"  {status}"
    print(f"{c:>7} {tool:<10} {chunks:>8} {wall:>7.1f} {cpu:>7.2f} {us:>9.2f} {chunks / cpu if cpu else 0:>13.0f} {ratio:>10.1f}x{note}")
PY
