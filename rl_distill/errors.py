"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback.

The ``check_*`` helpers are the value checks every input surface shares (CLI flags, suite files, the Python API):
each refuses in one line naming the flag. A value of the wrong type is a :class:`UserTypeError` (also a
``TypeError``), one of the right type out of range a :class:`UserValueError` (also a ``ValueError``), so a
library caller can catch either the suite's error or Python's convention.
"""

from __future__ import annotations

import math
from typing import Any


class UserError(Exception):
    """A problem with what the user asked for (bad id, bad file, mismatched spaces)."""


class UserValueError(UserError, ValueError):
    """A value of the right type but out of range (``--lr -1``, ``episodes=0``)."""


class UserTypeError(UserError, TypeError):
    """A value of the wrong type (``episodes=2.5``, ``seeds = true`` in a suite file)."""


class UnknownEnvError(UserError):
    """The env id is not one rl-distill can build."""


class TeacherError(UserError):
    """A teacher id, file or checkpoint that cannot be loaded."""


class SpaceMismatchError(UserError):
    """A teacher (or student) whose observation or action space does not fit the env."""


class DivergedError(UserError):
    """Training produced a non-finite loss or weights (nan, inf): the run stops rather than score a broken student."""


def flag(name: str) -> str:
    """``eval_episodes`` -> ``--eval-episodes``; a name that is already a flag (or a phrase) stays as it is."""
    return name if name.startswith("-") or " " in name else "--" + name.replace("_", "-")


def is_int(value: Any) -> bool:
    """An int that is not a bool (``True`` is an int to Python, never a count to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_count(name: str, value: int | None, minimum: int = 1, none_ok: bool = True) -> None:
    """``value`` is an int >= ``minimum`` (None allowed where it means "the default"), else a one-line error."""
    if value is None and none_ok:
        return
    if not is_int(value):
        raise UserTypeError(f"{flag(name)} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise UserValueError(f"{flag(name)} must be an integer >= {minimum}, got {value!r}")


def check_positive(name: str, value: float | None, none_ok: bool = True) -> None:
    """``value`` is a finite number > 0, else a one-line error."""
    if value is None and none_ok:
        return
    if not is_number(value):
        raise UserTypeError(f"{flag(name)} must be a finite number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise UserValueError(f"{flag(name)} must be a finite number > 0, got {value!r}")


def check_finite(name: str, value: float | None, minimum: float | None = None, none_ok: bool = True) -> None:
    """``value`` is a finite number (>= ``minimum`` where given), else a one-line error."""
    if value is None and none_ok:
        return
    want = "a finite number" + (f" >= {minimum:g}" if minimum is not None else "")
    if not is_number(value):
        raise UserTypeError(f"{flag(name)} must be {want}, got {value!r}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise UserValueError(f"{flag(name)} must be {want}, got {value!r}")


def check_seed(value: int) -> None:
    check_count("seed", value, 0, none_ok=False)
    if value >= 2**32:
        raise UserValueError(f"--seed must be below 2**32, got {value}")


DEVICES = "auto, cpu, cuda or cuda:N"


def check_device(device: str) -> None:
    """``auto``, ``cpu``, or ``cuda[:N]`` for a CUDA device that exists here; else a one-line error (torch knows
    more device types, mps, meta, xla ..., that the suite neither runs nor tests)."""
    if not isinstance(device, str):
        raise UserTypeError(f"--device must be one of {DEVICES}, got {device!r}")
    if device in ("auto", "cpu"):
        return
    kind, sep, index = device.partition(":")
    if kind != "cuda" or (sep and not (index.isdigit() and index.isascii())):
        raise UserValueError(f"--device {device!r}: rl-distill runs on {DEVICES}")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise UserValueError(f"--device {device}: torch sees no CUDA device here (use --device cpu or auto)")
    if sep and int(index) >= count:
        raise UserValueError(
            f"--device {device}: torch sees {count} CUDA device{'s' if count > 1 else ''} (cuda:0"
            + (f" to cuda:{count - 1}" if count > 1 else "")
            + ")"
        )


def check_probability(name: str, value: float) -> None:
    """``value`` in [0, 1], else a one-line error."""
    if not is_number(value):
        raise UserTypeError(f"{flag(name)} must be a probability in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise UserValueError(f"{flag(name)} must be a probability in [0, 1], got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise UserValueError(f"unknown {flag(name)} {value!r}; choose one of {', '.join(choices)}")


def check_dir(name: str, path: str | None) -> None:
    """A folder the run may create or write into: not empty, not an existing file, and its nearest existing folder
    writable."""
    if path is None:
        return
    import os
    from pathlib import Path

    if not isinstance(path, (str, os.PathLike)):
        raise UserTypeError(f"{flag(name)} must be a folder path, got {path!r}")
    if not str(path).strip():
        raise UserValueError(f"{flag(name)} is empty: give a folder (e.g. {flag(name)} runs)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserValueError(f"{flag(name)} {path}: a file, not a folder")
    parent = next((q for q in (p, *p.parents) if q.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserValueError(f"{flag(name)} {path}: {parent} is not a writable folder")
