#!/usr/bin/env python3
"""Two threads against one: the speed-up of training steps, from alternating rounds.

    python3 benchmarks/thread_scaling.py [build/release/benchmarks/alignment_cost]
        [--filter REGEX] [--rounds 5] [--threads 1 2]

Each round runs the alignment_cost benchmarks once per thread count (OMP_NUM_THREADS),
in turn, so that a slow spell of a shared machine lands on both sides alike; the table
gives each configuration's median over rounds of the per-round median step time, and the
speed-up of every thread count over the first. A round whose times differ from the others'
by far says the machine was busy: the per-round figures are printed too.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

DEFAULT_FILTER = r"^(mnist_mlp|mnist_mlp_b1024|cnn28)/f(64|32)/(plain|grokalign)_step$"


def run_once(binary, bench_filter, threads, repetitions):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [binary, f"--benchmark_filter={bench_filter}",
         f"--benchmark_repetitions={repetitions}", "--benchmark_format=json"],
        env=env, check=True, capture_output=True, text=True).stdout
    samples = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
            samples.setdefault(b["run_name"], []).append(b["real_time"] * scale)
    if not samples:
        sys.exit(f"thread_scaling: no benchmark matches --filter '{bench_filter}'")
    times = {name: statistics.median(v) for name, v in samples.items()}
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary", nargs="?", default="build/release/benchmarks/alignment_cost")
    ap.add_argument("--filter", default=DEFAULT_FILTER)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"thread_scaling: {args.binary} is not an executable; build it with\n"
                 "    cmake --build <build dir> --target alignment_cost")
    if args.rounds < 1 or args.repetitions < 1 or any(t < 1 for t in args.threads):
        sys.exit("thread_scaling: --rounds, --repetitions and --threads must be positive")

    rounds = {t: [] for t in args.threads}
    for r in range(args.rounds):
        for t in args.threads:
            rounds[t].append(run_once(args.binary, args.filter, t, args.repetitions))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    names = list(rounds[args.threads[0]][0])
    base = args.threads[0]
    head = " | ".join(f"{t} thr ms" for t in args.threads)
    ups = " | ".join(f"{t}/{base}" for t in args.threads[1:])
    print(f"| benchmark | {head} | {ups} | per-round ms ({', '.join(map(str, args.threads))}) |")
    print("|---" * (2 + 2 * len(args.threads) - 1) + "|")
    for n in names:
        med = {t: statistics.median(r[n] for r in rounds[t]) for t in args.threads}
        per_round = "; ".join(
            " / ".join(f"{rounds[t][i][n]:.2f}" for t in args.threads) for i in range(args.rounds))
        cells = " | ".join(f"{med[t]:.2f}" for t in args.threads)
        speed = " | ".join(f"{med[base] / med[t]:.2f}x" for t in args.threads[1:])
        print(f"| {n} | {cells} | {speed} | {per_round} |")


if __name__ == "__main__":
    main()
