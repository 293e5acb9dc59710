"""``efficiency``: env steps and training time to a fraction of the teacher (``threshold``), as ratios to a
``baseline`` series (default ``ppo``: PPO from scratch)."""

from __future__ import annotations

from typing import Any

from rl_distill.report.kinds import Kind, Report
from rl_distill.report.tables import fmt


def ratio(ours: float | None, theirs: float | None, theirs_budget: float | None) -> str:
    """How many times fewer steps (or seconds) than the baseline: theirs / ours; where the baseline never got there
    (``theirs`` None) its whole budget over ours, a lower bound marked '>'. '-' where the series never got there or
    was there at its first point (ours 0: no ratio)."""
    if not ours or theirs_budget is None:
        return "-"
    if theirs is not None:
        return f"{theirs / ours:.1f}x"
    bound = theirs_budget / ours
    return f"> {bound:.0f}x" if bound >= 10 else f"> {bound:.1f}x"


def _series_row(summary_rows: list[dict[str, Any]], label: str | None, env: str) -> dict[str, Any] | None:
    """The summary row of a series on an env, or None where it has none."""
    return next((x for x in summary_rows if x["label"] == label and x["env"] == env), None)


def _start(cells: dict[str, dict[str, Any]], label: str) -> str | None:
    """The series a series starts from (its ``init_from``, "cell:LABEL" -> LABEL), or None for one from scratch."""
    return (cells[label].get("init_from") or "")[5:] or None


def _head(suite: dict[str, Any], base: str, threshold: float, starts: bool) -> list[str]:
    """The efficiency section's heading, what it measures, and its table's header (a start column and a
    from-scratch column where some series start from another's student)."""
    grids = sorted({(c["curve_points"], c["curve_episodes"]) for c in suite["cells"]}, reverse=True)
    every = " or ".join(f"budget/{max(1, p)} steps, {e} episodes" for p, e in grids)
    return [
        f"## Env steps and training time to {threshold:.0%} of the teacher",
        "",
        f"First learning-curve point (every {every}) at >= {threshold:.0%} of the teacher; median over the seeds, "
        f"one that never got there counting as past the budget. Ratio: `{base}` over the method "
        "(how many times fewer steps; none for a series already there at its first point)."
        + (
            " A series with a start began from that cell's student (same seed, all its weights): its steps and "
            "seconds count from there, its ratio is to the same method as `"
            + base
            + "` from the same start, and the last "
            "column compares it with `" + base + "` from scratch, the start's own steps and training time added."
            if starts
            else ""
        ),
        "",
        "| series | env |"
        + (" start |" if starts else "")
        + " reached (seeds) | env steps to threshold | train s to threshold | step ratio vs "
        + base
        + " | time ratio vs "
        + base
        + " |"
        + (f" step / time ratio vs {base} from scratch, start counted |" if starts else ""),
        "|---|---|" + ("---|" if starts else "") + "---|---|---|---|---|" + ("---|" if starts else ""),
    ]


def _baseline(
    s: dict[str, Any], summary_rows: list[dict[str, Any]], cells: dict[str, dict[str, Any]], base: str
) -> dict[str, Any] | None:
    """The row a series is compared with: ``base`` on the same env, or for a series with a start the base method
    from that same start."""
    src = _start(cells, s["label"])
    if not src:
        return _series_row(summary_rows, base, s["env"])
    base_method = cells[base]["method"] if base in cells else base
    return next(
        (
            x
            for x in summary_rows
            if x["env"] == s["env"] and cells[x["label"]]["method"] == base_method and _start(cells, x["label"]) == src
        ),
        None,
    )


def _from_scratch_ratios(
    s: dict[str, Any], st: dict[str, Any] | None, sc: dict[str, Any] | None, src: str | None
) -> str:
    """The last column for a series with a start: its steps and training time plus those of its start ``st``,
    against the base from scratch ``sc``."""
    if src and st and s["steps_to_threshold"] is not None:
        steps_ratio = ratio(
            st["env_steps"] + s["steps_to_threshold"], sc and sc["steps_to_threshold"], sc and sc["env_steps"]
        )
        wall_ratio = ratio(st["train_s"] + s["wall_to_threshold"], sc and sc["wall_to_threshold"], sc and sc["train_s"])
        return f" {steps_ratio} / {wall_ratio} |"
    return " - |"


def _row(
    s: dict[str, Any], summary_rows: list[dict[str, Any]], cells: dict[str, dict[str, Any]], base: str, starts: bool
) -> str:
    """One series' row of the efficiency table: reached, steps and time to the threshold, its ratios to the base."""
    src = _start(cells, s["label"])
    b = _baseline(s, summary_rows, cells, base)
    st = _series_row(summary_rows, src, s["env"]) if src else None
    line = f"| {s['label']} | {s['env']} |"
    if starts:
        line += f" `{src}` ({fmt(st['env_steps'] if st else None)} steps) |" if src else " - |"
    line += (
        f" {s['reached']}/{s['seeds']} | {fmt(s['steps_to_threshold'])} | {fmt(s['wall_to_threshold'])} | "
        f"{ratio(s['steps_to_threshold'], b and b['steps_to_threshold'], b and b['env_steps'])} | "
        f"{ratio(s['wall_to_threshold'], b and b['wall_to_threshold'], b and b['train_s'])} |"
    )
    if starts:
        line += _from_scratch_ratios(s, st, _series_row(summary_rows, base, s["env"]), src)
    return line


def section(report: Report) -> list[str]:
    """Steps and training time to the threshold of the teacher, as ratios to the baseline series (PPO from scratch).
    A series that starts from another cell's student (``init_from``: the Qwen3 report's off-policy then on-policy
    stages) is compared with the base method from the same start, and with the base from scratch counting the
    start's own env steps and training time."""
    summary_rows, suite, threshold = report.summary_rows, report.suite, report.threshold
    if not summary_rows:
        return []
    base = report.settings.get("baseline", "ppo")
    cells = {c["label"]: c for c in suite["cells"]}
    starts = any(c.get("init_from") for c in cells.values())
    lines = _head(suite, base, threshold, starts)
    lines += [_row(s, summary_rows, cells, base, starts) for s in summary_rows]
    return lines + [
        "",
        f"Where the baseline never reached {threshold:.0%} within its budget, the ratio is its whole budget "
        "(env steps, or training seconds) over the method's: a lower bound, marked `>`. "
        "The curve's resolution (budget / points) bounds every figure from above.",
        "",
    ]


KIND = Kind("efficiency", keys=("baseline",), section=section)
