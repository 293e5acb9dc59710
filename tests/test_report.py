"""results/teachers: one row per teacher with its score, budget and command(s), and a learning curve each."""

from helpers import suite_cell

from rl_distill import teachers
from rl_distill.report import teacher_report


def _meta(tid, segments=None):
    training = {
        "steps": 2_500_032,
        "wall_s": 5000.0,
        "steps_per_s": 500.0,
        "command": "rl-distill teachers train B",
        "curve": [{"step": 1, "mean": -21.0, "std": 0.0}, {"step": 2, "mean": 19.0, "std": 1.0}],
    }
    if segments:
        training["segments"] = segments
    return {
        "id": tid,
        "env_id": "ALE/Pong-v5",
        "training": training,
        "score": {"mean": 19.5, "std": 1.5, "n": 30, "iqm": 20.0, "iqm_ci": [19.0, 20.5], "human_normalized": 1.1},
    }


def test_teacher_report_rows_and_resumed_segments(tmp_path, monkeypatch):
    segs = [
        {
            "command": "rl-distill teachers train A",
            "machine": "GPU box",
            "start_step": 0,
            "end_step": 1_250_016,
            "wall_s": 353.0,
        },
        {
            "command": "rl-distill teachers train B",
            "machine": "2 CPU cores",
            "start_step": 1_250_016,
            "end_step": 2_500_032,
            "wall_s": 4647.0,
        },
    ]
    export = {
        "command": "rl-distill teachers train C --resume",
        "machine": "2 CPU cores",
        "start_step": 2_500_032,
        "end_step": 2_500_032,
        "wall_s": 0.0,
    }
    exported = _meta("exported", [segs[1], export]) | {"id": "exported"}
    exported["training"]["best_step"] = 2_000_000
    monkeypatch.setattr(teachers, "shipped_meta", lambda: [_meta("one-run"), _meta("resumed", segs), exported])
    text = teacher_report(tmp_path).read_text()
    one = next(line for line in text.splitlines() if line.startswith("| one-run"))
    res = next(line for line in text.splitlines() if line.startswith("| resumed"))
    assert (
        "19.5 ± 1.5 (n=30)" in one
        and "20.0 [19.0, 20.5]" in one
        and "1.10" in one
        and "`rl-distill teachers train B`" in one
    )
    assert "`rl-distill teachers train A` (steps 0-1,250,016, 353 s, GPU box)" in res
    assert "`rl-distill teachers train B` (steps 1,250,016-2,500,032, 4647 s, 2 CPU cores)" in res
    # An export-only call (no steps) is not a training segment; the step the weights come from is shown.
    exp = next(line for line in text.splitlines() if line.startswith("| exported"))
    assert "`rl-distill teachers train B`" in exp and "train C" not in exp and "| 2500032 | 2000000 |" in exp
    assert "| 2500032 | - |" in one
    assert (tmp_path / "one-run.png").stat().st_size > 0 and (tmp_path / "resumed.png").exists()


def test_sweep_plot_keeps_each_series_colour_across_panels(tmp_path, monkeypatch):
    """A suite in progress: series 'a' ran on one env only; 'b' keeps one colour in both panels, each with a legend."""
    from rl_distill.report import plots

    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig))
    rows = [
        {"env": env, "label": s, "student_params": p, "percent": 50.0 + p / 1000, "teacher_score": 1.0}
        for env, series in (("E1", ("a", "b")), ("E2", ("b",)))
        for s in series
        for p in (1000, 4000)
    ]
    plots.plot_sweep(rows, "student_params", "percent", "label", tmp_path / "s.png", "t", logx=False)
    ax1, ax2 = figs[0].axes
    colour = [
        {line.get_label(): line.get_color() for line in ax.get_lines() if not line.get_label().startswith("_")}
        for ax in (ax1, ax2)
    ]
    assert set(colour[0]) == {"a", "b"} and set(colour[1]) == {"b"}
    assert colour[0]["b"] == colour[1]["b"] != colour[0]["a"]
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["b"] and ax1.get_legend() is not None


