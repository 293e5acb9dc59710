"""Shared test helpers: one call that runs a method through the real harness, a throwaway Pong teacher, and a
suite cell as bench snapshots it (for hand-made report folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rl_distill.networks import Arch, build_net
from rl_distill.teachers.checkpoint import save_teacher


def pong_teacher(tmp_path: Path, seed: int = 0, kind: str = "actor_critic") -> str:
    """Path of a random CNN teacher for ALE/Pong-v5 (deterministic weights for ``seed``): a PPO-like
    actor-critic, or with ``kind="q"`` a DQN-like Q-network."""
    arch = Arch(
        kind=kind,
        obs_shape=(4, 84, 84),
        n_actions=6,
        encoder="cnn",
        cnn_channels=(16, 16, 16),
        cnn_features=64,
        pi_layers=(),
        vf_layers=(),
    )
    torch.manual_seed(seed)
    net = build_net(arch)
    meta = {"id": "pong-test", "env_id": "ALE/Pong-v5", "algo": "ppo" if kind == "actor_critic" else "dqn"}
    return str(save_teacher(Path(tmp_path) / "pong", arch, net.state_dict(), meta))


def run_pong_smoke(method: str, tmp_path: Path, steps: int = 1024, teacher_kind: str = "actor_critic", **options):
    """Run ``method`` on Pong with the throwaway teacher and a rusu-27x student; returns (summary, run dir)."""
    teacher = pong_teacher(tmp_path, kind=teacher_kind)
    s = distill(method, tmp_path / "runs", teacher, steps, student="rusu-27x", eval_episodes=1, **options)
    return s, Path(s["run_dir"])


def distill(
    method: str,
    tmp_path: Path,
    teachers,
    steps: int | None = None,
    *,
    seed: int = 0,
    eval_episodes: int = 20,
    student: str | None = None,
    resume: bool = False,
    tensorboard: bool = False,
    checkpoint_every_s: float = 120.0,
    precision: str = "auto",
    keep_checkpoint: bool = True,
    **options,
):
    """``method`` through the real harness (no progress bar, no tensorboard); returns the summary. The finished run
    keeps its checkpoint (``keep_checkpoint``), which some tests read."""
    from rl_distill.distill import RunSpec, run
    from rl_distill.methods import get_method

    teachers = [teachers] if isinstance(teachers, str) else list(teachers)
    return run(
        get_method(method),
        RunSpec(
            method=method,
            teachers=teachers,
            student=student,
            steps=steps,
            seed=seed,
            progress=False,
            tensorboard=tensorboard,
            eval_episodes=eval_episodes,
            runs_dir=str(tmp_path),
            resume=resume,
            checkpoint_every_s=checkpoint_every_s,
            precision=precision,
            keep_checkpoint=keep_checkpoint,
            options=options,
        ),
    )


class Crash(Exception):
    """Raised by ``crash_when_logged`` in place of a killed process."""


def crash_when_logged(monkeypatch, key: str, value):
    """Make the harness checkpoint at every chance and raise ``Crash`` when a run logs ``key == value``, so a
    test can stop a run in the middle and resume it. Returns the real ``Context.log``: set it back before the
    resume (checkpoints stay forced)."""
    from rl_distill.distill import Context

    ckpt, log = Context.maybe_checkpoint, Context.log
    monkeypatch.setattr(
        Context, "maybe_checkpoint", lambda self, opt, state=None, force=False: ckpt(self, opt, state, force=True)
    )

    def log_or_crash(self, values):
        if values.get(key) == value:
            raise Crash
        log(self, values)

    monkeypatch.setattr(Context, "log", log_or_crash)
    return log


def one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit 2 with one `rl-distill: error:` line on stderr that holds every needle; the line."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rl-distill: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def suite_cell(
    label: str,
    method: str | None = None,
    *,
    env: str = "E",
    seed: int = 0,
    key: str | None = None,
    init_from: str | None = None,
    tags: dict[str, Any] | None = None,
    curve_points: int = 2,
) -> dict[str, Any]:
    """One cell of a suite snapshot (suite.json's ``cells``) with placeholder teacher, student and budget: enough
    for the report to read; ``method`` defaults to the label's first word."""
    return {
        "key": key or f"{label}__{env}__s{seed}",
        "label": label,
        "method": method or label.split()[0],
        "teachers": ["t"],
        "envs": [env],
        "seed": seed,
        "student": "s",
        "steps": 100,
        "options": {},
        "eval_episodes": 10,
        "curve_points": curve_points,
        "curve_episodes": 2,
        "init_from": init_from,
        "tags": tags or {},
    }
