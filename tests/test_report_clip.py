"""A suite's `[report] video`: bench keeps the students of that env's cells beside their records, and the report
shows the teacher beside the best of them in a small GIF; a wrong env is refused when the suite loads, and records
without kept weights give a report that says why it has no clip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rl_distill.bench import bench
from rl_distill.cli import main
from rl_distill.records import STUDENT_FILES, student_dir
from rl_distill.report import bench_report
from rl_distill.report.clip import CLIP_STEPS, best_row
from rl_distill.video import GAP, TITLE_H

ENV = "MinAtar/Breakout-v1"
SUITE = f"""
name = "clip"
seeds = 1
eval_episodes = 2
[report]
video = "{ENV}"
[[grid]]
method = ["bc", "policy-distillation"]
env = "{ENV}"
steps = 400
[[grid]]
method = "bc"
env = "CartPole-v1"
steps = 400
"""


def decode_gif(path: Path) -> list[np.ndarray]:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    """The tiny suite, run once by bench: its suite file, runs folder and results folder."""
    d = tmp_path_factory.mktemp("clip")
    (d / "s.toml").write_text(SUITE)
    runs, res = d / "runs", d / "res"
    r = bench(str(d / "s.toml"), workers=1, runs_dir=str(runs), out=str(res), progress=False)
    assert r["failed"] == 0 and r["ran"] == 3
    return d / "s.toml", runs, res


def _best_key(res: Path) -> str:
    """The key of the cell on ENV with the highest final score, the suite's first on a tie, from its records."""
    keys = [c["key"] for c in json.loads((res / "suite.json").read_text())["cells"] if ENV in c["envs"]]
    scores = [
        json.loads((res / "runs" / f"{k}.json").read_text())["summary"]["tasks"][0]["student_score"]["mean"]
        for k in keys
    ]
    assert len(keys) == 2
    return keys[scores.index(max(scores))]


def test_bench_keeps_the_video_envs_students_and_the_report_shows_the_best_beside_its_teacher(suite_run):
    _, _, res = suite_run
    kept = sorted(p.name for p in (res / "students").iterdir())
    assert len(kept) == 2 and all(ENV.replace("/", "-") in k for k in kept)  # not the CartPole cell's
    for k in kept:
        assert sorted(p.name for p in student_dir(res, k).iterdir()) == sorted(STUDENT_FILES)
        assert (student_dir(res, k) / "student.safetensors").stat().st_size < 1_000_000
    gif = res / "video.gif"
    assert gif.stat().st_size < 2_000_000
    frames = decode_gif(gif)
    assert 1 < len(frames) <= CLIP_STEPS + 1
    assert frames[0].shape == (TITLE_H + 160, 2 * 160 + GAP, 3)  # two MinAtar panels side by side
    readme = (res / "README.md").read_text()
    best = _best_key(res)
    assert "## Clip" in readme and "](video.gif)" in readme
    line = next(x for x in readme.splitlines() if x.startswith(f"{ENV}: the teacher ppo-MinAtar-Breakout-v1 (left)"))
    assert f"`{best}`" in line


def test_records_without_kept_weights_give_a_report_that_says_why_there_is_no_clip(suite_run, tmp_path, capsys):
    _, _, res = suite_run
    old = tmp_path / "old"
    shutil.copytree(res / "runs", old / "runs")
    shutil.copy(res / "suite.json", old / "suite.json")
    assert main(["report", str(old)]) == 0
    capsys.readouterr()
    readme = (old / "README.md").read_text()
    assert f"No clip of {ENV}: the weights of its best student (`{_best_key(res)}`) are not kept" in readme
    assert "video.gif" not in readme and not (old / "video.gif").exists()


def test_a_report_from_the_runs_folder_keeps_the_students_it_lacks(suite_run, tmp_path):
    _, runs, res = suite_run
    out = tmp_path / "out"
    bench_report(runs, out)
    assert sorted(p.name for p in (out / "students").iterdir()) == sorted(p.name for p in (res / "students").iterdir())
    assert len(decode_gif(out / "video.gif")) > 1


def test_the_best_student_is_the_highest_score_the_first_on_a_tie():
    rows = [
        {"key": "a", "env": ENV, "score": 2.0},
        {"key": "b", "env": ENV, "score": 3.0},
        {"key": "c", "env": ENV, "score": 3.0},
        {"key": "d", "env": "CartPole-v1", "score": 500.0},
        {"key": "e", "env": ENV, "score": 9.0, "trained": False},
    ]
    assert best_row(rows, ENV)["key"] == "b" and best_row(rows, "Acrobot-v1") is None


@pytest.mark.parametrize(
    "value, msg",
    [
        (
            '"Acrobot-v1"',
            "[report] video = 'Acrobot-v1' is not an env of this suite (MinAtar/Breakout-v1, CartPole-v1)",
        ),
        ('"MinAtar/Nope-v1"', "[report] video = 'MinAtar/Nope-v1' is not an env of this suite"),
        ("3", "[report] video must be a string, not 3"),
    ],
)
def test_a_video_env_outside_the_suite_is_one_line_and_writes_nothing(tmp_path, capsys, value, msg):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.replace(f'video = "{ENV}"', f"video = {value}"))
    argv = ["bench", str(path), "--out", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rl-distill: error: {path}: ") and msg in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_the_suite_snapshot_carries_the_video_env(suite_run):
    _, runs, res = suite_run
    for d in (runs, res):
        assert json.loads((d / "suite.json").read_text())["report"]["video"] == ENV
