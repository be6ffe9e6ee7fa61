#!/bin/bash
# one lock slot: runs in priority order, all inside 570 s
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD OMP_NUM_THREADS=2
start=$(date +%s)
echo "=== slot start $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
for n in "$@"; do
  left=$((570 - $(date +%s) + start))
  if [ $left -lt 45 ]; then echo "=== skip $n (left $left s)"; continue; fi
  case $n in long*) extra="--extend ${n#long}"; n=long;; *) extra="";; esac
  echo "=== $n start $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) left $left"
  timeout $left ${PYTHON:-python} bench/detection.py run $n $extra
  echo "=== $n end rc $? $(date -u +%T)"
done
