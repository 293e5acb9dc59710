"""The sections of every suite's README, whatever its kind: the title and what the runs cost, the final scores, the
aggregate over envs, the learning curves, and the runs made with older defaults or other teacher weights."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from rl_distill.records import SUITES_DIR, default_out
from rl_distill.report.plots import plot_aggregate, plot_curves
from rl_distill.report.stats import aggregate_percent
from rl_distill.report.tables import duration, fmt


def run_columns(tag_cols: list[str]) -> list[str]:
    """runs.csv's columns: the cell and its swept tags, the run's scores and costs, the steps and time to the
    threshold (training wall and CPU seconds; :func:`known_columns` drops the CPU ones where no run has them)."""
    return [
        "label",
        "method",
        "env",
        "seed",
        *tag_cols,
        "student",
        "student_params",
        "score",
        "score_std",
        "teacher_score",
        "percent",
        "env_steps",
        "teacher_queries",
        "gradient_steps",
        "train_s",
        "wall_s",
        "episodes",
        "steps_to_threshold",
        "wall_to_threshold",
        *CPU_COLUMNS,
    ]


CPU_COLUMNS = ("train_cpu_s", "cpu_to_threshold")
"""The CSV columns of training CPU seconds (``time/cpu_s``): records from before runs logged it have none."""


def known_columns(cols: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """``cols`` less the CPU columns that no row has a value in, so a results folder of records from before runs
    logged their training CPU seconds keeps the CSV columns it had."""
    return [c for c in cols if c not in CPU_COLUMNS or any(r.get(c) is not None for r in rows)]


def _suite_arg(suite: dict[str, Any]) -> str:
    """How `rl-distill bench` names this suite: its name for experiments/<name>.toml, else its path."""
    return suite["name"] if Path(suite.get("path", "")) == SUITES_DIR / f"{suite['name']}.toml" else suite["path"]


def header_lines(suite: dict[str, Any], out: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The README's title, the suite's description, how many runs finished and how to regenerate or resume."""
    total = len(suite["cells"])
    done = len({r["key"] for r in rows})
    return [
        f"# Benchmark suite `{suite['name']}`",
        "",
        suite.get("description", "").strip(),
        "",
        f"Runs finished: {done} of {total}. Regenerate with `rl-distill report {out}`; run the rest with "
        f"`rl-distill bench {_suite_arg(suite)} --resume"
        f"{'' if out == default_out(suite['name']) else f' --out {out}'}`. "
        f"Every number below comes from the run records in `{out}/runs/`, "
        "each copied from its run folder when the run finished.",
        "",
    ]


