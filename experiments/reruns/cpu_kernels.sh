#!/bin/bash
# Does torch's kernel set explain the rerun differences? Each cell with AVX2 kernels and with the default (AVX512 here).
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
run() {  # kernels suite key tag
  local env=""; [ "$1" = avx2 ] && env="ATEN_CPU_CAPABILITY=avx2"
  rm -rf /tmp/k-$4 /tmp/k-$4-runs
  env $env .venv/bin/rl-distill bench $2 --workers 1 --only $3 --out /tmp/k-$4 --runs-dir /tmp/k-$4-runs > /tmp/k-$4.log 2>&1
}
date
run avx2 compression kl__ALE-Breakout-v5__c738892c__s0 comp-avx2 &
run avx2 atari-lineage kickstarting__ALE-SpaceInvaders-v5__4e1164fe__s1 si-avx2 &
wait; date
run default compression kl__ALE-Breakout-v5__c738892c__s0 comp-def &
run default atari-lineage kickstarting__ALE-SpaceInvaders-v5__4e1164fe__s1 si-def &
wait; date
