#!/usr/bin/env bash
# CTest check of one example program: --help, a bad flag, a --smoke run whose stats.csv
# columns and values are checked, and scripts/plot on that run.
#   check_example.sh PROGRAM WORK_DIR
set -euo pipefail
program="$1"
work="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
name="$(basename "$program")"
fail() { echo "FAIL ($name): $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"

# --help lists the shared flags and the reference's flag names.
help="$("$program" --help)" || fail "--help exited non-zero"
for flag in --seed --data_dir --out --threads --dtype --preset --smoke --resume --lr; do
  grep -q -- "$flag" <<<"$help" || fail "--help does not mention $flag"
done

# A bad flag: non-zero exit and exactly one line naming the flag, nothing written.
set +e
"$program" --lr -1 --out "$work/bad" >"$work/bad.out" 2>"$work/bad.err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "--lr -1 exited $rc, not 2"
[[ $(wc -l <"$work/bad.err") -eq 1 ]] || fail "--lr -1 printed $(wc -l <"$work/bad.err") lines: $(cat "$work/bad.err")"
grep -q -- "--lr" "$work/bad.err" || fail "the error does not name --lr: $(cat "$work/bad.err")"
[[ ! -e "$work/bad/stats.csv" ]] || fail "--lr -1 still wrote a run"

# The smoke run.
"$program" --smoke --quiet --out "$work/run" >"$work/run.out" 2>&1 || {
  cat "$work/run.out"
  fail "--smoke exited non-zero"
}
mapfile -t stats < <(find "$work/run" -name stats.csv | sort)
[[ ${#stats[@]} -ge 1 ]] || fail "--smoke wrote no stats.csv"
for csv in "${stats[@]}"; do
  [[ -f "$(dirname "$csv")/config.json" ]] || fail "no config.json beside $csv"
  awk -F, -v file="$csv" '
    NR == 1 {
      if ($1 != "step" && $1 != "epoch") { print file ": first column is " $1 ", not step or epoch"; bad = 1 }
      for (i = 1; i <= NF; i++) col[i] = $i
      n = NF
      need["train_accuracy"]; need["test_accuracy"]
      for (i = 1; i <= NF; i++) delete need[$i]
      for (c in need) { print file ": no column " c; bad = 1 }
      next
    }
    {
      rows++
      if (NF != n) { print file ": row " NR " has " NF " fields, the header " n; bad = 1 }
      for (i = 1; i <= NF; i++) {
        v = $i
        if (v !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) { print file ": " col[i] " = " v " at row " NR " is not a finite number"; bad = 1; continue }
        if (col[i] ~ /accuracy/ && (v < 0 || v > 1)) { print file ": " col[i] " = " v " outside [0, 1]"; bad = 1 }
        if (col[i] ~ /alignment/ && (v < -1.000001 || v > 1.000001)) { print file ": " col[i] " = " v " outside [-1, 1]"; bad = 1 }
      }
    }
    END {
      if (rows < 1) { print file ": no rows"; bad = 1 }
      exit bad
    }' "$csv" || fail "stats.csv check failed"
done

# Resuming the finished run with --resume alone (settings from its config.json) changes
# nothing it wrote.
before="$(cat "${stats[@]}")"
"$program" --resume "$work/run" --quiet >"$work/resume.out" 2>&1 || {
  cat "$work/resume.out"
  fail "--resume of the finished smoke run exited non-zero"
}
[[ "$(cat "${stats[@]}")" == "$before" ]] || fail "--resume of a finished run changed stats.csv"

# The figure, where matplotlib is installed.
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  "$root/scripts/plot" "$work/run" -o "$work/figure.png" >"$work/plot.out" 2>&1 || {
    cat "$work/plot.out"
    fail "scripts/plot failed on the smoke run"
  }
  [[ -s "$work/figure.png" ]] || fail "scripts/plot wrote no figure"
else
  echo "skipped the figure: /usr/bin/python3 has no matplotlib (apt-get install python3-matplotlib)"
fi
echo "$name: --help, bad flag, smoke run (${#stats[@]} stats.csv) and figure checked"
