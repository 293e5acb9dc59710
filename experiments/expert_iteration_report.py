"""Search against network, iteration by iteration, from the expert-iteration suite's run records.

Each record's curve keeps the run's eval/ scalars; expert iteration logs, once per iteration, the mean return of
the real episodes the search played (``eval/search_return``) and of those the network played greedily
(``eval/network_return``). This writes results/expert-iteration/search-vs-network.md (a table per series and env:
mean over seeds at each iteration) and search-vs-network.png (a panel each).

    python experiments/expert_iteration_report.py [results/expert-iteration]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

KEYS = {"search": "eval/search_return", "network": "eval/network_return"}


def iterations(record: dict) -> list[dict]:
    """The record's per-iteration rows (step, search and network returns; None where no such episode ended)."""
    rows = [r for r in record["curve"] if any(k in r for k in KEYS.values())]
    return [{"step": r["step"], **{name: r.get(k) for name, k in KEYS.items()}} for r in rows]


def by_series(out: Path) -> dict[str, list[dict]]:
    """The records grouped by "series, env" (a series is a grid entry's label), seeds in order."""
    runs = defaultdict(list)
    for p in sorted((out / "runs").glob("*.json")):
        rec = json.loads(p.read_text())
        s = rec["summary"]
        if s["method"] == "expert-iteration":
            key = f"{rec['cell'].get('label', s['method'])}, {s['envs'][0]}"
            runs[key].append({"seed": s["seed"], "summary": s, "iterations": iterations(rec)})
    return {key: sorted(rs, key=lambda r: r["seed"]) for key, rs in sorted(runs.items())}


def _mean(values: list[float | None]) -> tuple[float | None, int]:
    xs = [v for v in values if v is not None]
    return (float(np.mean(xs)) if xs else None, len(xs))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def table(series: str, runs: list[dict]) -> list[str]:
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
        (s, ns), (n, nn) = _mean([r["search"] for r in rows]), _mean([r["network"] for r in rows])
        gap = None if s is None or n is None else s - n
        lines.append(
            f"| {i + 1} | {np.mean([r['step'] for r in rows]):,.0f} | {_fmt(s)} | {_fmt(n)} | {_fmt(gap)} | {ns}/{nn} |"
        )
    return lines + [""]


def plot(runs_by_series: dict[str, list[dict]], path: Path) -> None:
    n_panels = len(runs_by_series)
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels, 4), squeeze=False, sharey=True)
    for ax, (series, runs) in zip(axes[0], runs_by_series.items()):
        for name, color in (("search", "tab:orange"), ("network", "tab:blue")):
            for r in runs:
                xs = [i + 1 for i, it in enumerate(r["iterations"]) if it[name] is not None]
                ys = [it[name] for it in r["iterations"] if it[name] is not None]
                ax.plot(xs, ys, color=color, alpha=0.25, lw=1)
            n = max(len(r["iterations"]) for r in runs)
            means = [_mean([r["iterations"][i][name] for r in runs if i < len(r["iterations"])])[0] for i in range(n)]
            xs = [i + 1 for i, m in enumerate(means) if m is not None]
            label = "MCTS (search acts)" if name == "search" else "network (greedy)"
            ax.plot(xs, [m for m in means if m is not None], "o-", color=color, label=f"{label}, mean of seeds")
        ax.axhline(runs[0]["summary"]["teacher_score"], color="k", ls="--", lw=1, label="PPO teacher (reference)")
        ax.set_xlabel("expert-iteration iteration")
        ax.set_ylabel("episode return")
        ax.set_title(f"{series} ({len(runs)} seeds; thin: each seed)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(out: str = "results/expert-iteration") -> None:
    root = Path(out)
    runs = by_series(root)
    if not runs:
        sys.exit(f"no expert-iteration records in {root / 'runs'}: run the suite experiments/expert-iteration.toml")
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
        lines += table(series, series_runs)
    (root / "search-vs-network.md").write_text("\n".join(lines))
    plot(runs, root / "search-vs-network.png")
    print(f"wrote {root / 'search-vs-network.md'} and {root / 'search-vs-network.png'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
