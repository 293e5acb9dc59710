"""``sweep``: one setting swept (a student's size, a budget, a loss option): ``y`` against ``x``, a line per
``series``, in sweep.png. Keys: ``x`` (a runs.csv column or a swept key; default teacher_queries), ``y`` (default
percent), ``series`` (default label), ``title``, ``logx`` (default true). Its points are not repeats of one setting,
so the aggregate over envs of the other kinds (over all of a series' runs) does not apply; where a setting (a series
at one point of the sweep) ran on more than one env it has its own: per setting, the IQM of percent of teacher over
its runs x envs with stratified-bootstrap intervals (the same table and aggregate.png as the other kinds draw), and
sweep-aggregate.png, that IQM against ``x``, a line per ``series``. A sweep on one env, or one whose settings each ran
on one env (budgets that differ by env), has neither. Where ``[report]`` sets ``threshold`` (a fraction of the teacher)
and y is percent, a table gives per series and env the least ``x`` whose mean over seeds reaches it (the label count
at which DAgger and cloning reach 90%), and the least whose IQM over envs does."""

from __future__ import annotations

import statistics
from typing import Any

from rl_distill.report.kinds import Kind, Report
from rl_distill.report.plots import axis_name, plot_sweep, plot_sweep_aggregate
from rl_distill.report.sections import aggregate_lines
from rl_distill.report.stats import aggregate_percent, first_step_at
from rl_distill.report.tables import fmt


def section(report: Report) -> list[str]:
    """sweep.png (x, y and series from the suite's [report]) and its section, where some runs finished; where a
    setting ran on more than one env, the aggregate over them per setting."""
    rows, rep = report.rows, report.settings
    if not rows:
        return []
    x = rep.get("x", "teacher_queries")
    x = x if x in rows[0] else f"tag_{x}"
    y = rep.get("y", "percent")
    series = rep.get("series", "label")
    series = series if series in rows[0] else f"tag_{series}"
    title = rep.get("title", report.suite["name"])
    logx = bool(rep.get("logx", True))
    plot_sweep(rows, x, y, series, report.out / "sweep.png", title, logx)
    lines = ["## " + rep.get("title", "Sweep"), "", "![sweep](sweep.png)", ""]
    points: dict[str, list[tuple[float, float, float, float]]] = {}
    if any(len({r["env"] for r in rs}) > 1 for _, rs in settings(report)):
        agg_lines, points = aggregate_section(report, x, series, logx)
        lines += agg_lines
    if "threshold" in rep and y == "percent":
        lines += threshold_lines(report, x, series, points)
    return lines


def least_reaching(points: list[tuple[float, float]], target: float) -> str:
    """The least x whose value reaches ``target``, '> the largest x' where none does; marked '*' where a larger x
    falls back below it (the score is not monotone in x there)."""
    points = sorted(points)
    hit = first_step_at(points, target)
    if hit is None:
        return f"> {_x(points[-1][0])}" if points else "-"
    falls = any(v < target for px, v in points if px > hit)
    return _x(hit) + ("*" if falls else "")


def _x(value: float) -> str:
    """A point of the sweep's axis: a whole number as one (2,504, not 2,504.0)."""
    return fmt(int(value)) if float(value).is_integer() else fmt(float(value))


def threshold_lines(
    report: Report, x: str, series: str, points: dict[str, list[tuple[float, float, float, float]]]
) -> list[str]:
    """Per series and env, the least ``x`` whose mean percent of teacher over seeds reaches the threshold; with the
    aggregate over envs, the least whose IQM does (``points``: per series, (x, IQM, lo, hi) per setting)."""
    target = 100.0 * report.threshold
    by: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in report.summary_rows:
        if r.get(x) is not None and r.get("percent") is not None:
            by.setdefault(str(r[series]), {}).setdefault(r["env"], []).append((float(r[x]), float(r["percent"])))
    if not by:
        return []
    envs = list(dict.fromkeys(e for per in by.values() for e in per))
    xlabel = axis_name(x)
    head = ["series", *envs] + (["all envs (IQM)"] if points else [])
    lines = [
        f"## {xlabel.capitalize()} to {target:g}% of the teacher",
        "",
        f"The least {xlabel} whose mean percent of teacher over seeds reaches {target:g}%; '>' where none of the sweep "
        "does; '*' where a larger one falls back below it."
        + (" Last column: the least whose IQM over envs does." if points else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, per in by.items():
        cells = [least_reaching(per[e], target) if e in per else "-" for e in envs]
        if points:
            cells.append(least_reaching([(px, iqm) for px, iqm, _, _ in points.get(name, [])], target))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return lines + [""]


def settings(report: Report) -> list[tuple[str, list[dict[str, Any]]]]:
    """The sweep's settings, each named, with its runs over all envs: a setting is a series label with the values of
    the swept tags that vary across the suite (a student, a budget), those not already in the label named after it
    ('kl, student rusu-4x'); in the order of the runs."""
    varying = [k for k in (report.summary_rows[0] if report.summary_rows else {}) if k.startswith("tag_")]
    out: dict[str, list[dict[str, Any]]] = {}
    for r in report.rows:
        extra = [f"{k[4:]} {fmt(r.get(k))}" for k in varying if r.get(k) is not None and str(r[k]) not in r["label"]]
        out.setdefault(", ".join([r["label"], *extra]), []).append(r)
    return list(out.items())


def aggregate_section(
    report: Report, x: str, series: str, logx: bool
) -> tuple[list[str], dict[str, list[tuple[float, float, float, float]]]]:
    """The aggregate over envs of a sweep across several: per setting, the IQM and mean of percent of teacher over its
    runs x envs with 95% stratified-bootstrap intervals (sections.aggregate_lines, as the other kinds draw it over a
    series), and sweep-aggregate.png: the IQM against ``x`` (the median of its runs' ``x`` over the envs: a student's
    parameter count differs a little with a game's actions), a line per ``series``."""
    named = settings(report)
    rows = [{**r, "label": name} for name, rs in named for r in rs]
    agg = aggregate_percent(rows)
    lines = aggregate_lines(rows, report.out, report.suite["name"], agg)
    if not lines:
        return [], {}
    points: dict[str, list[tuple[float, float, float, float]]] = {}
    for name, rs in named:
        xs = [float(r[x]) for r in rs if r.get(x) is not None]
        if name in agg and xs:
            a = agg[name]
            points.setdefault(str(rs[0][series]), []).append((statistics.median(xs), a["iqm"], *a["iqm_ci"]))
    xlabel = axis_name(x)
    title = f"{report.suite['name']}: IQM over envs against {xlabel}"
    plot_sweep_aggregate(points, report.out / "sweep-aggregate.png", title, xlabel, logx)
    return lines + [
        "A setting is a series at one point of the sweep; its IQM of percent of teacher (whatever the sweep's y) over "
        f"its runs x envs against {xlabel}, a line per {series.replace('tag_', '')}, band: the 95% "
        "stratified-bootstrap interval.",
        "",
        "![sweep aggregate](sweep-aggregate.png)",
        "",
    ], points


KIND = Kind("sweep", keys=("x", "y", "series", "title", "logx"), aggregate=False, section=section)
