"""A finished run's student as a teacher: ``--teacher runs/<run>`` (or a bench ``cell:LABEL``).

Qwen3's recovery stage distils a model's own earlier checkpoint back into it, and expert iteration's and
continual learning's teachers are students too. The student's weights are read from the run's
``student.safetensors`` (never a pickle); one of its heads acts: the head of the env the teacher is asked for,
or the run's only trained env.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rl_distill.errors import TeacherError, UserError
from rl_distill.networks import Arch
from rl_distill.students import Student, load_student
from rl_distill.teachers.base import Teacher


def is_run_dir(path: str | Path) -> bool:
    """A folder with a trained student (``student.json``): a finished run of ``rl-distill distill``."""
    return (Path(path) / "student.json").is_file()


class _Head(nn.Module):
    """One task of a multi-head student as a teacher network (logits, value, features). The task index is a
    buffer, so that the weights' fingerprint (the evaluation cache's key) tells the heads apart."""

    def __init__(self, student: Student, task: int):
        super().__init__()
        self.student = student
        self.register_buffer("task", torch.tensor(task))
        self.features_dim = student.features_dim

    def forward(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.student(obs, int(self.task))


class StudentTeacher(Teacher):
    """A trained student behind the :class:`Teacher` interface: an actor-critic teacher with its own head's
    logits, value and features."""

    def __init__(self, student: Student, task: int, meta: dict[str, Any], device: str | torch.device = "cpu"):
        self.meta = meta
        self.arch = Arch("actor_critic", tuple(student.obs_shapes[task]), int(student.n_actions[task]))
        self.net = _Head(student, task).eval().requires_grad_(False)
        self.device = torch.device(device)
        self.net.to(self.device)


def load_run_teacher(run_dir: str | Path, device: str | torch.device = "cpu", env_id: str | None = None) -> Teacher:
    """The student of the finished run ``run_dir`` as a teacher for ``env_id`` (default: the run's first env,
    the one it trained on first), with a one-line error for an env the student has no head for."""
    p = Path(run_dir)
    try:
        info = json.loads((p / "student.json").read_text())
        envs = list(info.get("envs") or [])
    except (OSError, ValueError, AttributeError):
        raise TeacherError(f"teacher {p}: unreadable student.json") from None
    try:
        student = load_student(p, device)
    except UserError as e:
        raise TeacherError(f"teacher {p}: {e}") from None
    env = env_id or (envs[0] if envs else None)
    if env not in envs:
        raise TeacherError(
            f"teacher {p}: its student has no head for {env} (it has heads for {', '.join(envs) or 'no env'})"
        )
    task = envs.index(env)
    summary = _read_summary(p)
    scores = {t.get("env"): t.get("student_score") for t in summary.get("tasks", [])}
    meta = {
        "id": f"run:{p}",
        "source": str(p),
        "env_id": env,
        "algo": "student",
        "student": info.get("spec"),
        "score": scores.get(env),
        "from_run": {"run_dir": str(p), "method": summary.get("method"), "task": task},
    }
    return StudentTeacher(student, task, meta, device)


def _read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        s = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return s if isinstance(s, dict) else {}
