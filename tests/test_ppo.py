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
    # rl-zoo3's CartPole entry: 196 iterations of 8 envs x 32 steps (the last cut to 80), 20 epochs of 1 minibatch
    assert s["gradient_steps"] == 20 * 196
    rows = read_scalars(s["run_dir"])
    assert all(r["time/teacher_queries"] == 0 for r in rows if "time/teacher_queries" in r)
    assert not any(k.startswith("distill/") for r in rows for k in r)
    lr = [r["train/learning_rate"] for r in rows if "train/learning_rate" in r]
    assert lr[0] == pytest.approx(1e-3) and lr == sorted(lr, reverse=True)  # rl-zoo3's lin_0.001


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


def test_ppo_takes_rl_zoo3_settings():
    """The baseline's settings are the shipped teachers' own (hyperparams.toml), SB3's defaults where silent."""
    from rl_distill.distill import method_config
    from rl_distill.methods import kickstarting, ppo

    lunar = method_config(ppo, {}, ["LunarLander-v3"])
    assert (lunar.num_envs, lunar.n_steps, lunar.minibatches, lunar.n_epochs) == (16, 1024, 16 * 1024 // 64, 4)
    assert (lunar.gamma, lunar.gae_lambda, lunar.ent_coef, lunar.lr, lunar.anneal_lr) == (
        0.999,
        0.98,
        0.01,
        3e-4,
        False,
    )
    pong = method_config(ppo, {"lr": 1e-4}, ["ALE/Pong-v5"])
    assert (pong.num_envs, pong.n_steps, pong.minibatches, pong.clip, pong.anneal_clip, pong.clip_rewards) == (
        8,
        128,
        4,
        0.1,
        True,
        True,
    )
    assert pong.lr == 1e-4  # what a user or suite sets wins
    assert method_config(kickstarting, {}, ["ALE/Pong-v5"]).ent_coef == 0.01
    mixed = method_config(kickstarting, {}, ["CartPole-v1", "Acrobot-v1"])  # two entries: no single setting, CleanRL's
    assert mixed == kickstarting.Config()


def test_clip_anneals(tmp_path):
    s = _ppo(tmp_path, steps=1024, num_envs=4, n_steps=64, anneal_clip=True, clip=0.2)
    clips = [r["train/clip_range"] for r in read_scalars(s["run_dir"]) if "train/clip_range" in r]
    assert clips == pytest.approx([0.2 * (1 - k / 4) for k in range(4)])  # 4 iterations of 256 steps, as SB3's lin_0.2