def test_aggregate_plot_keeps_long_series_names_and_its_title_inside_the_figure(tmp_path, monkeypatch):
    """Long series names (minatar-multitask's) once squeezed the axes so that the title ran off both edges."""
    from rl_distill.report import plots

    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig))
    names = ["ppo from actor-mimic (SpaceInvaders held out)", "policy-distillation single-task", "bc"]
    agg = {n: {"iqm": 40.0 + 10 * i, "iqm_ci": [30.0 + 10 * i, 50.0 + 10 * i]} for i, n in enumerate(names)}
    plots.plot_aggregate(agg, tmp_path / "a.png", "minatar-multitask: aggregate over envs and seeds")
    fig = figs[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    title = fig._suptitle if fig._suptitle is not None else fig.axes[0].title
    texts = [title, *fig.axes[0].get_yticklabels()]
    for t in texts:
        box = t.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width, t.get_text()
    assert fig.axes[0].get_window_extent(renderer).width >= 0.45 * width  # the plot is not squeezed to a sliver


def test_short_count_ticks():
    from rl_distill.report import short_count

    assert [short_count(x) for x in (0, 500, 50_000, 350_000, 1_250_000, 2_500_000)] == [
        "0",
        "500",
        "50k",
        "350k",
        "1.25M",
        "2.5M",
    ]
    # 3 significant digits: a budget rounded up to whole batches of 8 envs, and a parameter count.
    assert [short_count(x) for x in (2504, 132_437, 1_003_520)] == ["2.5k", "132k", "1M"]


def test_curve_plot_keeps_each_series_colour_and_lists_it_in_a_suite_in_progress(tmp_path, monkeypatch):
    """Series 'b' ran on E1 only: 'c' keeps one colour in both panels, and every panel has its own legend,
    so 'b' is named somewhere (it used to be the last panel's legend alone, which lacked it)."""
    from rl_distill.report import plots

    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig))
    curve = [(0, 0.0, None), (100, 1.0, None)]
    rows = [
        {"env": env, "label": s, "env_steps": 100, "teacher_score": 1.0, "curve": curve}
        for env, series in (("E1", ("a", "b", "c")), ("E2", ("a", "c")))
        for s in series
    ]
    assert plots.plot_curves(rows, tmp_path / "c.png", "t")
    ax1, ax2 = figs[0].axes
    colour = [
        {
            line.get_label().split(" (")[0]: line.get_color()
            for line in ax.get_lines()
            if not line.get_label().startswith(("_", "teacher"))
        }
        for ax in (ax1, ax2)
    ]
    assert colour[0]["c"] == colour[1]["c"] != colour[0]["b"]
    assert [t.get_text() for t in ax1.get_legend().get_texts()][:3] == ["a (n=1)", "b (n=1)", "c (n=1)"]
    assert ax2.get_legend() is not None
    # Every series in every panel: one legend, the last panel's.
    figs.clear()
    assert plots.plot_curves([r for r in rows if r["label"] != "b"], tmp_path / "c.png", "t")
    assert figs[0].axes[0].get_legend() is None and figs[0].axes[1].get_legend() is not None


