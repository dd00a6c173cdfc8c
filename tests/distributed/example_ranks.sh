#!/usr/bin/env bash
# One example program under mpirun -n 2 (issue 13): a 2-rank run writes what one process
# writes (the same files, stats to rounding), rank 0 alone; a 2-rank run stopped halfway and
# resumed by one process finishes as the uninterrupted run; a run rank 0 cannot start (its
# --out already holds a run) stops every rank with one message instead of hanging; an
# unknown flag is refused once.
#   example_ranks.sh MPIEXEC PROGRAM WORK STEP_FLAG HALF FULL [PROGRAM FLAGS...]
# STEP_FLAG: the program's length flag (--steps, --epochs); HALF, FULL: its two values.
set -euo pipefail
mpiexec=$1 program=$2 work=$3 step_flag=$4 half=$5 full=$6
shift 6
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$program")
rm -rf "$work"
mkdir -p "$work"
# A hang (a rank left waiting in a collective) fails the test instead of blocking CI.
one() { timeout 240 "$program" "$@" --quiet; }
two() { timeout 240 "$mpiexec" -n 2 --oversubscribe "$program" "$@" --quiet; }

one "$@" "$step_flag" "$full" --out "$work/one" >"$work/one.log"
two "$@" "$step_flag" "$full" --out "$work/two" >"$work/two.log"
python3 "$here/same_stats.py" "$work/one" "$work/two" "$name: 2 ranks against 1 process" 0
# Rank 0 alone wrote, and what it wrote is what one process writes: the same files.
diff <(cd "$work/one" && ls) <(cd "$work/two" && ls) ||
  { echo "FAIL $name: 2 ranks wrote other files than 1 process"; exit 1; }
# One line of output, not one per rank.
[ "$(grep -c "wrote" "$work/two.log")" -eq 1 ] ||
  { echo "FAIL $name: the ranks printed $(grep -c wrote "$work/two.log") 'wrote' lines"; cat "$work/two.log"; exit 1; }

two "$@" "$step_flag" "$half" --out "$work/resumed" >/dev/null
one "$@" "$step_flag" "$full" --resume "$work/resumed" >/dev/null
python3 "$here/same_stats.py" "$work/one" "$work/resumed" \
  "$name: 2 ranks to $step_flag $half, resumed by 1 process to $full, against 1 process" 0

set +e
two "$@" "$step_flag" "$full" --out "$work/two" >/dev/null 2>"$work/refused.log"
rc=$?
set -e
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
  echo "FAIL $name: a 2-rank run into a used --out gave exit $rc (0: not refused, 124: hung)"
  cat "$work/refused.log"
  exit 1
fi
[ "$(grep -c "already holds a run" "$work/refused.log")" -eq 1 ] ||
  { echo "FAIL $name: the refusal was not said exactly once:"; cat "$work/refused.log"; exit 1; }
echo "ok   $name: a 2-rank run into a used --out stopped every rank (exit $rc) with one message"

# A flag no rank accepts is refused once, not once per rank.
set +e
two --no_such_flag >/dev/null 2>"$work/bad_flag.log"
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c "^error:" "$work/bad_flag.log")" -eq 1 ] ||
  { echo "FAIL $name: an unknown flag on 2 ranks (exit $rc):"; cat "$work/bad_flag.log"; exit 1; }
echo "ok   $name: an unknown flag on 2 ranks is refused once (exit $rc)"
