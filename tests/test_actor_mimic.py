"""Actor-Mimic through the real harness: it learns (one and two experts), the feature regression
targets the experts' features, determinism, Atari smoke.

Measured on 2 loaded CPU cores with one torch thread (seed 0, 20 evaluation episodes): CartPole-v1 at
the default 2,000 env steps reaches 100% of the teacher (seeds 0-4); CartPole-v1 + Acrobot-v1 at 5,000
steps 100% / 99.9%.
"""

import functools
import json

import helpers
import numpy as np
import torch
from helpers import run_pong_smoke

from rl_distill.distill import load_student
from rl_distill.envs import make_env
from rl_distill.runs import read_scalars
from rl_distill.teachers import load_teacher

METHOD = "actor-mimic"


distill = functools.partial(helpers.distill, METHOD)


def test_learns_cartpole(tmp_path):
    s = distill(tmp_path, ["ppo-CartPole-v1"], 2_000)
    assert s["percent_of_teacher"] >= 95, s["student_score"]
    rows = read_scalars(s["run_dir"])
    assert all(
        k in rows[-2] for k in ("distill/loss", "distill/teacher_agreement", "distill/kl", "distill/feature_loss")
    )


def test_multitask(tmp_path):
    s = distill(tmp_path, ["ppo-CartPole-v1", "ppo-Acrobot-v1"], 5_000)
    assert isinstance(s["percent_of_teacher"], list) and len(s["percent_of_teacher"]) == 2
    assert all(p >= 90 for p in s["percent_of_teacher"]), s["percent_of_teacher"]


def test_feature_regression_targets_teacher_features(tmp_path):
    s = distill(tmp_path, ["ppo-CartPole-v1"], 2_000, eval_episodes=2, feature_beta=1.0)
    fl = [r["distill/feature_loss"] for r in read_scalars(s["run_dir"]) if "distill/feature_loss" in r]
    assert fl[-1] < 0.2 * fl[0], fl
    # The learned map f_0 (saved in the checkpoint) carries the student's features onto the teacher's,
    # on fresh states the teacher visits: the error is small next to the features' own variance.
    ck = torch.load(f"{s['run_dir']}/checkpoint.pt", weights_only=True)
    teacher, student = load_teacher("ppo-CartPole-v1"), load_student(s["run_dir"])
    f = torch.nn.Linear(student.features_dim, teacher.features_dim)
    f.load_state_dict({k.removeprefix("0."): v for k, v in ck["method"]["feature_maps"].items()})
    env = make_env("CartPole-v1", 8)
    obs, _ = env.reset(seed=123)
    seen = []
    for _ in range(40):
        seen.append(obs)
        obs, *_ = env.step(teacher(obs))
    env.close()
    obs = torch.as_tensor(np.concatenate(seen))
    with torch.no_grad():
        target = teacher.features(obs)
        err = (f(student(obs)["features"]) - target).pow(2).sum(-1).mean()
        var = (target - target.mean(0)).pow(2).sum(-1).mean()
    assert err < 0.1 * var, (err.item(), var.item())


def test_deterministic(tmp_path):
    a = distill(tmp_path / "a", ["ppo-CartPole-v1"], 400, eval_episodes=3)
    b = distill(tmp_path / "b", ["ppo-CartPole-v1"], 400, eval_episodes=3)
    assert a["student_score"] == b["student_score"] and a["env_steps"] == b["env_steps"] == 400
    assert (
        read_scalars(a["run_dir"])[-2]["distill/feature_loss"] == read_scalars(b["run_dir"])[-2]["distill/feature_loss"]
    )


def test_resume_keeps_feature_maps(tmp_path):
    first = distill(tmp_path, ["ppo-CartPole-v1"], 640, eval_episodes=2, feature_beta=1.0)
    run_dir = tmp_path / first["run_dir"].split("/")[-1]
    assert set(torch.load(run_dir / "checkpoint.pt", weights_only=True)["method"]["feature_maps"]) == {
        "0.weight",
        "0.bias",
    }
    (run_dir / "summary.json").unlink()  # as if evaluation never ran
    s = distill(tmp_path, ["ppo-CartPole-v1"], 1_280, eval_episodes=2, feature_beta=1.0, resume=True)
    assert s["run_dir"] == first["run_dir"] and s["env_steps"] == 1_280 and s["gradient_steps"] == 320
    fl = [(r["step"], r["distill/feature_loss"]) for r in read_scalars(s["run_dir"]) if "distill/feature_loss" in r]
    before = [v for step, v in fl if step <= 640]
    after = [v for step, v in fl if step > 640]
    # Restored maps continue where they were (~0.3); fresh ones would start again near the first value (~7).
    assert after[0] < 2 * before[-1] and after[0] < 0.2 * before[0], fl


def test_pong_smoke(tmp_path):
    s, run_dir = run_pong_smoke(METHOD, tmp_path, 2_000, teacher_kind="q", num_envs=4, batch_size=32, replay_ratio=0.05)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (
        summary["env_steps"] == 2_000 and summary["student"] == "cnn-16-16-16-64" and summary["gradient_steps"] == 100
    )
