#!/usr/bin/env python3
"""Outside check of infergate's change points against Apache Otava's E-divisive.

Run by hand, not in CI (Otava is not a dependency of infergate):

    python3 -m venv /tmp/otava && /tmp/otava/bin/pip install apache-otava
    cargo run --release --example changepoint_bench -- --only none --csv /tmp/cpd
    /tmp/otava/bin/python scripts/otava-compare.py /tmp/cpd

The example writes seeded series (series.csv), their true steps (truth.csv)
and infergate's change points on them (ours.csv, with the default settings
and with min_segment = 1). This script runs on the same series:

- Otava's original E-divisive (Matteson and James: permutation test, best
  split searched over both its start and the end of its right side), at
  p <= 0.05 with 199 permutations, as ours;
- Otava's default analysis (`otava analyze`: windowed E-divisive, then a
  t-test merge at p <= 0.001), for reference;

and prints, per kind of series, how many change points each found, their
agreement with ours (a one-to-one match within +-1 index; precision = share
of ours that Otava also found, recall = share of Otava's that we found), and
each one's precision and recall against the true steps (within +-3 runs).
"""

import argparse
import csv
import math
import sys
import time
from collections import defaultdict

try:
    import numpy as np
    from otava.analysis import compute_change_points
    from otava.change_point_divisive.calculator import PairDistanceCalculator
    from otava.change_point_divisive.detector import ChangePointDetector
    from otava.change_point_divisive.significance_test import PermutationsSignificanceTester
except ImportError as e:  # pragma: no cover - run by hand
    sys.exit(f"error: {e}; install Otava first: python3 -m venv /tmp/otava && /tmp/otava/bin/pip install apache-otava")


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def otava_edivisive(values, pvalue, permutations, seed):
    tester = PermutationsSignificanceTester(
        max_pvalue=pvalue, permutations=permutations, calculator=PairDistanceCalculator, seed=seed
    )
    detector = ChangePointDetector(significance_tester=tester, calculator=PairDistanceCalculator)
    return sorted(int(cp.index) for cp in detector.get_change_points(np.array(values, dtype=np.float64)))


def otava_default(values):
    # A list, as `otava analyze` passes it: given a numpy array, Otava 0.8's
    # detector ignores the window bounds and analyses the whole series.
    cps, _ = compute_change_points(list(values))
    return sorted(int(cp.index) for cp in cps)


def matches(a, b, tol):
    """Size of a one-to-one matching of a to b within tol (greedy by distance)."""
    pairs = sorted((abs(x - y), i, j) for i, x in enumerate(a) for j, y in enumerate(b) if abs(x - y) <= tol)
    used_a, used_b, n = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            n += 1
    return n


def share(hits, n):
    """'hits/n = p% [lo, hi]' with a 95% Wilson interval."""
    if n == 0:
        return "-"
    z = 1.959963984540054
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return f"{hits}/{n} = {100 * p:.0f}% [{100 * max(0, centre - half):.0f}, {100 * min(1, centre + half):.0f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="folder written by `changepoint_bench --csv DIR`")
    ap.add_argument("--pvalue", type=float, default=0.05)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--tolerance", type=int, default=1, help="match ours to Otava's within this many indices")
    args = ap.parse_args()

    series, kinds = defaultdict(list), {}
    for row in read(f"{args.dir}/series.csv"):
        sid = int(row["series"])
        kinds[sid] = row["kind"]
        series[sid].append(float(row["value"]))
    truth = defaultdict(list)
    for row in read(f"{args.dir}/truth.csv"):
        truth[int(row["series"])].append(int(row["index"]))
    ours = defaultdict(lambda: defaultdict(list))
    for row in read(f"{args.dir}/ours.csv"):
        ours[row["config"]][int(row["series"])].append(int(row["index"]))

    found = {}
    for name in ours:
        found[f"infergate ({name})"] = {sid: sorted(ours[name][sid]) for sid in series}
    t = time.time()
    found["otava e-divisive"] = {
        sid: otava_edivisive(v, args.pvalue, args.permutations, seed=sid) for sid, v in series.items()
    }
    t_ediv = time.time() - t
    t = time.time()
    found["otava analyze default"] = {sid: otava_default(v) for sid, v in series.items()}
    t_default = time.time() - t
    print(
        f"{len(series)} series of {len(next(iter(series.values())))} points; Otava e-divisive "
        f"(p <= {args.pvalue}, {args.permutations} permutations) {t_ediv:.1f} s, Otava default {t_default:.1f} s\n"
    )

    groups = sorted(set(kinds.values())) + ["all"]
    in_group = lambda g, sid: g == "all" or kinds[sid] == g  # noqa: E731

    print("## Change points found, and against the true steps (within 3 runs)")
    print(f"{'method':<28} {'kind':<10} {'found':>6}  {'precision':<24} {'recall':<24}")
    for name, by in found.items():
        for g in groups:
            sids = [s for s in series if in_group(g, s)]
            n_found = sum(len(by[s]) for s in sids)
            n_true = sum(len(truth[s]) for s in sids)
            hit = sum(matches(by[s], truth[s], 3) for s in sids)
            print(f"{name:<28} {g:<10} {n_found:>6}  {share(hit, n_found):<24} {share(hit, n_true):<24}")
    print()

    print(f"## Agreement of ours with Otava (one-to-one within +-{args.tolerance} index)")
    print(f"{'ours':<28} {'otava':<22} {'kind':<10} {'precision (ours in theirs)':<28} {'recall (theirs in ours)':<28} {'same set':<22}")
    for mine in [k for k in found if k.startswith("infergate")]:
        for theirs in ["otava e-divisive", "otava analyze default"]:
            for g in groups:
                sids = [s for s in series if in_group(g, s)]
                hit = sum(matches(found[mine][s], found[theirs][s], args.tolerance) for s in sids)
                n_mine = sum(len(found[mine][s]) for s in sids)
                n_theirs = sum(len(found[theirs][s]) for s in sids)
                same = sum(
                    1
                    for s in sids
                    if len(found[mine][s]) == len(found[theirs][s])
                    and matches(found[mine][s], found[theirs][s], args.tolerance) == len(found[mine][s])
                )
                print(
                    f"{mine:<28} {theirs:<22} {g:<10} {share(hit, n_mine):<28} {share(hit, n_theirs):<28} "
                    f"{share(same, len(sids)):<22}"
                )
    print()
    print("## Series where ours (default) and Otava's e-divisive differ")
    for sid in sorted(series):
        a, b = found["infergate (default)"][sid], found["otava e-divisive"][sid]
        if not (len(a) == len(b) and matches(a, b, args.tolerance) == len(a)):
            print(f"series {sid:>3} ({kinds[sid]}): truth {truth[sid]}, ours {a}, otava {b}")


if __name__ == "__main__":
    main()
