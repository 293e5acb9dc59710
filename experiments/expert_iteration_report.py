"""Search against network, iteration by iteration, from the expert-iteration suite's run records.

The report kind ``expert-iteration`` (rl_distill/report/kinds/expert_iteration.py) draws it: search-vs-network.md (a
table per series and env: mean over seeds at each iteration) and search-vs-network.png (a panel each), beside the
README of a suite whose ``[report] kind`` names it. This script draws the same two files for any results folder,
whatever its suite's kind.

    python experiments/expert_iteration_report.py [results/expert-iteration]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rl_distill.report.kinds.expert_iteration import write_search_vs_network


def main(out: str = "results/expert-iteration") -> None:
    root = Path(out)
    paths = write_search_vs_network(root)
    if not paths:
        sys.exit(f"no expert-iteration records in {root / 'runs'}: run the suite experiments/expert-iteration.toml")
    print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main(*sys.argv[1:])
