#!/usr/bin/env bash
# Every numeric flag of the six example programs, given values out of its range (issue 11,
# tag [errors]): each must be refused with exit status 2 and one line naming the flag,
# before any training starts. The table below lists each program's numeric flags with the
# values to try; a numeric flag in a program's --help that the table does not list fails
# the test, so a new flag cannot go untested.
#   bad_flags.sh BINDIR     (BINDIR holds the six programs)
set -uo pipefail
BIN="$1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# program flag bad-values...   (the shared flags are tried on every program)
# --seed -1 is not listed: CLI11 reads it as 2^64 - 1, a valid seed (run/flags.hpp).
# --n_logs 0 and --log_every 0 (log-spaced instead) are accepted by delayed_robustness and
# transformer_alignment (their choice).
TABLE='
* --seed nan -x 1e400
* --threads 0 -1 nan 1000
* --checkpoint_every -5 nan
comparison_to_ntk --train_per_class 0 -1 nan
comparison_to_ntk --width 0 -1 nan
comparison_to_ntk --depth 0 -1 nan
comparison_to_ntk --init_scale 0 -1 nan inf
comparison_to_ntk --output_scale 0 -1 nan
comparison_to_ntk --lr 0 -1 nan inf
comparison_to_ntk --steps 0 -1 nan
comparison_to_ntk --n_logs 0 -1 nan
xor_grokking --n 0 -1 nan
xor_grokking --p 1 0 nan
xor_grokking --epsilon -1 nan
xor_grokking --width 0 -1 nan
xor_grokking --lr 0 -1 nan
xor_grokking --weight_decay -1 nan
xor_grokking --lambda_jac -1 nan
xor_grokking --steps 0 -1 nan
xor_grokking --log_every 0 -1 nan
delayed_robustness --lambda_jac -1 nan
delayed_robustness --lr 0 -1 nan
delayed_robustness --weight_decay -1 nan
delayed_robustness --batch_size 0 -1 nan
delayed_robustness --clip_grad_value 0 -1 nan
delayed_robustness --epochs 0 -1 nan
delayed_robustness --init_scale 0 -1 nan
delayed_robustness --train_size 0 -1 nan
delayed_robustness --test_size 0 -1 nan
delayed_robustness --n_logs -1 nan
delayed_robustness --log_every -1 nan
delayed_robustness --attack_samples 0 -1 nan
delayed_robustness --attack_steps 0 -1 nan
delayed_robustness --attack_eps -1 nan
delayed_robustness --pc1_samples 0 -1 nan
inhibiting_generalisation --n_train 0 -1 nan
inhibiting_generalisation --n_test 0 -1 nan
inhibiting_generalisation --width 0 -1 nan
inhibiting_generalisation --depth 0 -1 nan
inhibiting_generalisation --init_scale 0 -1 nan
inhibiting_generalisation --lr 0 -1 nan
inhibiting_generalisation --weight_decay -1 nan
inhibiting_generalisation --batch_size 0 -1 nan
inhibiting_generalisation --clip_grad_norm 0 -1 nan
inhibiting_generalisation --lambda_jac -1 nan
inhibiting_generalisation --jac_level -1 nan
inhibiting_generalisation --epochs 0 -1 nan
inhibiting_generalisation --n_logs 0 -1 nan
inhibiting_generalisation --stat_samples 0 -1 nan
accelerating_grokking --n_train 0 -1 nan
accelerating_grokking --n_test 0 -1 nan
accelerating_grokking --depth 0 -1 nan
accelerating_grokking --width 0 -1 nan
accelerating_grokking --init_scale 0 -1 nan
accelerating_grokking --lr 0 -1 nan
accelerating_grokking --weight_decay -1 nan
accelerating_grokking --batch_size 0 -1 nan
accelerating_grokking --log_every 0 -1 nan
accelerating_grokking --max_epochs 0 -1 nan
accelerating_grokking --target -0.1 1 nan
accelerating_grokking --grokfast_alpha -0.1 1.5 nan
accelerating_grokking --grokfast_lamb -1 nan
accelerating_grokking --seeds 0 -1 nan
accelerating_grokking --jobs 0 -1 nan
accelerating_grokking --lambda_jac -1 nan
accelerating_grokking --lambda_align -1 nan 0.1,-1 inf
transformer_alignment --lambda_jac -1 nan
transformer_alignment --lr 0 -1 nan
transformer_alignment --weight_decay -1 nan
transformer_alignment --beta1 -0.1 1 nan
transformer_alignment --beta2 -0.1 1 nan
transformer_alignment --steps 0 -1 nan
transformer_alignment --init_scale 0 -1 nan
transformer_alignment --p 1 0 nan
transformer_alignment --train_fraction 0 1.5 nan
transformer_alignment --d_model 0 -1 nan
transformer_alignment --n_heads 0 -1 nan
transformer_alignment --d_head 0 -1 nan
transformer_alignment --d_mlp 0 -1 nan
transformer_alignment --n_logs -1 nan
transformer_alignment --log_every -1 nan
transformer_alignment --alignment_samples -1 nan
transformer_alignment --key_fraction -0.1 1.5 nan
'
PROGRAMS=(comparison_to_ntk xor_grokking delayed_robustness inhibiting_generalisation
          accelerating_grokking transformer_alignment)
failures=0 tried=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for prog in "${PROGRAMS[@]}"; do
  exe="$BIN/$prog"
  [[ -x "$exe" ]] || { fail "$prog: not built in $BIN"; continue; }
  # Numeric flags in --help must all be in the table.
  for flag in $("$exe" --help | grep -E '^ +--[a-z_0-9]+ (U?INT|FLOAT)' | awk '{print $1}'); do
    grep -qE "^(\*|$prog) $flag " <<<"$TABLE" || fail "$prog: numeric flag $flag is not in the table"
  done
  while read -r who flag values; do
    [[ -z "$who" || ( "$who" != "*" && "$who" != "$prog" ) ]] && continue
    for v in $values; do
      tried=$((tried + 1))
      # --smoke and a private --out: should a bad value be accepted, the run is short and
      # writes nowhere that matters.
      out=$(timeout 60 "$exe" --smoke --quiet --out "$WORK/$prog" "$flag" "$v" 2>&1 >/dev/null)
      rc=$?
      rm -rf "$WORK/$prog"
      if [[ $rc -ne 2 ]]; then
        fail "$prog $flag $v: exit $rc, not 2 (accepted?): $(head -c 300 <<<"$out")"
      elif [[ $(wc -l <<<"$out") -ne 1 || "$out" != error:* ]]; then
        fail "$prog $flag $v: not one 'error:' line: $out"
      elif ! grep -qF -- "$flag" <<<"$out"; then
        fail "$prog $flag $v: the error does not name $flag: $out"
      fi
    done
  done <<<"$TABLE"
done
echo "bad_flags.sh: $tried bad values tried over ${#PROGRAMS[@]} programs, $failures failure(s)"
[[ $failures -eq 0 ]]
