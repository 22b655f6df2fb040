"""The side-by-side table of scripts/peers-aiperf.sh.

Reads infergate's results files (warm phase) and AIPerf's per-request
export (profiling phase) from one folder, computes every figure from the
per-request records with one definition for both tools, and adds each
tool's own headline figure where its definition differs.

usage: python peers_table.py FOLDER OUTPUT_TOKENS
"""
import glob
import json
import os
import statistics
import sys

folder, asked = sys.argv[1], int(sys.argv[2])


def infergate_requests():
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "infergate-*.json"))):
        results = json.load(open(path))
        for case in results["cases"]:
            for r in case["phases"]["warm"]["requests"]:
                if r.get("ok"):
                    out.append({
                        "ttft": r["ttft_ms"], "e2e": r["e2e_ms"], "gaps": r.get("itl_ms") or [],
                        "out": r["output_tokens"], "prompt": r.get("prompt_tokens"),
                    })
    return out


def aiperf_requests():
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "aiperf-*", "profile_export.jsonl"))):
        for line in open(path):
            rec = json.loads(line)
            if rec["metadata"].get("benchmark_phase") == "warmup" or rec.get("error"):
                continue
            m = {k: v["value"] for k, v in rec["metrics"].items()}
            out.append({
                "ttft": m["time_to_first_token"], "e2e": m["request_latency"],
                "gaps": m.get("inter_chunk_latency") or [], "out": m["output_sequence_length"],
                "prompt": m.get("usage_prompt_tokens", m.get("input_sequence_length")),
                "aiperf_itl": m.get("inter_token_latency"),
            })
    return out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def p99(xs):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * 0.99
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def figures(reqs):
    tpot = [(r["e2e"] - r["ttft"]) / (r["out"] - 1) for r in reqs if r["out"] > 1]
    gaps = [g for r in reqs for g in r["gaps"]]
    return [
        ("requests measured", len(reqs), "{:.0f}"),
        ("prompt tokens (server count)", med([r["prompt"] for r in reqs if r["prompt"]]), "{:.0f}"),
        (f"output tokens (asked {asked})", med([r["out"] for r in reqs]), "{:.0f}"),
        ("TTFT median, ms", med([r["ttft"] for r in reqs]), "{:.1f}"),
        ("TTFT mean, ms", statistics.fmean([r["ttft"] for r in reqs]), "{:.1f}"),
        ("TPOT median, ms ((E2E - TTFT) / (n - 1))", med(tpot), "{:.2f}"),
        ("TPOT mean, ms", statistics.fmean(tpot), "{:.2f}"),
        ("ITL median, ms (gaps between chunks)", med(gaps), "{:.2f}"),
        ("ITL p99, ms", p99(gaps), "{:.2f}"),
        ("E2E median, ms", med([r["e2e"] for r in reqs]), "{:.1f}"),
        ("output tokens/s per request, median (n / E2E)", med([r["out"] / r["e2e"] * 1000 for r in reqs]), "{:.2f}"),
        ("decode tokens/s per request, median (1 / TPOT)", med([1000 / t for t in tpot]), "{:.2f}"),
    ]


ig, ap = infergate_requests(), aiperf_requests()
rows = list(zip(figures(ig), figures(ap)))
print()
print("| figure | infergate | AIPerf | difference |")
print("|:--|--:|--:|--:|")
for (name, a, fmt), (_, b, _) in rows:
    diff = "" if name.startswith(("requests", "prompt", "output tokens (")) or not b else f"{(a - b) / b * 100:+.1f}%"
    print(f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {diff} |")
def cpu(pattern):
    wall = user = system = 0.0
    for path in glob.glob(os.path.join(folder, pattern)):
        w, u, s = (float(x) for x in open(path).read().split()[-3:])
        wall, user, system = wall + w, user + u, system + s
    return wall, user + system


(ig_wall, ig_cpu), (ap_wall, ap_cpu) = cpu("infergate-*.json.cpu"), cpu("aiperf-*.cpu")
print(f"| client wall time, s (whole tool, {len(ig)} + {len(ap)} requests) | {ig_wall:.1f} | {ap_wall:.1f} | |")
print(f"| client CPU time, s (user + system, all its processes) | {ig_cpu:.2f} | {ap_cpu:.2f} | |")
own = [r["aiperf_itl"] for r in ap if r.get("aiperf_itl") is not None]
if own:
    print(f"\nAIPerf's own `inter_token_latency` (its ITL, which is TPOT above): median {med(own):.2f} ms")
