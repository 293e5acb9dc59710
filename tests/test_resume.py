"""Interrupted runs: SIGINT / SIGTERM leave a checkpoint that --resume continues; --resume refuses a changed
option or a run another process holds; a user error leaves no folder; files get the umask's mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import distill

from rl_distill.distill import Context
from rl_distill.errors import UserError
from rl_distill.runs import atomic_write_json, cli_command, hold_lock


def _interrupt_at(monkeypatch, steps: int, sig: int = signal.SIGINT) -> None:
    """Send ``sig`` to this process once the run has logged ``steps`` env steps (as a user's Ctrl-C would)."""
    log = Context.log
    sent = []

    def log_then_signal(self, values):
        log(self, values)
        if self.env_steps >= steps and not sent:
            sent.append(1)
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(Context, "log", log_then_signal)


@pytest.mark.parametrize("method,options", [("ppo", {"n_steps": 32}), ("policy-distillation", {})])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_that_resume_continues(tmp_path, monkeypatch, capsys, method, options, sig):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _interrupt_at(monkeypatch, 256, sig)
    with pytest.raises(KeyboardInterrupt):
        distill(method, tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, **options)
    monkeypatch.undo()
    # The harness's handlers are gone: those from before the run are back (SIG_IGN for SIGINT under `cmd &`).
    assert {s: signal.getsignal(s) for s in before} == before
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "summary.json").exists()
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    # The checkpoint comes at the method's next safe point after the signal, long before the 120 s timer.
    assert 256 <= ck["env_steps"] < 2048
    err = capsys.readouterr().err
    assert f"checkpoint at {ck['env_steps']} env steps" in err and "--resume" in err
    s = distill(method, tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, resume=True, **options)
    assert s["run_dir"] == str(run_dir) and s["resumed_from_step"] == ck["env_steps"] and s["env_steps"] >= 2048


def test_resume_refuses_changed_options_and_keeps_the_config(tmp_path, monkeypatch):
    _interrupt_at(monkeypatch, 256)
    with pytest.raises(KeyboardInterrupt):
        distill("ppo", tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, n_steps=32)
    monkeypatch.undo()
    (run_dir,) = tmp_path.iterdir()
    before = (run_dir / "config.json").read_text()
    with pytest.raises(UserError, match=r"--lr \(\S+ -> 0.5\)"):
        distill("ppo", tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, resume=True, n_steps=32, lr=0.5)
    with pytest.raises(UserError, match=r"--student \(mlp-64-64 -> mlp-32\)"):
        distill("ppo", tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, resume=True, n_steps=32, student="mlp-32")
    # the first part ran under auto, which is fp32 for an MLP on every CPU
    with pytest.raises(UserError, match=r"--precision \(fp32 -> bf16\)"):
        distill("ppo", tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, resume=True, n_steps=32, precision="bf16")
    assert (run_dir / "config.json").read_text() == before
    assert list(tmp_path.iterdir()) == [run_dir]  # a refused resume makes no new folder either


def test_resume_refuses_a_run_another_process_holds(tmp_path, monkeypatch):
    _interrupt_at(monkeypatch, 256)
    with pytest.raises(KeyboardInterrupt):
        distill("ppo", tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, n_steps=32)
    monkeypatch.undo()
    (run_dir,) = tmp_path.iterdir()
    with hold_lock(run_dir / ".lock"), pytest.raises(UserError, match="being trained by another process"):
        distill("ppo", tmp_path, "ppo-CartPole-v1", 2048, eval_episodes=2, resume=True, n_steps=32)


class _FailingMethod:
    """A method whose train() finds a user error once the run folder exists."""

    NAME, MULTI_TASK = "failing", False

    class Config:
        pass

    @staticmethod
    def default_steps(env_id):
        return 100

    @staticmethod
    def train(ctx, cfg):
        raise UserError("a wrong input found while training")


def test_user_error_after_the_folder_exists_leaves_no_folder(tmp_path):
    from dataclasses import dataclass

    from rl_distill.distill import RunSpec, run

    _FailingMethod.Config = dataclass(_FailingMethod.Config)
    spec = RunSpec(method="failing", teachers=["ppo-CartPole-v1"], runs_dir=str(tmp_path), progress=False)
    with pytest.raises(UserError, match="found while training"):
        run(_FailingMethod, spec)
    assert list(tmp_path.iterdir()) == []


