"""The suite's PPO from scratch against SB3's own PPO with the same rl-zoo3 settings: env steps to 90%.

The report kind ``ppo-vs-sb3`` (rl_distill/report/kinds/ppo_vs_sb3.py) draws it: results/ppo-vs-sb3/comparison.md,
beside the README of a suite whose ``[report] kind`` names it. This script writes (and prints) the same file for any
results folder of the suite, whatever its kind.

    rl-distill bench experiments/ppo-vs-sb3.toml --workers 2 --resume
    python experiments/ppo_vs_sb3.py [results/ppo-vs-sb3]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rl_distill.report.kinds.ppo_vs_sb3 import write_comparison


def main(out: str = "results/ppo-vs-sb3") -> None:
    root = Path(out)
    print(write_comparison(root, json.loads((root / "suite.json").read_text())))


if __name__ == "__main__":
    main(*sys.argv[1:])
