"""The efficiency report's CPU seconds to the threshold, the bootstrap intervals on its ratios and several baselines;
the sweep report's aggregate over envs; and the training CPU seconds a record's curve carries (issue 39.3 and 39.6).
Every number here comes from hand-made records whose steps and seconds to 90% of the teacher are known."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import suite_cell

from rl_distill.errors import UserError
from rl_distill.metrics import iqm
from rl_distill.records import save_record
from rl_distill.report import bench_report, check_report
from rl_distill.report.kinds.sweep import least_reaching
from rl_distill.report.stats import ratio_ci

TEACHER = 10.0  # every run's teacher: 90% is a return of 9


def _cell(label: str, env: str = "E", seed: int = 0, tags: dict[str, Any] | None = None) -> dict[str, Any]:
    return suite_cell(label, env=env, seed=seed, tags=tags, curve_points=4)


def _write(folder: Path, report: dict[str, Any], runs: list[tuple[dict[str, Any], list[tuple], dict[str, Any]]]):
    """A results folder: the suite snapshot and one record per (cell, curve, summary extras); a curve point is
    (step, return, training wall s) or (step, return, training wall s, training CPU s)."""
    (folder / "runs").mkdir(parents=True)
    snap = {"name": "t", "path": "t.toml", "out": str(folder), "cells": [c for c, _, _ in runs], "report": report}
    (folder / "suite.json").write_text(json.dumps(snap))
    for cell, curve, extra in runs:
        last = curve[-1]
        summary = {
            "envs": cell["envs"],
            "student": "s",
            "student_params": 10,
            "env_steps": last[0],
            "teacher_queries": 0,
            "gradient_steps": 1,
            "train_time_s": last[2],
            "train_wall_s": last[2],
            "wall_s": last[2],
            "tasks": [
                {
                    "env": cell["envs"][0],
                    "student_score": {"mean": last[1], "std": 0.0},
                    "teacher_score": {"mean": TEACHER},
                    "percent_of_teacher": 100 * last[1] / TEACHER,
                    "episodes": 10,
                }
            ],
            **extra,
        }
        points = [
            {
                "step": p[0],
                "eval/mean_reward": p[1],
                "time/wall_s": p[2],
                **({"time/cpu_s": p[3]} if len(p) > 3 else {}),
            }
            for p in curve
        ]
        rec = {"cell": cell, "summary": summary, "curve": points}
        (folder / "runs" / f"{cell['key']}.json").write_text(json.dumps(rec))


def _table(text: str, heading: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and rows (by series) of the Markdown table under ``heading``."""
    part = text.split(heading, 1)[1]
    lines = [line for line in part.split("\n## ", 1)[0].splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return cells[0], {c[0]: c for c in cells[1:]}


# Steps, training wall seconds (inflated: other jobs on the cores) and training CPU seconds to 90% of the teacher.
OURS = [(20, 4.0, 2.0), (20, 5.0, 2.0), (40, 9.0, 4.0)]  # median: 20 steps, 2.0 CPU s
PPO = [(100, 30.0, 10.0), (100, 20.0, 10.0), (200, 60.0, 20.0)]  # median: 100 steps, 10.0 CPU s


def _curve(at: tuple[int, float, float], budget: int, cpu: bool = True) -> list[tuple]:
    """A curve at 0 until ``at`` (steps, wall, CPU), at the teacher from there to ``budget``."""
    step, wall, c = at
    pts = [(0, 0.0, 0.0, 0.0), (step // 2, 5.0, wall / 2, c / 2), (step, 9.5, wall, c), (budget, 10.0, 3 * wall, 3 * c)]
    return pts if cpu else [p[:3] for p in pts]


def _efficiency_suite(tmp_path: Path, baseline: Any) -> Path:
    runs = []
    for seed, (o, p) in enumerate(zip(OURS, PPO)):
        runs.append((_cell("op", seed=seed), _curve(o, 400), {}))
        runs.append((_cell("ppo", seed=seed), _curve(p, 400), {}))
        # DQN never gets there in its 400 steps and 80 CPU s; its summary keeps them (train_cpu_s).
        runs.append((_cell("dqn", seed=seed), [(0, 0.0, 0.0, 0.0), (400, 5.0, 90.0, 80.0)], {"train_cpu_s": 80.0}))
        # A series from before time/cpu_s was logged: there at 50 steps, CPU seconds unknown.
        runs.append((_cell("old", seed=seed), _curve((50, 10.0, 5.0), 400, cpu=False), {}))
    _write(tmp_path, {"kind": "efficiency", "baseline": baseline, "threshold": 0.9}, runs)
    return tmp_path


def test_efficiency_cpu_seconds_and_ratio_intervals_against_two_baselines(tmp_path):
    text = bench_report(_efficiency_suite(tmp_path, ["ppo", "dqn"])).read_text()
    head, rows = _table(text, "## Env steps and training time to 90% of the teacher")
    assert head == [
        "series",
        "env",
        "reached (seeds)",
        "env steps to threshold",
        "train s to threshold",
        "CPU s to threshold",
        "step ratio vs ppo",
        "step ratio vs ppo, 95% CI",
        "time ratio vs ppo",
        "CPU s ratio vs ppo [95% CI]",
        "step ratio vs dqn",
        "step ratio vs dqn, 95% CI",
        "time ratio vs dqn",
        "CPU s ratio vs dqn [95% CI]",
    ]
    op = dict(zip(head, rows["op"]))
    # 20 steps and 2.0 CPU s (medians over seeds) against PPO's 100 and 10.0: 5x fewer of each; wall: 30 / 5 = 6x.
    assert (op["env steps to threshold"], op["train s to threshold"], op["CPU s to threshold"]) == ("20", "5.0", "2.0")
    assert (op["step ratio vs ppo"], op["time ratio vs ppo"]) == ("5.0x", "6.0x")
    lo, hi = ratio_ci([20, 20, 40], [100, 100, 200], 400)
    assert op["step ratio vs ppo, 95% CI"] == f"[{lo:.1f}, {hi:.1f}]"
    assert 2.5 <= lo <= 5.0 <= hi <= 10.0  # inside the ratios three seeds a side can give: 100/40 to 200/20
    clo, chi = ratio_ci([2.0, 2.0, 4.0], [10.0, 10.0, 20.0], 80.0)
    assert (clo, chi) == (lo, hi)  # CPU seconds in the same proportions as the steps: the same resamples
    assert op["CPU s ratio vs ppo [95% CI]"] == f"5.0x [{clo:.1f}, {chi:.1f}]"
    # DQN never got there: its budget (400 steps, 80 CPU s) bounds the ratios from below.
    assert (op["step ratio vs dqn"], op["CPU s ratio vs dqn [95% CI]"].split(" [")[0]) == ("> 20x", "> 40x")
    assert op["step ratio vs dqn, 95% CI"] == "[10.0, 20.0]"  # 400 over ours' median resampled: 40 or 20
    # The records from before time/cpu_s: '-' in the CPU columns, the rest as ever.
    old = dict(zip(head, rows["old"]))
    assert (old["env steps to threshold"], old["step ratio vs ppo"], old["CPU s to threshold"]) == ("50", "2.0x", "-")
    assert old["CPU s ratio vs ppo [95% CI]"] == "-" and old["CPU s ratio vs dqn [95% CI]"] == "-"
    assert rows["dqn"][2:6] == ["0/3", "-", "-", "-"]
    summary = {r["label"]: r for r in csv.DictReader(open(tmp_path / "summary.csv"))}
    assert float(summary["op"]["cpu_to_threshold"]) == 2.0 and summary["old"]["cpu_to_threshold"] == ""
    assert float(summary["dqn"]["train_cpu_s"]) == 80.0
    runs = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert sorted(float(r["cpu_to_threshold"]) for r in runs if r["label"] == "op") == [2.0, 2.0, 4.0]


def test_one_baseline_as_a_string_gives_one_group_of_ratio_columns(tmp_path):
    text = bench_report(_efficiency_suite(tmp_path, "ppo")).read_text()
    head, rows = _table(text, "## Env steps and training time to 90% of the teacher")
    assert [h for h in head if "ratio" in h] == [
        "step ratio vs ppo",
        "step ratio vs ppo, 95% CI",
        "time ratio vs ppo",
        "CPU s ratio vs ppo [95% CI]",
    ]
    assert "Ratio: `ppo` over the method" in text and rows["op"][6] == "5.0x"


def test_steps_to_the_baselines_final_score(tmp_path):
    """Schmitt et al.'s measure: PPO ends at 5.0 (mean of 4.0 and 6.0 over its seeds) after 400 steps; 'ks' first
    reaches 5.0 at 10, at 20 and never: median 20 (the seed that never did counts as past its budget), 400 / 20 = 20x;
    'flat' never does."""
    ppo = [[(0, 0.0, 0.0), (200, 3.0, 1.0), (400, end, 2.0)] for end in (4.0, 6.0)]
    runs = [(_cell("ppo", seed=i), c, {}) for i, c in enumerate(ppo)]
    ks = ([(0, 0.0, 0.0), (10, 5.0, 1.0), (400, 9.0, 2.0)], [(0, 0.0, 0.0), (20, 5.5, 1.0), (400, 9.0, 2.0)])
    ks += ([(0, 0.0, 0.0), (20, 4.9, 1.0), (400, 4.0, 2.0)],)
    runs += [(_cell("ks", seed=i), c, {}) for i, c in enumerate(ks)]
    runs += [(_cell("flat", seed=0), [(0, 0.0, 0.0), (400, 4.5, 2.0)], {})]
    _write(tmp_path, {"kind": "efficiency", "baseline": "ppo"}, runs)
    text = bench_report(tmp_path).read_text()
    head, rows = _table(text, "## Env steps to `ppo`'s final score")
    assert head[2:] == ["`ppo` final", "reached (seeds)", "env steps to it", "`ppo`'s budget over it"]
    assert rows["ks"][2:] == ["5.00", "2/3", "20", "20.0x"]
    assert rows["flat"][2:] == ["5.00", "0/1", "-", "-"] and "ppo" not in rows


def test_records_without_cpu_seconds_keep_their_columns(tmp_path):
    """Records from before time/cpu_s: no CPU column in the table, runs.csv or summary.csv."""
    runs = [(_cell(s, seed=0), _curve(at, 400, cpu=False), {}) for s, at in (("op", OURS[0]), ("ppo", PPO[0]))]
    _write(tmp_path, {"kind": "efficiency", "baseline": "ppo"}, runs)
    text = bench_report(tmp_path).read_text()
    head, rows = _table(text, "## Env steps and training time to 90% of the teacher")
    assert not [h for h in head if "CPU" in h] and "CPU s:" not in text
    assert rows["op"][5:] == ["5.0x", "[5.0, 5.0]", "7.5x"]
    for f in ("runs.csv", "summary.csv"):
        cols = next(csv.reader(open(tmp_path / f)))
        assert "cpu_to_threshold" not in cols and "train_cpu_s" not in cols


def test_ratio_interval_counts_a_seed_that_never_got_there_past_its_budget():
    # Every seed there: the interval holds the ratio of medians (100 / 20 = 5).
    lo, hi = ratio_ci([20, 20, 40], [100, 100, 200], 1000)
    assert lo <= 5.0 <= hi
    # The baseline never got there: its budget stands for it (a lower bound), 1000 / 20.
    assert ratio_ci([20, 20, 20], [None, None, None], 1000) == (50.0, 50.0)
    # Ours never got there: no speed-up shown (0).
    assert ratio_ci([None, None], [100, 100], 1000) == (0.0, 0.0)
    assert ratio_ci([], [100], 1000) is None


@pytest.mark.parametrize("value", [["ppo", "dqn"], "ppo"])
def test_a_baseline_may_be_a_list(value):
    check_report({"kind": "efficiency", "baseline": value}, "s.toml")


@pytest.mark.parametrize("value", [3, [], ["ppo", 3]])
def test_a_bad_baseline_is_refused(value):
    with pytest.raises(UserError, match=r"\[report\] baseline must be a series label or a list of them"):
        check_report({"kind": "efficiency", "baseline": value}, "s.toml")


def _sweep_suite(tmp_path: Path, envs: list[str], **report_keys: Any) -> Path:
    """Series a and b at sizes 1000 and 4000, 4 seeds on each env; percent of teacher by env (E1 10-40, E2 50-80;
    series b 5 points higher, size 4000 20 points higher)."""
    runs = []
    for ei, env in enumerate(envs):
        for series, bump in (("a", 0.0), ("b", 5.0)):
            for size, more in ((1000, 0.0), (4000, 20.0)):
                for seed in range(4):
                    pct = 10.0 * (seed + 1) + 40.0 * ei + bump + more
                    cell = _cell(series, env, seed, {"size": size})
                    cell["key"] = f"{series}__{size}__{env}__s{seed}"
                    runs.append((cell, [(0, 0.0, 0.0), (100, pct * TEACHER / 100, 1.0)], {}))
    report = {"kind": "sweep", "x": "size", "y": "percent", "logx": False, **report_keys}
    _write(tmp_path, report, runs)
    return tmp_path


def test_sweep_aggregate_over_envs_per_setting(tmp_path):
    text = bench_report(_sweep_suite(tmp_path, ["E1", "E2"])).read_text()
    head, rows = _table(text, "## Aggregate over envs")
    assert list(rows) == ["a, size 1,000", "a, size 4,000", "b, size 1,000", "b, size 4,000"]
    # a at size 1000: 10, 20, 30, 40 on E1 and 50, 60, 70, 80 on E2; the IQM of the 8 is the mean of 30-60: 45.
    assert iqm([10, 20, 30, 40, 50, 60, 70, 80]) == 45.0
    for name, want in (("a, size 1,000", 45.0), ("a, size 4,000", 65.0), ("b, size 1,000", 50.0)):
        row = dict(zip(head, rows[name]))
        assert row["runs x envs"] == "4 x 2"
        point, lo, hi = (float(v) for v in row["IQM [95% CI]"].replace("[", "").replace(",", "").strip("]").split())
        assert point == want and lo <= want <= hi and hi - lo > 0
    assert (tmp_path / "sweep-aggregate.png").stat().st_size > 0 and (tmp_path / "aggregate.png").exists()
    assert "![sweep aggregate](sweep-aggregate.png)" in text


def test_sweep_threshold_table_gives_the_least_x_that_reaches_it(tmp_path):
    """Means over the 4 seeds: a 25 / 45 on E1 and 65 / 85 on E2 at sizes 1000 / 4000, b 5 higher; IQM over both envs
    a 45 / 65, b 50 / 70. At 50%: a never on E1, b at 4000; both at 1000 on E2; the IQM: a at 4000, b at 1000."""
    text = bench_report(_sweep_suite(tmp_path, ["E1", "E2"], threshold=0.5)).read_text()
    head, rows = _table(text, "## Size to 50% of the teacher")
    assert head == ["series", "E1", "E2", "all envs (IQM)"]
    assert rows["a"][1:] == ["> 4,000", "1,000", "4,000"]
    assert rows["b"][1:] == ["4,000", "1,000", "1,000"]
    # Without a threshold in [report] the sweep has no such table.
    assert "to 90% of the teacher" not in bench_report(_sweep_suite(tmp_path / "none", ["E1", "E2"])).read_text()


def test_least_reaching_marks_a_score_that_falls_back_below():
    assert least_reaching([(4000.0, 95.0), (1000.0, 50.0), (2000.0, 91.0)], 90.0) == "2,000"
    assert least_reaching([(1.0, 50.0), (2.0, 91.0), (4.0, 80.0)], 90.0) == "2*"
    assert least_reaching([(1, 50.0), (2.5, 60.0)], 90.0) == "> 2.5"


def test_a_sweep_on_one_env_has_no_aggregate(tmp_path):
    text = bench_report(_sweep_suite(tmp_path, ["E1"])).read_text()
    assert "## Aggregate over envs" not in text and not (tmp_path / "sweep-aggregate.png").exists()
    assert not (tmp_path / "aggregate.png").exists() and "![sweep](sweep.png)" in text


def test_a_record_keeps_the_training_cpu_seconds_of_its_curve(tmp_path):
    """save_record copies time/cpu_s beside time/wall_s into the record's curve points (a run's scalars.jsonl)."""
    runs_root, out = tmp_path / "runs", tmp_path / "res"
    cell_dir = runs_root / "k"
    run_dir = cell_dir / "run__1"
    run_dir.mkdir(parents=True)
    (cell_dir / "cell.json").write_text(json.dumps({"key": "k"}))
    (run_dir / "summary.json").write_text(json.dumps({"run_dir": str(run_dir)}))
    scalars = [
        {"step": 0, "eval/mean_reward": 1.0, "time/wall_s": 0.0, "time/cpu_s": 0.0},
        {"step": 50, "train/loss": 0.5, "time/wall_s": 2.0, "time/cpu_s": 1.5, "time/gradient_steps": 3},
        {"step": 100, "eval/mean_reward": 9.0, "eval/sampled_mean_reward": 8.0, "time/wall_s": 4.0, "time/cpu_s": 3.0},
    ]
    (run_dir / "scalars.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scalars))
    assert save_record(runs_root, out, "k")
    rec = json.loads((out / "runs" / "k.json").read_text())
    assert rec["curve"] == [scalars[0], scalars[2]]
    assert np.isclose(rec["curve"][-1]["time/cpu_s"], 3.0)
