#!/usr/bin/env bash
# CTest check of scripts/reproduce --smoke: every experiment's runs at their smoke size, the
# verdict table with one row per experiment, one figure each; then a second call resumes
# (every run skipped as done) and gives the same table.
#   reproduce_smoke.sh BIN_DIR WORK_DIR
set -euo pipefail
bin="$1"
work="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "FAIL (reproduce --smoke): $*" >&2; exit 1; }
rm -rf "$work"

"$root/scripts/reproduce" --smoke --seeds 1 --bin "$bin" --out "$work" >"$work.out" 2>&1 || {
  cat "$work.out"
  fail "exited non-zero"
}
names=(comparison_to_ntk xor_grokking delayed_robustness inhibiting_generalisation
  accelerating_grokking transformer_alignment)
for n in "${names[@]}"; do
  grep -q "^| $n | " "$work/verdicts.md" || fail "no row for $n in verdicts.md"
  grep -q "^| $n | " "$work.out" || fail "no row for $n printed"
  if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    [[ -s "$work/figures/$n.png" ]] || fail "no figure for $n"
  fi
done
[[ $(grep -c "^reproduce: .* finished in" "$work.out") -eq 16 ]] ||
  fail "expected 16 finished runs, got $(grep -c '^reproduce: .* finished in' "$work.out")"

# Again: every run is done, none runs twice, the table is the same.
cp "$work/verdicts.md" "$work.first.md"
"$root/scripts/reproduce" --smoke --seeds 1 --bin "$bin" --out "$work" >"$work.again.out" 2>&1 ||
  fail "the second call exited non-zero"
[[ $(grep -c "done before, skipped" "$work.again.out") -eq 16 ]] || fail "the second call re-ran runs"
cmp -s "$work/verdicts.md" "$work.first.md" || fail "the second call changed verdicts.md"

# Bad input: an unknown experiment or flag is refused with one line, exit 2.
set +e
"$root/scripts/reproduce" no_such_experiment --bin "$bin" --out "$work/bad" 2>"$work.bad.err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "an unknown experiment exited $rc, not 2"
grep -q "no_such_experiment" "$work.bad.err" || fail "the error does not name the experiment"
[[ ! -e "$work/bad" ]] || fail "an unknown experiment still wrote a folder"
echo "reproduce --smoke: 6 experiments, 16 runs, table and figures; resumed without re-running"
