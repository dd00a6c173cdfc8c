#!/usr/bin/python3
"""Cost model of data-parallel GrokAlign training over N ranks (docs/scaling.md).

Strong scaling: the global batch is fixed and split over N ranks. One step on N ranks costs

    T(N) = T_fixed + (T_1 - T_fixed) / N + T_allreduce(N)
    T_allreduce(N) = 2 (N - 1) alpha + 2 (N - 1) / N * 8 P / beta     (ring allreduce, f64)

where T_1 is the one-rank step, T_fixed the part every rank repeats whatever N is (the
optimiser's update of all P parameters), alpha the per-message latency and beta the link
bandwidth. It is optimistic about compute: it assumes a rank's share of the step shrinks
as 1/N, while small per-rank batches run GEMMs below their full rate. Prints, per model and network, T(N) and the speed-up T_1 / T(N) at a few N, the
N that minimises T(N) (beyond it a rank more makes steps slower) and the largest N still at
>= 50% parallel efficiency. Standard library only.
"""
import argparse
import math

# Parameters (f64) and the measured one-thread GrokAlign step (docs/performance.md, run C,
# f64 medians; XOR from its FLOP count at the MLP's measured 60 GFLOP/s, see MODELS' notes).
ADAMW_NS_PER_PARAM = 0.430e-3 / 232_456 * 1e9  # mnist_mlp/f64/adamw_update: 0.430 ms
SGD_NS_PER_PARAM = 0.5  # assumed: theta -= lr (g + wd theta), memory-bound, ~24 B/parameter


def xor_step_seconds():
    # 40000-2048-1, bias-free, full batch 400 (SPEC.md, xor_grokking at the paper's size).
    n0, n1, n2, B = 40_000, 2_048, 1, 400
    P = n0 * n1 + n1 * n2
    plain = 2 * B * (3 * P - n0 * n1)
    added = 2 * B * (3 * P - n1 * n2)  # direct form: the Gram form costs more here (n1 large)
    return (plain + added) / 60e9, P


MODELS = [
    # name, parameters, one-rank step (s), optimiser ns per parameter, note, global batch
    ("MNIST MLP 784-196-196-196-10, B 256", 784 * 196 + 2 * 196 * 196 + 196 * 10, 11.59e-3,
     ADAMW_NS_PER_PARAM, "measured, run C", 256),
    ("CNN 32x32x3, f 32, B 64", 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9
     + 64 * 128 * 9 + 128 * 128 * 9 + 128 * 128 + 128 * 10, 442.48e-3, ADAMW_NS_PER_PARAM,
     "measured, run C", 64),
    ("transformer p 113, d 128, B 256", 114 * 128 + 3 * 128 + 4 * 4 * 32 * 128 + 2 * 128 * 512
     + 512 + 128 + 128 * 114, 31.08e-3, ADAMW_NS_PER_PARAM, "measured, run C", 256),
    ("XOR 40000-2048-1, B 400", xor_step_seconds()[1], xor_step_seconds()[0], SGD_NS_PER_PARAM,
     "FLOPs / 60 GFLOP/s", 400),
]


def step_time(n, t1, t_fixed, params, alpha, beta_bytes):
    ring = 0.0 if n == 1 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * 8 * params / beta_bytes
    return t_fixed + (t1 - t_fixed) / n + ring


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gbits", type=float, nargs="+", default=[10, 100])
    ap.add_argument("--latency_us", type=float, default=5.0)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    args = ap.parse_args()
    alpha = args.latency_us * 1e-6
    print("| model | P | allreduce bytes | step on 1 rank | network | " +
          " | ".join(f"N={n}" for n in args.ranks) + " | fastest N | largest N at >= 50% efficiency |")
    print("|" + "---|" * (7 + len(args.ranks)))
    for name, params, t1, ns, note, batch in MODELS:
        t_fixed = params * ns * 1e-9
        for gbits in args.gbits:
            beta = gbits * 1e9 / 8
            cells = []
            for n in args.ranks:
                t = step_time(n, t1, t_fixed, params, alpha, beta)
                cells.append(f"{t * 1e3:.3g} ms ({t1 / t:.2f}x)")
            times = {n: step_time(n, t1, t_fixed, params, alpha, beta) for n in range(1, batch + 1)}  # >= 1 sample a rank
            fastest = min(times, key=times.get)
            efficient = max(n for n in times if t1 / times[n] / n >= 0.5)
            print(f"| {name} | {params:,} | {8 * params / 1e6:.3g} MB | {t1 * 1e3:.4g} ms ({note}) | "
                  f"{gbits:g} Gb/s, {args.latency_us:g} us | " + " | ".join(cells) +
                  f" | {fastest} ({t1 / times[fastest]:.1f}x) | {efficient} |")


if __name__ == "__main__":
    main()
