#!/usr/bin/env bash
# The commands that produced the shipped control teachers (each rl_distill/zoo/<id>.json records its own
# exact command, wall time and machine). Runs them one after another; each resumes if killed, and a
# teacher already shipped is skipped. One torch thread per job (see teachers/train.py).
# Usage: bash experiments/train_control_teachers.sh [rl-distill binary]
set -u
RL=${1:-.venv/bin/rl-distill}
export OMP_NUM_THREADS=1
train() {  # env algo seed stop_at steps [extra args]
  local env=$1 algo=$2 seed=$3 stop=$4 steps=$5
  shift 5
  local out=rl_distill/zoo/$algo-$env
  [ -f "$out.json" ] && { echo "have $out"; return; }
  $RL teachers train "$env" --algo "$algo" --seed "$seed" --stop-at "$stop" --steps "$steps" \
      --out "$out" --resume --no-progress "$@"
}
train CartPole-v1 ppo 0 500 100000
train CartPole-v1 dqn 1 500 100000           # seed 0 collapses (../shared/docs/MEASURED.md)
train Acrobot-v1 ppo 0 -80 300000
train Acrobot-v1 dqn 0 -80 200000            # shipped one ran on the lent GPU machine's CPU (device_session.sh)
train MountainCar-v0 dqn 1 -105 300000       # seed 0 was still at -200 after 195k steps
train LunarLander-v3 ppo 0 240 2000000 --eval-every 50000
train LunarLander-v3 dqn 0 240 500000 --eval-every 25000
