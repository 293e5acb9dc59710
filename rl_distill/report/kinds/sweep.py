"""``sweep``: one setting swept (a student's size, a budget, a loss option): ``y`` against ``x``, a line per
``series``, in sweep.png. Keys: ``x`` (a runs.csv column or a swept key; default teacher_queries), ``y`` (default
percent), ``series`` (default label), ``title``, ``logx`` (default true). Its points are not repeats of one setting,
so it has no aggregate over envs."""

from __future__ import annotations

from rl_distill.report.kinds import Kind, Report
from rl_distill.report.plots import plot_sweep


def section(report: Report) -> list[str]:
    """sweep.png (x, y and series from the suite's [report]) and its section, where some runs finished."""
    rows, rep = report.rows, report.settings
    if not rows:
        return []
    x = rep.get("x", "teacher_queries")
    x = x if x in rows[0] else f"tag_{x}"
    y = rep.get("y", "percent")
    series = rep.get("series", "label")
    series = series if series in rows[0] else f"tag_{series}"
    title = rep.get("title", report.suite["name"])
    plot_sweep(rows, x, y, series, report.out / "sweep.png", title, bool(rep.get("logx", True)))
    return ["## " + rep.get("title", "Sweep"), "", "![sweep](sweep.png)", ""]


KIND = Kind("sweep", keys=("x", "y", "series", "title", "logx"), aggregate=False, section=section)
