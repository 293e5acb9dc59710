"""rl_distill.metrics against hand-computed values (milliseconds)."""

import math

import numpy as np
import pytest

from rl_distill import metrics as M

# --------------------------------------------------------------------------------- point stats


def test_iqm_1d_hand_computed():
    assert M.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert M.iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(4.5)  # order does not matter
    # n=6: int(0.25*6)=1 value cut from each end -> mean(1, 2, 3, 100) of [0, 1, 2, 3, 100, 1000]
    assert M.iqm([1000, 0, 3, 1, 100, 2]) == pytest.approx(26.5)
    # n < 4: nothing is cut (scipy.stats.trim_mean semantics)
    assert M.iqm([1, 2, 9]) == pytest.approx(4.0)
    assert M.iqm([5.0]) == 5.0


def test_iqm_matrix_pools_runs_and_tasks():
    scores = np.array([[8, 1, 6, 3], [2, 7, 4, 5]], dtype=float)  # (2 runs x 4 tasks)
    assert M.iqm(scores) == pytest.approx(4.5)
    # outliers in the top and bottom quarter do not move it
    scores[0, 1], scores[0, 0] = -1e6, 1e6
    assert M.iqm(scores) == pytest.approx(4.5)


def test_iqm_rejects_empty_and_nan():
    with pytest.raises(ValueError):
        M.iqm([])
    with pytest.raises(ValueError):
        M.iqm([1.0, float("nan"), 2.0, 3.0])


def test_optimality_gap_hand_computed():
    x = [0.5, 1.2, 0.0, 0.9]
    assert M.optimality_gap(x) == pytest.approx((0.5 + 0 + 1.0 + 0.1) / 4)
    assert M.optimality_gap(x, gamma=0.5) == pytest.approx(0.5 / 4)
    assert M.optimality_gap(np.array([[1.0, 2.0], [1.5, 3.0]])) == 0.0


def test_aggregate_mean_and_median_are_over_per_task_means():
    scores = np.array([[0.0, 1.0, 10.0], [2.0, 3.0, 20.0]])  # task means 1, 2, 15
    assert M.aggregate_mean(scores) == pytest.approx(6.0)
    assert M.aggregate_median(scores) == pytest.approx(2.0)


# ----------------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_deterministic_and_contains_estimate():
    x = np.random.default_rng(123).normal(10.0, 3.0, size=50)
    a = M.bootstrap_ci(x, M.iqm, reps=2000, seed=7)
    assert a == M.bootstrap_ci(x, M.iqm, reps=2000, seed=7)
    assert a != M.bootstrap_ci(x, M.iqm, reps=2000, seed=8)
    lo, hi = a
    assert lo < M.iqm(x) < hi
    lo95, hi95 = M.bootstrap_ci(x, np.mean, seed=0)
    lo50, hi50 = M.bootstrap_ci(x, np.mean, confidence=0.5, seed=0)
    assert lo95 < lo50 < np.mean(x) < hi50 < hi95


def test_bootstrap_ci_constant_sample_zero_width():
    assert M.bootstrap_ci([3.3] * 20, M.iqm, reps=500) == (3.3, 3.3)
    assert M.bootstrap_ci([-7.0] * 5, np.median, reps=100) == (-7.0, -7.0)


def test_bootstrap_ci_vectorized_stat_equals_generic_loop():
    x = np.random.default_rng(0).normal(size=30)
    for fast in (M.iqm, np.mean, np.median, M.optimality_gap):
        slow = lambda s, f=fast: float(f(s))  # noqa: E731 - not recognized -> loop path
        assert M.bootstrap_ci(x, fast, reps=300, seed=3) == pytest.approx(M.bootstrap_ci(x, slow, reps=300, seed=3))


def test_bootstrap_ci_rejects_bad_args():
    with pytest.raises(ValueError):
        M.bootstrap_ci(np.ones((3, 2)))
    with pytest.raises(ValueError):
        M.bootstrap_ci([1.0, 2.0], reps=0)
    with pytest.raises(ValueError):
        M.bootstrap_ci([1.0, 2.0], confidence=1.0)


def test_stratified_bootstrap_resamples_runs_within_each_task():
    scores = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # 3 runs x 2 tasks
    seen = []

    def record(s):
        seen.append(s.copy())
        return 0.0

    assert M.stratified_bootstrap_ci(scores, record, reps=200, seed=0) == (0.0, 0.0)
    assert len(seen) == 200
    for s in seen:
        assert s.shape == (3, 2)  # each task keeps its run count
        assert set(s[:, 0]) <= {1.0, 2.0, 3.0}  # no values move across tasks
        assert set(s[:, 1]) <= {10.0, 20.0, 30.0}
    # runs are drawn independently per task: some resample pairs rows of different runs
    assert any(s[r, 1] != 10 * s[r, 0] for s in seen for r in range(3))
    # and with replacement: some resample repeats a run
    assert any(len(set(s[:, 0])) < 3 for s in seen)


def test_stratified_bootstrap_hand_checkable_interval():
    # task 0 is always 1, task 1 always 2: every stratified resample keeps both columns, so
    # mean(task 1) - mean(task 0) is exactly 1 (a task bootstrap would also give 0 or -1)
    scores = np.array([[1.0, 2.0]] * 4)
    diff = lambda s: s[:, 1].mean() - s[:, 0].mean()  # noqa: E731
    assert M.stratified_bootstrap_ci(scores, diff, reps=300) == (1.0, 1.0)
    # one run per task: every resample is the matrix itself
    one = np.array([[0.2, 0.9, 0.4]])
    assert M.stratified_bootstrap_ci(one, M.iqm) == (M.iqm(one), M.iqm(one))