def test_transfer_table_beside_the_run_from_random_weights(tmp_path):
    """A suite with a transfer series gets a table: return at each curve point, the mean over the curve (trapezoids /
    budget) and the final score, for the transfer series and the same method from random weights."""
    import json

    from rl_distill.report import bench_report

    def cell(label, seed, init_from=None):
        return suite_cell(label, "ppo", seed=seed, key=f"{label}__s{seed}", init_from=init_from)

    cells = [
        {**cell("src", 0), "method": "policy-distillation"},
        cell("from src", 0, "cell:src"),
        cell("from src", 1, "cell:src"),
        cell("scratch", 0),
        cell("scratch", 1),
    ]
    # from src: curves (0, 0) (50, 4) (100, 8) and (0, 2) (50, 6) (100, 6); scratch: flat 1 and a ramp 0 -> 2.
    curves = {"from src__s0": [0, 4, 8], "from src__s1": [2, 6, 6], "scratch__s0": [1, 1, 1], "scratch__s1": [0, 1, 2]}
    (tmp_path / "runs").mkdir()
    (tmp_path / "suite.json").write_text(
        json.dumps({"name": "t", "path": "t.toml", "out": str(tmp_path), "cells": cells, "report": {"kind": "lineage"}})
    )
    # Wall seconds: 60, 120, 180, and a run resumed before checkpoints kept their wall time (30 s of wall, 300 s of
    # training).
    times = {"from src__s0": (60, 50), "from src__s1": (120, 100), "scratch__s0": (180, 150), "scratch__s1": (30, 300)}
    cpu = {"from src__s0": 100, "from src__s1": 200, "scratch__s0": 300}  # the old resumed run has no CPU time
    for c in cells[1:]:
        ys = curves[c["key"]]
        wall, train = times[c["key"]]
        summary = {
            "envs": ["E"],
            "student": "s",
            "student_params": 10,
            "env_steps": 100,
            "teacher_queries": 0,
            "gradient_steps": 1,
            "train_time_s": train,
            "train_wall_s": wall,
            "wall_s": wall,
            **({"cpu_s": cpu[c["key"]]} if c["key"] in cpu else {}),
            "tasks": [
                {
                    "env": "E",
                    "student_score": {"mean": ys[-1] + 0.5, "std": 0.0},
                    "teacher_score": {"mean": 10.0},
                    "percent_of_teacher": 10 * ys[-1],
                    "episodes": 10,
                }
            ],
        }
        # Training games (sampled actions): from src 2.0 then 3.0 (seed 0) or 4.0 (seed 1); scratch 1.0 then 1.5.
        train = [2.0, 3.0 if c["key"] == "from src__s0" else 4.0] if c["label"] == "from src" else [1.0, 1.5]
        rec = {
            "cell": c,
            "summary": summary,
            "curve": [{"step": x, "eval/mean_reward": y} for x, y in zip((0, 50, 100), ys)],
            "train_curve": [{"step": x, "rollout/ep_rew_mean": y} for x, y in zip((50, 100), train)],
        }
        (tmp_path / "runs" / f"{c['key']}.json").write_text(json.dumps(rec))
    text = bench_report(tmp_path).read_text()
    assert (
        "11.0 min in all, 2.5 min a run (median; 60 s to 5.0 min)" in text
    )  # (60 + 120 + 180 + 300) s; median of 120 and 180 s
    assert (
        "CPU time (the 3 of 4 runs that record it): 10.0 min in all, so about 5.0 min with 2 workers on 2 free cores; "
        "3.3 min a run" in text
    )
    assert "### from src (from `src`) against scratch, E" in text
    # Areas / budget: s0 (0+4)/2*.5 + (4+8)/2*.5 = 4.0, s1 (2+6)/2*.5 + 6*.5 = 5.0 -> mean 4.5; scratch 1.0 and 1.0.
    # Training games: from src means 2.5 and 3.0 (-> 2.75), last 3.0 and 4.0 (-> 3.5); scratch 1.25 and 1.5 on both
    # seeds.
    assert (
        "| from src | 2 | 1.0 | 5.0 | 7.0 | 4.5 [4.0, 5.0] | 7.5 [6.5, 8.5] | 2.75 [2.50, 3.00] | 3.50 [3.00, 4.00] |"
        in text
    )
    assert (
        "| scratch | 2 | 0.5 | 1.0 | 1.5 | 1.0 [1.0, 1.0] | 2.0 [1.5, 2.5] | 1.25 [1.25, 1.25] | 1.50 [1.50, 1.50] |"
        in text
    )
    assert text.count("### ") == 1  # one table for the series, not one per seed
    # A source of the same method is no baseline: with "scratch" gone there is nothing to compare, so no table.
    cells = [cell("src", 0), *cells[1:3]]
    (tmp_path / "suite.json").write_text(
        json.dumps({"name": "t", "path": "t.toml", "out": str(tmp_path), "cells": cells})
    )
    assert "## Transfer" not in bench_report(tmp_path).read_text()


