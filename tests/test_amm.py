"""Adversarial moment-matching distillation: the policy's and the critic's moment losses against hand-computed
values, the hybrid weight's two ends, a run that reaches its teacher, determinism, resume, refused values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import distill

from rl_distill.cli import main
from rl_distill.distill import Context
from rl_distill.errors import UserError
from rl_distill.methods import get_method
from rl_distill.methods.amm import Config, critic_loss, hybrid, moment_gap, policy_loss
from rl_distill.runs import read_scalars

TEACHER = "ppo-CartPole-v1"

# Two states, three actions: teacher and student probabilities as logits (log-probabilities), and critic values.
P_T = [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]
P_S = [[0.25, 0.25, 0.5], [1 / 3, 1 / 3, 1 / 3]]
F = [[1.0, 0.0, -0.5], [0.5, -1.0, 0.25]]


def _tensors():
    t = torch.log(torch.tensor(P_T))
    s = torch.log(torch.tensor(P_S)).requires_grad_(True)
    f = torch.tensor(F, requires_grad=True)
    return t, s, f


def _gaps() -> list[float]:
    return [sum((pt - ps) * v for pt, ps, v in zip(*row)) for row in zip(P_T, P_S, F)]


def test_moment_gap_by_hand():
    t, s, f = _tensors()
    g = _gaps()
    assert g[0] == pytest.approx(0.25 * 1.0 + (-0.25) * (-0.5))  # 0.375
    assert moment_gap(t, s, f).tolist() == pytest.approx(g, abs=1e-6)
    # the teacher's temperature: logits / 0.5 square the probabilities before they are normalised
    sq = [[p * p / sum(q * q for q in row) for p in row] for row in P_T]
    g_tau = [sum((pt - ps) * v for pt, ps, v in zip(*row)) for row in zip(sq, P_S, F)]
    assert moment_gap(t, s, f, tau=0.5).tolist() == pytest.approx(g_tau, abs=1e-6)


def test_policy_loss_by_hand():
    """The student's loss is the mean moment; its gradient reaches the student's logits only, and is the
    all-actions policy gradient -pi_S(a) (f(a) - E_S f) / B, never the critic."""
    t, s, f = _tensors()
    loss = policy_loss(t, s, f)
    assert loss.item() == pytest.approx(sum(_gaps()) / 2, abs=1e-6)
    loss.backward()
    assert f.grad is None
    for i in range(2):
        mean_f = sum(p * v for p, v in zip(P_S[i], F[i]))
        expect = [-p * (v - mean_f) / 2 for p, v in zip(P_S[i], F[i])]
        assert s.grad[i].tolist() == pytest.approx(expect, abs=1e-6)


@pytest.mark.parametrize("penalty", [0.0, 0.5])
def test_critic_loss_by_hand(penalty):
    """The critic's loss is minus the mean moment plus penalty * mean_s sum_a f^2; its gradient reaches the critic
    only: -(pi_T - pi_S) / B + 2 * penalty * f / B."""
    t, s, f = _tensors()
    loss = critic_loss(t, s, f, penalty=penalty)
    l2 = sum(v * v for row in F for v in row) / 2
    assert loss.item() == pytest.approx(-sum(_gaps()) / 2 + penalty * l2, abs=1e-6)
    loss.backward()
    assert s.grad is None
    expect = [[-(pt - ps) / 2 + penalty * v for pt, ps, v in zip(*row)] for row in zip(P_T, P_S, F)]
    assert f.grad.flatten().tolist() == pytest.approx([v for row in expect for v in row], abs=1e-6)
    # with the penalty the best witness of a state is (pi_T - pi_S) / (2 * penalty): its gradient is zero there
    if penalty:
        best = torch.tensor([[(pt - ps) / (2 * penalty) for pt, ps in zip(*r)] for r in zip(P_T, P_S)])
        best.requires_grad_(True)
        critic_loss(t, s, best, penalty=penalty).backward()
        assert best.grad.abs().max().item() < 1e-6


def test_hybrid_weight_ends_use_one_term():
    on, off = torch.tensor(2.0), torch.tensor(10.0)
    assert hybrid(on, off, 0.0) is off and hybrid(on, off, 1.0) is on
    assert hybrid(None, off, 0.0) is off and hybrid(on, None, 1.0) is on  # the other term is never needed
    assert hybrid(on, off, 0.25).item() == pytest.approx(0.25 * 2 + 0.75 * 10)


@pytest.mark.parametrize("weight, fraction", [(0.0, 0.0), (1.0, 1.0)])
def test_hybrid_weight_ends_play_one_source(tmp_path, weight, fraction):
    """0: the teacher plays every step and only the off-policy moment is trained; 1: the student, the on-policy."""
    s = distill("amm", tmp_path, TEACHER, 512, eval_episodes=1, hybrid_weight=weight)
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/loss" in r]
    assert rows and all(r["distill/on_policy_fraction"] == fraction for r in rows)
    used, unused = (
        ("distill/moment_on", "distill/moment_off") if weight else ("distill/moment_off", "distill/moment_on")
    )
    assert all(used in r and unused not in r for r in rows)
    assert all(r["distill/loss"] == r[used] for r in rows)  # the hybrid moment is that one term
    assert s["env_steps"] == s["teacher_queries"] == 512
    assert s["gradient_steps"] == 512 // 64 * 4  # one 64-state minibatch an iteration, 4 epochs


def test_amm_cartpole_reaches_teacher(tmp_path):
    s = distill("amm", tmp_path, TEACHER)  # the default budget, both moments
    assert s["percent_of_teacher"] >= 95, s["student_score"]
    assert s["env_steps"] == get_method("amm").default_steps("CartPole-v1")
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/loss" in r]
    assert {"distill/moment_on", "distill/moment_off", "distill/critic_loss", "distill/teacher_agreement"} <= set(
        rows[0]
    )
    assert rows[-1]["distill/on_policy_fraction"] == 0.5
    assert rows[-1]["distill/tv_on"] < 0.5 * rows[0]["distill/tv_on"]  # the student's own states: closer to T


def test_amm_deterministic(tmp_path):
    a = distill("amm", tmp_path / "a", TEACHER, 1024, eval_episodes=3)
    b = distill("amm", tmp_path / "b", TEACHER, 1024, eval_episodes=3)
    assert a["student_score"] == b["student_score"]
    keys = ("distill/loss", "distill/critic_loss", "distill/moment_on", "distill/moment_off")
    scalars = [[tuple(r.get(k) for k in keys) for r in read_scalars(s["run_dir"])] for s in (a, b)]
    assert scalars[0] == scalars[1] and any(r[0] is not None for r in scalars[0])


def test_resume_restores_the_critics(tmp_path, monkeypatch):
    log, ckpt = Context.log, Context.maybe_checkpoint
    calls = {"n": 0}

    def crash_on_fifth(self, values):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        log(self, values)

    monkeypatch.setattr(Context, "log", crash_on_fifth)
    monkeypatch.setattr(
        Context, "maybe_checkpoint", lambda self, opt, state=None, force=False: ckpt(self, opt, state, True)
    )
    with pytest.raises(KeyboardInterrupt):
        distill("amm", tmp_path, TEACHER, 1024, eval_episodes=1)
    (run_dir,) = Path(tmp_path).iterdir()
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)["method"]
    assert saved["student_steps"] == saved["teacher_steps"] == 4 * 64
    assert {k.split(".")[1] for k in saved["critics"]} == {"on", "off"} and saved["critic_optimizer"]["state"]
    monkeypatch.setattr(Context, "log", log)
    s = distill("amm", tmp_path, TEACHER, 1024, eval_episodes=1, resume=True)
    assert s["env_steps"] == 1024 and s["run_dir"] == str(run_dir)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"critic_lr": -1e-3}, "--critic-lr must be a finite number > 0"),
        ({"lr": 0.0}, "--lr must be a finite number > 0"),
        ({"hybrid_weight": 1.5}, r"--hybrid-weight must be a probability in \[0, 1\]"),
        ({"hybrid_weight": -0.1}, r"--hybrid-weight must be a probability in \[0, 1\]"),
        ({"hybrid_weight": math.nan}, r"--hybrid-weight must be a probability in \[0, 1\]"),
        ({"critic_steps": 0}, "--critic-steps must be an integer >= 1"),
        ({"critic_bound": math.inf}, "--critic-bound must be a finite number > 0"),
        ({"critic_penalty": -0.5}, "--critic-penalty must be a finite number >= 0"),
        ({"tau": 0.0}, "--tau must be a finite number > 0"),
        ({"critic_hidden": 2.5}, "--critic-hidden must be an integer >= 1"),
    ],
)
def test_bad_values_refused_in_one_line(tmp_path, options, match):
    with pytest.raises(UserError, match=match) as e:
        Config(**options)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=match.split(" must be")[0] + " must be") as e:  # the harness may say it first
        distill("amm", tmp_path, TEACHER, 256, **options)
    assert "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


@pytest.mark.parametrize(
    "flag, value", [("--critic-lr", "-0.001"), ("--hybrid-weight", "2"), ("--critic-steps", "0"), ("--tau", "nan")]
)
def test_bad_flags_are_one_error_line(tmp_path, capsys, flag, value):
    argv = ["distill", "amm", "--teacher", TEACHER, "--runs-dir", str(tmp_path), "--no-progress", flag, value]
    code = main(argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("rl-distill: error: ") and flag in err[0], err
    assert not any(tmp_path.iterdir())


def test_minatar_family_gives_amm_four_times_the_passes():
    """MinAtar's method_defaults raise amm's epochs to 16 (4 on every other family); an explicit option wins."""
    from rl_distill.distill import method_config

    amm = get_method("amm")
    assert method_config(amm, {}, ["MinAtar/Breakout-v1"]).epochs == 16
    assert method_config(amm, {}, ["CartPole-v1"]).epochs == Config().epochs == 4
    assert method_config(amm, {"epochs": 4}, ["MinAtar/Breakout-v1"]).epochs == 4


def test_minatar_amm_takes_sixteen_policy_steps_an_iteration(tmp_path):
    s = distill("amm", tmp_path, "ppo-MinAtar-Breakout-v1", 256, eval_episodes=1)
    assert s["gradient_steps"] == 256 // 128 * 16  # 128 env steps an iteration (64 a source), one minibatch, 16 passes
