"""The shared harness, through the bc method (the simplest): run dir, summary, errors, determinism."""

import json

import pytest
import torch
from helpers import distill

from rl_distill.distill import Context, load_student
from rl_distill.runs import read_scalars


def _bc(tmp_path, teacher="ppo-CartPole-v1", steps=6000, **kw):
    return distill("bc", tmp_path, teacher, steps, **kw)


def test_bc_cartpole_reaches_teacher_and_writes_run(tmp_path):
    s = _bc(tmp_path, tensorboard=True)
    assert s["percent_of_teacher"] >= 95
    for key in (
        "method",
        "envs",
        "teacher_score",
        "student_score",
        "percent_of_teacher",
        "env_steps",
        "teacher_queries",
        "gradient_steps",
        "wall_s",
        "student_params",
        "teacher_params",
        "protocol",
    ):
        assert key in s
    assert s["env_steps"] == s["teacher_queries"] == 6000 and s["gradient_steps"] > 0
    assert s["resumed_from_step"] is None and 0 < s["train_time_s"] <= s["train_wall_s"] <= s["wall_s"]
    assert 0 < s["cpu_s"] <= 1.2 * s["wall_s"]  # one torch thread; the CartPole envs run in-process
    assert s["machine"]["cores"] >= 1 and s["machine"]["cpu"] and s["machine"]["torch"].startswith("2.")
    run_dir = tmp_path / s["run_dir"].split("/")[-1]
    assert json.loads((run_dir / "summary.json").read_text())["student_score"] == s["student_score"]
    assert (run_dir / "config.json").exists() and list((run_dir / "tb").glob("events.out.tfevents*"))
    rows = read_scalars(run_dir)
    assert any("distill/loss" in r and "distill/teacher_agreement" in r for r in rows)
    student = load_student(run_dir)
    assert student.policy_params() == s["student_params"]


def test_bc_acrobot_within_ten_percent(tmp_path):
    s = _bc(tmp_path, "ppo-Acrobot-v1", steps=10000)
    t, m = s["teacher_score"], s["student_score"]["mean"]
    assert m >= t - 0.1 * abs(t)


def test_same_seed_same_summary(tmp_path):
    a = _bc(tmp_path / "a", steps=1024, epochs=2)
    b = _bc(tmp_path / "b", steps=1024, epochs=2)
    for k in ("student_score", "teacher_score", "env_steps", "teacher_queries", "gradient_steps"):
        assert a[k] == b[k]


def _one_line(code, out, err):
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rl-distill: error:"), err
    return lines[0]


def test_cli_mismatched_setups(cli):
    msg = _one_line(*cli("distill", "bc", "--teacher", "ppo-CartPole-v1", "--env", "Acrobot-v1", "--no-progress"))
    assert "shape" in msg
    msg = _one_line(
        *cli("distill", "dagger", "--teacher", "ppo-CartPole-v1", "--teacher", "ppo-Acrobot-v1", "--no-progress")
    )
    assert "single-task" in msg
    _one_line(*cli("distill", "no-such-method", "--teacher", "ppo-CartPole-v1"))
    _one_line(*cli("distill", "bc", "--teacher", "ppo-CartPole-v1", "--tau", "0.1"))
    _one_line(*cli("distill", "bc", "--teacher", "ppo-CartPole-v1", "--student", "cnn-1-2"))
    _one_line(*cli("distill", "bc", "--teacher", "ppo-CartPole-v1", "--env", "CartPole-v7"))
    _one_line(*cli("distill", "bc"))


def test_cli_json_summary(cli, tmp_path):
    code, out, _ = cli(
        "distill",
        "bc",
        "--teacher",
        "ppo-CartPole-v1",
        "--steps",
        "512",
        "--epochs",
        "1",
        "--eval-episodes",
        "2",
        "--runs-dir",
        str(tmp_path),
        "--no-progress",
        "--json",
    )
    s = json.loads(out)
    assert code == 0 and s["method"] == "bc" and s["env_steps"] == 512


SMALL = {
    "policy-distillation": {},
    "actor-mimic": {},
    "dagger": {"rounds": 2},
    "kickstarting": {"n_steps": 32},
    "on-policy": {},
    "bc": {"epochs": 1},
    "ppo": {"n_steps": 32},
}


class Killed(Exception):
    pass


