#!/usr/bin/env bash
# accelerating_grokking's alignment variants (issue 15), at smoke size on the real digits:
# a --lambda_align list expands into one run per value, every run logs centroid and
# Jacobian alignment, the penalty column holds the unweighted alignment penalty (in [0, 2]
# for centroid alignment, [0, 1] for Jacobian alignment), and training on centroid
# alignment does raise it above the CE baseline's.
#   alignment_variants.sh PROGRAM WORKDIR
set -uo pipefail
exe="$1"
work="$2"
rm -rf "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$exe" --smoke --quiet --out "$work" --variants baseline_ce,centroid_align_ce,jacobian_align_mse \
  --lambda_align 1,10 >"$work.log" 2>&1 || fail "the sweep exited $?: $(tail -5 "$work.log")"

runs=(baseline_ce centroid_align_ce_l1 centroid_align_ce_l10 jacobian_align_mse_l1 jacobian_align_mse_l10)
for r in "${runs[@]}"; do
  csv="$work/$r/seed0/stats.csv"
  [[ -s "$csv" ]] || fail "no $csv"
  head -1 "$csv" | grep -q ',centroid_alignment,jacobian_alignment,' ||
    fail "$r: stats.csv lacks centroid_alignment,jacobian_alignment: $(head -1 "$csv")"
  grep -q "^| $r |" "$work/summary.md" || fail "summary.md has no row for $r"
done
[[ $(grep -c '^| [a-z_0-9.]* | [0-9]*/[0-9]* |' "$work/summary.md") -eq 5 ]] ||
  fail "summary.md should list exactly 5 runs: $(cat "$work/summary.md")"

# column value of the last row
last() { tail -1 "$work/$1/seed0/stats.csv" | cut -d, -f"$2"; }
# columns: epoch,train_loss,train_accuracy,test_loss,test_accuracy,penalty,centroid_alignment,jacobian_alignment,...
awk -v b="$(last baseline_ce 6)" 'BEGIN { exit !(b == 0) }' || fail "baseline_ce logged a penalty"
for r in centroid_align_ce_l1 centroid_align_ce_l10; do
  awk -v p="$(last $r 6)" 'BEGIN { exit !(p > 0 && p <= 2) }' || fail "$r: penalty $(last $r 6) not in (0, 2]"
done
for r in jacobian_align_mse_l1 jacobian_align_mse_l10; do
  awk -v p="$(last $r 6)" 'BEGIN { exit !(p > 0 && p <= 1) }' || fail "$r: penalty $(last $r 6) not in (0, 1]"
  awk -v a="$(last $r 8)" 'BEGIN { exit !(a > 0 && a <= 1) }' || fail "$r: Jacobian alignment $(last $r 8) not in (0, 1]"
done
base=$(last baseline_ce 7) trained=$(last centroid_align_ce_l10 7)
awk -v b="$base" -v t="$trained" 'BEGIN { exit !(t > b + 0.005) }' ||
  fail "training on centroid alignment (lambda 10) did not raise it: $trained vs the baseline's $base"
echo "alignment_variants.sh: 5 runs, alignment logged; centroid alignment $base -> $trained"
