#!/usr/bin/python3
"""Checks of scripts/verdicts.py's criteria on made-up runs whose verdicts are known:
each criterion passes on a run that meets it and fails on one that misses it by a little."""
import importlib.util
import math
import sys
import tempfile
from pathlib import Path

root = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("verdicts", root / "scripts" / "verdicts.py")
v = importlib.util.module_from_spec(spec)
spec.loader.exec_module(v)

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def stats(step_name, steps, **cols):
    s = {step_name: list(map(float, steps)), "_step": list(map(float, steps))}
    for k, vals in cols.items():
        s[k] = list(map(float, vals))
    return s


steps = list(range(0, 110, 10))


def xor_run(train_at, test_at, noise_at, norm, align):
    return stats("step", steps,
                 train_accuracy=[1.0 if s >= train_at else 0.5 for s in steps],
                 test_accuracy=[0.96 if s >= test_at else 0.5 for s in steps],
                 **{"noisy_accuracy_0.6": [0.85 if s >= noise_at else 0.5 for s in steps]},
                 centroid_norm=[norm] * len(steps), centroid_alignment=[align] * len(steps))


# XOR: memorisation first (10 vs 60), GrokAlign 1.5x sooner (40 <= 60/1.5, 50 <= 80/1.5).
runs = {"lambda0": {0: xor_run(10, 60, 80, 0.5, 0.1)}, "lambda1": {0: xor_run(10, 40, 50, 0.1, 0.5)}}
rows, passes, all_a, _ = v.judge_xor(runs)
check(passes == [True] and all_a, f"xor: a run meeting every part should pass, got {rows}")
runs["lambda1"][0] = xor_run(10, 50, 50, 0.1, 0.5)  # 50 > 60 / 1.5: not sooner enough
rows, passes, all_a, _ = v.judge_xor(runs)
check(passes == [False] and all_a and not rows[0]["b"], f"xor: 50 vs 60 is not 1.5x sooner, got {rows}")
check(v.verdict_of(1, 0, all_a) == "partly", "xor: the baseline's phenomenon alone is 'partly'")
runs["lambda0"][0] = xor_run(20, 60, 80, 0.5, 0.1)  # 5 x 20 > 60: not memorisation first
rows, passes, all_a, _ = v.judge_xor(runs)
check(not all_a and v.verdict_of(1, 0, all_a) == "not reproduced", f"xor: part a should fail, got {rows}")

# Delayed robustness: lambda 0 fits at 10, robust stays 0 to the end (100): 3E = 30 <= 100.
ep = list(range(0, 110, 10))


def robust_run(fit_at, robust_at, test):
    return stats("epoch", ep, train_accuracy=[1.0 if e >= fit_at else 0.3 for e in ep],
                 test_accuracy=[test] * len(ep),
                 robust_accuracy=[0.3 if e >= robust_at else 0.0 for e in ep], pc1=[0.5] * len(ep))


runs = {"lambda0": {0: robust_run(10, 1000, 0.7)}, "lambda0.1": {0: robust_run(20, 50, 0.8)}}
rows, passes, all_a, _ = v.judge_delayed(runs)
check(passes == [True], f"delayed: robust at 50 <= 100 / 2 with higher test accuracy should pass, got {rows}")
runs["lambda0.1"][0] = robust_run(20, 60, 0.8)  # 60 > 100 / 2
rows, passes, _, _ = v.judge_delayed(runs)
check(passes == [False] and not rows[0]["b"], f"delayed: 60 > 50 should fail part b, got {rows}")
runs["lambda0.1"][0] = robust_run(20, 50, 0.65)  # clean accuracy lower by 0.05
rows, passes, _, _ = v.judge_delayed(runs)
check(passes == [False] and not rows[0]["c"], f"delayed: lower clean accuracy should fail part c, got {rows}")
runs["lambda0"][0] = robust_run(40, 1000, 0.7)  # 3E = 120 > 100: cannot show the delay
rows, passes, all_a, _ = v.judge_delayed(runs)
check(not all_a, f"delayed: 3E beyond the run should fail part a, got {rows}")

