#!/usr/bin/env bash
# Fault tests of the example programs (issue 11), as a CTest script:
#   kill_resume.sh ACCELERATING_GROKKING TRANSFORMER_ALIGNMENT CHECKPOINT_DIFF WORKDIR
#
# 1. SIGKILL at random moments, then --resume, until the run finishes; the result must equal
#    an uninterrupted run's: stats.csv rows (every column but the timing ones) and every
#    checkpoint entry (weights, optimiser state, generators) bit for bit. After each kill at
#    most one checkpoint interval is lost: stats.csv holds at most one row past the step of
#    the checkpoint on disk, and that checkpoint loads.
# 2. --resume with another --dtype or model flag is refused, naming the flag.
# 3. The output folder made unwritable (chattr +i: CI runs as root, whom permissions do not
#    stop) and the disk made full (a small tmpfs filled up), mid-run: a one-line error, a
#    non-zero exit, and the last checkpoint intact. Skipped with a message where neither
#    chattr nor mount is permitted.
# Set KILL_RESUME_SEED to replay a failure (the seed used is printed).
set -euo pipefail
AG="$1" TA="$2" DIFF="$3" WORK="$4"
seed="${KILL_RESUME_SEED:-$(( $(date +%s) % 32768 ))}"
RANDOM=$seed
echo "kill_resume.sh: seed $seed (KILL_RESUME_SEED=$seed replays it)"
# What an interrupted earlier run may have left: a mounted tmpfs, an immutable folder.
umount "$WORK/tmpfs" 2>/dev/null || true
chattr -R -i "$WORK" 2>/dev/null || true
rm -rf "$WORK"
mkdir -p "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }

# stats.csv without the wall-clock and CPU-time columns, which no two runs share.
untimed() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) keep[i] = ($i != "opt_seconds" && $i != "opt_cpu_seconds") }
           { line = ""; for (i = 1; i <= NF; i++) if (keep[i]) line = line (line == "" ? "" : ",") $i; print line }' "$1"
}

# Runs "$@" in the background and SIGKILLs it after a random share of $duration
# seconds; returns 0 when the program had already finished by itself.
run_and_kill() {
  local duration="$1"
  shift
  "$@" >/dev/null 2>"$WORK/last_stderr" &
  local pid=$!
  # 5%..40% of an uninterrupted run: each resumed run gets a little further, so a run is
  # typically killed several times before it finishes.
  local ms=$(( (RANDOM % 36 + 5) * duration / 100 ))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    echo "  killed after ${ms} ms"
    return 1
  fi
  wait "$pid" || fail "$(cat "$WORK/last_stderr")"
  return 0
}

# After a kill: the checkpoint on disk loads, and stats.csv has at most one row past it.
check_loss() {
  local dir="$1"
  [[ -f "$dir/checkpoint.bin" ]] || return 0  # killed before the first checkpoint
  local step rows_past
  step=$("$DIFF" step "$dir/checkpoint.bin") || fail "the checkpoint in $dir does not load after a kill"
  rows_past=$(awk -F, -v s="$step" 'NR > 1 && $1 != "" && $1 + 0 > s + 0' "$dir/stats.csv" | wc -l)
  (( rows_past <= 1 )) || fail "$dir: $rows_past logged rows past the checkpoint at step $step: more than one checkpoint interval lost"
  echo "  checkpoint at step $step loads; $rows_past row(s) past it to redo"
}

