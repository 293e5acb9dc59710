"""``expert-iteration``: the lineage sections, and beside the README the search against the network, iteration by
iteration: search-vs-network.md (a table per series and env, mean over seeds at each iteration) and
search-vs-network.png (a panel each).

Expert iteration logs, once per iteration, the mean return of the real episodes the search played
(``eval/search_return``) and of those the network played greedily (``eval/network_return``); each run record's
curve keeps them with the other eval/ scalars.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rl_distill.report.kinds import Kind, Report
from rl_distill.report.plots import plot_search_vs_network
from rl_distill.report.stats import mean_present
from rl_distill.report.tables import fmt
from rl_distill.runs import atomic_write_text

KEYS = {"search": "eval/search_return", "network": "eval/network_return"}
"""Which return each side's iteration rows hold, by the scalar a record's curve keeps it under."""


def iterations(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's per-iteration rows (step, search and network returns; None where no such episode ended)."""
    rows = [r for r in record["curve"] if any(k in r for k in KEYS.values())]
    return [{"step": r["step"], **{name: r.get(k) for name, k in KEYS.items()}} for r in rows]


def by_series(out: Path) -> dict[str, list[dict[str, Any]]]:
    """The folder's expert-iteration records grouped by "series, env" (a series is a grid entry's label), seeds in
    order."""
    runs = defaultdict(list)
    for p in sorted((out / "runs").glob("*.json")):
        rec = json.loads(p.read_text())
        s = rec["summary"]
        if s["method"] == "expert-iteration":
            key = f"{rec['cell'].get('label', s['method'])}, {s['envs'][0]}"
            runs[key].append({"seed": s["seed"], "summary": s, "iterations": iterations(rec)})
    return {key: sorted(rs, key=lambda r: r["seed"]) for key, rs in sorted(runs.items())}


def _table(series: str, runs: list[dict[str, Any]]) -> list[str]:
    """One series' section: its final scores, then a row per iteration (env steps, both returns, their gap)."""
    teacher = runs[0]["summary"]["teacher_score"]
    finals = [r["summary"]["student_score"]["mean"] for r in runs]
    pct = [r["summary"]["percent_of_teacher"] for r in runs]
    lines = [
        f"## {series}",
        "",
        f"Seeds {', '.join(str(r['seed']) for r in runs)}; teacher {teacher:.1f} (the reference only, never asked). "
        f"Final greedy network, {runs[0]['summary']['tasks'][0]['episodes']} evaluation episodes: "
        f"{np.mean(finals):.1f} (per seed {', '.join(f'{f:.1f}' for f in finals)}), "
        f"{np.mean(pct):.1f}% of the teacher, at {np.mean([r['summary']['env_steps'] for r in runs]):,.0f} real env "
        f"steps and {np.mean([r['summary']['cpu_s'] for r in runs]):.0f} CPU s a run.",
        "",
        "Each iteration plays one episode in each of the 2 search envs and 2 network envs. Returns: mean over the "
        "iteration's episodes, then over seeds (n: seeds with such an episode); env steps: mean over seeds at the "
        "iteration's end. The budget cuts a run's last iteration: only its episodes that ended before the cut count, "
        "so that row leans to short episodes.",
        "",
        "| iteration | env steps | search return | network return | search - network | n |",
        "|---|---|---|---|---|---|",
    ]
    for i in range(max(len(r["iterations"]) for r in runs)):
        rows = [r["iterations"][i] for r in runs if i < len(r["iterations"])]
        (s, ns), (n, nn) = mean_present([r["search"] for r in rows]), mean_present([r["network"] for r in rows])
        gap = None if s is None or n is None else s - n
        lines.append(
            f"| {i + 1} | {np.mean([r['step'] for r in rows]):,.0f} | {fmt(s)} | {fmt(n)} | {fmt(gap)} | {ns}/{nn} |"
        )
    return lines + [""]


def write_search_vs_network(out: Path) -> list[Path]:
    """search-vs-network.md and .png in the results folder ``out``, from its records; nothing where it has no
    expert-iteration record. Returns the paths written."""
    runs = by_series(out)
    if not runs:
        return []
    lines = [
        "# Expert iteration: the search against the network",
        "",
        "From the run records of `rl-distill bench experiments/expert-iteration.toml`, by "
        "`python experiments/expert_iteration_report.py`. The search is PUCT MCTS guided by the network's policy "
        "and value (rl_distill/search.py); the network is then trained on the search's visit counts.",
        "",
        "![search vs network](search-vs-network.png)",
        "",
    ]
    for series, series_runs in runs.items():
        lines += _table(series, series_runs)
    paths = [out / "search-vs-network.md", out / "search-vs-network.png"]
    atomic_write_text(paths[0], "\n".join(lines))
    plot_search_vs_network(runs, paths[1])
    return paths


def section(report: Report) -> list[str]:
    """The two files beside the README; the README itself has the lineage sections only."""
    write_search_vs_network(report.out)
    return []


KIND = Kind("expert-iteration", section=section)
