#!/usr/bin/env python3
"""Wall-clock time until the MNIST MLP groks: our accelerating_grokking against PyTorch.

Our side is the `grokalign_ce` variant of examples/accelerating_grokking (one process per
seed and thread count). The PyTorch side is the same recipe written the reference's way,
run in this process:

    the first 1024 training and first 1024 test digits of data/mnist/ (IDX files written by
    scripts/fetch-data), bytes / 255, then (x - 0.1307) / 0.3081, flattened to 784;
    bias-free ReLU MLP 784-196-196-196-10, PyTorch's default initialisation, then every
    parameter x 8; AdamW(lr 1e-3, weight_decay 0.01); batches of 256, reshuffled each epoch
    (1024 / 256: no partial batch); loss = CE + 1e-3 * pen with
        x.requires_grad_(True); out = model(x)
        v = randn(B, C), rows scaled to unit length
        Jv = autograd.grad(out, x, v, create_graph=True)[0]
        S = C * Jv.pow(2).sum(1); pen = sqrt(clamp(S, min=1e-8)).mean()
        opt.zero_grad(); (loss + 1e-3 * pen).backward(); opt.step()
    test accuracy every 10 epochs; stop once it exceeds 0.85; float64.

(Our penalty is the same estimator, align::grokalign_penalty_from: one random unit
projection per sample, S scaled by C, mean of sqrt(max(S, 1e-8)); it may form S through the
Gram matrix of the first layer, which gives the same value and gradients in fewer FLOPs.)

What is timed, on both sides: the optimisation only (shuffling, forward, penalty, backward,
AdamW), summed over epochs; evaluation is excluded, as our stats.csv's opt_seconds excludes
it. CPU seconds are those of the training thread (ours: CLOCK_THREAD_CPUTIME_ID) or process
(PyTorch: time.process_time); they are shown for one thread only, where both are the whole
cost. The two sides start from different random numbers (the initialisation, shuffles and
projections come from each library's own generator seeded with the same seed), so the
epochs to 85% are compared as distributions over seeds, not seed by seed.

Runs of a seed alternate which side goes first. PyTorch is given its best BLAS kernel first
(benchmarks/torch_blas.py) and the output says which it used.

Usage:
    benchmarks/time_to_grok.py [--binary build/release/examples/accelerating_grokking]
        [--seeds 0 1 2] [--threads 1 [2]] [--max_epochs 20000] [--data_dir data]
        [--out results/time_to_grok] [--n_train 1024 --n_test 1024]

Writes OUT/runs.csv (one row per seed, thread count and side), OUT/torch/t<n>/seed<k>.csv
(the PyTorch side's accuracy log) and our runs under OUT/ours/t<n>/seed<k>/ (their output in seed<k>.log).
"""

import argparse
import csv
import gzip
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time

import torch_blas
import torch_reference

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # include/grokalign/data/dataset.hpp, normalize_mnist


