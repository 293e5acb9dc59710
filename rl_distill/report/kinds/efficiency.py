"""``efficiency``: env steps and training time (wall and CPU seconds) to a fraction of the teacher (``threshold``), as
ratios to one or more ``baseline`` series (default ``ppo``: PPO from scratch; a list, e.g. ["ppo", "dqn"], gives
ratio columns for each), the step and CPU ratios with bootstrap intervals over seeds; and Schmitt et al.'s measure,
env steps to the first baseline's final score."""

from __future__ import annotations

from typing import Any

from rl_distill.report.kinds import Kind, Report
from rl_distill.report.stats import first_step_at, median_to, ratio_ci
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


def interval(ci: tuple[float, float] | None) -> str:
    """A ratio's bootstrap interval as a table cell: '[lo, hi]', or '-'."""
    return "-" if ci is None else f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def baselines(settings: dict[str, Any]) -> list[str]:
    """The ``[report] baseline`` series, one (a string) or several (a list); ``ppo`` where the suite names none."""
    base = settings.get("baseline", "ppo")
    return [base] if isinstance(base, str) else list(base)


def _series_row(summary_rows: list[dict[str, Any]], label: str | None, env: str) -> dict[str, Any] | None:
    """The summary row of a series on an env, or None where it has none."""
    return next((x for x in summary_rows if x["label"] == label and x["env"] == env), None)


def _seed_rows(rows: list[dict[str, Any]], s: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The runs (one row per seed) a summary row stands for: those with its label, env and swept tags."""
    if s is None:
        return []
    keys = [k for k in s if k in ("label", "env") or k.startswith("tag_")]
    return [r for r in rows if all(r.get(k) == s[k] for k in keys)]


def _start(cells: dict[str, dict[str, Any]], label: str) -> str | None:
    """The series a series starts from (its ``init_from``, "cell:LABEL" -> LABEL), or None for one from scratch."""
    return (cells[label].get("init_from") or "")[5:] or None


def _names(bases: list[str]) -> str:
    """'`ppo`', or '`ppo`, `dqn`': the baselines as the text names them."""
    return ", ".join(f"`{b}`" for b in bases)


def _head(suite: dict[str, Any], bases: list[str], threshold: float, starts: bool, cpu: bool) -> list[str]:
    """The efficiency section's heading, what it measures, and its table's header (a start column and a
    from-scratch column where some series start from another's student, the CPU columns where some run recorded its
    training CPU seconds, a group of ratio columns per baseline)."""
    grids = sorted({(c["curve_points"], c["curve_episodes"]) for c in suite["cells"]}, reverse=True)
    every = " or ".join(f"budget/{max(1, p)} steps, {e} episodes" for p, e in grids)
    base = f"`{bases[0]}`" if len(bases) == 1 else "each baseline"
    ratio_text = (
        f"Ratio: {base} over the method"
        if len(bases) == 1
        else f"Ratios, for each baseline ({_names(bases)}): the baseline over the method"
    )
    text = (
        f"First learning-curve point (every {every}) at >= {threshold:.0%} of the teacher; median over the seeds, "
        f"one that never got there counting as past the budget. {ratio_text} "
        "(how many times fewer steps; none for a series already there at its first point)."
        + (
            " A series with a start began from that cell's student (same seed, all its weights): its steps and "
            f"seconds count from there, its ratio is to the same method as {base} from the same start, and the last "
            f"column compares it with {base} from scratch, the start's own steps and training time added."
            if starts
            else ""
        )
        + " 95% CI: a bootstrap over the seeds of both series (each resampled on its own) of the same ratio."
        + (
            " CPU s: the training's CPU seconds (process time, curve evaluations excluded as the training wall "
            "seconds exclude them), which other jobs on the cores do not inflate; '-' for runs from before they "
            "were recorded."
            if cpu
            else ""
        )
    )
    head = ["series", "env", *(["start"] if starts else []), "reached (seeds)", "env steps to threshold"]
    head += ["train s to threshold", *(["CPU s to threshold"] if cpu else [])]
    for b in bases:
        head += [f"step ratio vs {b}", f"step ratio vs {b}, 95% CI", f"time ratio vs {b}"]
        head += [f"CPU s ratio vs {b} [95% CI]"] if cpu else []
        head += [f"step / time ratio vs {b} from scratch, start counted"] if starts else []
    return [
        f"## Env steps and training time to {threshold:.0%} of the teacher",
        "",
        text,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
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
        return f"{steps_ratio} / {wall_ratio}"
    return "-"


def _ratio_with_ci(
    s: dict[str, Any], b: dict[str, Any] | None, rows: list[dict[str, Any]], key: str, budget: str
) -> tuple[str, str]:
    """A ratio to the baseline row ``b`` on the summary figure ``key`` (budget ``budget``) and its bootstrap
    interval over both series' seeds (the runs' ``key``), '-' for both where there is no ratio."""
    ours, theirs = _seed_rows(rows, s), _seed_rows(rows, b)
    if any(r["steps_to_threshold"] is not None and r.get(key) is None for r in ours + theirs):
        return "-", "-"  # a seed got there without its figure (CPU seconds of a run from before they were logged)
    point = ratio(s[key], b and b[key], b and b[budget])
    if point == "-" or b is None:
        return point, "-"
    return point, interval(ratio_ci([r[key] for r in ours], [r[key] for r in theirs], b[budget]))


def _row(
    s: dict[str, Any],
    report: Report,
    cells: dict[str, dict[str, Any]],
    bases: list[str],
    starts: bool,
    cpu: bool,
) -> str:
    """One series' row of the efficiency table: reached, steps and time to the threshold, its ratios to each base."""
    summary_rows, rows = report.summary_rows, report.rows
    src = _start(cells, s["label"])
    st = _series_row(summary_rows, src, s["env"]) if src else None
    cols = [s["label"], s["env"]]
    if starts:
        cols.append(f"`{src}` ({fmt(st['env_steps'] if st else None)} steps)" if src else "-")
    cols += [f"{s['reached']}/{s['seeds']}", fmt(s["steps_to_threshold"]), fmt(s["wall_to_threshold"])]
    cols += [fmt(s["cpu_to_threshold"])] if cpu else []
    for base in bases:
        b = _baseline(s, summary_rows, cells, base)
        cols += [*_ratio_with_ci(s, b, rows, "steps_to_threshold", "env_steps")]
        cols.append(ratio(s["wall_to_threshold"], b and b["wall_to_threshold"], b and b["train_s"]))
        if cpu:
            point, ci = _ratio_with_ci(s, b, rows, "cpu_to_threshold", "train_cpu_s")
            cols.append(point if ci == "-" else f"{point} {ci}")
        if starts:
            cols.append(_from_scratch_ratios(s, st, _series_row(summary_rows, base, s["env"]), src))
    return "| " + " | ".join(cols) + " |"