@pytest.mark.parametrize("method", list(SMALL))
def test_every_method_resumes_after_a_kill(tmp_path, method, monkeypatch, capsys):
    """A run killed right after a checkpoint half-way (no summary.json) continues from it with --resume."""
    write = Context.maybe_checkpoint

    def write_then_die(self, *args, **kw):
        write(self, *args, **kw)
        if self.env_steps >= 512 and (self.run_dir / "checkpoint.pt").exists():
            raise Killed

    monkeypatch.setattr(Context, "maybe_checkpoint", write_then_die)
    with pytest.raises(Killed):
        distill(method, tmp_path, "ppo-CartPole-v1", 1024, eval_episodes=2, checkpoint_every_s=0, **SMALL[method])
    monkeypatch.undo()
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "summary.json").exists()
    # Pretend the killed part took 1,000 s: the summary's wall times cover the whole run, not the last part.
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert 0 < ck["elapsed_s"] < 600 and 0 < ck["cpu_s"] < 600
    torch.save({**ck, "elapsed_s": 1000.0, "cpu_s": 2000.0}, run_dir / "checkpoint.pt")
    s = distill(method, tmp_path, "ppo-CartPole-v1", 1024, eval_episodes=2, resume=True, **SMALL[method])
    assert s["run_dir"].endswith(run_dir.name) and s["env_steps"] >= 1024
    resumed_at = int(capsys.readouterr().err.split("resuming")[1].split(" at ")[1].split()[0])
    assert 512 <= resumed_at <= 1024  # bc checkpoints once, when its dataset is complete
    assert s["resumed_from_step"] == resumed_at
    assert 1000 < s["train_wall_s"] <= s["wall_s"] < 1600
    assert 2000 < s["cpu_s"] < 2600  # the CPU time of the killed part counts too


def test_untrained_student_evaluated_once_per_grid(tmp_path):
    """The first curve point (the untrained student) and the teacher's evaluation come from the shared cache for a
    second method of the same seed, with the numbers an uncached run gets."""
    from rl_distill.distill import RunSpec, run
    from rl_distill.methods import get_method

    cache = tmp_path / "cache"

    def go(method, seed, eval_cache):
        s = run(
            get_method(method),
            RunSpec(
                method=method,
                teachers=["ppo-CartPole-v1"],
                steps=1024,
                seed=seed,
                progress=False,
                tensorboard=False,
                eval_episodes=3,
                runs_dir=str(tmp_path / f"{method}{seed}{bool(eval_cache)}"),
                eval_every=512,
                curve_episodes=3,
                eval_cache=eval_cache,
            ),
        )
        rows = read_scalars(next(p for p in (tmp_path / f"{method}{seed}{bool(eval_cache)}").iterdir() if p.is_dir()))
        return [r["eval/mean_reward"] for r in rows if "eval/mean_reward" in r][0], s

    first, s_bc = go("bc", 0, str(cache))
    files = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(files) == 3  # the teacher and the untrained student, greedy and sampling
    labels = sorted(json.loads((cache / f).read_text())["policy"] for f in files)
    assert labels == ["ppo-CartPole-v1", "untrained mlp-64-64", "untrained mlp-64-64, sampling"]
    second, s_pd = go("policy-distillation", 0, str(cache))
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == files  # both read back, neither evaluated again
    uncached, s_pd_uncached = go("policy-distillation", 0, None)
    assert first == second == uncached
    assert s_pd["student_score"] == s_pd_uncached["student_score"]  # skipping an evaluation leaves training as it was
    assert s_pd["teacher_score"] == s_bc["teacher_score"]
    go("bc", 1, str(cache))
    assert len(list(cache.iterdir())) == 5  # another seed: another untrained student (greedy and sampling)


def test_learning_curve_has_the_sampling_students_return(tmp_path):
    from rl_distill.distill import RunSpec, run
    from rl_distill.methods import get_method
    from rl_distill.runs import read_scalars

    spec = RunSpec(
        method="bc",
        teachers=["ppo-CartPole-v1"],
        steps=1024,
        progress=False,
        tensorboard=False,
        eval_episodes=2,
        runs_dir=str(tmp_path),
        eval_every=512,
        curve_episodes=2,
    )
    s = run(get_method("bc"), spec)
    rows = read_scalars(s["run_dir"])
    sampled = [r["step"] for r in rows if "eval/sampled_mean_reward" in r]
    greedy = [r["step"] for r in rows if "eval/mean_reward" in r]
    assert sampled[0] == 0 and len(sampled) >= 2  # the untrained student, then each curve point
    assert greedy == sampled + [1024]  # beside every greedy curve point; the final evaluation is greedy only
