"""On-policy distillation (GKD) through the real harness: learns, lambda mixing, determinism, errors, Atari smoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import distill

from rl_distill.errors import UserError
from rl_distill.runs import read_scalars


def _run(tmp_path, teacher: str, steps: int | None, options: dict, **kw):
    return distill("on-policy", tmp_path, teacher, steps, **kw, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"divergence": "reverse-kl"},
        {"divergence": "forward-kl"},
        {"divergence": "jsd"},
        {"divergence": "skew-kl"},
        {"reward_form": "dense"},
    ],
    ids=["reverse-kl", "forward-kl", "jsd", "skew-kl", "dense"],
)
def test_learns_cartpole(tmp_path, options):
    s = _run(tmp_path, "ppo-CartPole-v1", None, options)
    assert s["percent_of_teacher"] >= 95, s["student_score"]


@pytest.mark.parametrize(
    "options", [{"divergence": "reverse-kl"}, {"reward_form": "dense"}], ids=["reverse-kl", "dense"]
)
def test_learns_acrobot(tmp_path, options):
    s = _run(tmp_path, "ppo-Acrobot-v1", None, options)
    teacher = s["teacher_score"]
    assert s["student_score"]["mean"] >= teacher - 0.1 * abs(teacher), (s["student_score"], teacher)


@pytest.mark.parametrize("lam, fraction", [(0.0, 0.0), (1.0, 1.0)])
def test_lambda_picks_the_data_source(tmp_path, lam, fraction):
    s = _run(tmp_path, "ppo-CartPole-v1", 1024, {"lam": lam}, eval_episodes=1)
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/on_policy_fraction" in r]
    assert rows and all(r["distill/on_policy_fraction"] == fraction for r in rows)
    assert all(r["distill/lambda"] == lam for r in rows)
    assert s["env_steps"] == 1024 and s["teacher_queries"] == 1024


def test_lambda_mixes(tmp_path):
    s = _run(tmp_path, "ppo-CartPole-v1", 4096, {"lam": 0.5}, eval_episodes=1)
    last = [r for r in read_scalars(s["run_dir"]) if "distill/on_policy_fraction" in r][-1]
    assert 0.0 < last["distill/on_policy_fraction"] < 1.0


@pytest.mark.parametrize("options", [{}, {"reward_form": "dense"}], ids=["divergence", "dense"])
def test_deterministic(tmp_path, options):
    a = _run(tmp_path / "a", "ppo-CartPole-v1", 512, options, eval_episodes=2)
    b = _run(tmp_path / "b", "ppo-CartPole-v1", 512, options, eval_episodes=2)
    assert a["student_score"] == b["student_score"]
    assert (a["env_steps"], a["gradient_steps"]) == (b["env_steps"], b["gradient_steps"])


def test_dense_logs_reward(tmp_path):
    s = _run(tmp_path, "ppo-CartPole-v1", 512, {"reward_form": "dense"}, eval_episodes=1)
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/reward_mean" in r]
    assert rows and all(r["distill/reward_mean"] <= 0.5 for r in rows)  # -reverse KL estimate: near or below zero
    assert {"distill/loss", "distill/kl", "distill/teacher_agreement", "distill/on_policy_fraction"} <= set(rows[0])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"divergence": "kl-ish"}, "unknown --divergence 'kl-ish'"),
        ({"reward_form": "sparse"}, "unknown --reward-form"),
        ({"reward_form": "dense", "lam": 0.5}, "needs --student-fraction 1"),
        ({"lam": 1.5}, "--student-fraction must be in"),
        ({"tau": 0.0}, "--tau must be > 0"),
    ],
)
def test_bad_options_are_one_line_user_errors(tmp_path, options, match):
    with pytest.raises(UserError, match=match) as e:
        _run(tmp_path, "ppo-CartPole-v1", 256, options)
    assert "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())  # refused before a run directory was made


def test_pong_smoke(tmp_path):
    from rl_distill.networks import Arch, build_net
    from rl_distill.teachers.checkpoint import save_teacher

    arch = Arch(
        kind="actor_critic",
        obs_shape=(4, 84, 84),
        n_actions=6,
        encoder="cnn",
        cnn_channels=(16, 16, 16),
        cnn_features=64,
        pi_layers=(),
        vf_layers=(),
    )
    net = build_net(arch)
    save_teacher(tmp_path / "pong", arch, net.state_dict(), {"id": "pong-test", "env_id": "ALE/Pong-v5", "algo": "ppo"})
    s = _run(tmp_path / "runs", str(tmp_path / "pong.json"), 1024, {}, eval_episodes=1, student="rusu-27x")
    assert s["env_steps"] == 1024 and s["gradient_steps"] > 0
    summary = json.loads((Path(s["run_dir"]) / "summary.json").read_text())
    assert summary["student"] == "cnn-16-16-16-64" and summary["envs"] == ["ALE/Pong-v5"]


def test_teacher_temperature():
    """tau divides the teacher's logits before the divergence and the dense reward (hand-computed values)."""
    import math

    import torch

    from rl_distill.methods.on_policy import Config, dense_reward, divergence_fn

    t = torch.tensor([[0.0, math.log(2.0)]])  # / 0.5 -> softmax = (1/5, 4/5)
    s = torch.zeros(1, 2)  # (1/2, 1/2)
    expect = 0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.8 / 0.5)
    assert divergence_fn(Config(divergence="forward-kl", tau=0.5))(t, s).item() == pytest.approx(expect, abs=1e-6)
    assert divergence_fn(Config(divergence="forward-kl"))(t, s).item() == pytest.approx(
        (1 / 3) * math.log((1 / 3) / 0.5) + (2 / 3) * math.log((2 / 3) / 0.5), abs=1e-6
    )
    batch = type(
        "B", (), {"teacher_logits": t, "actions": torch.tensor([1]), "logprobs": torch.tensor([math.log(0.5)])}
    )()
    assert dense_reward(batch, tau=0.5).item() == pytest.approx(math.log(0.8) - math.log(0.5), abs=1e-6)


