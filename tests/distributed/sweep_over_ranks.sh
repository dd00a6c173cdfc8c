#!/usr/bin/env bash
# accelerating_grokking's sweeps spread over ranks (issue 13): with at least as many runs as
# ranks, --mpi_mode auto gives each rank whole runs (the next run to whichever rank is free),
# each run as one process runs it; so every stats.csv equals the 1-process sweep's exactly
# (every column but the timings), runs.csv too, rank 0 alone prints the summary, the
# alignment variants run, a sweep resumes with another rank count (2 ranks to 20 epochs,
# 3 ranks to 30), and a run failing on one rank ends the job with a message naming both.
#   sweep_over_ranks.sh MPIEXEC PROGRAM WORKDIR
set -euo pipefail
mpiexec=$1 program=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
# 6 runs of the smoke sweep, one of them an alignment variant.
args=(--smoke --quiet --seeds 2 --variants baseline_ce,grokalign_ce,centroid_align_ce)
same() { /usr/bin/python3 "$(dirname "$0")/same_stats.py" "$1" "$2" "$3" 6 0; }
# runs.csv without the timing columns (opt_seconds, cpu_seconds).
outcomes() { cut -d, -f1-5,8- "$1/runs.csv"; }

"$program" "${args[@]}" --out "$work/one" > "$work/one.log" 2>&1 ||
  { cat "$work/one.log"; fail "the 1-process sweep failed"; }
"$mpiexec" -n 2 --oversubscribe "$program" "${args[@]}" --out "$work/two" > "$work/two.log" 2>&1 ||
  { cat "$work/two.log"; fail "the 2-rank sweep failed"; }
grep -q "on each of 2 ranks (each takes the next run when free)" "$work/two.log" ||
  { cat "$work/two.log"; fail "the 2-rank sweep did not spread its runs over the ranks"; }
[[ $(grep -c "^Wrote" "$work/two.log") == 1 ]] ||
  { cat "$work/two.log"; fail "not one summary"; }
same "$work/one" "$work/two" "6 runs spread over 2 ranks against 1 process"
diff <(outcomes "$work/one") <(outcomes "$work/two") || fail "runs.csv differs"

# 2 ranks to 20 epochs, resumed on 3 ranks to 30: other runs on other ranks.
"$mpiexec" -n 2 --oversubscribe "$program" "${args[@]}" --max_epochs 20 --out "$work/resumed" \
  > "$work/resumed.log" 2>&1 || { cat "$work/resumed.log"; fail "the 20-epoch sweep"; }
"$mpiexec" -n 3 --oversubscribe "$program" --resume "$work/resumed" --max_epochs 30 --quiet \
  > "$work/resumed.log" 2>&1 || { cat "$work/resumed.log"; fail "resuming on 3 ranks"; }
grep -q "on each of 3 ranks" "$work/resumed.log" || { cat "$work/resumed.log"; fail "not spread over 3 ranks"; }
same "$work/one" "$work/resumed" "2 ranks to 20 epochs, resumed by 3 to 30, against 1 process"
diff <(outcomes "$work/one") <(outcomes "$work/resumed") || fail "runs.csv differs after the resume"
[[ $(find "$work/resumed" -name resumes.json | wc -l) == 6 ]] || fail "not every run was resumed"

# A run that fails on one rank ends the job, naming the rank and the run: here run 1 (on
# whichever rank drew it) cannot create its folder, a file being in the way.
mkdir -p "$work/broken/baseline_ce"
touch "$work/broken/baseline_ce/seed1"
if timeout 60 "$mpiexec" -n 2 --oversubscribe "$program" --smoke --quiet --seeds 2 \
     --variants baseline_ce --out "$work/broken" > "$work/broken.log" 2>&1; then
  fail "a sweep with a failing run reported success"
fi
message=$(grep -E "^grokalign: rank [01] of 2: accelerating_grokking: baseline_ce seed 1: " "$work/broken.log") ||
  { cat "$work/broken.log"; fail "no message naming the failing rank and run"; }
echo "a failing run: $message"
echo "sweep_over_ranks: passed"
