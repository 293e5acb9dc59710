"""Atari DQN teacher training speed (issue 4): which DQN settings fit a teacher into a working session.

SB3 DQN (CnnPolicy, rl-zoo3 Atari hyperparameters: batch 32, Adam 1e-4, replay buffer) spends its time in
two places: acting (env steps + one Q-network forward per vector step) and gradient steps. The replay
ratio, env steps per gradient step, sets how much learning an env step buys; rl-zoo3 uses 4 (one
gradient step every 4 steps of a single env). Three pipelines, all at that ratio, side by side in one run:

1. "sb3-plain 1 env": ``make_atari_env(n_envs=1)`` + ``VecFrameStack(4)``, ``train_freq=4``,
   ``gradient_steps=1``: rl-zoo3's pipeline.
2. "suite 1 env": the suite's ale-py vector env with one env, same settings (what ``teachers train
   --algo dqn`` does with the untouched rl-zoo3 entry).
3. "suite N envs": N envs, ``train_freq=1`` (one vector step = N env steps), ``gradient_steps=N/4``: the
   same replay ratio with one policy forward per N env steps and no per-env Python overhead.

The "update bound" is ``DQN.train()`` alone (gradient steps on the filled buffer) converted to env steps/s at
the replay ratio: the speed training could reach if acting cost nothing. Learning starts after a short
warm-up, the rounds alternate pipelines so all see the same machine load, and agent steps/s is the median
over rounds.

    .venv/bin/python benchmarks/dqn_training.py [--steps 4000] [--rounds 2] [--n-envs 4] [--out ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import gymnasium as gym
import torch
from _timing import conv_layout, load_average, machine, rate, time_calls

from rl_distill.networks import NatureCNN


def _dqn(env, train_freq: int, gradient_steps: int, buffer: int, learning_starts: int):
    from rl_distill.teachers.train import fast_sb3_training, hyperparams, sb3_model

    hp = hyperparams("ALE/Pong-v5", "dqn") | {
        "train_freq": train_freq,
        "gradient_steps": gradient_steps,
        "buffer_size": buffer,
        "learning_starts": learning_starts,
        "optimize_memory_usage": True,
        "replay_buffer_kwargs": {"handle_timeout_termination": False},
    }
    model = sb3_model("dqn", "ALE/Pong-v5", env, hp, device="cpu")
    fast_sb3_training(model)  # as `teachers train` does (NCHW convolutions with --nchw)
    return model, hp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env-id", default="ALE/Pong-v5", help="Atari env id")
    ap.add_argument("--steps", type=int, default=4000, help="agent steps per timed learn() call")
    ap.add_argument("--rounds", type=int, default=2, help="timed learn() calls per pipeline, alternating")
    ap.add_argument("--n-envs", type=int, default=4, help="parallel envs of each pipeline")
    ap.add_argument("--replay-ratio", type=int, default=4, help="env steps per gradient step (rl-zoo3: 4)")
    ap.add_argument("--warmup", type=int, default=2000, help="env steps before learning starts (untimed)")
    ap.add_argument(
        "--bound-seconds", type=float, default=20.0, help="seconds of gradient steps alone timed for the update bound"
    )
    ap.add_argument("--note", default="", help="free text kept in the output JSON (e.g. what else ran)")
    ap.add_argument(
        "--nchw", action="store_true", help="plain NCHW convolutions, as before channels-last input (networks.py)"
    )
    ap.add_argument("--out", default="results/benchmarks/dqn_training_cpu2.json", help="output JSON path")
    a = ap.parse_args()
    NatureCNN.channels_last_on_cpu = not a.nchw
    torch.set_num_threads(1)
    if a.n_envs % a.replay_ratio:
        raise SystemExit("--n-envs must be a multiple of --replay-ratio")

    import ale_py
    import stable_baselines3
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from rl_distill.envs import AtariProtocol
    from rl_distill.runs import atomic_write_json
    from rl_distill.sb3_vec_env import SB3VecEnv

    gym.register_envs(ale_py)
    t_start = time.perf_counter()
    load_start = load_average()
    proto = AtariProtocol(sticky_actions=0.25, reward_clipping=True, episodic_life=True)
    n = a.n_envs
    setups = {
        "sb3-plain 1 env": (
            VecFrameStack(make_atari_env(a.env_id, n_envs=1, seed=0, env_kwargs={"frameskip": 1}), n_stack=4),
            a.replay_ratio,
            1,
        ),
        "suite 1 env": (SB3VecEnv(a.env_id, 1, seed=0, protocol=proto), a.replay_ratio, 1),
        f"suite {n} envs": (SB3VecEnv(a.env_id, n, seed=0, protocol=proto), 1, n // a.replay_ratio),
    }
    buffer = a.warmup + (a.rounds + 1) * a.steps + 1000
    models, train_time, hp = {}, {}, {}
    for name, (env, freq, grad) in setups.items():
        models[name], hp[name] = _dqn(env, freq, grad, buffer, a.warmup)
        train_time[name] = time_calls(models[name], "train")
        models[name].learn(a.warmup + a.steps // 2, reset_num_timesteps=True)  # warm-up: fill, first updates

    # Gradient steps alone on the filled buffer, before and after the rounds (the load drifts).
    bound_model = models[f"suite {n} envs"]
    grad_steps_per_s = [
        rate(lambda: type(bound_model).train(bound_model, gradient_steps=1, batch_size=32), 1, a.bound_seconds / 2)
    ]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for r in range(a.rounds):
        for name, model in models.items():
            acc = train_time[name]
            s0, c0 = acc["s"], acc["calls"]
            t0 = time.perf_counter()
            model.learn(a.steps, reset_num_timesteps=False)
            wall = time.perf_counter() - t0
            rounds[name].append(
                {
                    "round": r,
                    "steps": a.steps,
                    "wall_s": round(wall, 2),
                    "steps_per_s": round(a.steps / wall, 1),
                    "train_calls": acc["calls"] - c0,
                    "train_s": round(acc["s"] - s0, 2),
                    "acting_s": round(wall - acc["s"] + s0, 2),
                }
            )
            print(name, rounds[name][-1], flush=True)
    grad_steps_per_s.append(
        rate(lambda: type(bound_model).train(bound_model, gradient_steps=1, batch_size=32), 1, a.bound_seconds / 2)
    )
    bound = statistics.mean(grad_steps_per_s) * a.replay_ratio
    for env, _, _ in setups.values():
        env.close()

    sps = {name: round(statistics.median(x["steps_per_s"] for x in rs), 1) for name, rs in rounds.items()}
    out: dict[str, Any] = {
        "env_id": a.env_id,
        "algo": f"DQN CnnPolicy (stable-baselines3 {stable_baselines3.__version__}), "
        "rl-zoo3 Atari hyperparameters, batch 32",
        "replay_ratio_env_steps_per_gradient_step": a.replay_ratio,
        "settings": {
            name: {"n_envs": env.num_envs, "train_freq": freq, "gradient_steps": grad}
            for name, (env, freq, grad) in setups.items()
        },
        "machine": machine(),
        "note": a.note,
        "conv_input_layout": conv_layout(a.nchw),
        "rounds": rounds,
        "agent_steps_per_s": sps,
        "ratio_to_sb3_plain": {name: round(v / sps["sb3-plain 1 env"], 3) for name, v in sps.items()},
        "update_bound": {
            "gradient_steps_per_s_before_after": [round(g, 1) for g in grad_steps_per_s],
            "agent_steps_per_s": round(bound, 1),
        },
        "fraction_of_update_bound": {name: round(v / bound, 3) for name, v in sps.items()},
        "gradient_share_of_wall": {
            name: round(sum(x["train_s"] for x in rs) / sum(x["wall_s"] for x in rs), 3) for name, rs in rounds.items()
        },
        "total_wall_s": round(time.perf_counter() - t_start, 1),
        "load_average_1_5_15_min": {"start": load_start, "end": load_average()},
    }
    atomic_write_json(a.out, out)
    print(
        {
            k: out[k]
            for k in (
                "agent_steps_per_s",
                "ratio_to_sb3_plain",
                "fraction_of_update_bound",
                "gradient_share_of_wall",
                "total_wall_s",
            )
        }
    )


if __name__ == "__main__":
    main()
