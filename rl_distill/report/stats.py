"""The report's statistics over rows (one per run and task): grouping, percent of teacher, bootstrap intervals over
seeds, aggregates over envs, and the env steps to a fraction of the teacher."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from rl_distill.envs import score_floor
from rl_distill.metrics import _percentile_interval, _replicates_1d, aggregate, bootstrap_ci, percent_of_reference


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


def first_step_at(curve: list[tuple[Any, ...]], target: float) -> Any:
    """The step of the first curve point (step, value, ...) whose value is at least ``target``, None where none is."""
    return next((p[0] for p in curve if p[1] >= target), None)


def first_at(r: dict[str, Any], fraction: float) -> tuple | None:
    """The first learning-curve point (step, return, training wall s[, training CPU s]) at >= ``fraction`` of the
    teacher (from the env's floor), or None where the run never got there."""
    for point in r["curve"]:
        p = percent(point[1], r["teacher_score"], r["env"])
        if p is not None and p >= 100 * fraction:
            return tuple(point)
    return None


def steps_to(r: dict[str, Any], fraction: float) -> tuple[int | None, float | None]:
    """First learning-curve point at >= ``fraction`` of the teacher (from the env's floor), with its training wall
    time."""
    point = first_at(r, fraction)
    return (None, None) if point is None else (int(point[0]), point[2])


def cpu_to(r: dict[str, Any], fraction: float) -> float | None:
    """The training CPU seconds at the first learning-curve point at >= ``fraction`` of the teacher: None where the
    run never got there, or the point has none (a run from before ``time/cpu_s`` was logged)."""
    point = first_at(r, fraction)
    return point[3] if point is not None and len(point) > 3 else None


def median_to(xs: list[Any], cast=float) -> Any:
    """Median over all seeds of the steps (or seconds) to a threshold, a seed that never got there (None) counting as
    past the budget: None where the median seed did not get there. Series that got there on different numbers of
    seeds are then compared on the same statistic (a median over only the seeds that got there favours the series
    whose slow seeds never did)."""
    if not xs:
        return None
    m = statistics.median([math.inf if x is None else x for x in xs])
    return None if math.isinf(m) else cast(m)


def cpu_median_to(rs: list[dict[str, Any]]) -> float | None:
    """Median over the seeds of the training CPU seconds to the threshold, as :func:`median_to` (a seed that never
    got there past the budget); None where a seed got there without recording its CPU seconds."""
    if any(r["steps_to_threshold"] is not None and r.get("cpu_to_threshold") is None for r in rs):
        return None
    return median_to([r.get("cpu_to_threshold") for r in rs])


def known_mean(values: list[float | None]) -> float | None:
    """The mean of ``values``, or None where one of them is None (not known for every seed)."""
    return None if not values or any(v is None for v in values) else statistics.mean(values)


def ratio_ci(
    ours: list[float | None],
    theirs: list[float | None],
    theirs_budget: float | None,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the efficiency ratio median(theirs) / median(ours) (how many times fewer
    steps, or seconds, than the baseline), the seeds of each side resampled on their own (metrics.bootstrap_ci's
    resamples, a seed apart). A seed that never got there (None) counts as past its budget, as :func:`median_to`:
    a resample whose baseline median never got there takes the baseline's budget (a lower bound, as the ratio
    itself), one whose own median never did counts as 0 (no speed-up shown). None where either side has no seeds.
    """
    if not ours or not theirs:
        return None
    a = np.array([math.inf if x is None else x for x in ours], dtype=float)
    b = np.array([math.inf if x is None else x for x in theirs], dtype=float)
    (mine,) = _replicates_1d(a, [np.median], int(reps), seed)
    (base,) = _replicates_1d(b, [np.median], int(reps), seed + 1)
    base = np.where(np.isinf(base), math.inf if theirs_budget is None else theirs_budget, base)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = base / mine  # ours never there (inf): 0; ours there at the first point (0): inf
    r = r[~np.isnan(r)]  # both at their first point (0 / 0): no ratio
    return _percentile_interval(r, confidence) if r.size else None


def summary_rows(rows: list[dict[str, Any]], group_keys: list[str]) -> list[dict[str, Any]]:
    """One row per series, env and varying tag (summary.csv): means over its seeds, a bootstrap interval of the
    percent of teacher, the median steps and time (training wall and CPU seconds) to the threshold, and the training
    CPU seconds (None where a seed did not record them)."""
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
                "train_cpu_s": known_mean([r.get("train_cpu_s") for r in rs]),
                "cpu_to_threshold": cpu_median_to(rs),
            }
        )
    return out
