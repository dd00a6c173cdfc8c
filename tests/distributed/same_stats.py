#!/usr/bin/env python3
"""Compares the stats.csv files of two accelerating_grokking sweeps, or the .csv files of two
runs of another example (tests/distributed): every value but the timing columns (*seconds),
to 1e-9 relative (data-parallel ranks only reorder the sums of one process, so the runs agree
to rounding, not bit for bit).
  same_stats.py ONE TWO WHAT RUNS [TOLERANCE]
ONE, TWO: the sweeps' OUT folders, or two runs' folders; WHAT: names the comparison in the
line printed; RUNS: the number of runs (stats.csv files) ONE must hold, 0 for one run's folder
(its stats.csv and any other .csv beside it); TOLERANCE: 1e-9 unless given (0: identical)."""
import csv
import pathlib
import sys

one, two, what, runs = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
tolerance = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-9
if runs == 0:
    assert (one / "stats.csv").is_file(), f"{one} holds no stats.csv"
    files = sorted(one.glob("*.csv"))
else:
    files = sorted(one.glob("*/seed*/stats.csv"))
    assert len(files) == runs, f"expected {runs} runs, found {len(files)}"
worst, cells = 0.0, 0
for f in files:
    g = two / f.relative_to(one)
    a, b = list(csv.DictReader(open(f))), list(csv.DictReader(open(g)))
    assert len(a) == len(b) > 1, f"{g}: {len(b)} rows against {len(a)}"
    for x, y in zip(a, b):
        for k in x:
            if k.endswith("seconds"):
                continue
            if x[k] == y[k]:  # also what is not a number
                cells += 1
                continue
            try:
                u, v = float(x[k]), float(y[k])
            except ValueError:
                print(f"FAIL {what}: {g}, {k} = {y[k]!r} against {x[k]!r}")
                sys.exit(1)
            worst, cells = max(worst, abs(u - v) / max(1.0, abs(u))), cells + 1
print(f"{what}: {len(files)} stats.csv, {cells} values, max relative difference {worst:.3g}")
sys.exit(0 if worst <= tolerance else 1)
