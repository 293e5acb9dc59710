"""Teachers: one interface (:class:`Teacher`) over the suite's checkpoints, SB3 zips and rl-zoo folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rl_distill.errors import TeacherError, UserTypeError, check_device
from rl_distill.teachers.base import Teacher

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


def shipped_ids() -> list[str]:
    """Ids of the teachers shipped in ``rl_distill/zoo``."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.json"))


def shipped_meta() -> list[dict[str, Any]]:
    """The metadata of every shipped teacher (no weights loaded)."""
    from rl_distill.teachers.checkpoint import read_meta

    return [read_meta(ZOO_DIR / i) for i in shipped_ids()]


def load_teacher(source: str | Path, device: str | torch.device = "cpu", env_id: str | None = None) -> Teacher:
    """Load a teacher from a shipped id (``ppo-CartPole-v1``), a suite checkpoint (``x.json`` /
    ``x.safetensors``), a Stable-Baselines3 ``.zip``, an rl-zoo3 run folder, a finished run of this suite (its
    student, the head for ``env_id``: teachers/from_run.py), or a Hugging Face Hub repo ``hf://ORG/REPO[/FILE]``
    (teachers/hub.py: downloaded and cached by the optional huggingface_hub). Never unpickles.
    """
    from rl_distill.teachers.checkpoint import load_checkpoint
    from rl_distill.teachers.from_run import is_run_dir, load_run_teacher
    from rl_distill.teachers.hub import is_hub_uri, load_hub_teacher
    from rl_distill.teachers.sb3 import load_rl_zoo_folder, load_sb3_zip

    if not isinstance(source, (str, Path)) or not str(source).strip():
        raise UserTypeError(f"a teacher is a shipped id, a path or hf://ORG/REPO, got {source!r}")
    if env_id is not None and not isinstance(env_id, str):
        raise UserTypeError(f"env_id must be an env id such as CartPole-v1, got {env_id!r}")
    if not isinstance(device, torch.device):
        check_device(device)
    s = str(source)
    if is_hub_uri(s):
        return load_hub_teacher(s, device, env_id)
    if s in shipped_ids():
        return load_checkpoint(ZOO_DIR / s, device)
    p = Path(s)
    if p.is_dir() and is_run_dir(p):
        return load_run_teacher(p, device, env_id)
    if p.is_dir():
        return load_rl_zoo_folder(p, device)
    if p.suffix == ".zip":
        if not p.exists():
            raise TeacherError(f"no such file: {p}")
        return load_sb3_zip(p, device, env_id=env_id)
    if p.suffix in (".json", ".safetensors") or p.with_name(p.name + ".json").exists():
        return load_checkpoint(p, device)
    if "/" in s or p.suffix:
        raise TeacherError(
            f"no teacher at {s!r} (expected a .json/.safetensors checkpoint, an SB3 .zip, an rl-zoo folder "
            "or a finished run folder)"
        )
    raise TeacherError(f"unknown teacher {s!r}; shipped: {', '.join(shipped_ids()) or 'none'}; or give a path")


__all__ = ["Teacher", "load_teacher", "shipped_ids", "shipped_meta", "ZOO_DIR"]