# kill_until_done NAME RUN_DIR CHECK_DIR FRESH_CMD... -- RESUME_CMD...
kill_until_done() {
  local name="$1" dir="$2" check="$3"
  shift 3
  local fresh=() resume=()
  while [[ "$1" != "--" ]]; do fresh+=("$1"); shift; done
  shift
  resume=("$@")
  local start end duration kills=0 cmd=("${fresh[@]}")
  start=$(date +%s%N)
  local ref=() arg
  for arg in "${fresh[@]}"; do [[ "$arg" == "$dir" ]] && ref+=("$WORK/$name.ref") || ref+=("$arg"); done
  "${ref[@]}" >/dev/null 2>"$WORK/last_stderr" || fail "$name: the uninterrupted run failed: $(cat "$WORK/last_stderr")"
  end=$(date +%s%N)
  duration=$(( (end - start) / 1000000 ))
  echo "$name: uninterrupted run ${duration} ms"
  for attempt in $(seq 1 12); do
    # After five kills the run is let finish, so the test always ends.
    if (( kills >= 5 )); then
      "${cmd[@]}" >/dev/null 2>"$WORK/last_stderr" || fail "$name: $(cat "$WORK/last_stderr")"
      break
    fi
    if run_and_kill "$duration" "${cmd[@]}"; then break; fi
    kills=$((kills + 1))
    check_loss "$check"
    # Killed before the folder held a checkpoint: start afresh, as a user would.
    if [[ -f "$check/checkpoint.bin" ]]; then cmd=("${resume[@]}"); else rm -rf "$dir"; cmd=("${fresh[@]}"); fi
  done
  echo "$name: finished after $kills kill(s)"
}

compare_runs() {
  local name="$1" ref="$2" got="$3"
  diff <(untimed "$ref/stats.csv") <(untimed "$got/stats.csv") >/dev/null ||
    fail "$name: stats.csv after kills and resumes differs from the uninterrupted run's: $(diff <(untimed "$ref/stats.csv") <(untimed "$got/stats.csv") | head -5)"
  "$DIFF" same "$ref/checkpoint.bin" "$got/checkpoint.bin" >/dev/null ||
    fail "$name: the final checkpoint differs from the uninterrupted run's"
  echo "$name: stats.csv ($(($(wc -l <"$got/stats.csv") - 1)) rows) and final checkpoint identical to the uninterrupted run's"
}

# --- 1. accelerating_grokking: a sweep of one run; checkpoints every 10 epochs ----------
# (--checkpoint_every is given again on resume: a resumed sweep does not remember it.)
AG_FLAGS=(--smoke --variants grokalign_ce --max_epochs 150 --log_every 10 --checkpoint_every 10 --quiet)
kill_until_done accelerating_grokking "$WORK/ag" "$WORK/ag/grokalign_ce/seed0" \
  "$AG" "${AG_FLAGS[@]}" --out "$WORK/ag" -- "$AG" --resume "$WORK/ag" --max_epochs 150 --checkpoint_every 10 --quiet
compare_runs accelerating_grokking "$WORK/accelerating_grokking.ref/grokalign_ce/seed0" "$WORK/ag/grokalign_ce/seed0"

# --- 1. transformer_alignment: checkpoints at its log-spaced logging steps ---------------
TA_FLAGS=(--smoke --steps 3000 --n_logs 30 --quiet)
kill_until_done transformer_alignment "$WORK/ta" "$WORK/ta" \
  "$TA" "${TA_FLAGS[@]}" --out "$WORK/ta" -- "$TA" "${TA_FLAGS[@]}" --resume "$WORK/ta"
compare_runs transformer_alignment "$WORK/transformer_alignment.ref" "$WORK/ta"
cmp -s "$WORK/transformer_alignment.ref/frequencies.csv" "$WORK/ta/frequencies.csv" ||
  fail "transformer_alignment: frequencies.csv differs from the uninterrupted run's"

# --- 2. a resume with other settings is refused, naming them ------------------------------
expect_refusal() {
  local what="$1" pattern="$2"
  shift 2
  local out rc=0
  out=$("$@" 2>&1 >/dev/null) || rc=$?
  (( rc != 0 )) || fail "$what: accepted"
  grep -q -- "$pattern" <<<"$out" || fail "$what: the error does not name $pattern: $out"
  echo "refused, $what: $(grep -- "$pattern" <<<"$out" | head -1)"
}
expect_refusal "transformer_alignment --resume with --dtype f64" '--dtype "f32", but this run has --dtype "f64"' \
  "$TA" "${TA_FLAGS[@]}" --resume "$WORK/ta" --dtype f64