def test_stratified_bootstrap_deterministic_fast_equals_loop_and_contains_estimate():
    scores = np.random.default_rng(5).uniform(0.0, 1.5, size=(10, 4))
    for stat in (M.iqm, M.optimality_gap, M.aggregate_mean, M.aggregate_median, np.mean):
        ci = M.stratified_bootstrap_ci(scores, stat, reps=400, seed=11)
        assert ci == M.stratified_bootstrap_ci(scores, stat, reps=400, seed=11)
        slow = lambda s, f=stat: float(f(s))  # noqa: E731
        assert ci == pytest.approx(M.stratified_bootstrap_ci(scores, slow, reps=400, seed=11))
        assert ci[0] <= float(stat(scores)) <= ci[1]


# ------------------------------------------------------------------------------------- reports


def test_aggregate_keys_and_consistency():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=(5, 3)), rng.uniform(size=(8, 3))
    res = M.aggregate({"a": a, "b": b}, reps=300, seed=4)
    assert set(res) == {"a", "b"}
    ra = res["a"]
    assert ra["iqm"] == pytest.approx(M.iqm(a))
    assert ra["mean"] == pytest.approx(a.mean())
    assert ra["median"] == pytest.approx(np.median(a.mean(axis=0)))
    assert ra["optimality_gap"] == pytest.approx(M.optimality_gap(a))
    assert ra["iqm_ci"] == list(M.stratified_bootstrap_ci(a, M.iqm, reps=300, seed=4))
    assert ra["og_ci"] == list(M.stratified_bootstrap_ci(a, M.optimality_gap, reps=300, seed=4))
    for key in ("iqm", "mean", "median"):
        lo, hi = ra[f"{key}_ci"]
        assert lo <= ra[key] <= hi
    assert (ra["runs"], ra["tasks"], res["b"]["runs"]) == (5, 3, 8)
    # a method's numbers do not depend on the other methods
    assert M.aggregate({"a": a}, reps=300, seed=4)["a"] == ra


def test_percent_of_reference_positive_reference():
    assert M.percent_of_reference(150.0, 200.0) == pytest.approx(75.0)
    assert M.percent_of_reference(250.0, 200.0) == pytest.approx(125.0)
    # an explicit floor (Pong: -21) measures from it
    assert M.percent_of_reference(0.0, 21.0, floor=-21.0) == pytest.approx(50.0)


def test_percent_of_reference_negative_reference_needs_floor():
    # Acrobot: floor -500 (minimal return), teacher -80, student -100 -> 400 / 420
    assert M.percent_of_reference(-100.0, -80.0, floor=-500.0) == pytest.approx(100 * 400 / 420)
    assert M.percent_of_reference(-80.0, -80.0, floor=-500.0) == pytest.approx(100.0)
    assert M.percent_of_reference(-500.0, -80.0, floor=-500.0) == pytest.approx(0.0)
    # worse student -> lower percentage (a plain ratio would give -300/-80 = 375%)
    assert M.percent_of_reference(-300.0, -80.0, floor=-500.0) < M.percent_of_reference(-100.0, -80.0, floor=-500.0)
    with pytest.raises(ValueError):
        M.percent_of_reference(-100.0, -80.0)
    with pytest.raises(ValueError):
        M.percent_of_reference(-100.0, 0.0)
    with pytest.raises(ValueError):
        M.percent_of_reference(-100.0, -500.0, floor=-80.0)  # reference below the floor


def test_human_normalized_pong():
    assert M.human_normalized(14.6, -20.7, 14.6) == pytest.approx(1.0)
    assert M.human_normalized(-20.7, -20.7, 14.6) == pytest.approx(0.0)
    assert M.human_normalized(-3.05, -20.7, 14.6) == pytest.approx(0.5)
    arr = M.human_normalized(np.array([-20.7, 14.6]), -20.7, 14.6)
    np.testing.assert_allclose(arr, [0.0, 1.0])
    with pytest.raises(ValueError):
        M.human_normalized(1.0, 2.0, 2.0)


def test_summarize_hand_computed():
    s = M.summarize([4.0, 1.0, 3.0, 2.0], reps=200)
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(math.sqrt(1.25))  # ddof=0
    assert s["median"] == pytest.approx(2.5)
    assert (s["min"], s["max"]) == (1.0, 4.0)
    assert s["iqm"] == pytest.approx(2.5)  # mean of 2, 3
    lo, hi = s["iqm_ci"]
    assert 1.0 <= lo <= 2.5 <= hi <= 4.0
    assert s["iqm_ci"] == list(M.bootstrap_ci([4.0, 1.0, 3.0, 2.0], M.iqm, reps=200))
    assert "percent_of_reference" not in s and "human_normalized" not in s
    assert M.summarize([7.0], reps=10)["std"] == 0.0
    assert all(type(v) in (int, float, list) for v in s.values())


def test_summarize_reference_and_human():
    s = M.summarize([10.0, 14.6, 19.2], reference=20.0, human=(-20.7, 14.6), reps=100)
    assert s["percent_of_reference"] == pytest.approx(100 * 14.6 / 20.0)
    assert s["human_normalized"] == pytest.approx(1.0)
    acro = M.summarize([-90.0, -110.0], reference=-80.0, floor=-500.0, reps=100)
    assert acro["percent_of_reference"] == pytest.approx(100 * 400 / 420)
    with pytest.raises(ValueError):
        M.summarize([-90.0, -110.0], reference=-80.0, reps=100)