def read_idx(path):
    """An IDX file of unsigned bytes (raw or gzip): (dims, bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, kind, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
    return dims, raw[4 + 4 * rank :]


def load_mnist(torch, data_dir, split, n):
    prefix = os.path.join(data_dir, "mnist", "train" if split == "train" else "t10k")
    dims, img = read_idx(prefix + "-images-idx3-ubyte.gz")
    _, lab = read_idx(prefix + "-labels-idx1-ubyte.gz")
    d = dims[1] * dims[2]
    x = torch.frombuffer(bytearray(img[: n * d]), dtype=torch.uint8).reshape(n, d).to(torch.float64)
    x = (x / 255.0 - MNIST_MEAN) / MNIST_STD
    y = torch.frombuffer(bytearray(lab[:n]), dtype=torch.uint8).to(torch.int64)
    return x, y


def train_torch(torch, data, seed, threads, args, log_path):
    """The reference recipe in PyTorch; returns epochs, reached, opt wall and CPU seconds."""
    F = torch.nn.functional
    torch_blas.set_threads(torch, threads)
    torch.manual_seed(seed)
    model = torch_reference.paper_mlp(torch, torch.float64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    x_train, y_train, x_test, y_test = data
    n, B, lam = x_train.shape[0], 256, 1e-3

    opt_wall = opt_cpu = 0.0
    test_acc, epoch = 0.0, 0
    with open(log_path, "w", newline="") as logf:
        log = csv.writer(logf)
        log.writerow(["epoch", "train_accuracy", "test_accuracy", "penalty", "opt_seconds", "opt_cpu_seconds"])
        while epoch < args.max_epochs:
            epoch += 1
            t0, c0 = time.perf_counter(), time.process_time()
            perm = torch.randperm(n)
            for i in range(0, n, B):
                idx = perm[i : i + B]
                x = x_train[idx].requires_grad_(True)
                out = model(x)
                loss = F.cross_entropy(out, y_train[idx])
                C = out.shape[1]
                v = torch.randn(out.shape, dtype=out.dtype)
                v = v / v.norm(dim=1, keepdim=True)
                Jv = torch.autograd.grad(out, x, v, create_graph=True)[0]
                S = C * Jv.pow(2).sum(1)
                pen = torch.sqrt(torch.clamp(S, min=1e-8)).mean()
                total = loss + lam * pen
                opt.zero_grad()
                total.backward()
                opt.step()
            opt_wall += time.perf_counter() - t0
            opt_cpu += time.process_time() - c0
            if epoch % args.log_every and epoch != args.max_epochs:
                continue
            with torch.no_grad():
                test_acc = (model(x_test).argmax(1) == y_test).double().mean().item()
                train_acc = (model(x_train).argmax(1) == y_train).double().mean().item()
            log.writerow([epoch, f"{train_acc:.6f}", f"{test_acc:.6f}", f"{pen.item():.6g}",
                          f"{opt_wall:.3f}", f"{opt_cpu:.3f}"])
            logf.flush()
            if test_acc > args.target:
                break
    return {"epochs": epoch, "reached": test_acc > args.target, "test_accuracy": test_acc,
            "opt_seconds": opt_wall, "cpu_seconds": opt_cpu}


def train_ours(seed, threads, args):
    """One run of our binary; its stats.csv gives epochs, opt_seconds and opt_cpu_seconds."""
    out = os.path.join(args.out, "ours", f"t{threads}", f"seed{seed}")
    if os.path.isdir(out):
        shutil.rmtree(out)  # this script's own folder from an earlier invocation
    cmd = [args.binary, "--variants", "grokalign_ce", "--seed", str(seed), "--threads", str(threads),
           "--max_epochs", str(args.max_epochs), "--target", str(args.target),
           "--log_every", str(args.log_every), "--n_train", str(args.n_train), "--n_test", str(args.n_test),
           "--data_dir", args.data_dir, "--out", out, "--quiet"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    t0 = time.perf_counter()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".log", "w") as log:  # its summary table; ours is printed below
        subprocess.run(cmd, check=True, stdout=log)
    process_seconds = time.perf_counter() - t0
    with open(os.path.join(out, "grokalign_ce", f"seed{seed}", "stats.csv")) as f:
        last = list(csv.DictReader(f))[-1]
    acc = float(last["test_accuracy"])
    return {"epochs": int(float(last["epoch"])), "reached": acc > args.target, "test_accuracy": acc,
            "opt_seconds": float(last["opt_seconds"]), "cpu_seconds": float(last["opt_cpu_seconds"]),
            "process_seconds": process_seconds}


def write_runs(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["seed", "threads", "side", "epochs", "reached", "test_accuracy",
                                          "opt_seconds", "cpu_seconds", "process_seconds"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in w.fieldnames})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="build/release/examples/accelerating_grokking")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", nargs="+", type=int, default=[1])
    ap.add_argument("--max_epochs", type=int, default=20000)
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--log_every", type=int, default=10)
    ap.add_argument("--n_train", type=int, default=1024, help="training digits (smaller for a quick check)")
    ap.add_argument("--n_test", type=int, default=1024, help="test digits")
    ap.add_argument("--data_dir", default=os.environ.get("GROKALIGN_DATA", "data"))
    ap.add_argument("--out", default="results/time_to_grok")
    args = ap.parse_args()

    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not an executable; build it with\n"
                 "    cmake --build <build dir> --target accelerating_grokking")
    if not os.path.exists(os.path.join(args.data_dir, "mnist", "train-images-idx3-ubyte.gz")):
        sys.exit(f"no MNIST under {args.data_dir}/mnist; run scripts/fetch-data first")
    torch = torch_blas.setup()  # may re-execute this script with a better BLAS kernel
    for line in torch_blas.header_lines(torch):
        print(line)
    print(f"ours: {os.path.abspath(args.binary)} --variants grokalign_ce (float64)")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.stdout.flush()

    data = (*load_mnist(torch, args.data_dir, "train", args.n_train),
            *load_mnist(torch, args.data_dir, "test", args.n_test))
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for k, seed in enumerate(args.seeds):
        for threads in args.threads:
            tdir = os.path.join(args.out, "torch", f"t{threads}")
            os.makedirs(tdir, exist_ok=True)
            sides = ["ours", "torch"] if k % 2 == 0 else ["torch", "ours"]
            for side in sides:
                if side == "ours":
                    r = train_ours(seed, threads, args)
                else:
                    print(f"PyTorch: seed {seed}, {threads} thread(s)", file=sys.stderr)
                    r = train_torch(torch, data, seed, threads, args, os.path.join(tdir, f"seed{seed}.csv"))
                r.update(side=side, seed=seed, threads=threads)
                rows.append(r)
                write_runs(os.path.join(args.out, "runs.csv"), rows)  # after each run: they are long
                print(f"  {side}: seed {seed}, {threads} thread(s): {r['epochs']} epochs "
                      f"(test accuracy {r['test_accuracy']:.3f}), {r['opt_seconds']:.1f} s "
                      f"({r['cpu_seconds']:.1f} CPU s)", file=sys.stderr)

    def get(side, seed, threads):
        return next(r for r in rows if r["side"] == side and r["seed"] == seed and r["threads"] == threads)

    print()
    print("| seed | threads | ours epochs | PyTorch epochs | ours s | PyTorch s | ours/PyTorch s "
          "| ours CPU s | PyTorch CPU s | ours/PyTorch CPU | ours ms/epoch | PyTorch ms/epoch | ours/PyTorch per epoch |")
    print("|" + "---|" * 13)
    for threads in args.threads:
        ratios, per_epoch = [], []
        for seed in args.seeds:
            o, t = get("ours", seed, threads), get("torch", seed, threads)
            mark = lambda r: f"{r['epochs']}" + ("" if r["reached"] else " (not reached)")  # noqa: E731
            ratio = o["opt_seconds"] / t["opt_seconds"]
            pe_o, pe_t = 1e3 * o["opt_seconds"] / o["epochs"], 1e3 * t["opt_seconds"] / t["epochs"]
            ratios.append(ratio)
            per_epoch.append(pe_o / pe_t)
            cpu = ([f"{o['cpu_seconds']:.1f}", f"{t['cpu_seconds']:.1f}",
                    f"{o['cpu_seconds'] / t['cpu_seconds']:.2f}"] if threads == 1 else ["-", "-", "-"])
            print(f"| {seed} | {threads} | {mark(o)} | {mark(t)} | {o['opt_seconds']:.1f} | {t['opt_seconds']:.1f} "
                  f"| {ratio:.2f} | " + " | ".join(cpu) + f" | {pe_o:.1f} | {pe_t:.1f} | {pe_o / pe_t:.2f} |")
        if len(args.seeds) > 1:
            eo = [get("ours", s, threads)["epochs"] for s in args.seeds]
            et = [get("torch", s, threads)["epochs"] for s in args.seeds]
            print(f"| median | {threads} | {statistics.median(eo):g} (range {min(eo)}-{max(eo)}) "
                  f"| {statistics.median(et):g} (range {min(et)}-{max(et)}) | | | {statistics.median(ratios):.2f} "
                  f"| | | | | | {statistics.median(per_epoch):.2f} |")
    print("(seconds of optimisation until test accuracy > {:g}, evaluation excluded on both sides; float64;\n"
          " CPU s at one thread only; a run that hit --max_epochs is marked 'not reached')".format(args.target))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
