#!/bin/bash
# Phase 3: cap every kernel library at AVX2 (aten, oneDNN, MKL's reproducible mode).
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
for t in comp si; do rm -rf /tmp/k-$t-all /tmp/k-$t-all-runs; done
date
.venv/bin/rl-distill bench compression --workers 1 --only kl__ALE-Breakout-v5__c738892c__s0 --out /tmp/k-comp-all --runs-dir /tmp/k-comp-all-runs > /tmp/k-comp-all.log 2>&1 &
.venv/bin/rl-distill bench atari-lineage --workers 1 --only kickstarting__ALE-SpaceInvaders-v5__4e1164fe__s1 --out /tmp/k-si-all --runs-dir /tmp/k-si-all-runs > /tmp/k-si-all.log 2>&1 &
wait; date
