"""Each method's default budget on CartPole-v1 and Acrobot-v1 from the shipped PPO teachers: score,
percent of teacher, env steps, teacher queries, wall seconds. Writes results/methods/README.md + JSON.

    .venv/bin/python benchmarks/method_budgets.py [--seeds 3] [--episodes 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from rl_distill.distill import RunSpec, run
from rl_distill.methods import METHODS, get_method
from rl_distill.runs import atomic_write_json, atomic_write_text

TEACHERS = {"CartPole-v1": "ppo-CartPole-v1", "Acrobot-v1": "ppo-Acrobot-v1"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3, help="seeds per method and env")
    ap.add_argument("--episodes", type=int, default=100, help="final evaluation games per run")
    ap.add_argument("--out", default="results/methods", help="output folder")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), help="methods to run (default: all)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in a.methods:
        for env_id, teacher in TEACHERS.items():
            for seed in range(a.seeds):
                t0 = time.time()
                s = run(
                    get_method(name),
                    RunSpec(
                        method=name,
                        teachers=[teacher],
                        seed=seed,
                        progress=False,
                        tensorboard=False,
                        eval_episodes=a.episodes,
                        runs_dir="runs/method_budgets",
                    ),
                )
                rows.append(
                    {
                        "method": name,
                        "env": env_id,
                        "seed": seed,
                        "student": s["student_score"]["mean"],
                        "teacher": s["teacher_score"],
                        "percent": s["percent_of_teacher"],
                        "env_steps": s["env_steps"],
                        "teacher_queries": s["teacher_queries"],
                        "train_s": s["train_wall_s"],
                        "total_s": round(time.time() - t0, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    out = Path(a.out)
    atomic_write_json(out / "method_budgets.json", rows)
    lines = [
        "# Each method's default budget (shipped PPO teachers, student mlp-64-64)",
        "",
        f"Command: `.venv/bin/python benchmarks/method_budgets.py --seeds {a.seeds} --episodes {a.episodes}` "
        "(2-core CPU, 1 torch thread, other jobs running beside it). Student and teacher evaluated by the same "
        f"harness, {a.episodes} episodes, evaluation seed 2,000,000. Percent of teacher: plain ratio on CartPole; "
        "on Acrobot measured from the floor -500 (0% = -500, 100% = teacher).",
        "",
        "| method | env | env steps | teacher queries | student (mean over seeds) | teacher "
        "| % of teacher (min-max over seeds) | train s (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in a.methods:
        for env_id in TEACHERS:
            rs = [r for r in rows if r["method"] == name and r["env"] == env_id]
            pc = [r["percent"] for r in rs]
            lines.append(
                f"| {name} | {env_id} | {rs[0]['env_steps']} | {rs[0]['teacher_queries']} | "
                f"{statistics.mean(r['student'] for r in rs):.1f} | "
                f"{rs[0]['teacher']:.1f} | {statistics.mean(pc):.1f} ({min(pc):.1f}-{max(pc):.1f}) | "
                f"{statistics.mean(r['train_s'] for r in rs):.1f} |"
            )
    atomic_write_text(out / "README.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
