"""Teacher training's updates on the CPU: SB3 models as `teachers train` builds them now
(``fast_sb3_training``: channels-last convolutions, ``image_floats`` input, fused Adam) against channels-last
convolutions alone (what it did before), side by side in one run on two copies of each model.

Cases: one SB3 PPO update (rl-zoo3 Atari settings, 8 envs x 128 steps = 1,024 samples, 4 epochs, batch
256) and 8 SB3 DQN gradient steps (batch 32), both on Pong; the variants alternate round by round and the
milliseconds are medians over rounds.

    .venv/bin/python benchmarks/sb3_training_step.py [--rounds 5] [--seconds 1.5] [--out ...]
"""

from __future__ import annotations

import time

from _timing import compare, comparison_args, load_average, write_comparison


def _models(fast: bool) -> dict:
    from rl_distill.envs import AtariProtocol
    from rl_distill.networks import channels_last_convolutions
    from rl_distill.sb3_vec_env import SB3VecEnv
    from rl_distill.teachers.train import fast_sb3_training, hyperparams, sb3_model

    proto = AtariProtocol(sticky_actions=0.25, reward_clipping=True, episodic_life=True)
    ppo = sb3_model(
        "ppo",
        "ALE/Pong-v5",
        SB3VecEnv("ALE/Pong-v5", 8, seed=0, protocol=proto),
        hyperparams("ALE/Pong-v5", "ppo"),
        device="cpu",
    )
    hq = hyperparams("ALE/Pong-v5", "dqn") | {"buffer_size": 2000, "learning_starts": 1000}
    dqn = sb3_model("dqn", "ALE/Pong-v5", SB3VecEnv("ALE/Pong-v5", 1, seed=0, protocol=proto), hq, device="cpu")
    for m in (ppo, dqn):
        fast_sb3_training(m) if fast else channels_last_convolutions(m.policy)
    ppo.learn(1024)  # fills the rollout buffer
    dqn.learn(1500)
    return {"ppo": ppo, "dqn": dqn}


def main() -> None:
    a = comparison_args("results/benchmarks/sb3_training_step_cpu2.json")
    t_start = time.perf_counter()
    load_start = load_average()
    models = {"channels_last": _models(False), "fast_sb3_training": _models(True)}
    current = {}

    def use(name: str):
        return lambda: current.update(models[name])

    cases = {
        "SB3 PPO update (1,024 samples x 4 epochs, batch 256)": lambda: type(current["ppo"]).train(current["ppo"]),
        "SB3 DQN 8 gradient steps (batch 32)": lambda: type(current["dqn"]).train(
            current["dqn"], gradient_steps=8, batch_size=32
        ),
    }
    micro, _ = compare({k: use(k) for k in models}, cases, a.rounds, a.seconds, 0, "")
    write_comparison(
        a.out,
        "SB3 teacher-training updates on the CPU: fast_sb3_training against channels-last convolutions alone, "
        "one torch thread",
        a,
        micro,
        {},
        t_start,
        load_start,
    )


if __name__ == "__main__":
    main()