def section(report: Report) -> list[str]:
    """Steps and training time to the threshold of the teacher, as ratios to each baseline series (PPO from scratch
    by default), with bootstrap intervals over seeds on the step and CPU ratios. A series that starts from another
    cell's student (``init_from``: the Qwen3 report's off-policy then on-policy stages) is compared with the base
    method from the same start, and with the base from scratch counting the start's own env steps and training
    time. The CPU columns appear where some run recorded its training CPU seconds (``time/cpu_s``)."""
    summary_rows, suite, threshold = report.summary_rows, report.suite, report.threshold
    if not summary_rows:
        return []
    bases = baselines(report.settings)
    cells = {c["label"]: c for c in suite["cells"]}
    starts = any(c.get("init_from") for c in cells.values())
    cpu = any(r.get("cpu_to_threshold") is not None for r in report.rows)
    lines = _head(suite, bases, threshold, starts, cpu)
    lines += [_row(s, report, cells, bases, starts, cpu) for s in summary_rows]
    return lines + [
        "",
        f"Where the baseline never reached {threshold:.0%} within its budget, the ratio is its whole budget "
        "(env steps, or training seconds) over the method's: a lower bound, marked `>`. "
        "The curve's resolution (budget / points) bounds every figure from above. "
        "The intervals are percentile bootstraps (2,000 resamples) of the ratio of the two medians, a seed that "
        "never got there counting as past its budget: a resample whose baseline median never got there takes its "
        "budget (a lower bound, as above), one whose own median never did counts as 0.",
        "",
        *to_baseline_final_lines(report, cells, bases[0]),
    ]


def _budget_over(budget: float, steps: float | None) -> str:
    """The baseline's budget over a series' steps to its final score: '-' where the series never got there, 'at the
    start' where its first point (step 0) already did."""
    if steps is None:
        return "-"
    return "at the start" if steps == 0 else f"{budget / steps:.1f}x"


def to_baseline_final_lines(report: Report, cells: dict[str, dict[str, Any]], base: str) -> list[str]:
    """Kickstarting's measure (Schmitt et al.: the steps to reach the from-scratch agent's final performance): per
    series and env, the median over seeds of the first curve point whose return reaches ``base``'s final score on
    that env (its mean over seeds), and ``base``'s budget over it. Series with a start are left out (their steps
    count from it)."""
    table = []
    for s in report.summary_rows:
        b = _series_row(report.summary_rows, base, s["env"])
        if s["label"] == base or b is None or b["score"] is None or _start(cells, s["label"]):
            continue
        steps = [first_step_at(r["curve"], b["score"]) for r in _seed_rows(report.rows, s)]
        med = median_to(steps, cast=int)
        got = sum(x is not None for x in steps)
        table.append(
            f"| {s['label']} | {s['env']} | {b['score']:.2f} | {got}/{len(steps)} | {fmt(med)} | "
            f"{_budget_over(b['env_steps'], med)} |"
        )
    if not table:
        return []
    return [
        f"## Env steps to `{base}`'s final score",
        "",
        "Schmitt et al.'s measure for kickstarting: the first learning-curve point whose greedy return reaches "
        f"`{base}`'s final score on the env (its mean over seeds, over the final games), median over the seeds (one "
        f"that never got there counting as past its budget), and `{base}`'s whole budget over it: how many times "
        "fewer env steps the series needs to match where the baseline ends. The curve points are means of fewer "
        "games than the final score, so a point can reach it by chance where the baseline ends near random play.",
        "",
        f"| series | env | `{base}` final | reached (seeds) | env steps to it | `{base}`'s budget over it |",
        "|---|---|---|---|---|---|",
        *table,
        "",
    ]


KIND = Kind("efficiency", keys=("baseline",), section=section)
