"""Score statistics for the evaluation harness and the benchmark reports.

Pure functions over numpy arrays, following the definitions of rliable (Agarwal et al., 2021,
"Deep RL at the Edge of the Statistical Precipice"):

* ``iqm``: interquartile mean, the 25% trimmed mean of all scores (``scipy.stats.trim_mean(x,
  0.25)`` on the flattened array, as ``rliable.metrics.aggregate_iqm``).
* ``optimality_gap``: mean of ``max(gamma - x, 0)`` (``rliable.metrics.aggregate_optimality_gap``).
* ``aggregate_mean`` / ``aggregate_median``: mean / median over tasks of the per-task mean over runs
  (``rliable.metrics.aggregate_mean`` / ``aggregate_median``).
* ``bootstrap_ci``: percentile bootstrap over a 1-D sample (e.g. per-episode returns).
* ``stratified_bootstrap_ci``: percentile bootstrap over a (runs, tasks) matrix, resampling runs
  independently within each task (rliable's ``StratifiedBootstrap`` with ``task_bootstrap=False``).

rliable itself is not a dependency: it pulls in arch, statsmodels, scipy and seaborn, takes ~2 s
to import and ~0.5 s per interval (reps=2000), and its intervals are seeded through a legacy
``RandomState``. The bootstrap here is vectorized numpy: every resample index is drawn up front from
``np.random.default_rng(seed)`` (in fixed-size chunks to bound memory), so results are deterministic
given the seed and take milliseconds for the built-in statistics (``iqm``, ``optimality_gap``,
``aggregate_mean``, ``aggregate_median``, ``np.mean``, ``np.median``); any other ``stat`` callable is
applied to each resample in a Python loop.

Score layout: a (runs, tasks) matrix has ``scores[n, m]`` = score of run ``n`` on task ``m``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rl_distill.errors import UserValueError

__all__ = [
    "iqm",
    "optimality_gap",
    "aggregate_mean",
    "aggregate_median",
    "bootstrap_ci",
    "stratified_bootstrap_ci",
    "aggregate",
    "summarize",
    "percent_of_reference",
    "human_normalized",
]

# Resampled elements (reps_in_chunk * sample size) generated at once; bounds memory to ~32 MiB
# (indices + values). The chunking depends only on the sample's shape, so results stay
# deterministic for a given seed.
_CHUNK_ELEMS = 1 << 21

Stat = Callable[[np.ndarray], Any]


def _as_scores(x: Any, name: str = "scores") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    return a


def _check_ci_args(reps: int, confidence: float) -> None:
    if int(reps) != reps or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


# --------------------------------------------------------------------------------------------
# point statistics
# --------------------------------------------------------------------------------------------


def _trimmed_mean_last(a: np.ndarray) -> np.ndarray:
    """25% trimmed mean over the last axis, cutting ``int(0.25 * n)`` values from each end
    (exactly ``scipy.stats.trim_mean(a, 0.25, axis=-1)``)."""
    n = a.shape[-1]
    lo = int(0.25 * n)
    s = np.sort(a, axis=-1)
    return s[..., lo : n - lo].mean(axis=-1)


def iqm(x: Any) -> float:
    """Interquartile mean: the 25% trimmed mean of all values of ``x`` (any shape, flattened).

    Same as ``scipy.stats.trim_mean(x, 0.25, axis=None)`` and ``rliable.metrics.aggregate_iqm``:
    ``int(0.25 * n)`` values are cut from each end of the sorted sample and the rest averaged, so
    for ``n`` not a multiple of 4 slightly more than the middle half is kept (for ``n < 4`` nothing
    is cut). For a (runs, tasks) matrix all runs and tasks are pooled.

    >>> iqm([1, 2, 3, 4, 5, 6, 7, 8])  # mean of 3, 4, 5, 6
    4.5
    """
    a = _as_scores(x, "x")
    return float(_trimmed_mean_last(a.reshape(-1)))


def optimality_gap(scores: Any, gamma: float = 1.0) -> float:
    """Optimality gap: mean over all values of ``max(gamma - x, 0)`` (rliable's definition).

    How far the (normalized) scores fall short of the target ``gamma``; scores above ``gamma``
    count as ``gamma``. Lower is better; 0 means every run reached ``gamma``.
    """
    a = _as_scores(scores)
    return float(np.mean(np.maximum(gamma - a, 0.0)))


def _as_matrix(scores: Any) -> np.ndarray:
    a = _as_scores(scores)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"scores must be (runs, tasks), got shape {a.shape}")
    return a


def aggregate_mean(scores: Any) -> float:
    """Mean over tasks of the per-task mean over runs of a (runs, tasks) matrix (a 1-D array is
    one task). With equal run counts this is the plain mean of all scores."""
    a = _as_matrix(scores)
    return float(np.mean(np.mean(a, axis=0)))


def aggregate_median(scores: Any) -> float:
    """Median over tasks of the per-task mean over runs of a (runs, tasks) matrix (rliable's
    ``aggregate_median``; a 1-D array is one task, whose median is then its mean)."""
    a = _as_matrix(scores)
    return float(np.median(np.mean(a, axis=0)))


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------

# Batched versions of the built-in statistics: each maps a (b, *sample_shape) array of
# resamples to the b statistics, equal to calling the scalar function on each resample.
_BATCHED_1D: dict[Any, Callable[[np.ndarray], np.ndarray]] = {
    iqm: _trimmed_mean_last,
    optimality_gap: lambda b: np.maximum(1.0 - b, 0.0).mean(axis=-1),
    np.mean: lambda b: b.mean(axis=-1),
    np.median: lambda b: np.median(b, axis=-1),
}


def _flat(b: np.ndarray) -> np.ndarray:
    return b.reshape(b.shape[0], -1)


_BATCHED_2D: dict[Any, Callable[[np.ndarray], np.ndarray]] = {
    iqm: lambda b: _trimmed_mean_last(_flat(b)),
    optimality_gap: lambda b: np.maximum(1.0 - _flat(b), 0.0).mean(axis=-1),
    aggregate_mean: lambda b: b.mean(axis=1).mean(axis=-1),
    aggregate_median: lambda b: np.median(b.mean(axis=1), axis=-1),
    np.mean: lambda b: _flat(b).mean(axis=-1),
    np.median: lambda b: np.median(_flat(b), axis=-1),
}


def _apply(stat: Stat, batch: np.ndarray, batched: Mapping[Any, Callable]) -> np.ndarray:
    fast = batched.get(stat)
    if fast is not None:
        return np.asarray(fast(batch), dtype=np.float64)
    return np.array([float(stat(sample)) for sample in batch], dtype=np.float64)


def _replicates_1d(x: np.ndarray, stats: Sequence[Stat], reps: int, seed: int) -> list[np.ndarray]:
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMS // n)
    out: list[list[np.ndarray]] = [[] for _ in stats]
    done = 0
    while done < reps:
        c = min(chunk, reps - done)
        batch = x[rng.integers(0, n, size=(c, n))]
        for i, stat in enumerate(stats):
            out[i].append(_apply(stat, batch, _BATCHED_1D))
        done += c
    return [np.concatenate(o) for o in out]


def _replicates_stratified(scores: np.ndarray, stats: Sequence[Stat], reps: int, seed: int) -> list[np.ndarray]:
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMS // scores.size)
    cols = np.arange(tasks)
    out: list[list[np.ndarray]] = [[] for _ in stats]
    done = 0
    while done < reps:
        c = min(chunk, reps - done)
        # run indices drawn independently per task: resample[k, r, m] = scores[idx[k, r, m], m]
        batch = scores[rng.integers(0, runs, size=(c, runs, tasks)), cols]
        for i, stat in enumerate(stats):
            out[i].append(_apply(stat, batch, _BATCHED_2D))
        done += c
    return [np.concatenate(o) for o in out]


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo, hi = np.percentile(values, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(lo), float(hi)


def bootstrap_ci(
    x: Any,
    stat: Stat = iqm,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(lo, hi)`` for ``stat`` over a 1-D sample ``x``.

    ``x`` (e.g. per-episode returns) is resampled with replacement ``reps`` times (each resample
    the size of ``x``), ``stat`` is computed on each, and the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of those values are returned. Deterministic given
    ``seed`` (``np.random.default_rng(seed)``). ``stat`` maps a 1-D array to a scalar; ``iqm``,
    ``optimality_gap`` (gamma=1), ``np.mean`` and ``np.median`` are vectorized, anything else is
    called once per resample. A constant sample gives a zero-width interval.
    """
    a = _as_scores(x, "x")
    if a.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {a.shape}")
    _check_ci_args(reps, confidence)
    (values,) = _replicates_1d(a, [stat], int(reps), seed)
    return _percentile_interval(values, confidence)


def stratified_bootstrap_ci(
    scores: Any,
    stat: Stat,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified percentile bootstrap interval ``(lo, hi)`` for ``stat`` over a (runs, tasks)
    score matrix (a 1-D array is taken as one task).

    Each resample keeps the matrix's shape: for every task, ``runs`` runs are drawn with
    replacement from that task's own column, independently of the other tasks (rliable's
    ``StratifiedBootstrap``, ``task_bootstrap=False``); tasks themselves are not resampled.
    ``stat`` maps a (runs, tasks) array to a scalar; ``iqm``, ``optimality_gap`` (gamma=1),
    ``aggregate_mean``, ``aggregate_median``, ``np.mean`` and ``np.median`` are vectorized,
    anything else is called once per resample. Deterministic given ``seed``.
    """
    a = _as_matrix(scores)
    _check_ci_args(reps, confidence)
    (values,) = _replicates_stratified(a, [stat], int(reps), seed)
    return _percentile_interval(values, confidence)


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------


def aggregate(
    scores_by_method: Mapping[str, Any],
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """rliable-style aggregate metrics with stratified bootstrap intervals, per method.

    ``scores_by_method`` maps a method name to its (runs, tasks) matrix of (normalized) scores;
    methods may have different run counts. Returns, per method, a dict with ``iqm``, ``iqm_ci``,
    ``mean``, ``mean_ci``, ``median``, ``median_ci``, ``optimality_gap`` (gamma=1), ``og_ci``
    (each ``*_ci`` a ``[lo, hi]`` list), and ``runs``, ``tasks``. All four intervals of a method
    come from the same ``reps`` resamples drawn with ``seed`` (the same ones
    ``stratified_bootstrap_ci(scores, stat, reps, confidence, seed)`` draws), so a method's
    numbers do not depend on which other methods are in the dict.
    """
    _check_ci_args(reps, confidence)
    stats: list[tuple[str, str, Stat]] = [
        ("iqm", "iqm_ci", iqm),
        ("mean", "mean_ci", aggregate_mean),
        ("median", "median_ci", aggregate_median),
        ("optimality_gap", "og_ci", optimality_gap),
    ]
    result: dict[str, dict[str, Any]] = {}
    for method, raw in scores_by_method.items():
        a = _as_matrix(raw)
        values = _replicates_stratified(a, [s for _, _, s in stats], int(reps), seed)
        entry: dict[str, Any] = {}
        for (key, ci_key, stat), vals in zip(stats, values):
            entry[key] = float(stat(a))
            entry[ci_key] = list(_percentile_interval(vals, confidence))
        entry["runs"], entry["tasks"] = int(a.shape[0]), int(a.shape[1])
        result[method] = entry
    return result


def percent_of_reference(score: float, reference: float, floor: float | None = None) -> float:
    """Score as a percentage of a reference (e.g. teacher) score, measured from a floor:
    ``100 * (score - floor) / (reference - floor)``.

    ``floor`` defaults to 0, which gives the plain ratio ``100 * score / reference``; that default
    is only allowed when ``reference > 0``. For a reference <= 0 (negative-reward tasks such as
    Acrobot, returns in -500..0) the plain ratio misleads (a student at -100 vs a teacher at -80
    would get 125%, and a worse student a higher percentage), so a ``floor`` must be given: the
    per-env minimal return or random-policy score (Acrobot: -500). Then 0% = floor, 100% =
    reference: Acrobot with floor -500, reference -80, score -100 gives 100 * 400 / 420 = 95.2%.
    ``floor`` may also be given for a positive reference (e.g. Pong with floor -21). Requires
    ``reference > floor``; results above 100 (better than the reference) or below 0 are kept.
    """
    if floor is None:
        if reference <= 0:
            raise UserValueError(
                f"reference {reference} <= 0: a plain ratio is meaningless, pass floor "
                "(the env's minimal or random-policy return)"
            )
        floor = 0.0
    if not reference > floor:
        raise UserValueError(f"reference ({reference}) must be greater than floor ({floor})")
    return float(100.0 * (score - floor) / (reference - floor))


def human_normalized(score: Any, random: float, human: float) -> Any:
    """Human-normalized score ``(score - random) / (human - random)``: 0 = random policy,
    1 = human (Pong: random -20.7, human 14.6). ``score`` may be a scalar (returns a float) or
    an array (returns an array)."""
    if human == random:
        raise ValueError("human and random scores are equal")
    out = (np.asarray(score, dtype=np.float64) - random) / (human - random)
    return float(out) if out.ndim == 0 else out


def summarize(
    returns: Any,
    reference: float | None = None,
    human: tuple[float, float] | None = None,
    reps: int = 2000,
    seed: int = 0,
    floor: float | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Summary of per-episode returns, as plain JSON-ready Python numbers.

    Keys: ``n``, ``mean``, ``std``, ``median``, ``min``, ``max``, ``iqm`` and ``iqm_ci``
    (``[lo, hi]``, ``bootstrap_ci`` of the IQM with ``reps``/``confidence``/``seed``).
    ``std`` is the population standard deviation (ddof=0, as stable-baselines3's
    ``evaluate_policy``): the spread of the episodes observed, 0 for a single episode.
    With ``reference`` (e.g. the teacher's mean return) also ``percent_of_reference`` =
    ``percent_of_reference(mean, reference, floor)`` (see there: a reference <= 0 needs ``floor``).
    With ``human=(random, human)`` also ``human_normalized`` = ``(mean - random) / (human -
    random)``.
    """
    a = _as_scores(returns, "returns").reshape(-1)
    out: dict[str, Any] = {
        "n": int(a.size),
        "mean": float(np.mean(a)),
        "std": float(np.std(a, ddof=0)),
        "median": float(np.median(a)),
        "min": float(np.min(a)),
        "max": float(np.max(a)),
        "iqm": iqm(a),
        "iqm_ci": list(bootstrap_ci(a, iqm, reps=reps, confidence=confidence, seed=seed)),
    }
    if reference is not None:
        out["percent_of_reference"] = percent_of_reference(out["mean"], reference, floor)
    if human is not None:
        rand, hum = human
        out["human_normalized"] = human_normalized(out["mean"], rand, hum)
    return out