def test_efficiency_ratios_from_a_distilled_start(tmp_path):
    """The Qwen3 comparison: on-policy distillation and PPO from the same off-policy-distilled student. A series
    with a start is compared with PPO from that start, and with PPO from scratch counting the start's cost."""
    import json

    from rl_distill.report import bench_report

    def cell(label, method, init_from=None):
        return suite_cell(label, method, key=f"{label}__s0", init_from=init_from)

    # (step, return, training seconds) points; the teacher scores 10, so 90% is a return of 9.
    runs = {
        "ppo": (cell("ppo", "ppo"), [(0, 0, 0), (50, 2, 20), (100, 4, 40)]),  # from scratch: never gets there
        "start": (cell("start", "bc"), [(0, 0, 0), (20, 5, 5)]),
        "op from start": (cell("op from start", "on-policy", "cell:start"), [(0, 5, 0), (25, 9, 10), (50, 10, 20)]),
        "ppo from start": (cell("ppo from start", "ppo", "cell:start"), [(0, 5, 0), (50, 7, 15), (100, 9, 30)]),
    }
    (tmp_path / "runs").mkdir()
    suite = {
        "name": "t",
        "path": "t.toml",
        "out": str(tmp_path),
        "cells": [c for c, _ in runs.values()],
        "report": {"kind": "efficiency", "baseline": "ppo", "threshold": 0.9},
    }
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    for c, curve in runs.values():
        steps, train = curve[-1][0], curve[-1][2]
        summary = {
            "envs": ["E"],
            "student": "s",
            "student_params": 10,
            "env_steps": steps,
            "teacher_queries": 0,
            "gradient_steps": 1,
            "train_time_s": train,
            "train_wall_s": train,
            "wall_s": train,
            "tasks": [
                {
                    "env": "E",
                    "student_score": {"mean": curve[-1][1], "std": 0.0},
                    "teacher_score": {"mean": 10.0},
                    "percent_of_teacher": 10 * curve[-1][1],
                    "episodes": 10,
                }
            ],
        }
        rec = {
            "cell": c,
            "summary": summary,
            "curve": [{"step": x, "eval/mean_reward": y, "time/wall_s": w} for x, y, w in curve],
        }
        (tmp_path / "runs" / f"{c['key']}.json").write_text(json.dumps(rec))
    steps_table = bench_report(tmp_path).read_text().split("## Env steps to `")[0]  # not the final-score table's
    lines = {
        line.split(" | ")[0][2:]: line
        for line in steps_table.splitlines()
        if line.startswith("| ") and " | E | " in line
    }
    # On-policy from the start: 90% at 25 steps and 10 s; PPO from the same start at 100 and 30 s: 4.0x and 3.0x.
    # Against PPO from scratch (never there in 100 steps, 40 s) with the start's 20 steps and 5 s added: > 100/45,
    # > 40/15. One seed a side: the step ratio's bootstrap interval is the ratio itself.
    assert (
        lines["op from start"]
        == "| op from start | E | `start` (20 steps) | 1/1 | 25 | 10.0 | 4.0x | [4.0, 4.0] | 3.0x | > 2.2x / > 2.7x |"
    )
    assert (
        lines["ppo from start"]
        == "| ppo from start | E | `start` (20 steps) | 1/1 | 100 | 30.0 | 1.0x | [1.0, 1.0] | 1.0x | > 0.8x / > 1.1x |"
    )
    assert lines["ppo"] == "| ppo | E | - | 0/1 | - | - | - | - | - | - |"
    assert lines["start"] == "| start | E | - | 0/1 | - | - | - | - | - | - |"


