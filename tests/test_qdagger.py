"""QDagger: its distillation term against a hand computation, the lambda schedule, a run that reaches its teacher,
determinism, resume, and refusals (its DQN's TD target, n-step windows and epsilon schedule: tests/test_td.py).

Measured (seed 0, one torch thread, 2 CPU cores shared with two teacher-training jobs): from dqn-CartPole-v1 at the
default 10,000 env steps (2,000 of them the teacher's), 500.0 over 20 episodes (100% of the teacher).
"""

import math
import types

import pytest
import torch
from helpers import Crash, crash_when_logged, distill

from rl_distill.cli import main
from rl_distill.errors import UserError
from rl_distill.methods import get_method
from rl_distill.methods.qdagger import Config, distill_term, distill_weight, teacher_policy_source
from rl_distill.runs import read_scalars


def test_distill_term_hand_computed():
    t = torch.tensor([[1.0, 0.0, -1.0]])
    q = torch.tensor([[0.2, 0.4, 0.0]])
    pt = [math.exp(v / 0.5) for v in (1.0, 0.0, -1.0)]
    pt = [v / sum(pt) for v in pt]
    ps = [math.exp(v / 0.1) for v in (0.2, 0.4, 0.0)]
    ps = [v / sum(ps) for v in ps]
    want = -sum(a * math.log(b) for a, b in zip(pt, ps))
    assert distill_term(t, q, teacher_tau=0.5, student_tau=0.1).item() == pytest.approx(want, rel=1e-5)


def test_lambda_schedule():
    lam = 2.0
    ten = [250.0] * 10
    assert distill_weight(lam, ten, 500.0, None, 10) == pytest.approx(1.0)  # CartPole: half the teacher's return
    assert distill_weight(lam, [600.0] * 10, 500.0, None, 10) == 0.0  # past the teacher: clipped at 0
    assert distill_weight(lam, [250.0] * 9, 500.0, None, 10) == lam  # fewer episodes than the window
    assert distill_weight(lam, [0.0] * 5 + ten, 500.0, None, 10) == pytest.approx(1.0)  # the last 10 only
    # Acrobot (floor -500): -292.5 is half way from the floor to the teacher's -85
    assert distill_weight(lam, [-292.5] * 10, -85.0, -500.0, 10) == pytest.approx(1.0)
    assert distill_weight(lam, [-500.0] * 10, -85.0, -500.0, 10) == pytest.approx(lam)
    # Pong (random -20.7): a student at -21 is below the floor, clipped at the full weight; one at -1.85 half way
    assert distill_weight(lam, [-21.0] * 10, 17.0, -20.7, 10) == pytest.approx(lam)
    assert distill_weight(lam, [-1.85] * 10, 17.0, -20.7, 10) == pytest.approx(1.0)
    # no teacher return, or one no better than the floor: no decay
    assert distill_weight(lam, ten, None, None, 10) == lam
    assert distill_weight(lam, ten, -30.0, -20.7, 10) == lam


def test_reaches_dqn_teacher_at_default_budget(tmp_path):
    s = distill("qdagger", tmp_path, "dqn-CartPole-v1", eval_episodes=20)
    assert s["percent_of_teacher"] >= 95, s["student_score"]
    cfg = Config()
    assert s["env_steps"] == get_method("qdagger").default_steps("CartPole-v1") == 10_000
    online = s["env_steps"] - cfg.teacher_steps
    assert s["gradient_steps"] == cfg.offline_steps + online * cfg.replay_ratio  # the offline steps are counted
    rows = read_scalars(s["run_dir"])
    offline = [r for r in rows if r.get("qdagger/phase") == 2]
    assert offline[-1]["qdagger/offline_steps"] == cfg.offline_steps and offline[-1]["step"] == cfg.teacher_steps
    lam = [r["distill/lambda"] for r in rows if r.get("qdagger/phase") == 3]
    assert lam[0] == 1.0 and min(lam) < 0.5  # it decays as the student's return nears the teacher's


