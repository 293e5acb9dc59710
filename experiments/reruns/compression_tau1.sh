#!/bin/bash
# The suite compression-tau1's 18 runs again on this machine (AMD EPYC family 26, AVX-512), beside the records.
# Ran 2026-11-28 into /tmp/tau1-rerun, then `rl-distill bench compression-tau1 --out results/reruns/compression-tau1
# --runs-dir /tmp/tau1-rerun-runs` wrote the records and report where they are committed (nothing left to run).
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 /usr/bin/time -v .venv/bin/rl-distill bench compression-tau1 --workers 2 --out /tmp/tau1-rerun --runs-dir /tmp/tau1-rerun-runs
