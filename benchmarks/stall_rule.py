"""The evaluation stall rule (``evaluate(stall_steps=STALL_STEPS)``) on finished students: the same returns and
lengths as playing every game to the 108k-frame cap, and the time each way, side by side in one run.

Each student is evaluated as the suite does it, twice: a learning-curve point (2 games, seed 2,000,001) and
the final score (10 games, seed 2,000,000), without and with the rule. Breakout students whose greedy policy
never serves are where the rule cuts: their games are otherwise ~27,000 steps of a frozen screen.

    .venv/bin/python benchmarks/stall_rule.py RUN_DIR [RUN_DIR ...] [--env ALE/Breakout-v5]

RUN_DIR: a finished run folder (with student.safetensors), e.g. runs/bench/<suite>/<cell>/<run>.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from rl_distill.distill import load_student
from rl_distill.evaluation import STALL_STEPS, evaluate
from rl_distill.students import student_policy


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", help="finished run folders (with student.safetensors)")
    ap.add_argument("--env", default="ALE/Breakout-v5", help="env the students are evaluated on")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    same_everywhere = True
    for run_dir in args.run_dirs:
        policy = student_policy(load_student(run_dir), 0, "cpu")
        for what, episodes, seed in (("curve point", 2, 2_000_001), ("final score", 10, 2_000_000)):
            t = time.perf_counter()
            full = evaluate(policy, args.env, episodes, seed)
            t_full = time.perf_counter() - t
            t = time.perf_counter()
            cut = evaluate(policy, args.env, episodes, seed, stall_steps=STALL_STEPS)
            t_cut = time.perf_counter() - t
            same = np.array_equal(full.returns, cut.returns) and np.array_equal(full.lengths, cut.lengths)
            same_everywhere &= same
            print(
                f"{run_dir} {what}: returns {full.returns.tolist()} lengths {full.lengths.tolist()}; "
                f"full games {t_full:.0f} s, with the rule {t_cut:.0f} s ({cut.summary['stalled_games']} stalled); "
                f"same returns and lengths: {same}",
                flush=True,
            )
    return 0 if same_everywhere else 1


if __name__ == "__main__":
    sys.exit(main())
