"""The suite's teacher format: ``<name>.safetensors`` (weights) + ``<name>.json`` (metadata).

No pickle anywhere: safetensors holds only tensors, the JSON holds the architecture, the env and
preprocessing, the training record (steps, wall time, command) and the measured score. The JSON also
records the weights' SHA-256 so a corrupt or swapped weights file is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rl_distill.errors import TeacherError
from rl_distill.networks import Arch
from rl_distill.runs import atomic_write_bytes, atomic_write_json
from rl_distill.teachers.base import Teacher

FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paths_for(path: str | Path) -> tuple[Path, Path]:
    """``x``, ``x.json`` or ``x.safetensors`` -> (weights path, metadata path)."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_teacher(path: str | Path, arch: Arch, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write a suite checkpoint atomically; returns the metadata path."""
    weights_path, meta_path = paths_for(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    tmp = weights_path.with_name(weights_path.name + ".tmp")
    save_file(tensors, str(tmp))
    data = tmp.read_bytes()
    tmp.unlink()
    atomic_write_bytes(weights_path, data)
    full = dict(meta)
    full.update(
        format="rl-distill-teacher",
        format_version=FORMAT_VERSION,
        arch=arch.to_dict(),
        weights_sha256=hashlib.sha256(data).hexdigest(),
    )
    atomic_write_json(meta_path, full)
    return meta_path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a suite checkpoint, with a one-line error if it is missing or unreadable."""
    _, meta_path = paths_for(path)
    if not meta_path.exists():
        raise TeacherError(f"no teacher metadata at {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TeacherError(f"corrupt teacher metadata {meta_path}: {e.msg if hasattr(e, 'msg') else e}") from None
    if not isinstance(meta, dict) or meta.get("format") != "rl-distill-teacher":
        raise TeacherError(f"{meta_path} is not an rl-distill teacher checkpoint")
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Teacher:
    """Load a suite checkpoint (safetensors + JSON) as a :class:`Teacher`."""
    weights_path, meta_path = paths_for(path)
    meta = read_meta(path)
    if not weights_path.exists():
        raise TeacherError(f"teacher weights missing: {weights_path}")
    expected = meta.get("weights_sha256")
    if expected and _sha256(weights_path) != expected:
        raise TeacherError(f"teacher weights {weights_path} are corrupt or truncated (checksum mismatch)")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise TeacherError(f"cannot read teacher weights {weights_path}: {str(e).splitlines()[0]}") from None
    try:
        arch = Arch.from_dict(meta["arch"])
    except (KeyError, TypeError, ValueError) as e:
        raise TeacherError(f"bad architecture in {meta_path}: {e}") from None
    meta = dict(meta)
    meta.setdefault("source", str(meta_path))
    return Teacher(arch, state, meta, device, where=str(weights_path))
