#!/usr/bin/env bash
# A killed rank (issue 13): a 2-rank accelerating_grokking run checkpointing every 10 epochs
# has its rank 1 SIGKILLed mid-run. The job must end by itself within a minute (no rank left
# waiting in a collective), with a non-zero exit and a message naming the rank and the signal
# (Open MPI's "mpiexec noticed that process rank 1 ... exited on signal 9 (Killed)") and rank
# 0's note of the run it was training and that run's last checkpoint (run/stop_note.hpp); then
# --resume on 2 ranks continues from the last checkpoint and the run's stats.csv equals the
# uninterrupted 1-process run's (every column but the timings, to 1e-9 relative).
#   kill_rank.sh MPIEXEC PROGRAM WORKDIR
set -euo pipefail
mpiexec=$1 program=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 200 epochs of grokalign_ce on the smoke digits (the target is out of reach, so all 200 run):
# about 4 s as one process, 8 s on 2 ranks here.
args=(--smoke --quiet --variants grokalign_ce --max_epochs 200 --target 0.99 --log_every 10
      --checkpoint_every 10)
"$program" "${args[@]}" --out "$work/one" > "$work/one.log" 2>&1 ||
  { cat "$work/one.log"; fail "the uninterrupted 1-process run failed"; }

run="$work/two/grokalign_ce/seed0"
"$mpiexec" -n 2 --oversubscribe "$program" "${args[@]}" --out "$work/two" > "$work/two.log" 2>&1 &
job=$!
# Mid-run: once rank 0 has logged epoch 60 (so the checkpoint of epoch 50 is on disk; that
# of 60 may be), well short of 200.
for _ in $(seq 1 1200); do
  [[ -f "$run/stats.csv" ]] && (( $(wc -l < "$run/stats.csv") >= 8 )) && break
  kill -0 "$job" 2>/dev/null || { cat "$work/two.log"; fail "the 2-rank run ended before it was killed"; }
  sleep 0.05
done
(( $(wc -l < "$run/stats.csv") >= 8 )) || { kill -9 "$job"; fail "the 2-rank run did not reach epoch 60 in 60 s"; }
victim=""
for rank in $(pgrep -P "$job"); do
  if tr '\0' '\n' < "/proc/$rank/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then victim=$rank; fi
done
[[ -n "$victim" ]] || { kill -9 "$job"; fail "rank 1 is not among mpiexec's children"; }
kill -9 "$victim"
echo "killed rank 1 (pid $victim) after epoch $(tail -1 "$run/stats.csv" | cut -d, -f1)"
start=$(date +%s%N)
for _ in $(seq 1 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then
  pkill -9 -P "$job" || true
  kill -9 "$job" || true
  fail "the job hung: still running 60 s after rank 1 was killed"
fi
rc=0
wait "$job" || rc=$?
echo "the job ended $(( ($(date +%s%N) - start) / 1000000 )) ms after the kill, exit $rc"
# Ranks other than 0 write nothing (run::Run): the killed rank leaves no folder behind.
leftovers=$(find "${TMPDIR:-/tmp}" "$work" -maxdepth 1 -name "*rank1-$victim*" 2>/dev/null)
[[ -z "$leftovers" ]] || fail "the killed rank left $leftovers"
(( rc != 0 )) || { cat "$work/two.log"; fail "the job reported success"; }
message=$(grep -E "rank 1 .*(signal 9|Killed)" "$work/two.log" | head -1) ||
  { cat "$work/two.log"; fail "no message naming rank 1 and the signal"; }
echo "message: $message"
# Rank 0, stopped by mpirun's SIGTERM, names the run it was training and its last checkpoint.
note=$(grep -E "^rank 0 of 2: accelerating_grokking: the run in $run keeps its checkpoint of epoch [0-9]+" "$work/two.log" | head -1) ||
  { cat "$work/two.log"; fail "rank 0 did not name the run it stopped and its checkpoint"; }
echo "rank 0: $note"
# One run on 2 ranks: --mpi_mode auto made it data-parallel.
grep -q "each data-parallel on 2 ranks" "$work/two.log" || { cat "$work/two.log"; fail "not data-parallel"; }
[[ -f "$run/checkpoint.bin" ]] || fail "no checkpoint survived the kill"

"$mpiexec" -n 2 --oversubscribe "$program" --resume "$work/two" --max_epochs 200 \
  --checkpoint_every 10 --quiet > "$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "--resume on 2 ranks after the kill failed"; }
from=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[-1]["step"])' \
  "$run/resumes.json") || fail "the run was not resumed (no resumes.json)"
(( from >= 50 )) || fail "resumed from epoch $from, not from the checkpoint at or after epoch 50"
echo "resumed from the checkpoint at epoch $from"
/usr/bin/python3 "$(dirname "$0")/same_stats.py" "$work/one" "$work/two" \
  "killed at 2 ranks, resumed on 2, against 1 process uninterrupted" 1
echo "kill_rank: passed"
