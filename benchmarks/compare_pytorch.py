#!/usr/bin/env python3
"""Time plain and GrokAlign training steps in PyTorch and in our `alignment_cost` binary.

Both sides run the same configurations in the same invocation, each configuration in
alternating rounds (ours, PyTorch, ours, PyTorch, ...; the median of the rounds is
reported), so that machine load affects both sides alike, and the script prints one table of median step times in ms with the ratios
GrokAlign/plain for each side and ours/PyTorch.

The PyTorch side is the reference recipe:
    x.requires_grad_(True); out = model(x); loss = task(out, target)
    v = randn(B, C), each row scaled to unit length
    Jv = torch.autograd.grad(out, x, v, create_graph=True)[0]
    S = C * Jv.pow(2).sum(1); pen = sqrt(clamp(S, min=1e-8)).mean()
    total = loss + lam * pen; opt.zero_grad(); total.backward(); opt.step()   (AdamW)

Configurations (names of the alignment_cost benchmarks):
    mnist_mlp, mnist_mlp_b64, mnist_mlp_b1024   bias-free MLP 784-196-196-196-10, init x8,
                                                MSE on one-hot, AdamW(1e-3, wd 1e-2), lam 1e-4
    cnn28, cnn32   the delayed-robustness CNN, batch 64, MSE, AdamW(1e-3, wd 1e-3), lam 1e-3
    transformer    modular addition p=113, 256 sequences, CE on the last position,
                   AdamW(1e-3, wd 1, betas 0.9/0.98), lam 1e-3 on embeddings -> last logits

Usage:
    benchmarks/compare_pytorch.py [build/release/benchmarks/alignment_cost]
        [--dtypes f64 f32] [--threads 1 [2]] [--models mnist_mlp cnn28 transformer]
        [--steps 50] [--warmup 10] [--repetitions 5] [--rounds 3] [--engine-overhead PATH]
        [--memory]

--memory reports, instead of times, the peak resident memory (GNU time's %M) of a GrokAlign
training step at one thread: each configuration runs in a process of its own on each side,
and a baseline process (ours: the binary running no benchmark; PyTorch: python, import
torch, one product) is subtracted.

Our mnist_mlp row also shows `grokalign_step_direct` (J^T v formed at the input, as
PyTorch does) beside the default step, where the penalty may use the Gram form of the
first layer (docs/performance.md). When the `engine_overhead` benchmark sits next to the
binary, the engine against the hand-derived Eigen step is printed too, from the same run.

Before any timing, the PyTorch side is given its best BLAS kernel (benchmarks/torch_blas.py):
the output starts with the CPU, torch's BLAS library, the OpenBLAS core in use and a 512^3
float64 product's GFLOP/s; when torch loaded the reference BLAS or OpenBLAS fell back to a
generic core, the script re-executes itself with OpenBLAS / OPENBLAS_CORETYPE set (a user's
own OPENBLAS_CORETYPE is kept) and says so. `--threads n` sets torch's threads and OpenBLAS's
own pool (torch.set_num_threads alone leaves OpenBLAS on one thread per core).

Uses only the standard library and torch. Debian's python3-torch lives in /usr/bin/python3;
when torch is not importable here the script re-executes itself there.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch_blas
import torch_reference

# ------------------------------------------------------------------------------------------
# PyTorch side
# ------------------------------------------------------------------------------------------


def build_mlp(torch, batch):
    model = torch_reference.paper_mlp(torch)
    x = torch.randn(batch, 784)
    target = torch.nn.functional.one_hot(torch.arange(batch) % 10, 10).double()
    opt = lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)  # noqa: E731
    return model, x, target, opt, "mse", 1e-4


def build_cnn(torch, channels, size, batch=64, filters=32):
    nn = torch.nn
    layers, c = [], channels
    for out, stride in [(filters, 1), (filters, 2), (2 * filters, 1), (2 * filters, 2),
                        (4 * filters, 1), (4 * filters, 2)]:
        layers += [nn.Conv2d(c, out, 3, stride, 1, bias=False), nn.ReLU()]
        c = out
    layers += [nn.AvgPool2d(2), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(c, 128, bias=False),
               nn.ReLU(), nn.Linear(128, 10, bias=False)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    x = torch.randn(batch, channels, size, size)
    target = torch.nn.functional.one_hot(torch.arange(batch) % 10, 10).double()
    opt = lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-3)  # noqa: E731
    return model, x, target, opt, "mse", 1e-3


def build_transformer(torch, batch=256, p=113, d_model=128, n_heads=4, d_head=32, d_mlp=512, n_ctx=3):
    nn = torch.nn
    d_vocab = p + 1

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            s = d_model ** -0.5
            self.W_E = nn.Parameter(torch.randn(d_vocab, d_model) * s)
            self.W_pos = nn.Parameter(torch.randn(n_ctx, d_model) * s)
            self.W_K = nn.Parameter(torch.randn(n_heads, d_head, d_model) * s)
            self.W_Q = nn.Parameter(torch.randn(n_heads, d_head, d_model) * s)
            self.W_V = nn.Parameter(torch.randn(n_heads, d_head, d_model) * s)
            self.W_O = nn.Parameter(torch.randn(d_model, n_heads * d_head) * s)
            self.W_in = nn.Parameter(torch.randn(d_mlp, d_model) * s)
            self.b_in = nn.Parameter(torch.zeros(d_mlp))
            self.W_out = nn.Parameter(torch.randn(d_model, d_mlp) * s)
            self.b_out = nn.Parameter(torch.zeros(d_model))
            self.W_U = nn.Parameter(torch.randn(d_model, d_vocab) * d_vocab ** -0.5)
            self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx)))

        def embed(self, tokens):
            return self.W_E[tokens]

        def from_embedding(self, e):  # last-position logits, as the reference computes them
            x = e + self.W_pos[: e.shape[1]]
            n = x.shape[1]
            k = torch.einsum("ihd,bpd->biph", self.W_K, x)
            q = torch.einsum("ihd,bpd->biph", self.W_Q, x)
            v = torch.einsum("ihd,bpd->biph", self.W_V, x)
            scores = torch.einsum("biph,biqh->biqp", k, q)
            scores = torch.tril(scores) - 1e10 * (1 - self.mask[:n, :n])
            attn = torch.softmax(scores / d_head ** 0.5, dim=-1)
            z = torch.einsum("biph,biqp->biqh", v, attn)
            z = z.permute(0, 2, 1, 3).reshape(x.shape[0], n, n_heads * d_head)
            x = x + z @ self.W_O.T
            h = torch.relu(x @ self.W_in.T + self.b_in)
            x = x + h @ self.W_out.T + self.b_out
            return (x @ self.W_U)[:, -1]

    model = Net()
    i = torch.arange(batch)
    a, b = (i * 37) % p, (i * 91 + 5) % p
    tokens = torch.stack([a, b, torch.full_like(a, p)], 1)
    labels = (a + b) % p
    opt = lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))  # noqa: E731
    return model, tokens, labels, opt, "ce", 1e-3


def time_torch(torch, name, dtype, align, steps, warmup):
    torch.manual_seed(0)
    if name.startswith("mnist_mlp"):
        batch = int(name.split("_b")[1]) if "_b" in name else 256
        model, x, target, make_opt, loss_kind, lam = build_mlp(torch, batch)
    elif name == "cnn28":
        model, x, target, make_opt, loss_kind, lam = build_cnn(torch, 1, 28)
    elif name == "cnn32":
        model, x, target, make_opt, loss_kind, lam = build_cnn(torch, 3, 32)
    elif name == "transformer":
        model, x, target, make_opt, loss_kind, lam = build_transformer(torch)
    else:
        raise ValueError(name)
    model = model.to(dtype)
    if x.is_floating_point():
        x = x.to(dtype)
    if target.is_floating_point():
        target = target.to(dtype)
    opt = make_opt(model.parameters())
    mse = torch.nn.functional.mse_loss
    ce = torch.nn.functional.cross_entropy

    def step():
        if name == "transformer":
            inp = model.embed(x)  # requires grad through W_E
            out = model.from_embedding(inp)
            loss = ce(out, target)
        else:
            inp = x.detach().requires_grad_(align)
            out = model(inp)
            loss = mse(out, target)
        total = loss
        if align:
            B, C = out.shape
            v = torch.randn(B, C, dtype=dtype)
            v = v / v.norm(dim=1, keepdim=True)
            Jv = torch.autograd.grad(out, inp, v, create_graph=True)[0]
            S = C * Jv.reshape(B, -1).pow(2).sum(1)
            pen = torch.sqrt(torch.clamp(S, min=1e-8)).mean()
            total = loss + lam * pen
        opt.zero_grad()
        total.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# ------------------------------------------------------------------------------------------
# Our side
# ------------------------------------------------------------------------------------------


def time_ours(binary, names, dtypes, threads, repetitions):
    regex = "^({})/({})/(plain|grokalign)_step(_direct)?$".format("|".join(names), "|".join(dtypes))
    cmd = [binary, "--benchmark_format=json", "--benchmark_filter=" + regex,
           f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    print(f"$ OMP_NUM_THREADS={threads} " + " ".join(cmd), file=sys.stderr)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    data = json.loads(res.stdout)
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        out[b["run_name"]] = b["real_time"] * scale[b["time_unit"]]
    return out


def print_engine_vs_hand(binary, dtypes, repetitions):
    """Engine against the hand-derived Eigen step (gradients only), one thread, this run."""
    regex = "^mlp_step/({})/".format("|".join(dtypes))
    # Repetitions of engine and hand-derived steps interleaved in random order, so that drift
    # in the machine's speed does not favour either.
    cmd = [binary, "--benchmark_format=json", "--benchmark_filter=" + regex,
           f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true",
           "--benchmark_enable_random_interleaving=true"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    print("$ OMP_NUM_THREADS=1 " + " ".join(cmd), file=sys.stderr)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    t = {}
    for b in json.loads(res.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            t[b["run_name"]] = b["real_time"] * scale[b["time_unit"]]
    print("| type | step | engine | hand-derived | engine/hand |")
    print("|---|---|---|---|---|")
    for d in dtypes:
        for step in ("plain", "grokalign"):
            e, h = t.get(f"mlp_step/{d}/engine_{step}"), t.get(f"mlp_step/{d}/hand_{step}")
            if e and h:
                print(f"| {d} | {step} | {e:.2f} | {h:.2f} | {e / h:.3f} |")
    print("(MNIST MLP, batch 256, gradients only (no optimiser), median ms, one thread)")


# ------------------------------------------------------------------------------------------
# Peak resident memory (--memory)
# ------------------------------------------------------------------------------------------


GNU_TIME = "/usr/bin/time"


def peak_rss_mib(cmd, env):
    """Run cmd to completion and return its peak resident set in MiB.

    Not this process's wait4/ru_maxrss: Linux carries the high-water mark of the image that
    exec replaces into the new one, so a child forked from this torch-sized process would
    report at least our own size. GNU time (small) forks the command and reports its
    ru_maxrss; without it, VmHWM of /proc/PID/status (the new image's alone, and it only
    grows) is polled until the process exits, which misses a process shorter than a poll."""
    with tempfile.NamedTemporaryFile("r") as out, open(os.devnull, "w") as null:
        use_time = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-f", "%M", "-o", out.name] + cmd if use_time else cmd
        proc = subprocess.Popen(full, env=env, stdout=null, stderr=subprocess.PIPE, text=True)
        peak_kib = 0
        while not use_time and proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak_kib = max(peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        err = proc.stderr.read()
        proc.wait()
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
        if use_time:
            peak_kib = int(out.read().split()[-1])
    return peak_kib / 1024.0


def memory_worker(name, dtype, steps, warmup):
    """One PyTorch process: `baseline` only imports torch and runs one product; otherwise
    warm-up plus timed GrokAlign steps of one configuration, exactly as time_torch does."""
    import torch

    torch_blas.set_threads(torch, 1)
    if name == "baseline":
        torch.ones(4, 4, dtype=torch.float64) @ torch.ones(4, 4, dtype=torch.float64)
        return
    time_torch(torch, name, {"f64": torch.float64, "f32": torch.float32}[dtype], True, steps, warmup)


def run_memory(args, torch):
    """Peak RSS of a GrokAlign step, each configuration and side in a process of its own."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    script = os.path.abspath(__file__)

    def ours(filt):
        return peak_rss_mib([args.binary, "--benchmark_filter=" + filt], env)

    def theirs(name, t, steps, warmup):
        return peak_rss_mib([sys.executable, script, args.binary, "--memory-worker", name, t,
                             "--steps", str(steps), "--warmup", str(warmup)], env)

    med = statistics.median
    rounds = max(1, args.rounds)
    base_ours = med([ours("^no benchmark matches this$") for _ in range(rounds)])
    base_torch = med([theirs("baseline", "f64", 0, 0) for _ in range(rounds)])
    print("| config | type | ours peak | PyTorch peak | ours net | PyTorch net | ours/PyTorch net |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        cnn = name.startswith("cnn")
        steps = max(5, args.steps // 4) if cnn else args.steps
        warm = max(2, args.warmup // 2) if cnn else args.warmup
        for t in args.dtypes:
            o, p = [], []
            for _ in range(rounds):  # alternating, like the timings
                o.append(ours(f"^{name}/{t}/grokalign_step$"))
                p.append(theirs(name, t, steps, warm))
            o, p = med(o), med(p)
            print(f"| {name} | {t} | {o:.1f} | {p:.1f} | {o - base_ours:.1f} | {p - base_torch:.1f} | "
                  f"{(o - base_ours) / (p - base_torch):.2f} |")
    how = "GNU time's %M" if os.access(GNU_TIME, os.X_OK) else "VmHWM polled every 5 ms"
    print(f"(peak resident set in MiB ({how}), median of {rounds} alternating rounds, one thread, each\n"
          f" configuration a process of its own: ours {os.path.basename(args.binary)}\n"
          f" --benchmark_filter='^<config>/<type>/grokalign_step$' (Google Benchmark's iterations of the\n"
          f" step), PyTorch {args.warmup} warm-up + {args.steps} GrokAlign steps (CNN: {max(2, args.warmup // 2)} + "
          f"{max(5, args.steps // 4)}) of the reference\n"
          f" recipe. 'net' subtracts a baseline process: ours {base_ours:.1f} MiB (the binary started with a filter\n"
          f" that matches no benchmark), PyTorch {base_torch:.1f} MiB (python, import torch, one 4x4 product).)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", default="build/release/benchmarks/alignment_cost")
    ap.add_argument("--dtypes", nargs="+", default=["f64", "f32"], choices=["f64", "f32"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1])
    ap.add_argument("--models", nargs="+", default=["mnist_mlp"],
                    choices=["mnist_mlp", "mnist_mlp_b64", "mnist_mlp_b1024", "cnn28", "cnn32", "transformer"])
    ap.add_argument("--steps", type=int, default=50, help="timed PyTorch steps (median)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repetitions", type=int, default=5, help="repetitions of our benchmarks (median)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds of both sides per configuration (median of rounds)")
    ap.add_argument("--engine-overhead", default=None,
                    help="engine_overhead binary (default: next to the alignment_cost binary; "
                         "skipped when absent)")
    ap.add_argument("--memory", action="store_true",
                    help="report the peak resident memory of a GrokAlign step instead of times")
    ap.add_argument("--memory-worker", nargs=2, metavar=("CONFIG", "TYPE"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.memory_worker:
        memory_worker(*args.memory_worker, args.steps, args.warmup)
        return
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not an executable; build it with\n"
                 "    cmake --build <build dir> --target alignment_cost")
    torch = torch_blas.setup()  # may re-execute this script with a better BLAS kernel
    for line in torch_blas.header_lines(torch):
        print(line)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    if args.memory:
        run_memory(args, torch)
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    dt = {"f64": torch.float64, "f32": torch.float32}
    rows = []
    for threads in args.threads:
        torch_blas.set_threads(torch, threads)
        for name in args.models:
            # The CNN steps are 100x slower than the MLP's: fewer of them.
            steps = max(5, args.steps // 4) if name.startswith("cnn") else args.steps
            warm = max(2, args.warmup // 2) if name.startswith("cnn") else args.warmup
            for t in args.dtypes:
                # Each configuration on both sides back to back, in alternating rounds, so
                # drift in the machine's speed (it is shared) reaches both sides alike.
                samples = {k: [] for k in ("tp", "tg", "op", "og", "ogd")}
                for _ in range(args.rounds):
                    ours = time_ours(args.binary, [name], [t], threads, args.repetitions)
                    samples["op"].append(ours.get(f"{name}/{t}/plain_step", float("nan")))
                    samples["og"].append(ours.get(f"{name}/{t}/grokalign_step", float("nan")))
                    samples["ogd"].append(ours.get(f"{name}/{t}/grokalign_step_direct", float("nan")))
                    samples["tp"].append(time_torch(torch, name, dt[t], False, steps, warm))
                    samples["tg"].append(time_torch(torch, name, dt[t], True, steps, warm))
                m = {k: statistics.median(v) for k, v in samples.items()}
                rows.append((name, t, threads, m["tp"], m["tg"], m["op"], m["og"], m["ogd"]))

    head = ("config", "type", "thr", "torch plain", "torch GA", "torch GA/plain", "ours plain", "ours GA",
            "ours GA/plain", "ours/torch plain", "ours/torch GA", "ours GA direct", "ours/torch GA direct")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for name, t, threads, tp, tg, op, og, ogd in rows:
        cells = [name, t, str(threads), f"{tp:.2f}", f"{tg:.2f}", f"{tg / tp:.2f}", f"{op:.2f}", f"{og:.2f}",
                 f"{og / op:.2f}", f"{op / tp:.2f}", f"{og / tg:.2f}",
                 "-" if ogd != ogd else f"{ogd:.2f}", "-" if ogd != ogd else f"{ogd / tg:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print("(median step times in ms; GA = GrokAlign step; ours/torch < 1 means we are faster;\n"
          " 'GA direct' forms J^T v at the input, as PyTorch does, instead of letting the penalty\n"
          " use the Gram form of the first layer where that costs fewer FLOPs)")

    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    overhead = args.engine_overhead or os.path.join(os.path.dirname(args.binary), "engine_overhead")
    if os.access(overhead, os.X_OK):
        print()
        print_engine_vs_hand(overhead, args.dtypes, args.repetitions)


if __name__ == "__main__":
    main()
