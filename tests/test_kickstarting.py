"""Kickstarting through the real harness: reaches its teachers (one or two), decays lambda, is deterministic."""

import math

import pytest
from helpers import distill, run_pong_smoke

from rl_distill.methods import get_method
from rl_distill.runs import read_scalars


def _kick(tmp_path, teachers=("ppo-CartPole-v1",), steps=None, **kw):
    return distill("kickstarting", tmp_path, teachers, steps, **kw)


def test_kickstarting_cartpole_reaches_teacher(tmp_path):
    s = _kick(tmp_path)  # the default budget
    assert s["percent_of_teacher"] >= 95
    assert s["env_steps"] == s["teacher_queries"] == get_method("kickstarting").default_steps("CartPole-v1")
    rows = read_scalars(s["run_dir"])
    keys = set().union(*rows)
    for k in (
        "distill/lambda",
        "distill/loss",
        "distill/kl",
        "train/policy_gradient_loss",
        "train/value_loss",
        "train/entropy_loss",
        "train/approx_kl",
        "train/clip_fraction",
        "train/loss",
        "rollout/ep_rew_mean",
    ):
        assert k in keys, k
    kl = [r["distill/kl"] for r in rows if "distill/kl" in r]
    assert kl[-1] < 0.2 * kl[0]  # the student moved onto its teacher


def test_kickstarting_acrobot_within_ten_percent(tmp_path):
    s = _kick(tmp_path, ["ppo-Acrobot-v1"])
    t, m = s["teacher_score"], s["student_score"]["mean"]
    assert m >= t - 0.1 * abs(t)


def test_kickstarting_two_teachers(tmp_path):
    s = _kick(tmp_path, ["ppo-CartPole-v1", "ppo-Acrobot-v1"], steps=60_000)
    assert isinstance(s["percent_of_teacher"], list) and len(s["percent_of_teacher"]) == 2
    assert all(p >= 90 for p in s["percent_of_teacher"]), s["percent_of_teacher"]
    keys = set().union(*read_scalars(s["run_dir"]))
    assert {"rollout/ep_rew_mean/CartPole-v1", "rollout/ep_rew_mean/Acrobot-v1"} <= keys


@pytest.mark.parametrize(
    "schedule,expected",
    [
        ("constant", lambda t: 2.0),
        ("linear", lambda t: 2.0 * (1 - t)),
        ("exponential", lambda t: 2.0 * 0.1**t),
    ],
)
def test_lambda_follows_its_schedule(tmp_path, schedule, expected):
    # 8 iterations of 4 envs x 64 steps; lambda is set from the budget spent before each iteration
    s = _kick(
        tmp_path, steps=2048, num_envs=4, n_steps=64, n_epochs=1, lam=2.0, lambda_schedule=schedule, lam_final_ratio=0.1
    )
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/lambda" in r]
    assert [r["step"] for r in rows] == [256 * (k + 1) for k in range(8)]
    assert [r["distill/lambda"] for r in rows] == pytest.approx([expected(k / 8) for k in range(8)])
    if schedule != "constant":
        lams = [r["distill/lambda"] for r in rows]
        assert all(a > b for a, b in zip(lams, lams[1:]))


def test_budget_is_spent_exactly(tmp_path):
    s = _kick(
        tmp_path, steps=1000, num_envs=4, n_steps=64, n_epochs=1, minibatches=4
    )  # 3 full iterations + one of 58 steps
    assert s["env_steps"] == s["teacher_queries"] == 1000
    assert s["gradient_steps"] == 4 * 1 * 4  # iterations x epochs x minibatches


def test_same_seed_same_summary(tmp_path):
    a = _kick(tmp_path / "a", steps=1024, n_epochs=2)
    b = _kick(tmp_path / "b", steps=1024, n_epochs=2)
    for k in ("student_score", "teacher_score", "env_steps", "teacher_queries", "gradient_steps"):
        assert a[k] == b[k]


def test_pong_smoke(tmp_path):
    s, run_dir = run_pong_smoke("kickstarting", tmp_path, num_envs=2, n_steps=64, n_epochs=1)
    assert (run_dir / "summary.json").exists() and s["env_steps"] == s["teacher_queries"] == 1024
    assert s["percent_of_teacher"] is None or math.isfinite(s["percent_of_teacher"])


@pytest.mark.parametrize("method", ["kickstarting", "ppd"])
def test_atari_defaults_are_rl_zoo3_with_32_minibatches(method):
    """On Atari the PPO inside kickstarting and PPD takes rl-zoo3's entry with its rollout in 32 minibatches of 32
    (8x the Adam steps; kickstarting also holds the learning rate, the next test); elsewhere rl-zoo3's entry as it
    is, as PPO from scratch."""
    from rl_distill.distill import method_config
    from rl_distill.rl import zoo_ppo_settings

    ks = get_method(method)
    pong = method_config(ks, {}, ["ALE/Pong-v5"])
    zoo = zoo_ppo_settings(["ALE/Pong-v5"])
    assert zoo["minibatches"] == 4 and (pong.num_envs, pong.n_steps, pong.minibatches) == (8, 128, 32)
    assert pong.num_envs * pong.n_steps // pong.minibatches == 32
    own = {"minibatches"} | ({"anneal_lr"} if method == "kickstarting" else set())
    assert all(getattr(pong, k) == v for k, v in zoo.items() if k not in own)
    assert method_config(ks, {"minibatches": 4}, ["ALE/Pong-v5"]).minibatches == 4  # a flag over the default
    cart = method_config(ks, {}, ["CartPole-v1"])
    assert all(getattr(cart, k) == v for k, v in zoo_ppo_settings(["CartPole-v1"]).items())


def test_atari_defaults_hold_lambda_and_the_learning_rate_and_options_override_them():
    from rl_distill.distill import method_config

    kick = get_method("kickstarting")
    pong = method_config(kick, {}, ["ALE/Pong-v5"])
    assert (pong.lambda_schedule, pong.lam, pong.anneal_lr) == ("constant", 20.0, False)
    assert (pong.lr, pong.clip, pong.anneal_clip, pong.minibatches) == (
        2.5e-4,
        0.1,
        True,
        32,
    )  # rl-zoo3, 32 minibatches
    mine = method_config(kick, {"lambda_schedule": "linear", "lam": 5.0}, ["ALE/Pong-v5"])
    assert (mine.lambda_schedule, mine.lam, mine.anneal_lr) == ("linear", 5.0, False)
    cartpole = method_config(kick, {}, ["CartPole-v1"])  # control keeps the decaying lambda_0 = 5
    assert (cartpole.lambda_schedule, cartpole.lam) == ("linear", 5.0)
