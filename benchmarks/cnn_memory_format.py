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

import time

import torch
from _timing import compare, comparison_args, load_average, student_gradient_steps, write_comparison

from rl_distill.networks import NatureCNN
from rl_distill.teachers import load_teacher


def _sb3_cases() -> dict:
    """Teacher training's updates: SB3's own NatureCNN, hooked by ``channels_last_convolutions``."""
    from rl_distill.envs import AtariProtocol
    from rl_distill.networks import channels_last_convolutions
    from rl_distill.sb3_vec_env import SB3VecEnv
    from rl_distill.teachers.train import hyperparams, sb3_model

    proto = AtariProtocol(sticky_actions=0.25, reward_clipping=True, episodic_life=True)
    ppo = sb3_model(
        "ppo",
        "ALE/Pong-v5",
        SB3VecEnv("ALE/Pong-v5", 8, seed=0, protocol=proto),
        hyperparams("ALE/Pong-v5", "ppo"),
        device="cpu",
    )
    ppo.learn(1024)  # fills the rollout buffer
    hq = hyperparams("ALE/Pong-v5", "dqn") | {"buffer_size": 2000, "learning_starts": 1000}
    dqn = sb3_model("dqn", "ALE/Pong-v5", SB3VecEnv("ALE/Pong-v5", 1, seed=0, protocol=proto), hq, device="cpu")
    dqn.learn(1500)
    for m in (ppo, dqn):
        channels_last_convolutions(m.policy)
    return {
        "SB3 PPO update (1,024 samples x 4 epochs, batch 256)": lambda: type(ppo).train(ppo),
        "SB3 DQN 8 gradient steps (batch 32)": lambda: type(dqn).train(dqn, gradient_steps=8, batch_size=32),
    }


def main() -> None:
    a = comparison_args("results/benchmarks/cnn_memory_format_cpu2.json")
    t_start = time.perf_counter()
    load_start = load_average()
    cases = student_gradient_steps()
    obs8 = torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    teacher = load_teacher("ppo-ALE-Pong-v5")
    cases["Pong teacher forward, batch 8"] = lambda: teacher.logits(obs8.numpy())
    cases.update(_sb3_cases())

    def layout(channels_last: bool):
        return lambda: setattr(NatureCNN, "channels_last_on_cpu", channels_last)

    micro, end_to_end = compare(
        {"nchw": layout(False), "channels_last": layout(True)},
        cases,
        a.rounds,
        a.seconds,
        a.steps,
        "runs/bench_memory_format",
    )
    NatureCNN.channels_last_on_cpu = True

    write_comparison(
        a.out,
        "NatureCNN with channels-last input against NCHW on the CPU, one torch thread",
        a,
        micro,
        end_to_end,
        t_start,
        load_start,
    )


if __name__ == "__main__":
    main()