def test_deterministic_and_dqn_from_scratch(tmp_path):
    opts = dict(teacher_steps=400, offline_steps=100, learning_starts=0, eval_episodes=3)
    a = distill("qdagger", tmp_path / "a", "ppo-CartPole-v1", 1_000, **opts)
    b = distill("qdagger", tmp_path / "b", "ppo-CartPole-v1", 1_000, **opts)
    assert a["student_score"] == b["student_score"]

    def scalars(run):  # every logged value but the clock's
        return [
            {k: v for k, v in r.items() if k not in ("time/wall_s", "time/cpu_s")} for r in read_scalars(run["run_dir"])
        ]

    assert scalars(a) == scalars(b) and any("train/td_loss" in r for r in scalars(a))
    scratch = distill(
        "qdagger", tmp_path / "c", "ppo-CartPole-v1", 600, lam=0.0, teacher_steps=0, offline_steps=0, eval_episodes=2
    )
    assert scratch["teacher_queries"] == 0 and scratch["gradient_steps"] == 0  # learning_starts 1,000 not reached


def test_resume_in_the_offline_phase(tmp_path, monkeypatch):
    opts = dict(teacher_steps=400, offline_steps=100, log_every=10, learning_starts=0, eval_episodes=2)
    log = crash_when_logged(monkeypatch, "qdagger/offline_steps", 50)
    with pytest.raises(Crash):
        distill("qdagger", tmp_path, "dqn-CartPole-v1", 1_200, **opts)
    monkeypatch.setattr("rl_distill.distill.Context.log", log)
    s = distill("qdagger", tmp_path, "dqn-CartPole-v1", 1_200, resume=True, **opts)
    assert s["resumed_from_step"] == 400 and s["env_steps"] == 1_200
    assert s["gradient_steps"] == 100 + 800 * 0.5  # offline steps done once, then the online ones
    rows = read_scalars(s["run_dir"])
    assert [r["qdagger/offline_steps"] for r in rows if "qdagger/offline_steps" in r][-6:] == [50, 60, 70, 80, 90, 100]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--teacher-tau", "0"], "--teacher-tau must be a finite number > 0, got 0.0"),
        (["--lam", "-1"], "--lam must be a finite number >= 0, got -1.0"),
        (["--teacher-steps", "0"], "--offline-steps 2000 needs transitions to train on"),
        (["--return-window", "101"], "--return-window must be at most 100 episodes, got 101"),
    ],
)
def test_bad_options_refused_in_one_line(tmp_path, capsys, argv, message):
    cmd = ["distill", "qdagger", "--teacher", "dqn-CartPole-v1", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert main([*cmd, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rl-distill: error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists()


def test_teacher_without_q_values_or_logits_refused():
    assert teacher_policy_source(types.SimpleNamespace(kind="q", name="t")) == "Q-values"
    assert teacher_policy_source(types.SimpleNamespace(kind="actor_critic", name="t")) == "logits"
    with pytest.raises(UserError, match="qdagger needs a teacher with Q-values .DQN. or policy logits .PPO.; t is"):
        teacher_policy_source(types.SimpleNamespace(kind="value", name="t"))


def test_family_settings_on_atari_and_minatar():
    """On Atari, CleanRL's qdagger settings (one gradient step of batch 32 every 4 env steps, Adam 1e-4, teacher play
    and offline steps 5% of the 1M budget each); on MinAtar its 100k memory and 5k + 5k; flags still win."""
    from rl_distill.distill import default_budget, method_config

    m = get_method("qdagger")
    cfg = method_config(m, {}, ["ALE/Pong-v5"])
    assert (cfg.lr, cfg.batch_size, cfg.replay_ratio, cfg.target_update, cfg.capacity) == (1e-4, 32, 0.25, 250, 100_000)
    assert default_budget(m, ["ALE/Pong-v5"]) == 1_000_000
    assert cfg.teacher_steps == cfg.offline_steps == 0.05 * default_budget(m, ["ALE/Pong-v5"])
    assert method_config(m, {"teacher_steps": 15_000}, ["ALE/Pong-v5"]).teacher_steps == 15_000
    mini = method_config(m, {}, ["MinAtar/Breakout-v1"])
    assert (mini.teacher_steps, mini.offline_steps, mini.capacity, mini.lr) == (5_000, 5_000, 100_000, 1e-3)
    assert method_config(m, {}, ["CartPole-v1"]).teacher_steps == Config().teacher_steps == 2_000