# NTK onsets: both move at step 20 (pass); the centroid only at step 100 (5x later: fail).
ntk_steps = [0, 1, 2, 5, 10, 20, 50, 100]
good = stats("step", ntk_steps, ntk_mean=[1, 1, 1, 1, 1, 3, 8, 10],
             centroid_inner=[0, 0, 0, 0, 0, 2, 5, 6], centroid_alignment=[0] * 8)
rows, passes, _, _ = v.judge_ntk({"sgd": {0: good}})
check(passes == [True], f"ntk: onsets 20 and 20 should pass, got {rows}")
late = dict(good, centroid_inner=[0, 0, 0, 0, 0, 0, 0, 6.0])
rows, passes, _, _ = v.judge_ntk({"sgd": {0: late}})
check(passes == [False], f"ntk: onsets 100 and 20 should fail, got {rows}")

# Accelerating: 1/3 of the epochs and less CPU passes; 1/2 fails.
def acc_run(reach, cpu_per_epoch):
    e = list(range(0, reach + 10, 10))
    return stats("epoch", e, test_accuracy=[0.9 if x >= reach else 0.5 for x in e],
                 opt_cpu_seconds=[x * cpu_per_epoch for x in e])


rows, passes, _, _ = v.judge_accelerating({"baseline_ce": {0: acc_run(900, 1.0)},
                                           "grokalign_ce": {0: acc_run(300, 2.0)}})
check(passes == [True], f"accelerating: 300 vs 900 epochs, 600 vs 900 s should pass, got {rows}")
rows, passes, _, _ = v.judge_accelerating({"baseline_ce": {0: acc_run(900, 1.0)},
                                           "grokalign_ce": {0: acc_run(450, 1.0)}})
check(passes == [False], f"accelerating: half the epochs should fail, got {rows}")

# Transformer: a measure changed in all seeds by far more than its spread counts; one
# whose differences change sign does not.
tf_steps = list(range(0, 2100, 100))


def tf_run(grok_at, align, gini):
    return stats("step", tf_steps, train_accuracy=[1.0 if s >= 50 else 0.2 for s in tf_steps],
                 test_accuracy=[1.0 if s >= grok_at else 0.1 for s in tf_steps],
                 alignment_mean=[align] * len(tf_steps), gini_embedding=[gini] * len(tf_steps),
                 gini_unembed_mlp=[0.5] * len(tf_steps), key_frequencies_embedding=[5] * len(tf_steps))


runs = {"lambda0": {k: tf_run(1500, 0.1, 0.5 + 0.01 * (-1) ** k) for k in range(3)},
        "lambda1e-3": {k: tf_run(1200, 0.3 + 0.01 * k, 0.5 - 0.01 * (-1) ** k) for k in range(3)}}
rows, groks, summary, changed = v.transformer_pair(runs, "lambda0", "lambda1e-3", fixed=False)
check(groks == [True] * 3, f"transformer: train at 100, test at 1500 is grokking, got {rows}")
check(summary["alignment_mean"]["changed"], f"transformer: +0.2 +-0.01 alignment is a change: {summary}")
check(not summary["gini_embedding"]["changed"], f"transformer: a sign-changing Gini is no change: {summary}")
check(changed == ["alignment_mean"], f"transformer: changed measures {changed}")
runs["lambda0"][1] = tf_run(100, 0.1, 0.5)  # test at the same step as train: not grokking
_, groks, _, _ = v.transformer_pair(runs, "lambda0", "lambda1e-3", fixed=False)
check(groks == [True, False, True], f"transformer: seed 1 does not grok, got {groks}")

# Reading: a stats.csv written by a program, a "nan" cell read as NaN.
with tempfile.TemporaryDirectory() as d:
    run_dir = Path(d) / "xor_grokking" / "lambda0" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "stats.csv").write_text("step,train_accuracy\n0,0.5\n10,nan\n")
    loaded = v.load_runs(Path(d), "xor_grokking")
    check(loaded["lambda0"][0]["_step"] == [0.0, 10.0] and math.isnan(loaded["lambda0"][0]["train_accuracy"][1]),
          f"load_runs read {loaded}")

if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("verdicts: every criterion passes and fails where it should")
