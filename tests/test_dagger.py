"""DAgger through the real harness: reaches its teachers, follows its beta schedule, resumes, is deterministic."""

import json
from pathlib import Path

import pytest
from helpers import Crash, crash_when_logged, distill, run_pong_smoke

from rl_distill.distill import Context
from rl_distill.methods import get_method
from rl_distill.rollout import Rollout
from rl_distill.runs import read_scalars


def _dagger(tmp_path, teacher="ppo-CartPole-v1", steps=None, **kw):
    return distill("dagger", tmp_path, teacher, steps, **kw)


def test_dagger_cartpole_reaches_teacher(tmp_path):
    s = _dagger(tmp_path)  # the default budget
    assert s["percent_of_teacher"] >= 95
    assert s["env_steps"] == s["teacher_queries"] == get_method("dagger").default_steps("CartPole-v1")
    rows = read_scalars(s["run_dir"])
    assert [r["distill/beta"] for r in rows if "distill/beta" in r] == [0.5**i for i in range(10)]
    sizes = [r["distill/dataset_size"] for r in rows if "distill/dataset_size" in r]
    assert sizes == sorted(sizes) and sizes[-1] == s["env_steps"]  # one growing aggregate
    assert all(k in r for r in rows if "distill/loss" in r for k in ("distill/teacher_agreement", "distill/kl"))


def test_dagger_acrobot_within_ten_percent(tmp_path):
    s = _dagger(tmp_path, "ppo-Acrobot-v1")
    t, m = s["teacher_score"], s["student_score"]["mean"]
    assert m >= t - 0.1 * abs(t)


def test_indicator_schedule_teacher_acts_in_round_one_only(tmp_path, monkeypatch):
    calls = []
    collect = Rollout.collect

    def spy(self, n_steps, **kw):
        b = collect(self, n_steps, **kw)
        calls.append((kw["actor"], kw["beta"], (b.actions == b.teacher_logits.argmax(-1)).all().item()))
        return b

    monkeypatch.setattr(Rollout, "collect", spy)
    s = _dagger(tmp_path, steps=1536, rounds=3, beta_schedule="indicator", epochs=1)
    betas = [r["distill/beta"] for r in read_scalars(s["run_dir"]) if "distill/beta" in r]
    assert betas == [1.0, 0.0, 0.0]
    assert {c[0] for c in calls} == {"mixture"}
    assert [c[1] for c in calls] == [1.0, 0.0, 0.0]  # 512 steps = 64 steps of 8 envs per round: one collect each
    assert calls[0][2]  # beta = 1: every action is the teacher's


def test_linear_schedule_and_cli_options(cli, tmp_path):
    code, out, err = cli(
        "distill",
        "dagger",
        "--teacher",
        "ppo-CartPole-v1",
        "--steps",
        "1024",
        "--rounds",
        "4",
        "--beta-schedule",
        "linear",
        "--eval-episodes",
        "2",
        "--runs-dir",
        str(tmp_path),
        "--no-progress",
        "--json",
    )
    assert code == 0, err
    s = json.loads(out)
    assert s["method_config"]["rounds"] == 4 and s["method_config"]["beta_schedule"] == "linear"
    assert [r["distill/beta"] for r in read_scalars(s["run_dir"]) if "distill/beta" in r] == [1.0, 0.75, 0.5, 0.25]
    code, out, err = cli(
        "distill", "dagger", "--teacher", "ppo-CartPole-v1", "--beta-schedule", "cosine", "--no-progress"
    )
    assert code == 2 and "unknown beta schedule" in err


def test_resume_keeps_dataset_and_round(tmp_path, monkeypatch):
    log = crash_when_logged(monkeypatch, "distill/round", 3)
    with pytest.raises(Crash):
        _dagger(tmp_path, steps=1280, rounds=4, num_envs=4, epochs=1)  # 320 steps a round
    monkeypatch.setattr(Context, "log", log)
    s = _dagger(tmp_path, steps=1280, resume=True, rounds=4, num_envs=4, epochs=1)
    assert s["env_steps"] == s["teacher_queries"] == 1280
    rows = read_scalars(s["run_dir"])
    rounds = [(r["distill/round"], r["distill/dataset_size"], r["step"]) for r in rows if "distill/round" in r]
    # rounds 1-2 from the first run, 3-4 after the resume: the dataset (640 states) and the round survived
    assert rounds == [(1, 320, 320), (2, 640, 640), (3, 960, 960), (4, 1280, 1280)]
    assert len(list(Path(tmp_path).iterdir())) == 1


def test_same_seed_same_summary(tmp_path):
    a = _dagger(tmp_path / "a", steps=1024, rounds=2, epochs=1)
    b = _dagger(tmp_path / "b", steps=1024, rounds=2, epochs=1)
    for k in ("student_score", "teacher_score", "env_steps", "teacher_queries", "gradient_steps"):
        assert a[k] == b[k]


def test_pong_smoke(tmp_path):
    s, run_dir = run_pong_smoke("dagger", tmp_path, rounds=2, num_envs=2, epochs=1, batch_size=64)
    assert (run_dir / "summary.json").exists() and s["env_steps"] == 1024 and s["student"] == "cnn-16-16-16-64"
