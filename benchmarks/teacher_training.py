"""Atari teacher training speed (issue 4): SB3 PPO (rl-zoo3 Atari hyperparameters, CnnPolicy) on Pong over
SB3's plain Atari pipeline and over the suite's vector env, side by side in one run, against the bound
set by the PPO update itself.

1. "sb3-plain": ``make_atari_env`` (a DummyVecEnv of per-env gymnasium ALE envs, each with Monitor and
   AtariWrapper) + ``VecFrameStack(4)``, the pipeline of SB3's docs and rl-zoo3.
2. "suite": ``rl_distill.sb3_vec_env.SB3VecEnv`` (ale-py's C++ AtariVectorEnv) with the protocol
   ``teachers train`` uses (sticky actions 0.25, reward clipping, a lost life ends the agent's episode).
3. "suite-bf16": the suite's pipeline with ``--precision bf16`` (bf16 autocast in the CNN), unless --no-bf16.
4. "update bound": only ``PPO.train()`` on a full rollout buffer (n_envs * n_steps samples, n_epochs
   epochs of batch_size), timed repeatedly before and after the rounds. Its samples/s / n_epochs is the agent
   steps/s that training could reach if acting (env steps + policy forward) cost nothing; each pipeline is
   reported as a fraction of the bound of its own precision.

Both pipelines play the same game: frameskip 4 with a max over the last two frames, ALE-level sticky
actions 0.25 (the v5 default, applied per emulator frame), up to 30 no-op starts, FIRE on reset, 84x84
gray, 4-frame stack, reward clipping, life loss = episode end for the learner. For the plain pipeline
that means ``env_kwargs={"frameskip": 1}``: ``gym.make("ALE/Pong-v5")`` already skips 4 frames, and
AtariWrapper's MaxAndSkipEnv skips 4 more, so SB3's untouched default for a v5 id would be 16 emulator
frames per agent step (SB3 documents AtariWrapper for ``*NoFrameskip-v4`` ids, i.e. frameskip 1 in ALE).

Each pipeline gets one model (seed 0) and one warm-up update; then ``model.learn(N)`` alternates
plain / suite / plain / suite ... so both see the same machine load. Agent steps/s is the median over
rounds; the time inside ``train()`` is recorded per round so the split rollout / update is visible.

    .venv/bin/python benchmarks/teacher_training.py [--steps 8192] [--rounds 2] [--threads 1] [--out ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import gymnasium as gym
import torch
from _timing import conv_layout, load_average, machine, rate, time_calls

from rl_distill.networks import NatureCNN


def _ppo(env, threads: int, precision: str = "fp32"):
    from rl_distill.teachers.train import bf16_sb3_training, fast_sb3_training, hyperparams, sb3_model

    hp = hyperparams("ALE/Pong-v5", "ppo")
    model = sb3_model("ppo", "ALE/Pong-v5", env, hp, device="cpu")
    fast_sb3_training(model)  # as `teachers train` does (NCHW convolutions with --nchw)
    if precision == "bf16":
        bf16_sb3_training(model)  # as `teachers train --precision bf16` does
    torch.set_num_threads(threads)  # SB3's set_random_seed leaves it alone, but be sure
    return model, hp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env-id", default="ALE/Pong-v5", help="Atari env id")
    ap.add_argument("--steps", type=int, default=8192, help="agent steps per timed learn() call (8192 = 8 PPO updates)")
    ap.add_argument("--rounds", type=int, default=2, help="timed learn() calls per pipeline, alternating")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--bound-seconds",
        type=float,
        default=20.0,
        help="seconds of repeated train() for the update bound (half before, half after the rounds)",
    )
    ap.add_argument(
        "--note",
        default="Another teacher-training job (PPO Pong, niced) ran on the machine throughout, "
        "using about one of the 2 cores.",
    )
    ap.add_argument(
        "--nchw", action="store_true", help="plain NCHW convolutions, as before channels-last input (networks.py)"
    )
    ap.add_argument(
        "--no-bf16",
        action="store_true",
        help="leave out the suite's bf16 row (it is there even on a CPU without native bf16)",
    )
    ap.add_argument("--out", default="results/benchmarks/teacher_training_cpu2.json", help="output JSON path")
    a = ap.parse_args()
    NatureCNN.channels_last_on_cpu = not a.nchw
    torch.set_num_threads(a.threads)

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

    plain_env = VecFrameStack(make_atari_env(a.env_id, n_envs=8, seed=0, env_kwargs={"frameskip": 1}), n_stack=4)
    protocol = AtariProtocol(sticky_actions=0.25, reward_clipping=True, episodic_life=True)
    suite_env = SB3VecEnv(a.env_id, 8, seed=0, protocol=protocol)
    pipelines = [("sb3-plain", plain_env, "fp32"), ("suite", suite_env, "fp32")]
    if not a.no_bf16:
        pipelines.append(("suite-bf16", SB3VecEnv(a.env_id, 8, seed=0, protocol=protocol), "bf16"))
    models = {}
    train_time = {}
    for name, env, precision in pipelines:
        model, hp = _ppo(env, a.threads, precision)
        train_time[name] = time_calls(model, "train")
        models[name] = model
    n_envs, n_steps, n_epochs, batch = int(hp["n_envs"]), int(hp["n_steps"]), int(hp["n_epochs"]), int(hp["batch_size"])
    per_update = n_envs * n_steps
    steps = max(per_update, a.steps // per_update * per_update)

    for model in models.values():  # warm-up: one full update each (env reset, first allocations)
        model.learn(per_update, reset_num_timesteps=True)

    # The update alone, on a full buffer (the suite model's last rollout; the data do not change the cost),
    # timed before and after the rounds because the machine's load drifts; one bound per precision.
    bound_names = [n for n in ("suite", "suite-bf16") if n in models]
    inner = {n: type(models[n]).train.__get__(models[n]) for n in bound_names}
    updates_per_s = {n: [rate(inner[n], 1, a.bound_seconds / 2)] for n in bound_names}
    print(
        "update bound (before):", {n: round(1 / u[0], 3) for n, u in updates_per_s.items()}, "s per train()", flush=True
    )

    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    for r in range(a.rounds):
        for name, model in models.items():
            acc = train_time[name]
            s0, c0 = acc["s"], acc["calls"]
            t0 = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            wall = time.perf_counter() - t0
            upd_s = acc["s"] - s0
            rounds[name].append(
                {
                    "round": r,
                    "steps": steps,
                    "wall_s": round(wall, 2),
                    "steps_per_s": round(steps / wall, 1),
                    "updates": acc["calls"] - c0,
                    "train_s": round(upd_s, 2),
                    "rollout_s": round(wall - upd_s, 2),
                }
            )
            print(name, rounds[name][-1], flush=True)

    for n in bound_names:
        updates_per_s[n].append(rate(inner[n], 1, a.bound_seconds / 2))
    print(
        "update bound (after):", {n: round(1 / u[1], 3) for n, u in updates_per_s.items()}, "s per train()", flush=True
    )
    bound_steps = {
        n: statistics.mean(u) * per_update for n, u in updates_per_s.items()
    }  # agent steps/s of the update alone
    bound_steps["sb3-plain"] = bound_steps["suite"]  # the same fp32 update
    for _, env, _ in pipelines:
        env.close()

    mach = machine()
    out: dict[str, Any] = {
        "env_id": a.env_id,
        "algo": "PPO CnnPolicy (stable-baselines3 %s), rl-zoo3 Atari hyperparameters" % stable_baselines3.__version__,
        "hyperparams": hp,
        "machine": mach,
        "note": a.note,
        "conv_input_layout": conv_layout(a.nchw),
        "pipelines": {
            "sb3-plain": "make_atari_env(env_id, n_envs=8, seed=0, env_kwargs={'frameskip': 1}) + VecFrameStack(4): "
            "DummyVecEnv of gymnasium "
            "ALE v5 envs (sticky actions 0.25 in ALE, per frame) + Monitor + AtariWrapper (noop 30, MaxAndSkip 4, "
            "EpisodicLife, FireReset, 84x84 gray, clip reward)",
            "suite": "SB3VecEnv(env_id, 8, seed=0, protocol=AtariProtocol(sticky_actions=0.25, reward_clipping=True, "
            "episodic_life=True)): "
            "ale-py AtariVectorEnv (frameskip 4 with max-pool, noop 30, fire reset, 84x84 gray, 4-stack, "
            f"{min(8, os.cpu_count() or 1)} ALE threads)",
        },
        "steps_per_round": steps,
        "rounds": rounds,
        "agent_steps_per_s": {
            name: round(statistics.median(x["steps_per_s"] for x in rs), 1) for name, rs in rounds.items()
        },
        "update_share_of_wall": {
            name: round(sum(x["train_s"] for x in rs) / sum(x["wall_s"] for x in rs), 3) for name, rs in rounds.items()
        },
        "precision": {name: precision for name, _, precision in pipelines},
        "bf16_native": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "cpu": mach["cpu"],  # also at the top level, as in the earlier files
        "update_bound": {
            n: {
                "buffer_samples": per_update,
                "n_epochs": n_epochs,
                "batch_size": batch,
                "train_call_s_before_after": [round(1 / u, 3) for u in updates_per_s[n]],
                "update_samples_per_s": round(bound_steps[n] * n_epochs, 1),
                "agent_steps_per_s": round(bound_steps[n], 1),
            }
            for n in bound_names
        },
    }
    sps = out["agent_steps_per_s"]
    out["ratio_suite_vs_plain"] = round(sps["suite"] / sps["sb3-plain"], 3)
    if "suite-bf16" in sps:
        out["ratio_suite_bf16_vs_plain"] = round(sps["suite-bf16"] / sps["sb3-plain"], 3)
    out["fraction_of_update_bound"] = {
        name: round(v / bound_steps[name.replace("sb3-plain", "suite")], 3) for name, v in sps.items()
    }
    # The same fraction against the update's speed inside the same rounds (immune to load drift between
    # the rounds and the bound measurement): steps/s / (per_update / seconds per update) = train_s / wall_s.
    out["fraction_of_update_bound_in_round"] = out["update_share_of_wall"]
    out["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    out["load_average_1_5_15_min"] = {"start": load_start, "end": load_average()}
    atomic_write_json(a.out, out)
    print(
        {
            k: out.get(k)
            for k in (
                "agent_steps_per_s",
                "ratio_suite_vs_plain",
                "ratio_suite_bf16_vs_plain",
                "fraction_of_update_bound",
                "fraction_of_update_bound_in_round",
                "total_wall_s",
            )
        }
    )
    print("update bound:", out["update_bound"])


if __name__ == "__main__":
    main()
