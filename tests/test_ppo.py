"""PPO from scratch, the baseline: learns CartPole without ever asking the teacher."""

import pytest

from helpers import distill, run_pong_smoke
from rl_distill.methods import get_method
from rl_distill.runs import read_scalars


def _ppo(tmp_path, steps=None, **kw):
    return distill("ppo", tmp_path, "ppo-CartPole-v1", steps, **kw)


def test_ppo_learns_cartpole_without_teacher_queries(tmp_path):
    s = _ppo(tmp_path, steps=50_000)
    assert s["student_score"]["mean"] >= 150
    assert s["teacher_queries"] == 0 and s["env_steps"] == 50_000
    assert s["gradient_steps"] == 16 * 98  # 98 iterations of 512 steps (the last cut to 336), 4 epochs x 4 minibatches
    rows = read_scalars(s["run_dir"])
    assert all(r["time/teacher_queries"] == 0 for r in rows if "time/teacher_queries" in r)
    assert not any(k.startswith("distill/") for r in rows for k in r)
    lr = [r["train/learning_rate"] for r in rows if "train/learning_rate" in r]
    assert lr[0] == pytest.approx(2.5e-4) and lr == sorted(lr, reverse=True)  # annealed


@pytest.mark.slow
def test_ppo_default_budget(tmp_path):
    s = _ppo(tmp_path)
    assert s["env_steps"] == get_method("ppo").default_steps("CartPole-v1")
    assert s["student_score"]["mean"] >= 150 and s["teacher_queries"] == 0


def test_same_seed_same_summary(tmp_path):
    a = _ppo(tmp_path / "a", steps=1024, n_epochs=2)
    b = _ppo(tmp_path / "b", steps=1024, n_epochs=2)
    for k in ("student_score", "env_steps", "gradient_steps"):
        assert a[k] == b[k]


def test_pong_smoke(tmp_path):
    s, run_dir = run_pong_smoke("ppo", tmp_path, num_envs=2, n_steps=64, n_epochs=1)
    assert (run_dir / "summary.json").exists() and s["env_steps"] == 1024 and s["teacher_queries"] == 0
