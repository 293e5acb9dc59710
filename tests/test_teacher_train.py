"""`teachers train` as a sequence of steps: SIGINT / SIGTERM leave a checkpoint that --resume continues, a run
another process holds is refused, a bad runs dir or a user error leaves no folder, and a seed fixes the scores."""

from __future__ import annotations

import json
import os
import signal

import pytest

import rl_distill.evaluation
from rl_distill.errors import UserError
from rl_distill.runs import hold_lock
from rl_distill.teachers.train import TrainConfig, train_teacher


def _cfg(tmp_path, algo="ppo", steps=4096, **kw) -> TrainConfig:
    return TrainConfig(
        env_id="CartPole-v1",
        algo=algo,
        steps=steps,
        runs_dir=str(tmp_path),
        progress=False,
        eval_every=1024,
        final_episodes=2,
        eval_episodes=2,
        **kw,
    )


def _signal_in_evaluation(monkeypatch, sig: int, times: int = 1) -> None:
    """The first periodic evaluation sends ``sig`` to this process ``times`` times (as a user's Ctrl-C would)."""
    evaluate, sent = rl_distill.evaluation.evaluate, []

    def evaluate_then_signal(*args, **kwargs):
        if not sent:
            sent.append(1)
            for _ in range(times):
                os.kill(os.getpid(), sig)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(rl_distill.evaluation, "evaluate", evaluate_then_signal)


def _interrupted_run(tmp_path, monkeypatch, algo="ppo", sig=signal.SIGINT):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _signal_in_evaluation(monkeypatch, sig)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(_cfg(tmp_path, algo))
    monkeypatch.undo()
    # The harness's handlers are gone again: the ones from before the run are back.
    assert {s: signal.getsignal(s) for s in before} == before
    (run_dir,) = tmp_path.iterdir()
    return run_dir


@pytest.mark.parametrize("algo,sig", [("ppo", signal.SIGINT), ("ppo", signal.SIGTERM), ("dqn", signal.SIGINT)])
def test_signal_checkpoints_and_resume_finishes(tmp_path, monkeypatch, capsys, algo, sig):
    run_dir = _interrupted_run(tmp_path, monkeypatch, algo, sig)
    state = json.loads((run_dir / "state.json").read_text())
    step = state["segments"][-1]["end_step"]
    assert step == 1024  # the step of the evaluation the signal came in, far short of the budget
    assert [e["step"] for e in state["evals"]] == [1024]
    assert (run_dir / "checkpoint.zip").exists() and (run_dir / "replay.pkl").exists() == (algo == "dqn")
    assert not (run_dir / "summary.json").exists() and not (run_dir / "teacher.json").exists()
    name = signal.Signals(sig).name
    err = capsys.readouterr().err
    assert f"{name}: checkpoint at {step} steps in {run_dir}; the same command with --resume continues it" in err

    summary = train_teacher(_cfg(tmp_path, algo, resume=True))
    assert f"resuming {run_dir} at {step} steps" in capsys.readouterr().err
    assert summary["run_dir"] == str(run_dir) and summary["steps"] >= 4096
    assert (run_dir / "summary.json").exists() and (run_dir / "teacher.json").exists()
    segments = json.loads((run_dir / "state.json").read_text())["segments"]
    assert [(s["start_step"], s["end_step"]) for s in segments] == [(0, step), (step, summary["steps"])]


def test_resume_with_nothing_unfinished_says_it_starts_a_new_run(tmp_path, capsys):
    first = train_teacher(_cfg(tmp_path, steps=1024))  # finished: its checkpoint is gone
    capsys.readouterr()
    second = train_teacher(_cfg(tmp_path, steps=1024, resume=True))
    err = capsys.readouterr().err
    assert second["run_dir"] != first["run_dir"]
    assert f"--resume: no unfinished ppo run of CartPole-v1 (seed 0) in {tmp_path}, so a new one starts" in err


def test_second_signal_stops_at_once(tmp_path, monkeypatch):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _signal_in_evaluation(monkeypatch, signal.SIGINT, times=2)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(_cfg(tmp_path))
    monkeypatch.undo()
    assert {s: signal.getsignal(s) for s in before} == before
    (run_dir,) = tmp_path.iterdir()
    # Stopped inside the first evaluation, before the first checkpoint: nothing for --resume to pick up.
    assert not (run_dir / "checkpoint.zip").exists() and not (run_dir / "summary.json").exists()


def test_resume_refuses_a_run_another_process_holds(tmp_path, monkeypatch):
    run_dir = _interrupted_run(tmp_path, monkeypatch)
    before = (run_dir / "state.json").read_text()
    with hold_lock(run_dir / ".lock"), pytest.raises(UserError, match="is being trained by another process"):
        train_teacher(_cfg(tmp_path, resume=True))
    assert list(tmp_path.iterdir()) == [run_dir] and (run_dir / "state.json").read_text() == before


def test_runs_dir_that_is_a_file_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="a file, not a folder"):
        _cfg(f)


def test_user_error_before_the_first_checkpoint_leaves_no_folder(tmp_path, monkeypatch):
    import rl_distill.teachers.train as train

    def refuse(*args, **kwargs):
        raise UserError("a wrong input found once the folder exists")

    monkeypatch.setattr(train, "sb3_model", refuse)
    with pytest.raises(UserError, match="found once the folder exists"):
        train_teacher(_cfg(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_same_seed_same_scores(tmp_path):
    runs = []
    for name in ("a", "b"):
        s = train_teacher(_cfg(tmp_path / name, steps=2048))
        state = json.loads((tmp_path / name / s["run_dir"].split("/")[-1] / "state.json").read_text())
        runs.append((s["steps"], s["score"], [(e["step"], e["mean"], e["std"]) for e in state["evals"]], state["best"]))
    assert runs[0] == runs[1]
    assert [e[0] for e in runs[0][2]] == [1024, 2048]
