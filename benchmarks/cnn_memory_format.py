"""Channels-last input for the CNNs on the CPU (``NatureCNN.channels_last_on_cpu``), against the default
NCHW layout, side by side in one run.

1. Gradient steps (forward + backward + Adam, batch 64 as Policy Distillation's minibatch) of each student
   size, and the batch-8 forward of the shipped Pong teacher (what acting costs per vector step).
   The layouts alternate round by round; milliseconds are medians over rounds.
2. End to end: Policy Distillation (KL) of the shipped PPO Pong teacher into a rusu-4x student for
   ``--steps`` env steps, once per layout (training time only; the final evaluation is one game).

    .venv/bin/python benchmarks/cnn_memory_format.py [--rounds 5] [--seconds 1.5] [--steps 3000] [--out ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from rl_distill.networks import NatureCNN
from rl_distill.runs import atomic_write_json
from rl_distill.students import make_student
from rl_distill.teachers import load_teacher


def _ms(fn, seconds: float) -> float:
    """Milliseconds per call: one warm-up call, then calls for about ``seconds`` (at least one)."""
    t0 = time.perf_counter()
    fn()
    calls = max(1, int(seconds / (time.perf_counter() - t0)))
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1000


def _sb3_cases() -> dict:
    """Teacher training's updates: SB3's own NatureCNN, hooked by ``channels_last_convolutions``."""
    from rl_distill.envs import AtariProtocol
    from rl_distill.networks import channels_last_convolutions
    from rl_distill.sb3_vec_env import SB3VecEnv
    from rl_distill.teachers.train import hyperparams, sb3_model

    proto = AtariProtocol(sticky_actions=0.25, reward_clipping=True, episodic_life=True)
    ppo = sb3_model("ppo", "ALE/Pong-v5", SB3VecEnv("ALE/Pong-v5", 8, seed=0, protocol=proto), hyperparams("ALE/Pong-v5", "ppo"), device="cpu")
    ppo.learn(1024)  # fills the rollout buffer
    hq = hyperparams("ALE/Pong-v5", "dqn") | {"buffer_size": 2000, "learning_starts": 1000}
    dqn = sb3_model("dqn", "ALE/Pong-v5", SB3VecEnv("ALE/Pong-v5", 1, seed=0, protocol=proto), hq, device="cpu")
    dqn.learn(1500)
    for m in (ppo, dqn):
        channels_last_convolutions(m.policy)
    return {"SB3 PPO update (1,024 samples x 4 epochs, batch 256)": lambda: type(ppo).train(ppo),
            "SB3 DQN 8 gradient steps (batch 32)": lambda: type(dqn).train(dqn, gradient_steps=8, batch_size=32)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="timed seconds per case, layout and round")
    ap.add_argument("--steps", type=int, default=3000, help="env steps of each end-to-end Policy Distillation run (0: skip)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default="results/benchmarks/cnn_memory_format_cpu2.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    gen = torch.Generator().manual_seed(0)
    obs64 = torch.randint(0, 256, (64, 4, 84, 84), dtype=torch.uint8, generator=gen)
    target = torch.randn(64, 6, generator=gen)
    cases = {}
    for spec in ("rusu-27x", "rusu-15x", "rusu-4x", "nature"):
        s = make_student(spec, [(4, 84, 84)], [6], seed=0)
        opt = torch.optim.Adam(s.parameters(), lr=1e-4)

        def step(s=s, opt=opt):
            loss = (s(obs64, 0)["logits"] - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        cases[f"{spec} gradient step, batch 64"] = step
    teacher = load_teacher("ppo-ALE-Pong-v5")
    cases["Pong teacher forward, batch 8"] = lambda: teacher.logits(obs64[:8].numpy())
    cases.update(_sb3_cases())

    ms: dict[str, dict[str, list[float]]] = {name: {"nchw": [], "channels_last": []} for name in cases}
    for _ in range(a.rounds):
        for name, fn in cases.items():
            for layout in ("nchw", "channels_last"):
                NatureCNN.channels_last_on_cpu = layout == "channels_last"
                ms[name][layout].append(_ms(fn, a.seconds))
    micro = {name: {"ms_nchw": round(statistics.median(v["nchw"]), 2), "ms_channels_last": round(statistics.median(v["channels_last"]), 2),
                    "speedup": round(statistics.median(v["nchw"]) / statistics.median(v["channels_last"]), 2)} for name, v in ms.items()}
    for name, m in micro.items():
        print(name, m, flush=True)

    end_to_end = {}
    if a.steps:
        from rl_distill.distill import RunSpec, run
        from rl_distill.methods import get_method

        for layout in ("nchw", "channels_last"):
            NatureCNN.channels_last_on_cpu = layout == "channels_last"
            s = run(get_method("policy-distillation"), RunSpec(method="policy-distillation", teachers=["ppo-ALE-Pong-v5"], student="rusu-4x",
                                                                 steps=a.steps, seed=0, progress=False, tensorboard=False, eval_episodes=1,
                                                                 runs_dir="runs/bench_memory_format"))
            train_s = s.get("train_time_s", s["train_wall_s"])
            end_to_end[layout] = {"env_steps": s["env_steps"], "gradient_steps": s["gradient_steps"], "train_s": round(train_s, 1),
                                  "env_steps_per_s": round(s["env_steps"] / train_s, 1)}
            print(layout, end_to_end[layout], flush=True)
        end_to_end["speedup"] = round(end_to_end["channels_last"]["env_steps_per_s"] / end_to_end["nchw"]["env_steps_per_s"], 2)
    NatureCNN.channels_last_on_cpu = True

    atomic_write_json(a.out, {
        "what": "NatureCNN with channels-last input against NCHW on the CPU, one torch thread",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "processor": platform.processor()},
        "note": a.note, "rounds": a.rounds, "seconds_per_measurement": a.seconds,
        "micro": micro,
        "policy_distillation_pong_rusu_4x": end_to_end,
        "total_wall_s": round(time.perf_counter() - t_start, 1),
        "load_average_1_5_15_min": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    })


if __name__ == "__main__":
    main()
