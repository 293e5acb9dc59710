#!/bin/bash
# The compression suite's 27 Breakout runs again on this machine (AMD EPYC family 26, AVX-512), after
# compression_pong.sh, into the same folder: results/reruns/compression then holds the whole suite (54 runs)
# run on one machine, which measures its budget here directly.
cd "$(dirname "$0")/../.."

date
OMP_NUM_THREADS=1 /usr/bin/time -v .venv/bin/rl-distill bench compression --workers 2 --only ALE-Breakout --out results/reruns/compression --runs-dir /tmp/comp-rerun-runs
date
