"""Watching a run (issue 42.5-42.7): evaluation progress that changes no number, the training bar's named fields,
a distill run's learning-curve PNG and last line, bench's CPU estimate and runs-done bar, and a bench that leaves
the committed results as they are unless its --out names them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rl_distill.bench import Cell, CpuEstimate, _BenchProgress, bench, cell_kind, cpu_left_text, load_suite
from rl_distill.cli import main
from rl_distill.context import Context
from rl_distill.evaluation import evaluate
from rl_distill.records import default_out
from rl_distill.teachers import load_teacher

TINY = """
name = "tiny"
description = "two tiny runs"
seeds = 2
eval_episodes = 3
curve_points = 2
curve_episodes = 2
[report]
kind = "efficiency"
baseline = "policy-distillation"
[[grid]]
method = "policy-distillation"
env = "CartPole-v1"
steps = 400
"""


def test_evaluation_progress_shows_games_and_mean_and_changes_no_number(capsys):
    teacher = load_teacher("ppo-CartPole-v1")
    quiet = evaluate(teacher, "CartPole-v1", episodes=6, seed=3, num_envs=4)
    assert capsys.readouterr().err == ""
    shown = evaluate(teacher, "CartPole-v1", episodes=6, seed=3, num_envs=4, progress="ppo on CartPole")
    out = capsys.readouterr()
    assert out.out == ""  # stdout stays clean for --json
    assert "ppo on CartPole" in out.err and "/6" in out.err and "mean return" in out.err
    np.testing.assert_array_equal(quiet.returns, shown.returns)
    np.testing.assert_array_equal(quiet.lengths, shown.lengths)
    assert quiet.summary == shown.summary


def test_training_bar_fields_are_named_and_only_shown_with_a_value():
    fields = Context._bar_fields
    nothing = SimpleNamespace(curve=SimpleNamespace(latest=None))
    assert fields(nothing, {"distill/loss": None}) == ""  # no "ret nan" before the first episode ends
    ctx = SimpleNamespace(curve=SimpleNamespace(latest=(1024, 440.0)))
    text = fields(ctx, {"rollout/ep_rew_mean": 21.04, "train/loss": 0.5, "distill/loss": 0.0123})
    assert text == "return of played episodes 21.0 | distill/loss 0.0123 | greedy eval 440.0 at step 1024"


def test_distill_writes_a_curve_png_and_names_its_folder_last(tmp_path, cli):
    argv = "distill policy-distillation --teacher ppo-CartPole-v1 --steps 256 --eval-every 128 --curve-episodes 1"
    code, out, err = cli(*argv.split(), "--eval-episodes", "2", "--runs-dir", str(tmp_path))
    assert code == 0, err
    (run,) = tmp_path.iterdir()
    assert (run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = out.strip().splitlines()[-1]
    assert last == f"run folder: {run} (summary.json, curve.png); tensorboard --logdir {run / 'tb'}"
    assert "final evaluation, student on CartPole-v1" in err and "curve point at step" in err
    assert "greedy eval" in err  # the training bar's field


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_states_family_defaults_not_constant_names(capsys):
    assert "default 100 on control and MinAtar, 10 on Atari" in _help(capsys, "teachers", "eval")
    for method in ("kickstarting", "ppd"):
        text = _help(capsys, "distill", method)
        assert "ATARI_" not in text and "32 minibatches" in text


def _cell(key: str, method: str = "bc", envs=("CartPole-v1",), steps: int | None = 1000) -> Cell:
    return Cell(key=key, label=method, method=method, teachers=["t"], envs=list(envs), seed=0, steps=steps)


def test_cpu_estimate_from_finished_runs_of_the_same_kind():
    assert cell_kind("bc__CartPole-v1__abcd1234__s2") == "bc__CartPole-v1__abcd1234"
    est = CpuEstimate()
    est.add(
        {"key": "bc__CartPole-v1__aaaa__s0", "method": "bc", "envs": ["CartPole-v1"]},
        {"cpu_s": 10.0, "env_steps": 1000},
    )
    est.add(
        {"key": "bc__CartPole-v1__aaaa__s1", "method": "bc", "envs": ["CartPole-v1"]},
        {"cpu_s": 20.0, "env_steps": 1000},
    )
    est.add({"key": "bc__CartPole-v1__aaaa__s3", "method": "bc", "envs": ["CartPole-v1"]}, {"env_steps": 1000})  # none
    same = _cell("bc__CartPole-v1__aaaa__s2")
    other_budget = _cell("bc__CartPole-v1__bbbb__s0", steps=4000)  # same method and env: 15 ms a step x 4000
    unknown = _cell("dagger__CartPole-v1__cccc__s0", method="dagger")
    assert est.run_s(same) == 15.0
    assert est.run_s(other_budget) == pytest.approx(60.0)
    assert est.run_s(unknown) is None
    assert est.left([same, other_budget, unknown]) == (pytest.approx(75.0), 1)
    assert cpu_left_text(300.0, 0, 2, 4) == "about 5.0 min of CPU left, 2.5 min with 2 workers on free cores"
    assert cpu_left_text(30.0, 1, 2, 2) == (
        "about 30 s of CPU left, 30 s with 2 workers on free cores (not counting 1 run of a kind none has finished yet)"
    )
    assert cpu_left_text(0.0, 3, 2, 3) == "CPU time left unknown (no finished run of these kinds yet)"


def test_bench_bar_counts_runs_done_of_the_total_and_the_cpu_left(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(TINY.replace("seeds = 2", "seeds = 3"))
    cells = load_suite(str(p)).cells
    out = tmp_path / "res"
    (out / "runs").mkdir(parents=True)
    first = {"cell": {"key": cells[0].key}, "summary": {"cpu_s": 8.0, "env_steps": 400}}
    (out / "runs" / f"{cells[0].key}.json").write_text(json.dumps(first))
    shown = _BenchProgress(True, cells, cells[1:], out, 2, "tiny")
    assert (shown.bar.n, shown.bar.total) == (1, 3)
    shown.ended(cells[1].key, "one done", {"cpu_s": 12.0, "env_steps": 400}, 0)
    assert shown.bar.n == 2 and [c.key for c in shown.left] == [cells[2].key]
    assert shown.estimate.run_s(cells[2]) == 10.0  # the mean of the two finished runs of its kind
    shown.close()
    err = capsys.readouterr().err
    assert "bench tiny: about 16 s of CPU left, 8 s with 2 workers on free cores" in err
    assert "2/3 runs" in err and "about 10 s of CPU left" in err and "one done" in err


def test_bench_without_out_leaves_the_committed_results_as_they_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    committed = Path("results/tiny")
    assert bench(str(suite), workers=1, out=str(committed), progress=False)["ran"] == 2
    before = {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()}
    r = bench(str(suite), workers=1, progress=False)
    assert r["ran"] == 0  # the committed records say which runs are finished
    assert {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()} == before
    assert Path(r["report"]).parent == default_out("tiny") == Path("runs/results/tiny")
    assert sorted(p.name for p in (default_out("tiny") / "runs").iterdir()) == sorted(
        p.name for p in (committed / "runs").iterdir()
    )
    assert main(["bench", str(suite), "--dry-run"]) == 0
