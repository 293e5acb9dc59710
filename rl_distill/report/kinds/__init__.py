"""One module per ``[report] kind``, registered here by its name: the README section the kind adds and the
``[report]`` keys it reads.

Every suite's README has the same sections (rl_distill/report/sections.py); a kind adds its own after the final
scores and may write files beside the README. Each module has ``KIND``, a :class:`Kind` named as it is registered
in :data:`KINDS`. A suite's ``[report]`` table is checked against its kind when the suite loads and when its report
is drawn (:func:`check_report`): a misspelt kind or key is a one-line error naming the allowed ones, not a report
of another kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rl_distill.errors import UserError

KINDS = {
    "lineage": "lineage",
    "efficiency": "efficiency",
    "sweep": "sweep",
    "continual": "continual",
    "expert-iteration": "expert_iteration",
    "ppo-vs-sb3": "ppo_vs_sb3",
}
"""``[report] kind`` -> its module in rl_distill/report/kinds/."""

DEFAULT_KIND = "lineage"
"""The kind of a suite whose ``[report]`` names none."""

COMMON_KEYS = ("kind", "threshold", "notes", "video")
"""The ``[report]`` keys of every kind: the kind, the fraction of the teacher that the steps-to columns count to
(default 0.9), the text of the "Against the papers" section and the env (one of the suite's) whose teacher the
report shows beside the best student in a short GIF (rl_distill/report/clip.py)."""

_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "threshold": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "logx": ("true or false", lambda v: isinstance(v, bool)),
    "baseline": (
        "a series label or a list of them",
        lambda v: isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v)),
    ),
}
"""The keys whose value is not a string: what it must be, and the test of it."""
_STRING = ("a string", lambda v: isinstance(v, str))


@dataclass(frozen=True)
class Report:
    """What a kind draws from: the suite snapshot, the results folder, one row per (run, task), one summary row per
    series and env, and the fraction of the teacher the steps-to columns count to."""

    suite: dict[str, Any]
    out: Path
    rows: list[dict[str, Any]]
    summary_rows: list[dict[str, Any]]
    threshold: float

    @property
    def settings(self) -> dict[str, Any]:
        """The suite's ``[report]`` table."""
        return self.suite.get("report", {})


def no_section(report: Report) -> list[str]:
    """A kind that adds nothing to the sections every suite has."""
    return []


@dataclass(frozen=True)
class Kind:
    """A report kind: its name, its ``[report]`` keys, whether the aggregate over envs applies, and its section."""

    name: str
    """The ``[report] kind`` it is registered by."""
    keys: tuple[str, ...] = ()
    """The ``[report]`` keys it reads beside :data:`COMMON_KEYS`."""
    required: tuple[str, ...] = ()
    """Those of its keys a suite must set."""
    aggregate: bool = True
    """Whether the README has the aggregate over envs: not where runs x envs are not repeats of one setting."""
    section: Callable[[Report], list[str]] = no_section
    """Its README lines after the final scores and the aggregate; it may write files into ``report.out``."""


def get_kind(name: str) -> Kind:
    """The kind registered as ``name``, with a one-line error naming the kinds for an unknown one."""
    if not isinstance(name, str) or name not in KINDS:
        raise UserError(f"unknown report kind {name!r}; choose one of {', '.join(KINDS)}")
    return importlib.import_module(f"rl_distill.report.kinds.{KINDS[name]}").KIND


def check_report(settings: Any, where: str | Path) -> Kind:
    """The kind of a suite's ``[report]`` table (lineage where it names none), after checking the table against it:
    an unknown kind, a key the kind does not read, a missing one it needs or a value of the wrong type is a one-line
    error that starts with ``where`` (the suite file) and names what is allowed."""
    if not isinstance(settings, dict):
        raise UserError(f"{where}: [report] must be a table, not {settings!r}")
    name = settings.get("kind", DEFAULT_KIND)
    if not isinstance(name, str) or name not in KINDS:
        raise UserError(f"{where}: unknown [report] kind {name!r}; choose one of {', '.join(KINDS)}")
    kind = get_kind(name)
    allowed = (*COMMON_KEYS, *kind.keys)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise UserError(
            f"{where}: [report] of kind {kind.name!r} has unknown keys {unknown}; allowed: {', '.join(allowed)}"
        )
    missing = [k for k in kind.required if k not in settings]
    if missing:
        raise UserError(f"{where}: [report] of kind {kind.name!r} needs {', '.join(missing)}")
    for key, value in settings.items():
        what, ok = _TYPES.get(key, _STRING)
        if not ok(value):
            raise UserError(f"{where}: [report] {key} must be {what}, not {value!r}")
    return kind
