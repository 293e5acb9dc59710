"""The uniform random policy's scores on MinAtar, the floor of "% of teacher" on that family (0% = random play).

    .venv/bin/python experiments/minatar_random.py [--episodes 1000]

Plays each game (minimal action set -v1 and the paper's six actions -v0) under the family's default protocol with
the suite's evaluation harness and writes rl_distill/envs/minatar_random.json (package data, read by the family).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rl_distill.envs import env_spec
from rl_distill.envs.minatar import GAMES, MinAtarProtocol
from rl_distill.evaluation import evaluate
from rl_distill.runs import atomic_write_json, machine

OUT = Path(__file__).resolve().parents[1] / "rl_distill" / "envs" / "minatar_random.json"


def random_policy(n_actions: int, seed: int):
    """Uniform random actions from a seeded generator: the same scores on every run."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(0, n_actions, len(obs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=1000, help="episodes per env id (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    a = ap.parse_args()
    scores = {}
    for game in GAMES:
        for version in ("v1", "v0"):
            env_id = f"MinAtar/{game}-{version}"
            t0 = time.process_time()
            res = evaluate(random_policy(env_spec(env_id).n_actions, a.seed), env_id, episodes=a.episodes, seed=a.seed)
            s = res.summary
            scores[env_id] = {
                "mean": round(s["mean"], 4),
                "std": round(s["std"], 4),
                "mean_length": round(s["mean_length"], 1),
                "episodes": a.episodes,
            }
            print(f"{env_id}: {s['mean']:.3f} ± {s['std']:.3f} ({time.process_time() - t0:.0f} s CPU)", flush=True)
    atomic_write_json(
        OUT,
        {
            "what": "mean return of the uniform random policy (seeded), the 0% of % of teacher on MinAtar",
            "protocol": MinAtarProtocol().to_dict(),
            "seed": a.seed,
            "command": f"python experiments/minatar_random.py --episodes {a.episodes} --seed {a.seed}",
            "machine": machine(),
            "scores": scores,
        },
    )
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