def test_resume_with_nothing_unfinished_says_it_starts_a_new_run(tmp_path, capsys):
    """distill --resume behaves as teachers train --resume: where there is nothing to resume, one line says so."""
    from dataclasses import dataclass

    from rl_distill.distill import RunSpec, run

    _FailingMethod.Config = dataclass(_FailingMethod.Config)
    spec = RunSpec(method="failing", teachers=["ppo-CartPole-v1"], runs_dir=str(tmp_path), progress=False, resume=True)
    with pytest.raises(UserError, match="found while training"):
        run(_FailingMethod, spec)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("--resume")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"--resume: no unfinished failing run of CartPole-v1 (seed 0) in {tmp_path}, so a new")


def test_runs_dir_that_is_a_file_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="a file, not a folder"):
        distill("bc", f, "ppo-CartPole-v1", 100)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_take_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


def test_command_recorded_only_for_the_cli(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/some/script.py", "--x"])
    assert cli_command() is None
    monkeypatch.setattr(sys, "argv", ["/venv/bin/rl-distill", "distill", "bc", "--lr", "1e-3"])
    assert cli_command() == "rl-distill distill bc --lr 1e-3"


def test_sigterm_to_the_cli_checkpoints_and_resume_continues(tmp_path):
    """The command a user runs: SIGTERM (a scheduler's stop) exits 130 with a checkpoint; --resume goes on."""
    cmd = [sys.executable, "-m", "rl_distill.cli", "distill", "ppo", "--teacher", "ppo-CartPole-v1"]
    cmd += ["--steps", "1000000", "--runs-dir", str(tmp_path), "--no-progress", "--eval-episodes", "2"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*/scalars.jsonl")):
        time.sleep(0.5)
    (scalars,) = tmp_path.glob("*/scalars.jsonl")
    while time.time() < deadline and not scalars.read_text().strip():
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "SIGTERM: checkpoint at" in err and "Traceback" not in err
    run_dir = scalars.parent
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert 0 < ck["env_steps"] < 1_000_000
    assert json.loads((run_dir / "config.json").read_text())["run"]["command"].startswith("rl-distill distill ppo")
    # --resume with another learning rate is refused (it names the change); the lock went with the process.
    r = subprocess.run([*cmd, "--resume", "--lr", "0.5"], capture_output=True, text=True)
    assert r.returncode == 2 and "--lr (" in r.stderr and "-> 0.5)" in r.stderr, r.stderr
    assert [p.name for p in Path(tmp_path).iterdir()] == [run_dir.name]


def test_sigterm_to_a_bench_with_workers_checkpoints_its_cells(tmp_path):
    """A 2-worker bench of 3 cells stopped with SIGTERM: each running cell writes its checkpoint and stops, the
    third (not yet handed to a worker, or handed but not started) never starts, no worker prints a traceback, the
    bench exits 130, and --resume continues the cells from their checkpoints."""
    suite = tmp_path / "long.toml"
    suite.write_text(
        'name = "long"\ndescription = "three long runs"\nseeds = 3\neval_episodes = 2\ncurve_points = 2\n'
        'curve_episodes = 2\n[[grid]]\nmethod = "ppo"\nenv = "CartPole-v1"\nsteps = 1000000\n'
    )
    runs, out = tmp_path / "runs", tmp_path / "out"
    cmd = [sys.executable, "-m", "rl_distill.cli", "bench", str(suite), "--workers", "2", "--no-progress"]
    cmd += ["--runs-dir", str(runs), "--out", str(out)]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and len([f for f in runs.glob("*/*/scalars.jsonl") if f.read_text().strip()]) < 2:
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=180)
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    checkpoints = sorted(runs.glob("*/*/checkpoint.pt"))
    assert len(checkpoints) == 2 and not list(runs.glob("*/*/summary.json"))
    assert len(list(runs.glob("*/*/config.json"))) == 2  # the third cell made no run folder
    for ck in checkpoints:
        assert 0 < torch.load(ck, weights_only=True)["env_steps"] < 1_000_000
