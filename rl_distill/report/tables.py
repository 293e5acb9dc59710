"""How the report writes numbers: Markdown cells (counts, durations, a mean with its interval) and CSV files."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rl_distill.report.stats import mean_ci
from rl_distill.runs import atomic_write_text


def fmt(x: Any, nd: int = 1) -> str:
    """A table cell: '-' for None, floats to ``nd`` decimals and ints with thousands separators."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def duration(seconds: float) -> str:
    """Seconds under two minutes, minutes under two hours, else hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def ci_text(xs: list[float], nd: int = 1) -> str:
    """'mean [lo, hi]' with a bootstrap 95% interval over ``xs`` (seeds), or '-' for none."""
    return "-" if not xs else "{0:.{3}f} [{1:.{3}f}, {2:.{3}f}]".format(*mean_ci(xs), nd)


def write_csv(path: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    """``rows`` as CSV with ``cols`` (a row's other keys left out, a missing one empty), written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c) for c in cols})
    atomic_write_text(path, buf.getvalue())
