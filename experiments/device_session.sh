#!/usr/bin/env bash
# One lent-GPU session (the `device` tool): CUDA path of the methods, rollout/training throughput on
# cuda and cpu, a PPO Pong teacher on the GPU and the slow control teachers on the 16 CPU cores, all at
# once. Everything it produces lands in $OUT/results.tgz (+ a split Pong checkpoint if unfinished).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
LIMIT=${LIMIT:-470}
W=/tmp/w; mkdir -p $W/zoo $W/logs
RL="python3 -m rl_distill.cli"
nvidia-smi -L; nproc; python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
train_cpu() {  # env algo seed stop steps
  OMP_NUM_THREADS=1 timeout $LIMIT $RL teachers train $1 --algo $2 --seed $3 --stop-at $4 --steps $5 --device cpu \
    --runs-dir $W/runs --out $W/zoo/$2-$1-s$3 --no-progress > $W/logs/$2-$1-s$3.log 2>&1
}
train_cpu Acrobot-v1 dqn 0 -80 200000 &
train_cpu MountainCar-v0 dqn 0 -105 300000 &
train_cpu LunarLander-v3 ppo 0 240 1500000 &
train_cpu LunarLander-v3 ppo 1 240 1500000 &
train_cpu LunarLander-v3 dqn 0 240 500000 &
train_cpu LunarLander-v3 dqn 1 240 500000 &
timeout $LIMIT $RL teachers train ALE/Pong-v5 --algo ppo --n-envs 32 --steps 2500000 --eval-every 250000 \
  --eval-episodes 8 --runs-dir $W/runs --out $W/zoo/ppo-ALE-Pong-v5 --no-progress > $W/logs/pong.log 2>&1 &
OMP_NUM_THREADS=4 timeout 240 python3 -m pytest -q -p no:cacheprovider ${TESTS:-tests/test_losses.py} > $W/logs/pytest_cuda.log 2>&1
OMP_NUM_THREADS=4 python3 benchmarks/rollout_throughput.py --device cuda --seconds 5 > $W/logs/bench_cuda.json 2>&1
OMP_NUM_THREADS=2 python3 benchmarks/rollout_throughput.py --device cpu --seconds 5 > $W/logs/bench_cpu2.json 2>&1
tail -3 $W/logs/pytest_cuda.log
wait
for d in $W/runs/*/; do cp $d/state.json $W/logs/$(basename $d).state.json 2>/dev/null; done
for d in $W/runs/*/; do [ -f $d/summary.json ] || { [ -f $d/checkpoint.zip ] && cp $d/checkpoint.zip $W/logs/$(basename $d).checkpoint.zip; }; done
tar czf $W/results.tgz -C $W zoo logs
ls -la $W/results.tgz; split -b 15M $W/results.tgz $OUT/results.tgz.part-
tail -2 $W/logs/*.log
