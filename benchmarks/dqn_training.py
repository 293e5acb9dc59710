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
4. "suite N envs bf16": the same with ``--precision bf16`` (bf16 autocast in the CNN, fp32 elsewhere), and
   "suite N envs bf16 batch B": one gradient step of batch B every B/32 of those, i.e. the same replayed
   samples per env step in fewer, larger steps, where bf16 gains more (unless --no-bf16).

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


def _dqn(env, train_freq: int, gradient_steps: int, buffer: int, learning_starts: int, batch: int, precision: str):
    from rl_distill.teachers.train import bf16_sb3_training, fast_sb3_training, hyperparams, sb3_model

    hp = hyperparams("ALE/Pong-v5", "dqn") | {
        "train_freq": train_freq,
        "gradient_steps": gradient_steps,
        "buffer_size": buffer,
        "learning_starts": learning_starts,
        "batch_size": batch,
        "optimize_memory_usage": True,
        "replay_buffer_kwargs": {"handle_timeout_termination": False},
    }
    model = sb3_model("dqn", "ALE/Pong-v5", env, hp, device="cpu")
    fast_sb3_training(model)  # as `teachers train` does (NCHW convolutions with --nchw)
    if precision == "bf16":
        bf16_sb3_training(model)  # as `teachers train --precision bf16` does
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
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (teachers train: 1)")
    ap.add_argument("--big-batch", type=int, default=128, help="batch of the bf16 large-batch row (a multiple of 32)")
    ap.add_argument("--no-bf16", action="store_true", help="leave out the bf16 rows")
    ap.add_argument("--out", default="results/benchmarks/dqn_training_cpu2.json", help="output JSON path")
    a = ap.parse_args()
    NatureCNN.channels_last_on_cpu = not a.nchw
    torch.set_num_threads(a.threads)
    if a.n_envs % a.replay_ratio:
        raise SystemExit("--n-envs must be a multiple of --replay-ratio")
    if a.big_batch % 32:
        raise SystemExit("--big-batch must be a multiple of 32")

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

    def suite(k: int) -> SB3VecEnv:
        return SB3VecEnv(a.env_id, k, seed=0, protocol=proto)

    # name -> (env, train_freq, gradient_steps, batch, precision, bounded); every row replays 32 / replay_ratio
    # samples per env step; a bounded row gets its own update bound (gradient steps alone on its filled buffer).
    setups = {
        "sb3-plain 1 env": (
            VecFrameStack(make_atari_env(a.env_id, n_envs=1, seed=0, env_kwargs={"frameskip": 1}), n_stack=4),
            a.replay_ratio,
            1,
            32,
            "fp32",
            False,
        ),
        "suite 1 env": (suite(1), a.replay_ratio, 1, 32, "fp32", False),
        f"suite {n} envs": (suite(n), 1, n // a.replay_ratio, 32, "fp32", True),
    }
    if not a.no_bf16:
        per_step = a.big_batch // 32 * a.replay_ratio  # env steps one large gradient step pays for
        if per_step % n and n % per_step:
            raise SystemExit("--n-envs must divide, or be a multiple of, big-batch / 32 x replay ratio")
        setups[f"suite {n} envs bf16"] = (suite(n), 1, n // a.replay_ratio, 32, "bf16", True)
        setups[f"suite {n} envs bf16 batch {a.big_batch}"] = (
            suite(n),
            max(1, per_step // n),
            max(1, n // per_step),
            a.big_batch,
            "bf16",
            True,
        )
    buffer = a.warmup + (a.rounds + 1) * a.steps + 1000
    models, train_time, hp = {}, {}, {}
    for name, (env, freq, grad, batch, precision, _) in setups.items():
        models[name], hp[name] = _dqn(env, freq, grad, buffer, a.warmup, batch, precision)
        train_time[name] = time_calls(models[name], "train")
        models[name].learn(a.warmup + a.steps // 2, reset_num_timesteps=True)  # warm-up: fill, first updates

    # Gradient steps alone on the filled buffer, before and after the rounds (the load drifts), one bound
    # per (precision, batch): env steps/s at the replay ratio if acting cost nothing.
    bound_rows = {
        name: (freq * env.num_envs) / grad  # env steps each gradient step pays for
        for name, (env, freq, grad, batch, precision, bounded) in setups.items()
        if bounded
    }

    def grad_rates() -> dict[str, float]:
        return {
            name: rate(
                lambda m=models[name], b=setups[name][3]: type(m).train(m, gradient_steps=1, batch_size=b),
                1,
                a.bound_seconds / 2 / len(bound_rows),
            )
            for name in bound_rows
        }

    grad_steps_per_s = [grad_rates()]
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
    grad_steps_per_s.append(grad_rates())
    bounds = {
        name: statistics.mean(g[name] for g in grad_steps_per_s) * env_steps for name, env_steps in bound_rows.items()
    }
    # the fp32 rows are judged against the fp32 batch-32 bound, each bf16 row against its own
    bound_of = {name: bounds.get(name, bounds[f"suite {n} envs"]) for name in setups}
    for env, *_ in setups.values():
        env.close()

    sps = {name: round(statistics.median(x["steps_per_s"] for x in rs), 1) for name, rs in rounds.items()}
    out: dict[str, Any] = {
        "env_id": a.env_id,
        "algo": f"DQN CnnPolicy (stable-baselines3 {stable_baselines3.__version__}), "
        "rl-zoo3 Atari hyperparameters (batch 32 unless a row says otherwise)",
        "replay_ratio_env_steps_per_gradient_step": a.replay_ratio,
        "settings": {
            name: {
                "n_envs": env.num_envs,
                "train_freq": freq,
                "gradient_steps": grad,
                "batch_size": batch,
                "precision": precision,
                "replayed_samples_per_env_step": round(batch * grad / (freq * env.num_envs), 3),
            }
            for name, (env, freq, grad, batch, precision, _) in setups.items()
        },
        "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "torch_threads": a.threads,
        "machine": machine(),
        "note": a.note,
        "conv_input_layout": conv_layout(a.nchw),
        "rounds": rounds,
        "agent_steps_per_s": sps,
        "ratio_to_sb3_plain": {name: round(v / sps["sb3-plain 1 env"], 3) for name, v in sps.items()},
        "update_bound": {
            name: {
                "gradient_steps_per_s_before_after": [round(g[name], 1) for g in grad_steps_per_s],
                "agent_steps_per_s": round(b, 1),
            }
            for name, b in bounds.items()
        },
        "fraction_of_update_bound": {name: round(v / bound_of[name], 3) for name, v in sps.items()},
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
