"""Random-action agent steps/s on Atari: the suite's make_env (ale-py AtariVectorEnv) against a
single gymnasium env with AtariPreprocessing, side by side in one run.

    .venv/bin/python benchmarks/env_throughput.py [--game Pong] [--seconds 10] [--num-envs 8]
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
from _timing import rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--game", default="Pong", help="ALE game name (ALE/<game>-v5)")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per env kind")
    ap.add_argument("--num-envs", type=int, default=8, help="envs of the vectorized kinds")
    ap.add_argument("--threads", type=int, default=2, help="ALE worker threads of AtariVectorEnv")
    a = ap.parse_args()
    import ale_py

    from rl_distill.envs import make_env

    gym.register_envs(ale_py)
    rng = np.random.default_rng(0)

    single = gym.make(f"ALE/{a.game}-v5", frameskip=1)
    single = gym.wrappers.FrameStackObservation(gym.wrappers.AtariPreprocessing(single, frame_skip=4, noop_max=30), 4)
    single.reset(seed=0)
    n_act = single.action_space.n

    def step_single():
        _, _, term, trunc, _ = single.step(int(rng.integers(n_act)))
        if term or trunc:
            single.reset()

    vec = make_env(f"ALE/{a.game}-v5", a.num_envs, num_threads=a.threads)
    vec.reset(seed=0)

    def step_vec():
        vec.step(rng.integers(0, n_act, a.num_envs))

    r_single = rate(step_single, 1, a.seconds)
    r_vec = rate(step_vec, a.num_envs, a.seconds)
    print(
        json.dumps(
            {
                "game": a.game,
                "single_gymnasium": round(r_single),
                f"rl_distill_make_env_x{a.num_envs}_threads{a.threads}": round(r_vec),
                "ratio": round(r_vec / r_single, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
