#!/bin/bash
# The compression suite's 27 Pong runs again on this machine (AMD EPYC family 26, AVX-512), beside the records.
cd "$(dirname "$0")/../.."

date
OMP_NUM_THREADS=1 /usr/bin/time -v .venv/bin/rl-distill bench compression --workers 2 --only ALE-Pong --out results/reruns/compression --runs-dir /tmp/comp-rerun-runs
date