def test_memory_replays_at_its_ratio_and_learns(tmp_path):
    s = _run(tmp_path, "ppo-CartPole-v1", None, {"memory": 4096, "replay_ratio": 0.5})
    assert s["gradient_steps"] == s["env_steps"] // 2 and s["method_config"]["memory"] == 4096
    assert s["percent_of_teacher"] >= 95, s["student_score"]
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/memory_size" in r]
    sizes = [r["distill/memory_size"] for r in rows]
    assert sizes == sorted(sizes) and sizes[-1] == 4096 and sizes[0] == 8 * 8  # a sliding memory, full at its size


def test_ramp_lets_the_teacher_play_first(tmp_path):
    s = _run(
        tmp_path,
        "ppo-CartPole-v1",
        4096,
        {"memory": 4096, "lambda_schedule": "ramp", "lambda_ramp": 0.5},
        eval_episodes=1,
    )
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/lambda" in r]
    lams = [r["distill/lambda"] for r in rows]
    assert lams[0] == 0.0 and lams[-1] == 1.0 and lams == sorted(lams)
    # lambda(t) = min(1, t / 0.5) at the step each chunk started (chunks of 64 env steps)
    assert all(r["distill/lambda"] == pytest.approx(min(1.0, (r["step"] - 64) / 4096 / 0.5)) for r in rows)
    assert 0.0 < rows[-1]["distill/on_policy_fraction"] < 1.0


def test_atari_defaults_give_a_memory_but_not_to_the_dense_form():
    from rl_distill.distill import method_config
    from rl_distill.methods import on_policy

    assert method_config(on_policy, {}, ["ALE/Pong-v5"]).memory == 20_000
    assert method_config(on_policy, {}, ["ALE/Pong-v5"]).divergence == "forward-kl"
    assert method_config(on_policy, {}, ["ALE/Pong-v5"]).lr == 2.5e-4
    assert method_config(on_policy, {}, ["CartPole-v1"]).lr == 1e-3
    assert method_config(on_policy, {"divergence": "reverse-kl"}, ["ALE/Pong-v5"]).divergence == "reverse-kl"
    assert method_config(on_policy, {"memory": 0}, ["ALE/Pong-v5"]).memory == 0
    assert method_config(on_policy, {"reward_form": "dense"}, ["ALE/Pong-v5"]).memory == 0
    assert method_config(on_policy, {}, ["CartPole-v1"]) == on_policy.Config()


