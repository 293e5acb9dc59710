"""The suite's teacher format: ``<name>.safetensors`` (weights) + ``<name>.json`` (metadata).

No pickle anywhere: safetensors holds only tensors, the JSON holds the architecture, the env and
preprocessing, the training record (steps, wall time, command) and the measured score. The JSON also
records the weights' SHA-256 so a corrupt or swapped weights file is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rl_distill.errors import TeacherError
from rl_distill.networks import ACTIVATIONS, Arch
from rl_distill.runs import atomic_write_bytes, atomic_write_json
from rl_distill.teachers.base import Teacher

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
"""The teacher-file versions this code reads (a file of another is refused, not guessed at)."""


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
    check_meta(meta, meta_path)
    return meta


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _widths(v: Any) -> bool:
    return isinstance(v, list) and all(_count(x) and x > 0 for x in v)


_TOP = {
    "id": (lambda v: isinstance(v, str), "text"),
    "env_id": (lambda v: v is None or isinstance(v, str), "an env id (text) or null"),
    "algo": (lambda v: v is None or isinstance(v, str), "text or null"),
    "library": (lambda v: isinstance(v, str), "text"),
    "weights_sha256": (lambda v: isinstance(v, str) and len(v) == 64, "a sha256 hex digest"),
    "protocol": (lambda v: v is None or isinstance(v, dict), "a table or null"),
    "score": (lambda v: v is None or isinstance(v, dict), "a table or null"),
    "training": (lambda v: v is None or isinstance(v, dict), "a table or null"),
    "imperfect": (lambda v: isinstance(v, str), "text"),
    "notes": (lambda v: isinstance(v, list), "a list"),
}
_SCORE = {
    **{k: (lambda v: v is None or _number(v), "a finite number or null") for k in ("mean", "std", "median", "iqm")},
    "human_normalized": (lambda v: v is None or _number(v), "a finite number or null"),
    "n": (lambda v: _count(v) and v > 0, "a whole number > 0"),
    "eval_seed": (_count, "a whole number >= 0"),
    "iqm_ci": (lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(map(_number, v))), "[lo, hi]"),
}
_TRAINING = {
    "steps": (_count, "a whole number >= 0"),
    "best_step": (lambda v: v is None or _count(v), "a whole number or null"),
    "wall_s": (lambda v: v is None or _number(v), "a finite number"),
    "curve": (lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v), "a list of tables"),
    "segments": (lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v), "a list of tables"),
}
_ARCH = {
    "kind": (lambda v: isinstance(v, str) and v in ("actor_critic", "q"), '"actor_critic" or "q"'),
    "obs_shape": (lambda v: _widths(v) and len(v) in (1, 3), "a list of 1 or 3 sizes > 0"),
    "n_actions": (lambda v: _count(v) and v > 0, "a whole number > 0"),
    "encoder": (lambda v: isinstance(v, str) and v in ("flatten", "cnn", "minatar"), '"flatten", "cnn" or "minatar"'),
    "cnn_channels": (lambda v: _widths(v) and len(v) in (1, 3), "a list of 1 or 3 channel counts > 0"),
    "cnn_features": (lambda v: _count(v) and v > 0, "a whole number > 0"),
    "pi_layers": (_widths, "a list of layer widths > 0"),
    "vf_layers": (_widths, "a list of layer widths > 0"),
    "activation": (lambda v: isinstance(v, str) and v in ACTIVATIONS, " or ".join(f'"{a}"' for a in ACTIVATIONS)),
}


def check_meta(meta: dict[str, Any], where: str | Path) -> None:
    """A teacher file's metadata against the format: a known ``format_version``, and every field the suite reads
    of its type (the architecture's too, before a network is built from it), each refusal one line naming the
    field. Fields the suite does not read are left alone (a newer exporter may add some)."""
    version = meta.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise TeacherError(
            f"{where}: format_version {version!r} is not one this rl-distill reads "
            f"({', '.join(map(str, SUPPORTED_VERSIONS))}); a newer rl-distill may have written it"
        )
    if not isinstance(meta.get("arch"), dict):
        raise TeacherError(f"{where}: arch must be a table of the network's architecture, got {meta.get('arch')!r}")
    missing = sorted({"kind", "obs_shape", "n_actions"} - set(meta["arch"]))
    if missing:
        raise TeacherError(f"{where}: arch lacks {', '.join(missing)}")
    for prefix, table, schema in (
        ("", meta, _TOP),
        ("arch.", meta["arch"], _ARCH),
        ("score.", meta.get("score") or {}, _SCORE),
        ("training.", meta.get("training") or {}, _TRAINING),
    ):
        for key, (ok, want) in schema.items():
            if key in table and not ok(table[key]):
                raise TeacherError(f"{where}: {prefix}{key} must be {want}, got {table[key]!r}")
    if meta.get("protocol") is not None and meta.get("env_id"):
        from rl_distill.envs import family_of

        try:
            family_of(meta["env_id"]).protocol(**meta["protocol"])
        except (TypeError, ValueError) as e:  # an unknown key, or a value of another type (UserError is a ValueError)
            raise TeacherError(f"{where}: protocol {meta['protocol']!r} is not one of {meta['env_id']}: {e}") from None


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
