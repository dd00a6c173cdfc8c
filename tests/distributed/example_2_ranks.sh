#!/usr/bin/env bash
# accelerating_grokking data-parallel (issue 13): a 2-rank run under mpirun reproduces the
# 1-rank run's stats.csv (every column but the timings, to 1e-9 relative: the ranks' sums
# only reorder the arithmetic), rank 0 alone writes the output folder, a 2-rank run resumed by
# one process, a 1-process run resumed on 2 ranks and a 2-rank run resumed on 2 ranks continue
# it alike, the alignment variants reproduce the 1-process run too, and --jobs 2 (not
# data-parallel) is refused with a message. (--mpi_mode data: the sweep's runs would
# otherwise be spread over the ranks, sweep_over_ranks.sh.)
#   example_2_ranks.sh MPIEXEC PROGRAM WORKDIR
set -euo pipefail
mpiexec=$1 program=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
# --batch_size 50 on the smoke run's 128 digits: batches of 50, 50 and 28 rows, so the two
# ranks' shards are of 25 and 14 rows; two seeds; the penalty, plain MSE and input noise.
args=(--smoke --quiet --seeds 2 --batch_size 50 --variants grokalign_ce,grokalign_mse,noise)
"$program" "${args[@]}" --out "$work/one" > "$work/one.log" 2>&1 ||
  { cat "$work/one.log"; echo "FAIL: the 1-process run failed"; exit 1; }
"$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data "${args[@]}" --out "$work/two" > "$work/two.log" 2>&1 ||
  { cat "$work/two.log"; echo "FAIL: the 2-rank run failed"; exit 1; }
grep -q "each data-parallel on 2 ranks" "$work/two.log" ||
  { cat "$work/two.log"; echo "FAIL: the 2-rank run did not say it ran on 2 ranks"; exit 1; }
[[ $(grep -c "^Wrote" "$work/two.log") == 1 ]] ||
  { cat "$work/two.log"; echo "FAIL: more than one rank printed the summary"; exit 1; }

# Every stats.csv value but the timings, to 1e-9 relative, for the 6 runs of the sweep.
same_stats() { /usr/bin/python3 "$(dirname "$0")/same_stats.py" "$1" "$2" "$3" 6; }
same_stats "$work/one" "$work/two" "2 ranks against 1"
# Nothing but rank 0's output: no stray folders beside the runs.
[[ "$(cd "$work/two" && ls | sort | tr '\n' ' ')" == "grokalign_ce grokalign_mse noise runs.csv summary.csv summary.md sweep.json " ]] ||
  { ls -R "$work/two"; echo "FAIL: unexpected files in the 2-rank output"; exit 1; }

# Checkpoints do not depend on the rank count: 20 epochs on 2 ranks, resumed to 30 by one process.
"$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data "${args[@]}" --max_epochs 20 --out "$work/resumed" \
  > "$work/resumed.log" 2>&1 || { cat "$work/resumed.log"; echo "FAIL: the 20-epoch run"; exit 1; }
"$program" --resume "$work/resumed" --max_epochs 30 --quiet > "$work/resumed.log" 2>&1 ||
  { cat "$work/resumed.log"; echo "FAIL: resuming the 2-rank run with one process"; exit 1; }
same_stats "$work/one" "$work/resumed" "2 ranks for 20 epochs, resumed by 1 for 10, against 1"

# ... and a run resumes on 2 ranks, whether 1 process or 2 ranks made its checkpoint: rank 0
# reads the run folder, the other rank a copy of its checkpoint, and every rank carries on
# from the same state. 1 process to 20 epochs, resumed on 2 ranks to 30:
"$program" "${args[@]}" --max_epochs 20 --out "$work/one_two" > "$work/one_two.log" 2>&1 ||
  { cat "$work/one_two.log"; echo "FAIL: the 1-process 20-epoch run"; exit 1; }
"$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data --resume "$work/one_two" --max_epochs 30 --quiet \
  > "$work/one_two.log" 2>&1 || { cat "$work/one_two.log"; echo "FAIL: resuming on 2 ranks"; exit 1; }
grep -q "each data-parallel on 2 ranks" "$work/one_two.log" ||
  { cat "$work/one_two.log"; echo "FAIL: the resumed run did not run on 2 ranks"; exit 1; }
same_stats "$work/one" "$work/one_two" "1 process for 20 epochs, resumed by 2 ranks for 10, against 1"
# 2 ranks to 10 epochs, resumed on 2 ranks to 20, then to 30 (a second resume, from a
# checkpoint a resumed 2-rank run wrote).
"$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data "${args[@]}" --max_epochs 10 --out "$work/two_two" \
  > "$work/two_two.log" 2>&1 || { cat "$work/two_two.log"; echo "FAIL: the 10-epoch run"; exit 1; }
for e in 20 30; do
  "$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data --resume "$work/two_two" --max_epochs $e --quiet \
    > "$work/two_two.log" 2>&1 ||
    { cat "$work/two_two.log"; echo "FAIL: resuming the 2-rank run on 2 ranks to $e"; exit 1; }
done
same_stats "$work/one" "$work/two_two" "2 ranks for 10 epochs, resumed by 2 ranks twice, against 1"
[[ "$(cd "$work/two_two" && ls | sort | tr '\n' ' ')" == "grokalign_ce grokalign_mse noise runs.csv summary.csv summary.md sweep.json " ]] ||
  { ls -R "$work/two_two"; echo "FAIL: unexpected files in the resumed 2-rank output"; exit 1; }

# The alignment variants: each rank's centroid- or Jacobian-alignment penalty is its shard's
# share of the global batch mean, the Jacobian alignment's projections keyed by global sample
# index (AlignmentPenaltyOptions::global_batch). 20 epochs: once the training set is memorised
# the centroid penalty (weight 100) amplifies rounding about 300-fold every 10 epochs (1e-12
# at epoch 20, 6e-10 at 30), which says nothing about the split.
aligned=(--smoke --quiet --seeds 1 --batch_size 50 --max_epochs 20
         --variants centroid_align_ce,jacobian_align_ce)
"$program" "${aligned[@]}" --out "$work/aligned_one" > "$work/aligned_one.log" 2>&1 ||
  { cat "$work/aligned_one.log"; echo "FAIL: the 1-process alignment run failed"; exit 1; }
"$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data "${aligned[@]}" --out "$work/aligned_two" \
  > "$work/aligned_two.log" 2>&1 ||
  { cat "$work/aligned_two.log"; echo "FAIL: the 2-rank alignment run failed"; exit 1; }
grep -q "each data-parallel on 2 ranks" "$work/aligned_two.log" ||
  { cat "$work/aligned_two.log"; echo "FAIL: the alignment run did not run on 2 ranks"; exit 1; }
/usr/bin/python3 "$(dirname "$0")/same_stats.py" "$work/aligned_one" "$work/aligned_two" \
  "alignment variants, 2 ranks against 1" 2

if "$mpiexec" -n 2 --oversubscribe "$program" --mpi_mode data --smoke --quiet --out "$work/refused" --jobs 2 \
     > "$work/refused.log" 2>&1; then
  echo "FAIL: --jobs 2 ran under mpirun --mpi_mode data"; exit 1
fi
grep -q "^error: --jobs" "$work/refused.log" ||
  { cat "$work/refused.log"; echo "FAIL: --jobs 2: no error line"; exit 1; }
echo "example_2_ranks: passed"
