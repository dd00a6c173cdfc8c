#!/usr/bin/env bash
# The tours under mpirun -n 2 (issue 13): rank 0 alone runs a tour, so it prints what one
# process prints, once, and succeeds.
#   tours_once.sh MPIEXEC WORK TOUR...
set -euo pipefail
mpiexec=$1 work=$2
shift 2
rm -rf "$work"
mkdir -p "$work"
for tour in "$@"; do
  name=$(basename "$tour")
  timeout 120 "$tour" "$work/$name-one" >"$work/$name-one.log"
  timeout 120 "$mpiexec" -n 2 --oversubscribe "$tour" "$work/$name-two" >"$work/$name-two.log" ||
    { echo "FAIL $name: exit $? under mpirun -n 2"; exit 1; }
  one=$(wc -l <"$work/$name-one.log") two=$(wc -l <"$work/$name-two.log")
  [ "$one" -eq "$two" ] && [ "$one" -gt 0 ] ||
    { echo "FAIL $name: $two lines of output on 2 ranks, $one from 1 process"; exit 1; }
  echo "ok   $name: $two lines on 2 ranks, as from 1 process"
done
