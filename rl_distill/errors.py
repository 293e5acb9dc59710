"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""


class UserError(Exception):
    """A problem with what the user asked for (bad id, bad file, mismatched spaces)."""


class UnknownEnvError(UserError):
    """The env id is not one rl-distill can build."""


class TeacherError(UserError):
    """A teacher id, file or checkpoint that cannot be loaded."""


class SpaceMismatchError(UserError):
    """A teacher (or student) whose observation or action space does not fit the env."""


def check_count(name: str, value: int | None, minimum: int = 1, none_ok: bool = True) -> None:
    """``value`` is an int >= ``minimum`` (None allowed where it means "the default"), else a one-line error."""
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"--{name.replace('_', '-')} must be an integer >= {minimum}, got {value!r}")


def check_positive(name: str, value: float | None, none_ok: bool = True) -> None:
    """``value`` is a finite number > 0, else a one-line error."""
    import math

    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise UserError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value!r}")


def check_seed(value: int) -> None:
    check_count("seed", value, 0, none_ok=False)
    if value >= 2**32:
        raise UserError(f"--seed must be below 2**32, got {value}")


def check_device(device: str) -> None:
    """A device string torch accepts ("auto" too)."""
    if device == "auto":
        return
    import torch

    try:
        torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"--device {device!r} is not a device torch knows (auto, cpu, cuda, cuda:N)") from None


def check_probability(name: str, value: float) -> None:
    """``value`` in [0, 1], else a one-line error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise UserError(f"--{name.replace('_', '-')} must be a probability in [0, 1], got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown --{name.replace('_', '-')} {value!r}; choose one of {', '.join(choices)}")


def check_dir(name: str, path: str | None) -> None:
    """A folder the run may create or write into: not an existing file, and its nearest existing folder writable."""
    if path is None:
        return
    import os
    from pathlib import Path

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"--{name.replace('_', '-')} {path}: a file, not a folder")
    parent = next((q for q in (p, *p.parents) if q.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--{name.replace('_', '-')} {path}: {parent} is not a writable folder")