@pytest.mark.parametrize(
    "options, match",
    [
        ({"reward_form": "dense", "memory": 100}, "takes no --memory"),
        ({"lambda_schedule": "linear"}, "choose constant or ramp"),
        ({"lambda_ramp": 0.0}, "--student-fraction-ramp must be in"),
        ({"memory": -1}, "--memory must be >= 0"),
        ({"replay_ratio": float("nan")}, "--replay-ratio must be"),
    ],
)
def test_bad_memory_options(tmp_path, options, match):
    with pytest.raises(UserError, match=match):
        _run(tmp_path, "ppo-CartPole-v1", 256, options)
    assert not any(tmp_path.iterdir())


def test_pong_diagnostics_read_over_aliased_actions(tmp_path):
    """Pong's FIRE repeats NOOP (RIGHTFIRE RIGHT, LEFTFIRE LEFT): the grouped scalars sit beside the plain ones;
    merging actions can only lower the teacher's entropy."""
    from helpers import run_pong_smoke

    s, run_dir = run_pong_smoke("on-policy", tmp_path, steps=512, memory=512)
    assert s["method_config"]["memory"] == 512
    rows = read_scalars(run_dir)
    stats = [r for r in rows if "distill/teacher_agreement_grouped" in r]
    assert stats and all(0.0 <= r["distill/teacher_agreement_grouped"] <= 1.0 for r in stats)
    assert all(0.0 <= r["distill/teacher_entropy_grouped"] <= r["distill/teacher_entropy"] + 1e-6 for r in stats)


def test_grouped_stats_by_hand():
    import math

    import torch

    from rl_distill.diagnostics import policy_stats
    from rl_distill.envs import action_groups

    groups = torch.tensor(action_groups("ALE/Pong-v5"))
    assert groups.tolist() == [0, 0, 1, 2, 1, 2]
    t = torch.log(torch.tensor([[0.3, 0.3, 0.1, 0.1, 0.1, 0.1]]))  # argmax NOOP; group probabilities (0.6, 0.2, 0.2)
    s = torch.log(
        torch.tensor([[0.05, 0.5, 0.15, 0.1, 0.1, 0.1]])
    )  # argmax FIRE: the same button; groups (0.55, 0.25, 0.2)
    st = policy_stats(t, s, groups)
    assert st["distill/teacher_agreement"] == 0.0 and st["distill/teacher_agreement_grouped"] == 1.0
    assert st["distill/teacher_entropy_grouped"] == pytest.approx(
        -(0.6 * math.log(0.6) + 2 * 0.2 * math.log(0.2)), abs=1e-5
    )
    assert st["distill/kl_grouped"] == pytest.approx(0.6 * math.log(0.6 / 0.55) + 0.2 * math.log(0.2 / 0.25), abs=1e-5)


def test_a_multi_task_round_means_each_scalar_over_the_games_that_log_it():
    """Pong logs grouped scalars, Breakout does not: one round of both (the continual suite's recovery stage) is
    logged, each scalar the mean of the rows that have it (it raised KeyError)."""
    from rl_distill.supervised import mean_stats

    pong = {"distill/kl": 0.2, "distill/teacher_agreement": 0.5, "distill/teacher_agreement_grouped": 0.75}
    breakout = {"distill/kl": 0.4, "distill/teacher_agreement": 0.25}
    assert mean_stats([pong, breakout, pong]) == pytest.approx(
        {"distill/kl": 0.8 / 3, "distill/teacher_agreement": 1.25 / 3, "distill/teacher_agreement_grouped": 0.75}
    )
    assert mean_stats([]) == {}
