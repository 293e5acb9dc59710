"""``continual``: forgetting and recovery. Stages chained by ``init_from`` on game ``a`` then game ``b``, each
stage's score on both games as a percent of each game's shipped teacher, and the stages' curves on one env-step
axis. A kept game is not trained on in its stage, so the aggregate over envs is drawn only over the series whose runs
each train one game and that ran on several (the off-then-on pair on all five MinAtar games)."""

from __future__ import annotations

from typing import Any

from rl_distill.report.kinds import Kind, Report
from rl_distill.report.plots import plot_continual
from rl_distill.report.sections import aggregate_lines
from rl_distill.report.stats import groups, percent
from rl_distill.report.tables import ci_text, fmt


def _stage_offsets(cells: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, tuple[int, str | None]]:
    """Per series: the env steps of the stages before it (its ``init_from`` chain, each stage's budget) and the
    series it starts from: where its curves begin on one time axis."""
    budget = {r["label"]: r["env_steps"] for r in rows}
    source = {c["label"]: (c.get("init_from") or "")[5:] or None for c in cells}
    out: dict[str, tuple[int, str | None]] = {}

    def offset(label: str, seen: tuple[str, ...] = ()) -> int:
        src = source.get(label)
        if src is None or src in seen:
            return 0
        return offset(src, (*seen, label)) + budget.get(src, 0)

    for label in dict.fromkeys(c["label"] for c in cells):
        out[label] = (offset(label), source.get(label))
    return out


def section(report: Report) -> list[str]:
    """The continual suite's table (each stage's and baseline's final score on game A and game B, % of each
    game's teacher, mean and 95% bootstrap CI over seeds; a kept game is marked as not trained in that stage)
    and continual.png (both games' curves, the stages one after another on one env-step axis)."""
    rows, suite = report.rows, report.suite
    if not rows:
        return []
    games = [report.settings.get("a"), report.settings.get("b")]
    offsets = _stage_offsets(suite["cells"], rows)
    # One reference per game for every stage: the shipped teacher (a stage whose teacher is a run's student, as the
    # recovery's, would otherwise be scored against that student).
    ref = {}
    for g in games:
        named = [r["teacher_score"] for r in rows if r["env"] == g and not str(r.get("teacher")).startswith("run:")]
        ref[g] = sum(named) / len(named) if named else None
    lines = [
        "## Forgetting and recovery",
        "",
        f"Game A: {games[0]}, game B: {games[1]}. Percent of each game's shipped teacher ("
        + ", ".join(f"{g}: {fmt(ref[g])}" for g in games)
        + ") at the end of each stage (mean over seeds [95% bootstrap CI], 100 = the teacher, 0 = the env's floor or "
        "random play); *kept*: the student has the game's head but did not train on it in that stage, so its score "
        "shows what the stage did to it.",
        "",
        "| stage | starts from | env steps | A: " + str(games[0]) + " | B: " + str(games[1]) + " | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for label, (_, src) in offsets.items():
        rs = [r for r in rows if r["label"] == label]
        if not rs:
            lines.append(f"| {label} | {src or '-'} | not run yet | | | |")
            continue
        cols = []
        for g in games:
            gs = [r for r in rs if r["env"] == g and ref[g] is not None]
            kept = " (kept)" if gs and not gs[0]["trained"] else ""
            pct = [percent(r["score"], ref[g], g) for r in gs]
            cols.append(ci_text([p for p in pct if p is not None]) + kept if gs else "-")
        seeds = len({r["seed"] for r in rs})
        lines.append(f"| {label} | {src or '-'} | {fmt(rs[0]['env_steps'], 0)} | {cols[0]} | {cols[1]} | {seeds} |")
    if plot_continual(rows, offsets, games, report.out / "continual.png", suite["name"]):
        lines += ["", "![continual](continual.png)"]
    return lines + [""] + aggregate_lines(single_game_series(rows), report.out, suite["name"])


def single_game_series(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the series that are repeats of one setting over several games: each of its runs trains one game
    (one task), and it ran on more than one. The stages that keep a game untrained (two tasks a run) are left out."""
    return [
        r
        for rs in groups(rows, ["label"]).values()
        if all(r["tasks"] == 1 and r["trained"] for r in rs) and len({r["env"] for r in rs}) > 1
        for r in rs
    ]


KIND = Kind("continual", keys=("a", "b"), required=("a", "b"), aggregate=False, section=section)
