"""DistiLLM: the skew KL in both directions against hand-computed values, the adaptive student fraction on a
hand-made sequence of validation losses, the reuse ratio, determinism, a run that reaches its teacher, and bad
values refused in one line."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import distill

from rl_distill import losses
from rl_distill.methods import get_method
from rl_distill.methods.distillm import AdaptiveStudentFraction, pick_source, skew_divergence
from rl_distill.runs import read_scalars

TEACHER = "ppo-CartPole-v1"


def _softmax(x):
    e = [math.exp(v) for v in x]
    return [v / sum(e) for v in e]


def _skew(p, q, a):
    """KL(p || a p + (1 - a) q) by hand."""
    return sum(pi * math.log(pi / (a * pi + (1 - a) * qi)) for pi, qi in zip(p, q))


def test_skew_kl_both_directions_hand_computed():
    t = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    s = torch.tensor([[0.5, 0.5, 0.0], [1.0, -2.0, 0.0]])
    pt, ps = [_softmax(r) for r in t.tolist()], [_softmax(r) for r in s.tolist()]
    fwd = skew_divergence("skew-kl", 0.1)(t, s)
    rev = skew_divergence("skew-reverse-kl", 0.1)(t, s)
    assert fwd.shape == rev.shape == (2,)
    for i in range(2):
        assert fwd[i].item() == pytest.approx(_skew(pt[i], ps[i], 0.1), rel=1e-5)  # KL(T || 0.1 T + 0.9 S)
        assert rev[i].item() == pytest.approx(_skew(ps[i], pt[i], 0.1), rel=1e-5)  # KL(S || 0.1 S + 0.9 T)
    assert fwd[0].item() != pytest.approx(rev[0].item(), rel=1e-3)
    # alpha = 0 is plain KL each way; a larger alpha bounds the divergence further (skew KL <= log 1/alpha).
    assert torch.allclose(skew_divergence("skew-kl", 0.0)(t, s), losses.forward_kl(t, s), atol=1e-6)
    assert torch.allclose(skew_divergence("skew-reverse-kl", 0.0)(t, s), losses.reverse_kl(t, s), atol=1e-6)
    assert (skew_divergence("skew-kl", 0.5)(t, s) < fwd).all()
    # tau divides the teacher's logits: T = softmax((0, log 2) / 0.5) = (1/5, 4/5) against S = (1/2, 1/2).
    t2, s2 = torch.tensor([[0.0, math.log(2.0)]]), torch.zeros(1, 2)
    expect = _skew([0.2, 0.8], [0.5, 0.5], 0.1)
    assert skew_divergence("skew-kl", 0.1, tau=0.5)(t2, s2).item() == pytest.approx(expect, rel=1e-5)


def test_skew_kl_bounded_where_the_student_puts_no_mass():
    t = torch.tensor([[0.0, 0.0]])
    s = torch.tensor([[0.0, -50.0]])  # the student gives the teacher's second action ~e^-50
    assert losses.forward_kl(t, s).item() > 20
    assert skew_divergence("skew-kl", 0.1)(t, s).item() < math.log(1 / 0.1)


def test_adaptive_fraction_rises_exactly_when_the_validation_loss_does_not_improve():
    phi = AdaptiveStudentFraction(start=0.0, step=0.1)
    seq = [1.0, 0.8, 0.9, 0.7, 0.7, 0.75, 0.5, 0.6]
    raised = [phi.update(v) for v in seq]
    assert raised == [False, False, True, False, True, True, False, True]  # no new lowest loss: +0.1
    assert phi.value == pytest.approx(0.4) and phi.best == 0.5 and (phi.checks, phi.raises) == (8, 4)
    # min_delta: an improvement must beat the lowest loss by more than it.
    phi = AdaptiveStudentFraction(start=0.2, step=0.1, min_delta=0.15)
    values = []
    for v in [1.0, 0.9, 0.8, 0.5]:
        phi.update(v)
        values.append(phi.value)
    assert values == pytest.approx([0.2, 0.3, 0.3, 0.3])
    # capped at 1, and it never falls.
    phi = AdaptiveStudentFraction(start=0.95, step=0.1)
    for v in [1.0, 2.0, 3.0, 0.1]:
        phi.update(v)
    assert phi.value == 1.0
    again = AdaptiveStudentFraction(0.0, 0.1)
    again.load_state_dict(phi.state_dict())
    assert again.state_dict() == phi.state_dict()


def test_pick_source_draws_with_phi():
    g = torch.Generator().manual_seed(0)
    assert pick_source(0.0, g) == "teacher" and pick_source(1.0, g) == "student"
    draws = [pick_source(0.3, g) for _ in range(2000)]
    assert 0.25 < draws.count("student") / len(draws) < 0.35


def _last(rows, key):
    return [r[key] for r in rows if key in r][-1]


@pytest.mark.parametrize("reuse", [0.25, 0.5])
def test_reuse_sets_gradient_steps_per_env_step(tmp_path, reuse):
    s = distill("distillm", tmp_path, TEACHER, 1024, eval_episodes=1, reuse=reuse, student_fraction=0.5)
    rows = read_scalars(s["run_dir"])
    teacher, student, held = (_last(rows, f"distill/{k}_states") for k in ("teacher", "student", "held_out"))
    assert teacher + student + held == s["env_steps"] == 1024 and student > 0 and held > 0
    assert s["gradient_steps"] == int(reuse * teacher) + int(reuse * student)  # every trained state: reuse steps
    assert s["teacher_queries"] == s["env_steps"]  # the teacher labels every state, whoever played it


def test_fraction_rises_in_a_run_where_validation_never_improves(tmp_path):
    """min_delta 1 nat: no check after the first (which sets the reference) can improve, so each raises phi by 0.1
    and the student plays more."""
    s = distill("distillm", tmp_path, TEACHER, 2048, eval_episodes=1, min_delta=1.0, val_every=8)
    rows = read_scalars(s["run_dir"])
    checks, raises = _last(rows, "distill/val_checks"), _last(rows, "distill/val_raises")
    assert checks >= 3 and raises == checks - 1
    assert _last(rows, "distill/student_fraction") == pytest.approx(min(1.0, 0.1 * raises))
    assert _last(rows, "distill/on_policy_fraction") > 0.0
    assert all(r["distill/student_fraction"] == 0.0 for r in rows if r.get("distill/val_checks") == 0)


def test_deterministic(tmp_path):
    opts = {"student_fraction": 0.3, "val_every": 8, "val_size": 32, "eval_episodes": 3}
    a = distill("distillm", tmp_path / "a", TEACHER, 1024, **opts)
    b = distill("distillm", tmp_path / "b", TEACHER, 1024, **opts)
    assert a["student_score"] == b["student_score"]
    assert (a["env_steps"], a["gradient_steps"], a["teacher_queries"]) == (
        b["env_steps"],
        b["gradient_steps"],
        b["teacher_queries"],
    )

    def scalars(s):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_scalars(s["run_dir"])]

    assert scalars(a) == scalars(b)
    assert any("distill/val_loss" in r for r in scalars(a))


def test_cartpole_reaches_teacher_at_default_budget(tmp_path):
    s = distill("distillm", tmp_path, TEACHER, eval_episodes=20)  # the default budget
    assert s["percent_of_teacher"] >= 95, s["student_score"]
    assert s["env_steps"] == get_method("distillm").default_steps("CartPole-v1") == s["teacher_queries"]
    rows = read_scalars(s["run_dir"])
    assert {"distill/loss", "distill/student_fraction", "distill/val_loss", "distill/teacher_agreement"} <= set().union(
        *rows
    )
    assert s["method_config"]["alpha"] == 0.1 and s["method_config"]["student_fraction"] == 0.0


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--alpha", "1.5"], "--alpha must be a probability in [0, 1]"),
        (["--skew-alpha", "-0.1"], "--skew-alpha must be a probability in [0, 1]"),
        (["--alpha", "1"], "--alpha must be in [0, 1)"),
        (["--reuse", "-1"], "--reuse must be a finite number > 0"),
        (["--reuse", "0"], "--reuse must be a finite number > 0"),
        (["--student-fraction", "1.5"], "--student-fraction must be a probability"),
        (["--student-fraction-step", "1.5"], "--student-fraction-step must be a probability"),
        (["--val-fraction", "0"], "--val-fraction must be in (0, 1]"),
        (["--val-every", "0"], "--val-every must be an integer >= 1"),
        (["--val-size", "-3"], "--val-size must be an integer >= 1"),
        (["--min-delta", "-1"], "--min-delta must be a finite number >= 0"),
        (["--divergence", "kl"], "unknown --divergence 'kl'"),
        (["--student-memory", "0"], "--student-memory must be an integer >= 1"),
        (["--tau", "0"], "--tau must be a finite number > 0"),
    ],
)
def test_bad_values_refused_in_one_line(tmp_path, cli, argv, match):
    runs = tmp_path / "runs"
    code, out, err = cli("distill", "distillm", "--teacher", TEACHER, "--runs-dir", str(runs), "--no-progress", *argv)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rl-distill: error: "), err
    assert match in lines[0], lines[0]
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder was made


def test_interrupted_run_resumes_with_its_memories_and_fraction(tmp_path, monkeypatch):
    """SIGINT after the validation set is full: the checkpoint keeps phi, the checks and the memories, and --resume
    goes on from them (phi and the check count never go back)."""
    import os
    import signal

    from rl_distill.distill import Context

    log, sent = Context.log, []

    def log_then_interrupt(self, values):
        log(self, values)
        if self.env_steps >= 1536 and not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Context, "log", log_then_interrupt)
    opts = {"min_delta": 1.0, "val_every": 8, "eval_episodes": 1}
    with pytest.raises(KeyboardInterrupt):
        distill("distillm", tmp_path, TEACHER, 2048, **opts)
    monkeypatch.undo()
    s = distill("distillm", tmp_path, TEACHER, 2048, resume=True, **opts)
    assert s["resumed_from_step"] >= 1536 and s["env_steps"] == 2048
    rows = [r for r in read_scalars(s["run_dir"]) if "distill/val_checks" in r]
    for key in ("distill/val_checks", "distill/student_fraction", "distill/held_out_states"):
        values = [r[key] for r in rows]
        assert values == sorted(values) and values[-1] > 0, key
    assert s["gradient_steps"] == int(0.25 * _last(rows, "distill/teacher_states")) + int(
        0.25 * _last(rows, "distill/student_states")
    )
