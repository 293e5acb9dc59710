#!/usr/bin/env bash
# Trains the shipped control teachers, one after another (each resumes if killed).
# Usage: bash experiments/train_control_teachers.sh [rl-distill binary]
set -u
RL=${1:-.venv/bin/rl-distill}
train() {  # env algo seed stop_at steps
  local env=$1 algo=$2 seed=$3 stop=$4 steps=$5
  local out=rl_distill/zoo/$algo-$env
  [ -f "$out.json" ] && { echo "have $out"; return; }
  $RL teachers train "$env" --algo "$algo" --seed "$seed" --stop-at "$stop" --steps "$steps" \
      --out "$out" --resume --no-progress
}
train Acrobot-v1 ppo 0 -80 300000
train CartPole-v1 dqn 1 500 100000
train Acrobot-v1 dqn 0 -80 200000
train MountainCar-v0 dqn 1 -105 300000
train LunarLander-v3 ppo 0 240 2000000
train LunarLander-v3 dqn 0 240 600000