def time_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The wall clock and CPU time of the finished runs: what the suite took, and what it takes on free cores."""
    done = len({r["key"] for r in rows})
    lines: list[str] = []
    # train_s covers every part of a resumed run; records of runs resumed before checkpoints kept elapsed_s hold only
    # their last part's wall_s, so the larger of the two is the better figure.
    walls = list({r["key"]: max(r["wall_s"], r["train_s"]) for r in rows}.values())
    if walls:
        lines += [
            f"Wall clock of the finished runs, each on one core with its evaluations: {duration(sum(walls))} in all, "
            f"{duration(statistics.median(walls))} a run (median; {duration(min(walls))} to "
            f"{duration(max(walls))}). A run that shared the cores with other jobs may have been slowed by them, "
            "so these are upper bounds.",
            "",
        ]
    cpus = {r["key"]: r["cpu_s"] for r in rows if r.get("cpu_s") is not None}
    if cpus:
        # CPU time does not grow when other jobs share the cores: N workers alone take about its sum / N.
        some = "" if len(cpus) == done else f" (the {len(cpus)} of {done} runs that record it)"
        lines += [
            f"CPU time{some}: {duration(sum(cpus.values()))} in all, "
            f"so about {duration(sum(cpus.values()) / 2)} with 2 workers on 2 free cores; "
            f"{duration(statistics.median(cpus.values()))} a run (median).",
            "",
        ]
    return lines


def final_score_lines(
    summary_rows: list[dict[str, Any]], rows: list[dict[str, Any]], group_keys: list[str], threshold: float
) -> list[str]:
    """The Final scores section: what its columns mean, then one row per summary row (with the steps to the
    threshold where the runs have learning curves)."""
    extra = [c for c in group_keys if c.startswith("tag_")]
    curves = any(len(r["curve"]) > 2 for r in rows)
    head = [
        "series",
        "env",
        *[c[4:] for c in extra],
        "seeds",
        "student (params)",
        "return (mean ± sd)",
        "teacher",
        "% of teacher [95% CI]",
        "env steps",
        "teacher labels",
        "train s",
    ] + ([f"env steps to {threshold:.0%} (seeds there)"] if curves else [])
    lines = [
        "## Final scores",
        "",
        "Mean over seeds; the interval is a bootstrap over seeds of the mean percent of teacher "
        "(0% = the env's floor where it has one: Acrobot -500, MountainCar -200, Atari random play)."
        + (
            f" Env steps to {threshold:.0%}: the first learning-curve evaluation at or above {threshold:.0%} "
            "of the teacher, median over the seeds, one that never got there counting as past the budget, "
            "so '-' where half or more never did (the curve is sampled every budget / curve_points steps; "
            "bc collects first and trains at the end, so it only gets there at its last point)."
            if curves
            else ""
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += [_final_score_row(s, extra, curves) for s in summary_rows]
    lines.append("")
    return lines


def _final_score_row(s: dict[str, Any], extra: list[str], curves: bool) -> str:
    """One summary row of the Final scores table."""
    pc = "-" if s["percent"] is None else f"{s['percent']:.1f} [{s['percent_lo']:.1f}, {s['percent_hi']:.1f}]"
    return (
        "| "
        + " | ".join(
            [
                s["label"],
                s["env"],
                *[fmt(s[c]) for c in extra],
                str(s["seeds"]),
                fmt(s["student_params"]),
                f"{s['score']:.1f} ± {s['score_sd']:.1f}",
                f"{s['teacher']:.1f}",
                pc,
                fmt(s["env_steps"]),
                fmt(s["teacher_queries"]),
                fmt(s["train_s"]),
            ]
            + ([f"{fmt(s['steps_to_threshold'])} ({s['reached']}/{s['seeds']})"] if curves else [])
        )
        + " |"
    )


def aggregate_lines(
    rows: list[dict[str, Any]], out: Path, name: str, agg: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """The aggregate over envs (aggregate.png and its table), or nothing where no run has a percent of teacher.
    ``agg``: the aggregate of ``rows`` by label where the caller has it already (``aggregate_percent(rows)``)."""
    agg = aggregate_percent(rows) if agg is None else agg
    if not agg:
        return []
    plot_aggregate(agg, out / "aggregate.png", f"{name}: aggregate over envs and seeds")
    lines = [
        "## Aggregate over envs",
        "",
        "IQM and mean of percent of teacher over all runs x envs of a series, with 95% "
        "stratified-bootstrap intervals (rliable's protocol, `rl_distill.metrics.aggregate`).",
        "",
        "| series | runs x envs | IQM [95% CI] | mean [95% CI] | optimality gap (fraction below 100%) |",
        "|---|---|---|---|---|",
    ]
    for n, a in agg.items():
        lines.append(
            f"| {n} | {a['runs']} x {a['tasks']} | {a['iqm']:.1f} [{a['iqm_ci'][0]:.1f}, {a['iqm_ci'][1]:.1f}] | "
            f"{a['mean']:.1f} [{a['mean_ci'][0]:.1f}, {a['mean_ci'][1]:.1f}] | {a['optimality_gap']:.2f} |"
        )
    return lines + ["", "![aggregate](aggregate.png)", ""]


def curve_lines(rows: list[dict[str, Any]], out: Path, name: str) -> list[str]:
    """The learning curves (curves.png) and their section, or nothing where no run has a curve to draw."""
    if not plot_curves(rows, out / "curves.png", f"{name}: return vs env steps"):
        return []
    return [
        "## Learning curves",
        "",
        "Greedy evaluation of the student during training; band: bootstrap 95% CI of the mean over seeds; "
        "dashed: the teacher.",
        "",
        "![curves](curves.png)",
        "",
    ]


def changed_lines(rows: list[dict[str, Any]], changed: dict[str, str]) -> list[str]:
    """The runs whose record was made with another method config than the suite's cell resolves to today (a default
    changed since), grouped by series and change: their numbers describe the older settings."""
    if not changed:
        return []
    by_series: dict[tuple[str, str], dict[str, set[int]]] = {}
    for r in rows:
        if r["key"] in changed:
            by_series.setdefault((r["label"], changed[r["key"]]), {}).setdefault(r["env"], set()).add(r["seed"])
    lines = [
        "## Runs made with older defaults",
        "",
        f"{len(changed)} of these runs were made before a default of their method changed: their numbers describe the "
        "settings below, not today's (`rl-distill bench <suite> --rerun-changed` runs them again).",
        "",
        "| series | runs | then -> today |",
        "|---|---|---|",
    ]
    for (label, what), envs in sorted(by_series.items()):
        lines.append(f"| {label} | {_env_seeds(envs)} | {what} |")
    return lines + [""]


def _env_seeds(envs: dict[str, set[int]]) -> str:
    """'CartPole-v1 (seeds 0, 1); Acrobot-v1 (seeds 2)': which runs of a series a listing section means."""
    return "; ".join(f"{env} (seeds {', '.join(map(str, sorted(seeds)))})" for env, seeds in sorted(envs.items()))


def stale_lines(rows: list[dict[str, Any]], stale: list[str]) -> list[str]:
    """The runs whose record was made with other teacher weights than the shipped ones (a teacher retrained since,
    in cells a ``--only`` left out): their % of teacher is of the old teacher's score."""
    if not stale:
        return []
    by_series: dict[str, dict[str, set[int]]] = {}
    for r in rows:
        if r["key"] in stale:
            by_series.setdefault(r["label"], {}).setdefault(r["env"], set()).add(r["seed"])
    lines = [
        "## Runs made with other teacher weights",
        "",
        f"{len(stale)} of these runs were made with teacher weights other than the shipped ones (retrained since): "
        "their numbers are against the old teacher; the next `rl-distill bench <suite>` over them runs them again.",
        "",
        "| series | runs |",
        "|---|---|",
    ]
    for label, envs in sorted(by_series.items()):
        lines.append(f"| {label} | {_env_seeds(envs)} |")
    return lines + [""]