expect_refusal "transformer_alignment --resume with --d_model 32" '--d_model 16, but this run has --d_model 32' \
  "$TA" "${TA_FLAGS[@]}" --resume "$WORK/ta" --d_model 32
expect_refusal "accelerating_grokking --resume with --dtype f32" '--dtype' \
  "$AG" --resume "$WORK/ag" --dtype f32 --quiet
# A finished run is not resumed at all: --max_epochs 160 makes this one carry on.
expect_refusal "accelerating_grokking --resume with --width 64" '--width 196, but this run has --width 64' \
  "$AG" --resume "$WORK/ag" --max_epochs 160 --width 64 --quiet
"$DIFF" same "$WORK/accelerating_grokking.ref/grokalign_ce/seed0/checkpoint.bin" \
  "$WORK/ag/grokalign_ce/seed0/checkpoint.bin" >/dev/null || fail "a refused resume changed the checkpoint"

# --- 3. the output folder becomes unwritable, the disk full, mid-run ----------------------
# Starts a long run, waits for its first checkpoint, applies "$@" to the run's folder, and
# expects a clear error and the checkpoint on disk still loading.
break_mid_run() {
  local what="$1" out="$2"
  shift 2
  local dir="$out/grokalign_ce/seed0"
  "$AG" --smoke --variants grokalign_ce --max_epochs 100000 --log_every 10 --checkpoint_every 10 \
    --quiet --out "$out" >/dev/null 2>"$WORK/break_stderr" &
  local pid=$! waited=0
  until [[ -f "$dir/checkpoint.bin" ]] || (( waited > 300 )); do sleep 0.1; waited=$((waited + 1)); done
  "$@" "$dir"
  local rc=0
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fail "$what: the run went on for 30 s"; fi
  wait "$pid" || rc=$?
  (( rc != 0 )) || fail "$what: the run reported success"
  local err
  err=$(grep -i "error" "$WORK/break_stderr" | head -1)
  grep -qiE "cannot write|no space|not permitted|read-only" <<<"$err" ||
    fail "$what: unclear error: $(cat "$WORK/break_stderr")"
  local step
  step=$("$DIFF" step "$dir/checkpoint.bin") || fail "$what: the last checkpoint no longer loads"
  echo "$what: exit $rc, '$err'; the checkpoint at epoch $step loads"
}

if chattr +i "$WORK" 2>/dev/null && chattr -i "$WORK" 2>/dev/null; then
  trap 'chattr -R -i "$WORK/ro" 2>/dev/null || true' EXIT
  break_mid_run "unwritable output folder (chattr +i)" "$WORK/ro" chattr +i
  chattr -i "$WORK/ro/grokalign_ce/seed0"
  trap - EXIT
elif [[ $(id -u) -ne 0 ]]; then
  break_mid_run "unwritable output folder (chmod a-w)" "$WORK/ro" chmod a-w
  chmod u+w "$WORK/ro/grokalign_ce/seed0"
else
  echo "SKIPPED: unwritable folder: chattr +i is not permitted here and root ignores chmod"
fi

fill_disk() { dd if=/dev/zero of="$1/../../fill" bs=1M >/dev/null 2>&1 || true; }
mkdir -p "$WORK/tmpfs"
if mount -t tmpfs -o size=48m tmpfs "$WORK/tmpfs" 2>/dev/null; then
  trap 'umount "$WORK/tmpfs" 2>/dev/null || true' EXIT
  break_mid_run "full disk (a 48 MB tmpfs filled up)" "$WORK/tmpfs/run" fill_disk
  umount "$WORK/tmpfs"
  trap - EXIT
else
  echo "SKIPPED: full disk: mounting a small tmpfs is not permitted here"
fi
echo "kill_resume.sh: all passed"