def test_transfer_table_only_where_the_series_ran_and_on_its_own_curve_points(tmp_path):
    """The baseline also ran on another env (no table there) and was evaluated at other steps: its columns are its
    curve at the last point at or before each of the transfer series' points."""
    import json

    from rl_distill.report import bench_report

    def cell(label, env, seed=0, init_from=None):
        return {**suite_cell(label, "ppo", env=env, seed=seed, init_from=init_from), "curve_episodes": 3}

    cells = [
        {**cell("src", "E"), "method": "bc"},
        cell("from src", "E", init_from="cell:src"),
        cell("scratch", "E"),
        cell("scratch", "F"),
    ]
    curves = {
        "from src__E__s0": [(0, 5), (50, 6), (100, 7)],
        "scratch__E__s0": [(0, 0), (30, 3), (60, 6), (100, 9)],
        "scratch__F__s0": [(0, 1), (50, 1), (100, 1)],
    }
    (tmp_path / "runs").mkdir()
    (tmp_path / "suite.json").write_text(
        json.dumps({"name": "t", "path": "t.toml", "out": str(tmp_path), "cells": cells})
    )
    for c in cells[1:]:
        pts = curves[c["key"]]
        summary = {
            "envs": c["envs"],
            "student": "s",
            "student_params": 10,
            "env_steps": 100,
            "teacher_queries": 0,
            "gradient_steps": 1,
            "train_time_s": 1,
            "train_wall_s": 1,
            "wall_s": 1,
            "tasks": [
                {
                    "env": c["envs"][0],
                    "student_score": {"mean": pts[-1][1], "std": 0.0},
                    "teacher_score": {"mean": 10.0},
                    "percent_of_teacher": 10 * pts[-1][1],
                    "episodes": 10,
                }
            ],
        }
        rec = {"cell": c, "summary": summary, "curve": [{"step": x, "eval/mean_reward": y} for x, y in pts]}
        (tmp_path / "runs" / f"{c['key']}.json").write_text(json.dumps(rec))
    text = bench_report(tmp_path).read_text()
    assert "### from src (from `src`) against scratch, E" in text and ", F\n" not in text
    assert "mean over seeds of 3 games each" in text and "`scratch` was evaluated at other steps (4 points)" in text
    assert "| series | seeds | return at 0 | return at 50 | return at 100 |" in text
    # scratch read at 0, 50 (its point at 30) and 100; its area over its own points: (45 + 135 + 300) / 100 = 4.8.
    assert "| scratch | 1 | 0.0 | 3.0 | 9.0 | 4.8 [4.8, 4.8] |" in text
    assert "| from src | 1 | 5.0 | 6.0 | 7.0 |" in text


def test_transfer_table_shows_at_most_six_curve_points():
    from rl_distill.report.transfer import columns

    steps = [50_000 * i for i in range(21)]  # 0 to 1M, a point every 50k: 21 points
    assert columns(steps) == [0, 200_000, 400_000, 600_000, 800_000, 1_000_000]
    assert columns(steps[:6]) == steps[:6] and columns([0, 7, 9], most=2) == [0, 9]


def test_steps_to_threshold_median_counts_the_seeds_that_never_got_there():
    from rl_distill.report.stats import median_to

    assert median_to([100, None, 300], int) == 300  # the median seed of three got there at 300
    assert median_to([100, 200, 300, None]) == 250.0
    assert median_to([100, None]) is None  # half never got there: no median step
    assert median_to([None, None, None]) is None and median_to([]) is None


def test_step_ratio_to_the_baseline():
    from rl_distill.report.kinds.efficiency import ratio

    assert ratio(100, 250, 1000) == "2.5x"
    assert ratio(100, 0, 1000) == "0.0x"  # the baseline was there at its first point: not a lower bound
    assert ratio(100, None, 1000) == "> 10x" and ratio(400, None, 1000) == "> 2.5x"  # never there: its budget bounds it
    assert ratio(0, 100, 1000) == "-" and ratio(None, 100, 1000) == "-"
