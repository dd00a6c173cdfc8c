#!/usr/bin/env bash
# scripts/plot on tiny hand-written run folders of two programs: a non-empty PNG is written
# for each, and a folder without stats.csv is refused with exit status 2. Skipped (exit 0)
# when /usr/bin/python3 cannot import matplotlib (Debian's python3-matplotlib).
#
# usage: tests/examples/plot_test.sh [path/to/scripts/plot]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plot="${1:-$here/../../scripts/plot}"

if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  echo "skipped: matplotlib not installed"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# run_folder DIR PROGRAM LAMBDA HEADER ROWS...
run_folder() {
  local dir="$1" program="$2" lambda="$3" header="$4"
  shift 4
  mkdir -p "$dir"
  cat >"$dir/config.json" <<JSON
{"program": "$program", "settings": {"lambda_jac": $lambda, "lr": 0.1}, "data": "test",
 "seed": 0, "dtype": "f64", "preset": "smoke"}
JSON
  { echo "$header"; printf '%s\n' "$@"; } >"$dir/stats.csv"
}

xor_header="step,train_loss,train_accuracy,test_accuracy,noisy_accuracy_0.2,noisy_accuracy_0.4,noisy_accuracy_0.6,noisy_accuracy_0.8,noisy_accuracy_1.0,centroid_norm,centroid_alignment"
for lambda in 0 1; do
  run_folder "$tmp/xor$lambda" xor_grokking "$lambda" "$xor_header" \
    "0,1.0,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.1" \
    "1,0.9,0.6,0.5,0.5,0.5,0.5,0.5,0.5,0.8,0.1" \
    "10,0.4,0.9,0.6,0.6,0.55,0.5,0.5,0.5,2.0,nan" \
    "100,0.05,1.0,0.95,0.9,0.8,0.7,0.6,0.55,3.0,0.6"
done
sweep_header="epoch,train_loss,train_accuracy,test_accuracy,opt_seconds"
run_folder "$tmp/sweep/baseline_ce/seed0" accelerating_grokking 0 "$sweep_header" \
  "0,0.1,0.1,0.1,0" "10,0.05,0.8,0.5,1.5" "20,0.01,1.0,0.9,3.0"
run_folder "$tmp/sweep/grokalign_ce/seed0" accelerating_grokking 0.001 "$sweep_header" \
  "0,0.1,0.1,0.1,0" "10,0.05,0.9,0.86,2.5"

"$plot" "$tmp/xor0" "$tmp/xor1" -o "$tmp/xor.png" >"$tmp/out1" || fail "plot on xor runs: exit $?"
[[ -s "$tmp/xor.png" ]] || fail "no PNG for the xor runs"
head -c 8 "$tmp/xor.png" | od -An -c | grep -q 'P   N   G' || fail "xor.png is not a PNG"
grep -q "xor.png" "$tmp/out1" || fail "the path written was not printed"

"$plot" "$tmp/sweep" >"$tmp/out2" || fail "plot on the sweep: exit $?"
[[ -s "$tmp/sweep/figure.png" ]] || fail "no PNG for the sweep"
grep -q "grokalign_ce" "$tmp/sweep/figure.md" || fail "no table for the sweep"
grep -q "2.0×" "$tmp/sweep/figure.md" || fail "expected a 2.0× epoch speed-up over baseline_ce"

mkdir -p "$tmp/nostats"
cp "$tmp/xor0/config.json" "$tmp/nostats/"
set +e
"$plot" "$tmp/nostats" 2>"$tmp/err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "a folder without stats.csv gave exit $rc, not 2"
grep -q "stats.csv" "$tmp/err" || fail "the error does not name stats.csv: $(cat "$tmp/err")"
[[ $(wc -l <"$tmp/err") -eq 1 ]] || fail "the error is not one line: $(cat "$tmp/err")"
echo "plot_test: ok"
