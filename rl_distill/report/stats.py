"""The report's statistics over rows (one per run and task): grouping, percent of teacher, bootstrap intervals over
seeds, aggregates over envs, and the env steps to a fraction of the teacher."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from rl_distill.envs import score_floor
from rl_distill.metrics import aggregate, bootstrap_ci, percent_of_reference


def groups(rows: list[dict[str, Any]], keys: list[str]) -> dict[tuple, list[dict[str, Any]]]:
    """The rows by their values of ``keys``, in first-seen order."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def percent(score: float, teacher: float, env_id: str) -> float | None:
    """``score`` as a percent of ``teacher`` from the env's floor (0 where it has none); None where the teacher is
    not above that floor (no scale to measure on)."""
    floor = score_floor(env_id)
    if teacher <= (floor if floor is not None else 0.0):
        return None
    return percent_of_reference(score, teacher, floor)


def mean_ci(xs: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``xs`` (seeds) with a bootstrap 95% interval; a single value is its own interval."""
    a = np.asarray(xs, dtype=float)
    lo, hi = bootstrap_ci(a, stat=np.mean, seed=seed) if len(a) > 1 else (a[0], a[0])
    return float(a.mean()), float(lo), float(hi)


def mean_present(values: list[float | None]) -> tuple[float | None, int]:
    """The mean of the values that are not None (None where there are none) and how many there are."""
    xs = [v for v in values if v is not None]
    return (float(np.mean(xs)) if xs else None, len(xs))


def curve_band(curves: list[list[tuple]], x_max: float, n: int = 40):
    """Curves of several seeds on one grid of env steps: mean and a bootstrap 95% band over seeds."""
    xs = np.linspace(0, x_max, n)
    ys = np.array([np.interp(xs, [c[0] for c in cv], [c[1] for c in cv]) for cv in curves])
    mean = ys.mean(0)
    band = np.array(
        [bootstrap_ci(ys[:, j], stat=np.mean, reps=500) if len(ys) > 1 else (ys[0, j], ys[0, j]) for j in range(n)]
    )
    return xs, mean, band[:, 0], band[:, 1]


def aggregate_percent(rows: list[dict[str, Any]], by: str = "label") -> dict[str, dict[str, Any]]:
    """Per series: IQM / mean of percent-of-teacher over runs x tasks, stratified-bootstrap 95% intervals."""
    mats = {}
    for (series,), rs in groups([r for r in rows if r["percent"] is not None], [by]).items():
        cols = [[r["percent"] for r in g] for g in groups(rs, ["env"]).values()]
        n = min(len(c) for c in cols)
        # fractions of the teacher: the optimality gap's scale
        mats[str(series)] = np.array([c[:n] for c in cols]).T / 100.0
    out = aggregate(mats) if mats else {}
    for a in out.values():
        for k in ("iqm", "mean", "median"):
            a[k] *= 100.0
            a[k + "_ci"] = [100.0 * v for v in a[k + "_ci"]]
    return out


def steps_to(r: dict[str, Any], fraction: float) -> tuple[int | None, float | None]:
    """First learning-curve point at >= ``fraction`` of the teacher (from the env's floor), with its training wall
    time."""
    for step, score, wall in r["curve"]:
        p = percent(score, r["teacher_score"], r["env"])
        if p is not None and p >= 100 * fraction:
            return int(step), wall
    return None, None


def median_to(xs: list[Any], cast=float) -> Any:
    """Median over all seeds of the steps (or seconds) to a threshold, a seed that never got there (None) counting as
    past the budget: None where the median seed did not get there. Series that got there on different numbers of
    seeds are then compared on the same statistic (a median over only the seeds that got there favours the series
    whose slow seeds never did)."""
    if not xs:
        return None
    m = statistics.median([math.inf if x is None else x for x in xs])
    return None if math.isinf(m) else cast(m)


def summary_rows(rows: list[dict[str, Any]], group_keys: list[str]) -> list[dict[str, Any]]:
    """One row per series, env and varying tag (summary.csv): means over its seeds, a bootstrap interval of the
    percent of teacher, and the median steps and time to the threshold."""
    out = []
    for k, rs in groups(rows, group_keys).items():
        pct = [r["percent"] for r in rs if r["percent"] is not None]
        m, lo, hi = mean_ci(pct) if pct else (None, None, None)
        out.append(
            {
                **dict(zip(group_keys, k)),
                "seeds": len(rs),
                "score": statistics.mean(r["score"] for r in rs),
                "score_sd": statistics.pstdev(r["score"] for r in rs),
                "teacher": statistics.mean(r["teacher_score"] for r in rs),
                "percent": m,
                "percent_lo": lo,
                "percent_hi": hi,
                "student_params": rs[0]["student_params"],
                "env_steps": int(statistics.mean(r["env_steps"] for r in rs)),
                "teacher_queries": int(statistics.mean(r["teacher_queries"] for r in rs)),
                "train_s": statistics.mean(r["train_s"] for r in rs),
                "reached": sum(r["steps_to_threshold"] is not None for r in rs),
                "steps_to_threshold": median_to([r["steps_to_threshold"] for r in rs], int),
                "wall_to_threshold": median_to([r["wall_to_threshold"] for r in rs]),
            }
        )
    return out
