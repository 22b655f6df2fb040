#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a fixed time each, one job each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS defaults to 60; the targets default to all of them (`cargo fuzz
# list`). Installs cargo-fuzz when it is missing. The committed seed corpus
# (fuzz/corpus/TARGET) is only read: what the fuzzer finds goes to
# fuzz/target/corpus/TARGET, crashes to fuzz/artifacts/TARGET. Logs are in
# fuzz/target/logs/. Ends with one line per target (time, executions, result)
# and exits 1 when any target crashed.
#
# Environment: FUZZ_TOOLCHAIN (default nightly; cargo-fuzz needs a nightly
# compiler), CARGO_BUILD_JOBS (e.g. 1 on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi

mkdir -p fuzz/target/logs
cargo "+$toolchain" fuzz build

summary=()
failed=0
for target in "${targets[@]}"; do
  work="fuzz/target/corpus/$target"
  log="fuzz/target/logs/$target.log"
  mkdir -p "$work" "fuzz/corpus/$target"
  echo "== $target: ${seconds}s"
  # The first corpus folder receives new inputs; the seeds stay as committed.
  if cargo "+$toolchain" fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "$log"; then
    result="no crash"
  else
    result="CRASH (see $log and fuzz/artifacts/$target)"
    failed=1
  fi
  # libFuzzer ends with "Done N runs in S second(s)".
  done_line=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
  summary+=("$target: ${done_line:-no 'Done' line}: $result")
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
