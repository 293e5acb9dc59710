"""The Transfer section of every suite's README: each series that starts from another run's student (``init_from``)
beside the same method, env and budget from random weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from rl_distill.report.tables import ci_text, fmt


def _pairs(cells: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each transfer series (cells with ``init_from``) -> (its baseline, the series it starts from). The baseline is
    the first series of the same method, envs and budget from random weights that is not itself a source."""
    sources = {c["init_from"][5:] for c in cells if c.get("init_from")}
    pairs = {}
    for c in cells:
        if c.get("init_from") and c["label"] not in pairs:
            base = next(
                (
                    b["label"]
                    for b in cells
                    if not b.get("init_from")
                    and b["label"] not in sources
                    and b["method"] == c["method"]
                    and b["envs"] == c["envs"]
                    and b["steps"] == c["steps"]
                ),
                None,
            )
            if base:
                pairs[c["label"]] = (base, c["init_from"][5:])
    return pairs


def _intro(pairs: dict[str, tuple[str, str]], cells: list[dict[str, Any]]) -> list[str]:
    """The Transfer section's heading and what its tables show (with the games per evaluation of the series)."""
    compared = set(pairs) | {b for b, _ in pairs.values()}
    games = " or ".join(
        str(g) for g in sorted({c.get("curve_episodes") for c in cells if c["label"] in compared} - {None})
    )
    return [
        "## Transfer",
        "",
        "Each series that starts from another run's student beside the same method, env and budget "
        f"from random weights. Return at up to {MAX_COLUMNS} evenly spaced learning-curve points "
        f"(mean over seeds{f' of {games} games each' if games else ''}), "
        "the mean over the whole curve (area under it / budget; trapezoids) and the final evaluation, "
        "all greedy; then the raw return of the games the run played while training, with sampled "
        "actions (mean of the logged last-100-games averages over the run, and the last one), which "
        "shows learning where a greedy policy is stuck. Bootstrap 95% intervals over seeds.",
        "",
    ]


MAX_COLUMNS = 6
"""The most curve points a transfer table shows (a 20-point curve made a 25-column table); the mean over the curve
uses them all."""


def columns(steps: list[int], most: int = MAX_COLUMNS) -> list[int]:
    """At most ``most`` of a curve's points, evenly spaced by index, the first and the last among them."""
    if len(steps) <= most:
        return steps
    return [steps[round(i * (len(steps) - 1) / (most - 1))] for i in range(most)]


def _table(rows: list[dict[str, Any]], label: str, base: str, source: str, env: str) -> list[str]:
    """One transfer series beside its baseline on one env: a row each, its columns the transfer series' curve
    points."""
    series = [(x, [r for r in rows if r["label"] == x and r["env"] == env]) for x in (label, base)]
    grids = [sorted({int(p[0]) for r in rs for p in r["curve"]}) for _, rs in series]
    steps = columns(grids[0])  # the columns: the transfer series' curve points, at most MAX_COLUMNS of them
    other_grid = bool(series[1][1]) and grids[1] != grids[0]
    head = [
        "series",
        "seeds",
        *(f"return at {fmt(x)}" for x in steps),
        "mean over the curve [95% CI]",
        "final [95% CI]",
        "training games: mean over the run [95% CI]",
        "training games: last [95% CI]",
    ]
    lines = [f"### {label} (from `{source}`) against {base}, {env}", ""]
    if other_grid:
        lines += [
            f"`{base}` was evaluated at other steps ({len(grids[1])} points): "
            "each column shows its curve at its last point at or before that step.",
            "",
        ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_row(name, rs, steps) for name, rs in series]
    lines.append("")
    return lines


def _row(name: str, rs: list[dict[str, Any]], steps: list[int]) -> str:
    """One series' row of a transfer table: its mean return at each column's step, the mean over the curve, the
    final score and the training games, over its seeds."""
    if not rs:
        return f"| {name} | 0 | " + " | ".join("-" for _ in steps) + " | - | - | - | - |"
    # each seed's curve read at its last point at or before each column's step (the same points where the grids
    # agree)
    at = [np.mean([next((p[1] for p in reversed(r["curve"]) if p[0] <= x), np.nan) for r in rs]) for x in steps]
    area = [
        float(np.trapezoid([p[1] for p in r["curve"]], [p[0] for p in r["curve"]]) / max(p[0] for p in r["curve"]))
        for r in rs
        if len(r["curve"]) > 1
    ]
    trained = [r["train_curve"] for r in rs if r.get("train_curve")]
    cis = [
        ci_text(area),
        ci_text([r["score"] for r in rs]),
        ci_text([float(np.mean([p[1] for p in c])) for c in trained], 2),
        ci_text([c[-1][1] for c in trained], 2),
    ]
    return (
        f"| {name} | {len(rs)} | "
        + " | ".join("-" if np.isnan(v) else fmt(float(v)) for v in at)
        + " | "
        + " | ".join(cis)
        + " |"
    )


def transfer_lines(rows: list[dict[str, Any]], cells: list[dict[str, Any]]) -> list[str]:
    """Each transfer series (cells with ``init_from``) beside the same method, env and budget from random weights:
    mean return at each learning-curve point, the mean over the curve (its area / budget: what "learns faster"
    means) and the final score, each a mean over seeds with a bootstrap 95% interval."""
    pairs = _pairs(cells)
    lines: list[str] = []
    for label, (base, source) in pairs.items():
        for env in dict.fromkeys(r["env"] for r in rows if r["label"] == label):  # only where the transfer series ran
            lines += _table(rows, label, base, source, env)
    return _intro(pairs, cells) + lines if lines else []
