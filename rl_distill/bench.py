"""`rl-distill bench`: a grid of distillation runs declared in ``experiments/<suite>.toml``.

A suite file names the runs as blocks of ``[[grid]]``; each block crosses its lists::

    name = "lineage"
    seeds = 3                      # seeds 0..N-1 (--seeds overrides)
    eval_episodes = 30             # final evaluation, student and teacher alike
    curve_points = 8               # learning-curve evaluations per run (eval_every = budget / points)
    curve_episodes = 10
    [report]                       # what `report` draws: kind, threshold, notes and the kind's own keys
    kind = "lineage"               # (one module per kind, rl_distill/report/kinds/)
    video = "MinAtar/Breakout-v1"  # an env of the suite: its cells keep their students, the report a GIF of the best
    [[grid]]
    method = ["policy-distillation", "dagger"]       # a name or a list
    env = ["CartPole-v1", ["CartPole-v1", "Acrobot-v1"]]   # a list inside: one multi-task run
    teacher = "ppo-{env}"          # per env; {env} is the env id with '/' as '-'
    student = "mlp-64-64"          # or a list (swept)
    steps = 20000                  # int, list (swept), or a table by env id
    options = { loss = "kl" }      # fixed method options
    sweep = { tau = [0.01, 1.0] }  # method options crossed
    label = "{method}"             # the series name; may use {method}, {student}, {steps} and sweep keys
    init_from = "cell:LABEL"       # start from the same seed's student of that series (its heads too on the same envs)
    teacher = { "CartPole-v1" = "cell:LABEL", default = "ppo-{env}" }   # per env; a cell: that series' student
                                   # cell:LABEL: that series' run of the same seed; where it has several (one per
                                   # env), the one on the same envs (a teacher's: or on its env alone), else an error
    keep = ["Acrobot-v1"]          # envs the student keeps a head for, scored but not trained (continual learning)
    allow_mismatch = true          # a teacher may run on an env it was not trained on (where its spaces fit)
    curve_points = 6               # eval_episodes, curve_points, curve_episodes: this block's own (else the suite's)

Every grid cell is one independent call of :func:`run_cell` (a pure function of its config and the
output folder), so cells run in worker processes here or as Ray tasks on a cluster, and land in the
same layout: ``<runs>/<cell key>/<run dir>/`` with the usual run files, plus ``cell.json``. With
``--resume`` an interrupted cell continues from its checkpoint instead of starting over; a finished cell's
checkpoint is deleted (it is never resumed).

Run folders are scratch (checkpoints, tensorboard) that another machine or a fresh clone does not have,
so each finished cell also leaves a record, ``<results>/runs/<cell key>.json`` (its cell, summary and learning
curve: a few KB, committed with the results). A cell with a record made with the same teacher weights is finished
and never runs again, and the report is drawn from the records: a long suite accumulates across machines and
sessions. ``<results>`` is ``runs/results/<suite>`` by default, which starts from the committed records of
``results/<suite>`` and leaves that folder as it is; ``--out results/<suite>`` writes the committed results.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rl_distill.errors import UserError
from rl_distill.records import (
    committed_results,
    copy_records,
    default_out,
    finished_summary,
    load_record,
    record_path,
    save_record,
    save_students,
    suite_path,
    sync_records,
)
from rl_distill.report import bench_report, check_report
from rl_distill.runs import LockHeld, atomic_write_json, hold_lock


@dataclass(frozen=True)
class Cell:
    """One run of a grid."""

    key: str
    label: str
    method: str
    teachers: list[str]
    envs: list[str]
    seed: int
    student: str | None = None
    steps: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    eval_episodes: int | None = None
    curve_points: int = 0
    curve_episodes: int = 10
    init_from: str | None = None
    """``cell:LABEL``: start from the student of the same seed's run labelled LABEL (run first; :func:`source_cell`
    says which where the series has several)."""
    keep: list[str] = field(default_factory=list)
    """Envs the student keeps a head for without training on them (RunSpec.keep)."""
    keep_teachers: list[str] = field(default_factory=list)
    """Their reference teachers."""
    tags: dict[str, Any] = field(default_factory=dict)
    """The swept values (student, steps, options) the report groups and plots by."""
    allow_mismatch: bool = False
    """Its teachers may run on envs they were not trained on (RunSpec.allow_mismatch)."""


@dataclass
class Suite:
    name: str
    path: str
    description: str
    cells: list[Cell]
    report: dict[str, Any]
    seeds: int
    blocks: dict[str, int] = field(default_factory=dict)
    """Each cell's grid block (by key, from 0): what a refusal names."""


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in s)


EVAL_KEYS = ("eval_episodes", "curve_points", "curve_episodes")
"""Evaluation settings a suite sets for all its runs, and a grid block may set for its own (Atari games of a
good player take far longer than a control task's episodes)."""


GRID_KEYS = {
    "method",
    "env",
    "teacher",
    "student",
    "steps",
    "options",
    "sweep",
    "label",
    "init_from",
    "keep",
    "allow_mismatch",
    *EVAL_KEYS,
}
"""The keys a ``[[grid]]`` block may have."""

SUITE_KEYS = ("name", "description", "seeds", *EVAL_KEYS, "report", "grid")
"""The top-level keys a suite file may have."""


def _read_suite_doc(path: Path) -> dict[str, Any]:
    """The suite file's TOML, with a one-line error for a malformed one, an unknown top-level key or one of another
    type (:func:`_check_suite_doc`), or a ``[report]`` table its kind does not fit (report.check_report)."""
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read it ({e})") from None
    unknown = sorted(set(doc) - set(SUITE_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown top-level keys {unknown}; allowed: {', '.join(SUITE_KEYS)}")
    _check_suite_doc(path, doc)
    check_report(doc.get("report", {}), path)
    return doc


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _one_or_list(ok) -> Any:
    """A value ``ok`` accepts, or a non-empty list of them (a grid key swept over its values)."""
    return lambda v: ok(v) or (isinstance(v, list) and bool(v) and all(ok(x) for x in v))


def _count_ok(minimum: int):
    return lambda v: _is_int(v) and v >= minimum


_EVAL_TYPES = {
    "eval_episodes": (_count_ok(1), "an integer >= 1"),
    "curve_points": (_count_ok(0), "an integer >= 0 (0: no learning curve)"),
    "curve_episodes": (_count_ok(1), "an integer >= 1"),
}
_SUITE_TYPES = {
    "name": (
        lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) is not None,
        "a name of letters, digits, '.', '_' and '-' (it names folders)",
    ),
    "description": (lambda v: isinstance(v, str), "text"),
    "seeds": (_count_ok(1), "an integer >= 1"),
    **_EVAL_TYPES,
}
_STEPS = _one_or_list(_count_ok(1))
_GRID_TYPES = {
    "method": (_one_or_list(_is_str), "a method name or a list of them"),
    "env": (
        _one_or_list(lambda v: _is_str(v) or (isinstance(v, list) and bool(v) and all(map(_is_str, v)))),
        "an env id, or a list of env ids and lists of env ids (one multi-task run)",
    ),
    "teacher": (
        lambda v: _is_str(v) or (isinstance(v, dict) and bool(v) and all(map(_is_str, v.values()))),
        "a teacher name, or a table of teacher names by env id (with a default)",
    ),
    "student": (_one_or_list(_is_str), "a student spec or a list of them"),
    "steps": (
        lambda v: _STEPS(v) or (isinstance(v, dict) and bool(v) and all(map(_STEPS, v.values()))),
        "an integer >= 1, a list of them, or a table of them by env id (with a default)",
    ),
    "options": (lambda v: isinstance(v, dict), "a table of method options"),
    "sweep": (
        lambda v: isinstance(v, dict) and all(isinstance(x, list) and x for x in v.values()),
        "a table of method options, each a non-empty list of values",
    ),
    "label": (_is_str, "text (the series name; may use {method}, {student}, {steps} and sweep keys)"),
    "init_from": (lambda v: isinstance(v, str) and v.startswith("cell:"), "'cell:LABEL'"),
    "keep": (_one_or_list(_is_str), "an env id or a list of them"),
    "allow_mismatch": (lambda v: isinstance(v, bool), "true or false"),
    **_EVAL_TYPES,
}


def _check_suite_doc(path: Path, doc: dict[str, Any]) -> None:
    """Every top-level value of its type (nothing coerced: ``seeds = true`` or ``1.9`` is refused, not read as 1),
    and ``grid`` an array of tables (``[[grid]]`` blocks)."""
    for key, (ok, want) in _SUITE_TYPES.items():
        if key in doc and not ok(doc[key]):
            raise UserError(f"{path}: {key} must be {want}, not {doc[key]!r}")
    grid = doc.get("grid", [])
    if not (isinstance(grid, list) and all(isinstance(g, dict) for g in grid)):
        raise UserError(f"{path}: grid must be blocks written [[grid]] (an array of tables), not a [grid] table")


def _check_block(path: Path, gi: int, g: dict[str, Any]) -> None:
    """Refuse a grid block with a key it cannot have or a value of another type, or without its method and env."""
    unknown = set(g) - GRID_KEYS
    if unknown:
        raise UserError(f"{path}: grid block {gi + 1} has unknown keys {sorted(unknown)}")
    if "method" not in g or "env" not in g:
        raise UserError(f"{path}: grid block {gi + 1} needs 'method' and 'env'")
    for key, (ok, want) in _GRID_TYPES.items():
        if key in g and not ok(g[key]):
            raise UserError(f"{path}: grid block {gi + 1}: {key} must be {want}, not {g[key]!r}")


def _check_cell(path: Path, gi: int, c: Cell, g: dict[str, Any] | None = None) -> None:
    """A cell's values checked as its run would check them before it starts (envs, student, budget, evaluation, the
    method config its options resolve to, what the method refuses of its envs: distill.check_method_envs), so that
    ``--dry-run`` and a fresh grid refuse them before any run starts. The refusal names what the suite file says:
    the key of its block ``g`` (``options.lam``, ``sweep.tau``, ``steps``), never the command line's flag."""
    import dataclasses

    from rl_distill.configs import flag_message, options
    from rl_distill.distill import RunSpec, check_method_envs, method_config
    from rl_distill.envs import check_env_id, one_family
    from rl_distill.errors import check_count
    from rl_distill.methods import get_method
    from rl_distill.students import StudentSpec, check_student_fits

    method = get_method(c.method)
    try:
        for e in (*c.envs, *c.keep):
            check_env_id(e)
        one_family([*c.envs, *c.keep])
        if c.student is not None:
            StudentSpec.parse(c.student)
        check_student_fits(c.student, [*c.envs, *c.keep])  # the student's heads: trained envs, then kept ones
        check_count("steps", c.steps)
        check_count("eval_episodes", c.eval_episodes)
        check_count("curve_episodes", c.curve_episodes, none_ok=False)
        names = sorted(f.name for f in dataclasses.fields(method.Config))
        bad = [_option_key(g, k) for k in sorted(set(c.options) - set(names))]
        if bad:
            raise UserError(
                f"{', '.join(bad)}: not an option of {c.method} (its options: {', '.join(names) or 'none'})"
            )
        method_config(method, c.options, c.envs)
        check_method_envs(method, c.envs)
    except UserError as e:
        msg = flag_message(method.Config, str(e), {o.name: _option_key(g, o.name) for o in options(method.Config)})
        msg = flag_message(RunSpec, msg, _CELL_KEYS)
        raise type(e)(f"{path}: grid block {gi + 1} ({c.label}, {'+'.join(c.envs)}): {msg}") from None


_CELL_KEYS = {
    "steps": "steps",
    "eval_episodes": "eval_episodes",
    "curve_episodes": "curve_episodes",
    "student": "student",
    "envs": "env",
    "teachers": "teacher",
    "keep": "keep",
    "allow_mismatch": "allow_mismatch",
}
"""RunSpec fields -> the suite file's keys for them: a cell's refusal names the key, not the flag."""


def _option_key(g: dict[str, Any] | None, name: str) -> str:
    """A method option as the block ``g`` gives it: ``sweep.NAME``, ``options.NAME``, else the option's name."""
    g = g or {}
    if name in g.get("sweep", {}):
        return f"sweep.{name}"
    return f"options.{name}" if name in g.get("options", {}) else name


def _block_steps(g: dict[str, Any], envs: list[str]) -> Any:
    """The block's ``steps`` for these envs: an int, a list (swept), or from a table by env id (else its default)."""
    steps_field = g.get("steps")
    if isinstance(steps_field, dict):
        steps_field = steps_field.get("+".join(envs), steps_field.get("default"))
    return steps_field


def _block_cells(g: dict[str, Any], doc: dict[str, Any], n_seeds: int) -> list[Cell]:
    """The cells of one grid block: its lists crossed (method x env x student x sweep values x steps), each for
    every seed."""
    from rl_distill.methods import get_method

    sweep = g.get("sweep", {})
    sweep_keys = sorted(sweep)
    cells: list[Cell] = []
    for method, env, student, sweep_vals in itertools.product(
        _as_list(g["method"]),
        _as_list(g["env"]),
        _as_list(g.get("student")),
        itertools.product(*[_as_list(sweep[k]) for k in sweep_keys]),
    ):
        get_method(method)  # unknown method: one-line error now, not in a worker later
        envs = _as_list(env)
        teachers = [_block_teacher(g, e) for e in envs]
        for steps in _as_list(_block_steps(g, envs)):
            options = {**g.get("options", {}), **dict(zip(sweep_keys, sweep_vals))}
            tags = {"student": student, "steps": steps, **dict(zip(sweep_keys, sweep_vals))}
            label = _format(g.get("label", "{method}"), "label", method=method, **tags)
            run = {
                "label": label,
                "method": method,
                "teachers": teachers,
                "envs": envs,
                "student": student,
                "steps": steps,
                "options": options,
                "eval_episodes": g.get("eval_episodes", doc.get("eval_episodes")),
                "curve_points": int(g.get("curve_points", doc.get("curve_points", 0))),
                "curve_episodes": int(g.get("curve_episodes", doc.get("curve_episodes", 10))),
                "init_from": g.get("init_from"),
            }
            if g.get("keep"):  # only where given: the keys (digests) of the suites without it stay as they were
                run["keep"] = _as_list(g["keep"])
                run["keep_teachers"] = [_block_teacher(g, e) for e in run["keep"]]
            if g.get("allow_mismatch"):  # the same: only where given
                run["allow_mismatch"] = True
            cells += [_seed_cell(run, seed, tags) for seed in range(n_seeds)]
    return cells


def _block_teacher(g: dict[str, Any], env: str) -> str:
    """The block's teacher for ``env``: its ``teacher`` (a name, or a table by env id with a ``default``), with
    ``{env}`` as the env id ('/' as '-'); default the shipped ppo-{env}."""
    t = g.get("teacher", "ppo-{env}")
    if isinstance(t, dict):
        t = t.get(env, t.get("default", "ppo-{env}"))
    return _format(str(t), "teacher", env=env.replace("/", "-"))


def _format(template: str, key: str, **values: Any) -> str:
    """``template.format(**values)``, with a one-line error naming ``key`` and the names it may use."""
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as e:
        names = ", ".join("{" + k + "}" for k in values)
        raise UserError(
            f"{key} {template!r} cannot be filled in ({type(e).__name__}: {e}); it may use {names}"
        ) from None


def cell_sources(c: Cell) -> list[str]:
    """The labels of the series whose same-seed run this cell needs first: the student it starts from
    (``init_from``) and the students it has as teachers (``cell:LABEL``)."""
    return list(dict.fromkeys(label for label, _ in _cell_refs(c)))


def _cell_refs(c: Cell) -> list[tuple[str, str | None]]:
    """Each ``cell:LABEL`` of the cell as (LABEL, the env it is the teacher for; None for ``init_from``)."""
    refs = [(c.init_from, None), *zip(c.teachers, c.envs), *zip(c.keep_teachers, c.keep)]
    return [(r[5:], env) for r, env in refs if r and r.startswith("cell:")]


def _series(cells: list[Cell]) -> dict[tuple[str, int], list[Cell]]:
    """The runs of each series by (label, seed), in the suite's order."""
    runs: dict[tuple[str, int], list[Cell]] = {}
    for x in cells:
        runs.setdefault((x.label, x.seed), []).append(x)
    return runs


def source_cell(label: str, c: Cell, series: dict[tuple[str, int], list[Cell]], env: str | None = None) -> Cell | None:
    """The run of series ``label`` that cell ``c`` starts from or (for ``env``) has as a teacher: the series' run of
    c's seed where it has one per seed (a multi-task student, or one env's student used on other envs); else its run
    on exactly c's envs (a series of single-env stages, each env's next stage starting from its own); else, for a
    teacher, its run on that env alone. ``series``: the suite's runs by (label, seed) (:func:`_series`). None where
    the series has no run of c's seed; a one-line UserError where it has several and none of these tells which."""
    runs = series.get((label, c.seed), [])
    if len(runs) <= 1:
        return runs[0] if runs else None
    wanted = [c.envs] + ([[env]] if env is not None and [env] != c.envs else [])
    for envs in wanted:
        fit = [x for x in runs if x.envs == envs]
        if len(fit) == 1:
            return fit[0]
        if fit:
            break  # several on the same envs (a sweep under one label): no way to tell which
    on = "; ".join(dict.fromkeys("+".join(x.envs) for x in runs))
    alone = f" or on {env} alone" if len(wanted) > 1 else ""
    raise UserError(
        f"({c.label}, {'+'.join(c.envs)}): 'cell:{label}' is ambiguous: series {label!r} has {len(runs)} runs of "
        f"seed {c.seed} (on {on}) and not exactly one on {'+'.join(c.envs)}{alone}; give the source one run per "
        "seed, or one on the same envs"
    )


def same_seed_sources(cells: list[Cell], suite_cells: list[Cell] | None = None) -> dict[str, list[Cell]]:
    """Each cell's sources among ``cells`` (by key): the run of each series its ``cell:`` references name, as
    :func:`source_cell` picks it among ``suite_cells`` (all the suite's runs; default ``cells``). A source outside
    ``cells`` (finished, not run again) is left out."""
    series = _series(cells if suite_cells is None else suite_cells)
    keys = {c.key for c in cells}
    out: dict[str, list[Cell]] = {}
    for c in cells:
        found = (source_cell(label, c, series, env) for label, env in _cell_refs(c))
        out[c.key] = list({s.key: s for s in found if s is not None and s.key in keys}.values())
    return out


def with_sources(selected: list[Cell], suite_cells: list[Cell]) -> tuple[list[Cell], dict[str, list[str]]]:
    """``selected`` (an --only's cells) closed under their sources: the runs they start from or have as teachers,
    and theirs (a chain of stages), in the suite's order; and the added ones by key -> the keys of the runs that need
    them (their direct dependents)."""
    sources = same_seed_sources(suite_cells)
    chosen = {c.key for c in selected}
    needed_by: dict[str, list[str]] = {}
    stack = list(selected)
    while stack:
        c = stack.pop()
        for src in sources[c.key]:
            if src.key in chosen:
                continue
            if src.key not in needed_by:
                stack.append(src)
            needed_by.setdefault(src.key, [])
            if c.key not in needed_by[src.key]:
                needed_by[src.key].append(c.key)
    order = {c.key: i for i, c in enumerate(suite_cells)}
    return (
        [c for c in suite_cells if c.key in chosen or c.key in needed_by],
        {k: sorted(v, key=order.__getitem__) for k, v in sorted(needed_by.items(), key=lambda kv: order[kv[0]])},
    )


def _seed_cell(run: dict[str, Any], seed: int, tags: dict[str, Any]) -> Cell:
    """The cell of one seed of a run, keyed by its label, envs, a digest of its whole config, and the seed."""
    body = {**run, "seed": seed}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
    key = f"{_slug(run['label'])}__{_slug('+'.join(run['envs']))}__{digest}__s{seed}"
    return Cell(key=key, tags=tags, **body)


def _check_unique(path: Path, cells: list[Cell], block_of: dict[str, int]) -> None:
    """Refuse two cells that are the same run (a method or value named twice), and two runs the report could not
    tell apart: one label (series) with the same envs, seed and swept values, from two blocks or one. A series may
    span blocks on different envs (lineage's ppo); its runs on one env must differ in what the report shows."""
    seen: dict[Any, Cell] = {}
    for c in cells:
        ident = (c.label, tuple(c.envs), c.seed, json.dumps(c.tags, sort_keys=True, default=str))
        other = seen.setdefault(ident, c)
        if other is not c:
            where = (
                f"grid blocks {block_of[other.key] + 1} and {block_of[c.key] + 1}"
                if block_of[other.key] != block_of[c.key]
                else f"grid block {block_of[c.key] + 1}"
            )
            what = "the same run twice" if other.key == c.key else f"two runs labelled {c.label!r}"
            raise UserError(
                f"{path}: {where} give {what} on {'+'.join(c.envs)} (seed {c.seed}); give each series its own label"
            )


def _check_init_from(path: Path, cells: list[Cell], block_of: dict[str, int] | None = None) -> None:
    """Refuse an ``init_from`` or a ``cell:`` teacher that does not name a series of this suite, one that does not
    tell which of the series' runs it means (:func:`source_cell`), and a cycle."""
    labels = {c.label for c in cells}
    for c in cells:
        if c.init_from and not (c.init_from.startswith("cell:") and c.init_from[5:] in labels):
            raise UserError(
                f"{path}: init_from = {c.init_from!r} must be 'cell:LABEL' with a label of this suite "
                f"({', '.join(sorted(labels))})"
            )
        for label in cell_sources(c):
            if label not in labels:
                raise UserError(
                    f"{path}: teacher 'cell:{label}' names no series of this suite ({', '.join(sorted(labels))})"
                )
    series = _series(cells)
    for c in cells:
        for label, env in _cell_refs(c):
            try:
                source_cell(label, c, series, env)
            except UserError as e:
                where = f"grid block {block_of[c.key] + 1} " if block_of and c.key in block_of else ""
                raise UserError(f"{path}: {where}{e}") from None
    _depths(cells, path)


def _depths(cells: list[Cell], path: Path | str = "suite", suite_cells: list[Cell] | None = None) -> dict[str, int]:
    """Each cell's stage: 0 without sources among ``cells``, else one more than its deepest source (sources run
    first); the sources as :func:`same_seed_sources` picks them among ``suite_cells`` (default ``cells``)."""
    sources = same_seed_sources(cells, suite_cells)
    depth: dict[str, int] = {}

    def visit(c: Cell, path_labels: tuple[str, ...]) -> int:
        if c.key in depth:
            return depth[c.key]
        if c.label in path_labels:
            raise UserError(f"{path}: series {c.label!r} starts from itself (through {' -> '.join(path_labels)})")
        depth[c.key] = 1 + max((visit(s, (*path_labels, c.label)) for s in sources[c.key]), default=-1)
        return depth[c.key]

    for c in cells:
        visit(c, ())
    return depth


def load_suite(name: str, seeds: int | None = None) -> Suite:
    """Parse and expand a suite file into its cells (a clear error for a malformed one)."""
    path = suite_path(name)
    doc = _read_suite_doc(path)
    from rl_distill.errors import check_count

    check_count("seeds", seeds)
    n_seeds = seeds if seeds is not None else doc.get("seeds", 3)
    cells: list[Cell] = []
    block_of: dict[str, int] = {}
    for gi, g in enumerate(doc.get("grid", [])):
        _check_block(path, gi, g)
        try:
            block = _block_cells(g, doc, n_seeds)
        except UserError as e:
            raise UserError(f"{path}: grid block {gi + 1}: {e}") from None
        for c in block:
            if c.seed == 0:
                _check_cell(path, gi, c, g)
            block_of.setdefault(c.key, gi)
        cells += block
    if not cells:
        raise UserError(f"{path}: no [[grid]] runs")
    _check_unique(path, cells, block_of)
    _check_init_from(path, cells, block_of)
    _check_video(path, doc.get("report", {}), cells)
    return Suite(
        doc.get("name", path.stem),
        str(path),
        doc.get("description", ""),
        cells,
        doc.get("report", {}),
        n_seeds,
        block_of,
    )


def _check_video(path: Path, report: dict[str, Any], cells: list[Cell]) -> None:
    """Refuse a ``[report] video`` that names no env the suite's runs train on."""
    if "video" not in report:
        return
    envs = list(dict.fromkeys(e for c in cells for e in c.envs))
    if report["video"] not in envs:
        raise UserError(f"{path}: [report] video = {report['video']!r} is not an env of this suite ({', '.join(envs)})")


def video_cells(suite: Suite) -> list[str]:
    """The keys of the cells that train on the suite's ``[report] video`` env: those whose students bench keeps."""
    env = suite.report.get("video")
    return [c.key for c in suite.cells if env is not None and env in c.envs]


def cell_dir(runs_root: str | Path, cell: Cell) -> Path:
    return Path(runs_root) / cell.key


_FINGERPRINTS: dict[tuple[str, str | None], str] = {}


def teacher_fingerprints(teachers: list[str], envs: list[str | None] | None = None) -> list[str]:
    """sha256 of each teacher's weights (cached per process): a run is only reused with the same teachers. A run
    folder's student is a teacher for one env (its head): ``envs``."""
    from rl_distill.evaluation import teacher_fingerprint
    from rl_distill.teachers import load_teacher

    envs = list(envs or [None] * len(teachers))
    for t, e in zip(teachers, envs):
        if (t, e) not in _FINGERPRINTS:
            _FINGERPRINTS[t, e] = teacher_fingerprint(load_teacher(t, env_id=e))
    return [_FINGERPRINTS[t, e] for t, e in zip(teachers, envs)]


def _stale(out_dir: Path, cell: Cell) -> bool:
    """A finished cell whose teachers have changed since (e.g. a retrained zoo teacher): its numbers no longer
    describe the shipped teacher, so it runs again. A ``cell:`` teacher (another run's student) is that run's
    to check: it is not compared here."""
    rec = load_record(out_dir, cell.key)
    recorded = rec["cell"].get("teacher_fingerprints") if rec else None
    if recorded is None:
        return False
    named = [(i, t) for i, t in enumerate(cell.teachers) if not t.startswith("cell:")]
    now = teacher_fingerprints([t for _, t in named])
    return len(recorded) != len(cell.teachers) or any(recorded[i] != f for (i, _), f in zip(named, now))


def report_changes(source: str | Path, out_dir: str | Path | None = None) -> tuple[dict[str, str], list[str]]:
    """:func:`changed_defaults` and the records made with other teacher weights (:func:`stale_records`) for the
    suite snapshot in a results or runs folder (``rl-distill report``)."""
    from rl_distill.report.load import read_snapshot, report_out

    if not (Path(source) / "suite.json").exists():
        return {}, []  # the report says what is missing
    snap = read_snapshot(source)
    out = report_out(source, snap, out_dir)
    fields = set(Cell.__dataclass_fields__)
    cells = [Cell(**{k: v for k, v in c.items() if k in fields}) for c in snap["cells"]]
    return changed_defaults(cells, out), stale_records(cells, out)


def stale_records(cells: list[Cell], out_dir: Path) -> list[str]:
    """The keys of the finished cells whose record was made with other teacher weights than the shipped ones."""
    return [c.key for c in cells if record_path(out_dir, c.key).exists() and _stale(out_dir, c)]


def changed_defaults(cells: list[Cell], out_dir: Path) -> dict[str, str]:
    """The finished cells whose record was made with another method config than the cell resolves to today (its
    options over the method's per-env defaults: a default changed since), each with what changed. A setting the
    record lacks (added since) counts only where today's value is not the Config's default."""
    out = {}
    for cell in cells:
        rec = load_record(out_dir, cell.key)
        old = (rec or {}).get("summary", {}).get("method_config")
        if not isinstance(old, dict):
            continue
        new, default = resolved_config(cell)
        # A setting added since: the record ran at its old behaviour, the Config's default; a change only where the
        # env defaults now set another value (on-policy's Atari memory).
        changed = {k: old[k] for k in old.keys() & new.keys() if old[k] != new[k]}
        changed |= {k: "(none)" for k in new.keys() - old.keys() if new[k] != default.get(k)}
        if changed:
            out[cell.key] = ", ".join(f"{k} {changed[k]} -> {new[k]}" for k in sorted(changed))
    return out


def resolved_config(cell: Cell) -> tuple[dict[str, Any], dict[str, Any]]:
    """The method config (JSON types) that ``cell`` runs with today (its options over the method's env defaults),
    and the method's plain Config defaults."""
    from rl_distill.distill import method_config
    from rl_distill.methods import get_method
    from rl_distill.runs import to_json

    method = get_method(cell.method)
    cfg = method_config(method, cell.options, cell.envs)
    return json.loads(to_json(asdict(cfg))), json.loads(to_json(asdict(method.Config())))


class CellBusy(Exception):
    """Another process is running this cell in the same runs folder."""


@contextlib.contextmanager
def _cell_lock(runs_root: Path, key: str):
    """Hold ``<runs_root>/_locks/<key>.lock`` while a cell runs, so two bench processes sharing a runs folder
    (two terminals, or a second one started with --only) never train the same cell at once (runs.hold_lock)."""
    try:
        with hold_lock(runs_root / "_locks" / f"{key}.lock"):
            yield
    except LockHeld:
        raise CellBusy(key) from None


def run_cell(cell: dict[str, Any], runs_root: str, resume: bool = True, precision: str = "auto") -> dict[str, Any]:
    """Run one grid cell into ``<runs_root>/<key>/`` and return its summary: the unit of work of every backend.
    ``precision`` is how it computes (precision.py), not part of the cell: its summary records the one used."""
    import torch

    torch.set_num_threads(1)  # one core per run: threaded runs side by side thrash each other
    c = Cell(**cell)
    out = cell_dir(runs_root, c)
    with _cell_lock(Path(runs_root), c.key):
        teachers = [_resolve(runs_root, t, c, env) for t, env in zip(c.teachers, c.envs)]
        fingerprints = teacher_fingerprints(teachers, c.envs)
        if (
            resume
            and (done := finished_summary(out)) is not None
            and (out / "cell.json").exists()
            and json.loads((out / "cell.json").read_text()).get("teacher_fingerprints") == fingerprints
        ):
            return done  # finished since this grid started, by another bench process on the same runs folder
        if not resume and out.exists():
            shutil.rmtree(out)  # an interrupted earlier attempt, restarted from scratch
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "cell.json", {**asdict(c), "teacher_fingerprints": fingerprints})
        return _train_cell(c, out, runs_root, teachers, precision)


def _train_cell(c: Cell, out: Path, runs_root: str, teachers: list[str], precision: str = "auto") -> dict[str, Any]:
    """Train the cell into ``out``; ``teachers``: its teachers with ``cell:`` references resolved to run folders."""
    from rl_distill.distill import RunSpec, default_budget, run
    from rl_distill.methods import get_method

    method = get_method(c.method)
    budget = c.steps or default_budget(method, c.envs)
    init = _resolve(runs_root, c.init_from, c) if c.init_from else None
    spec = RunSpec(
        method=c.method,
        teachers=teachers,
        keep=list(c.keep),
        keep_teachers=[_resolve(runs_root, t, c, env) for t, env in zip(c.keep_teachers, c.keep)],
        envs=list(c.envs),
        student=c.student,
        steps=c.steps,
        seed=c.seed,
        eval_episodes=c.eval_episodes,
        runs_dir=str(out),
        # Go on from the checkpoint the cell has (run_cell cleared it unless --resume); none: a new run, no note.
        resume=any(out.glob("*/checkpoint.pt")),
        progress=False,
        options=dict(c.options),
        eval_every=max(1, budget // c.curve_points) if c.curve_points else None,
        curve_episodes=c.curve_episodes,
        init_from=init,
        allow_mismatch=c.allow_mismatch,
        eval_cache=str(Path(runs_root) / "_eval_cache"),
        command=f"rl-distill bench (cell {c.key})",
        precision=precision,
    )
    # A finished cell is skipped, never resumed: the run deletes its checkpoint (keep_checkpoint is off), which
    # would only fill the disk (an Atari run's holds its replay memory, ~0.9 GB; atari-lineage's 63 filled 45 GB).
    return run(method, spec)


def _resolve(runs_root: str | Path, ref: str, c: Cell, env: str | None = None) -> str:
    """``cell:LABEL`` as the run folder of that series' finished run (a student to start from, or to have as the
    teacher for ``env``), as :func:`source_cell` picks it among the suite's runs (suite.json); any other name as it
    is."""
    if not ref.startswith("cell:"):
        return ref
    src = source_cell(ref[5:], c, _series(_snapshot_cells(Path(runs_root))), env)
    if src is None:
        raise UserError(f"{c.key} needs the student of series {ref[5:]!r} for seed {c.seed}, which has no such run")
    s = finished_summary(Path(runs_root) / src.key)
    if s is None:
        raise UserError(f"{c.key} needs the student of {src.key}, which has not finished")
    return s["run_dir"] if Path(s["run_dir"]).exists() else str(Path(runs_root) / src.key / Path(s["run_dir"]).name)


def _run_cell_safe(cell: dict[str, Any], runs_root: str, resume: bool, precision: str = "auto") -> dict[str, Any]:
    """run_cell, with any failure returned (and written to the cell's error.txt) instead of raised. In a worker of a
    bench that is stopping, a cell that had been queued is not started."""
    t = time.time()
    if _STOPPING is not None and _STOPPING.is_set():
        return {"key": cell["key"], "ok": False, "error": "not started: the bench is stopping", "s": 0.0}
    try:
        s = run_cell(cell, runs_root, resume, precision)
        return {"key": cell["key"], "ok": True, "summary": s, "s": time.time() - t}
    except CellBusy:
        return {"key": cell["key"], "ok": False, "busy": True, "s": time.time() - t}
    except BaseException as e:  # noqa: BLE001 - one failed cell must not stop the grid
        if isinstance(e, KeyboardInterrupt):
            raise
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        d = Path(runs_root) / cell["key"]
        d.mkdir(parents=True, exist_ok=True)
        import traceback

        (d / "error.txt").write_text(traceback.format_exc())
        return {"key": cell["key"], "ok": False, "error": msg, "s": time.time() - t}


def _pack(root: Path, names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for n in names:
            tar.add(root / n, arcname=n, filter=lambda ti: None if ti.name.endswith("checkpoint.pt") else ti)
    return buf.getvalue()


def _run_cell_packed(
    cell: dict[str, Any], deps: dict[str, bytes] | None = None, precision: str = "auto"
) -> dict[str, Any]:
    """Ray task: run the cell in a scratch folder on whatever node runs it and send the run files back
    (checkpoints left out), so the driver writes them into its own runs folder: no shared filesystem needed."""
    with tempfile.TemporaryDirectory() as tmp:
        for data in (deps or {}).values():  # suite.json and the runs this one starts from
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
        r = _run_cell_safe(cell, tmp, resume=False, precision=precision)
        r["files"] = _pack(Path(tmp), [cell["key"]]) if (Path(tmp) / cell["key"]).exists() else b""
        return r


def _suite_cells(runs_root: Path) -> list[dict[str, Any]]:
    return json.loads((runs_root / "suite.json").read_text())["cells"]


def _snapshot_cells(runs_root: Path) -> list[Cell]:
    """The suite's cells as this bench expanded them (its suite.json)."""
    return [Cell(**x) for x in _suite_cells(runs_root)]


_STOPPING = None  # in a worker: the bench's stop event (set on Ctrl-C / SIGTERM), see _local


def _worker_init(parent: int | None = None, stopping=None) -> None:
    global _STOPPING
    _STOPPING = stopping
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    # Ctrl-C reaches every process of the terminal's group: an idle worker ignores it (no traceback); a running
    # cell's harness catches it (runs.StopOnSignal) to checkpoint and stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        import threading

        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, every_s: float = 2.0) -> None:
    """End this worker once the bench process that started it is gone (killed, or stopped with its session): an
    orphan would go on training its cell unseen, on cores the next bench needs. The cell's lock goes with the
    process and its checkpoint stays, so ``--resume`` continues it."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


class _Schedule:
    """The order the local backend runs cells in: a cell is ready once every same-seed run it starts from or has
    as its teacher has ended; of the ready ones the deepest goes first (then the suite's order), so one seed's
    chain ends before the next begins and a free worker never waits for a whole stage to end."""

    def __init__(self, todo: list[Cell], suite_cells: list[Cell] | None = None):
        """``suite_cells``: all the suite's runs, among which a ``cell:`` reference is resolved (default ``todo``)."""
        self.waits = {key: {s.key for s in srcs} for key, srcs in same_seed_sources(todo, suite_cells).items()}
        self.depth = _depths(todo, suite_cells=suite_cells)
        self.queue = list(todo)
        self.unfinished = {c.key for c in todo}

    def take(self) -> Cell | None:
        """The next cell to start, or None while every cell left waits for one still running."""
        ready = [c for c in self.queue if not self.waits[c.key] & self.unfinished]
        if not ready:
            return None
        c = max(ready, key=lambda c: self.depth[c.key])  # the first of the deepest: the suite's order on ties
        self.queue.remove(c)
        return c

    def ended(self, key: str) -> None:
        self.unfinished.discard(key)


def _local(
    todo: list[Cell],
    runs_root: Path,
    workers: int,
    resume: bool,
    precision: str = "auto",
    suite_cells: list[Cell] | None = None,
):
    """Yield each cell's result as it finishes, from ``workers`` processes (in-process for 1), in
    :class:`_Schedule`'s order."""
    schedule = _Schedule(todo, suite_cells)
    if workers <= 1:
        while (c := schedule.take()) is not None:
            r = _run_cell_safe(asdict(c), str(runs_root), resume, precision)
            schedule.ended(c.key)
            yield r
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    # No more cells are submitted than there are workers, but the pool may still have handed a worker a cell
    # when a stop comes (its call queue), where cancel() no longer reaches it: the event tells the workers not to
    # start what they were handed.
    stopping = ctx.Event()
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(), stopping)
    ) as pool:
        pending: dict[Any, str] = {}
        try:
            with _sigterm_as_ctrl_c(pool, stopping):
                while True:
                    while len(pending) < workers and (c := schedule.take()) is not None:
                        pending[pool.submit(_run_cell_safe, asdict(c), str(runs_root), resume, precision)] = c.key
                    if not pending:
                        break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        schedule.ended(pending.pop(f))
                        yield f.result()
        except BaseException:
            stopping.set()
            for f in pending:
                f.cancel()
            raise


@contextlib.contextmanager
def _sigterm_as_ctrl_c(pool, stopping=None):
    """SIGTERM to the bench process (a scheduler's stop) does what Ctrl-C does: no queued cell starts, the running
    cells get SIGINT, write their checkpoints and stop, and the bench ends with KeyboardInterrupt. Only in the main
    thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, frame):
        if stopping is not None:
            stopping.set()
        for p in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGINT)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


RAY_CONNECT_S = 10.0
"""Seconds ``--address`` has to answer a TCP connection before the bench gives up (Ray itself retries for minutes)."""


def _ray_address_reachable(address: str) -> None:
    """A one-line error unless something accepts a TCP connection at ``address`` (``host:port`` or
    ``ray://host:port``) within :data:`RAY_CONNECT_S`: Ray's own client retries for minutes before it says so.
    ``auto`` and ``local`` are left to Ray (they look for a cluster on this machine and fail at once)."""
    import socket

    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--address {address!r}: expected HOST:PORT (a Ray head's GCS, e.g. 10.0.0.5:6379) or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_S):
            pass
    except OSError as e:
        raise UserError(
            f"--address {address}: nothing answers there ({e.strerror or e}); start the cluster with "
            "`ray start --head`, or leave --address out for a local Ray"
        ) from None


def _ray_connect(address: str | None, workers: int) -> None:
    """Connect to (or start) Ray, once per process; a one-line error if Ray is missing or the cluster does not
    answer (checked before any file is written)."""
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'rl-distill[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return
    if address:
        _ray_address_reachable(address)
    kw = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
    # ray.init installs its own SIGTERM handler in this process; keep the bench's (Ctrl-C semantics) and the
    # caller's handlers in force instead.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(log_to_driver=False, **kw)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as e:
        raise UserError(f"--backend ray: cannot connect to Ray ({str(e).splitlines()[0]})") from None
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def _ray(todo: list[Cell], runs_root: Path, workers: int, address: str | None, precision: str = "auto"):
    import ray

    _ray_connect(address, workers)
    task = ray.remote(num_cpus=1)(_run_cell_packed)

    series = _series(_snapshot_cells(runs_root))

    def deps(c: Cell) -> dict[str, bytes]:
        found = (source_cell(label, c, series, env) for label, env in _cell_refs(c))
        keys = list(dict.fromkeys(s.key for s in found if s is not None))
        if not keys:
            return {}
        return {"runs": _pack(runs_root, ["suite.json", *keys])}

    pending = [task.remote(asdict(c), deps(c), precision) for c in todo]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        r = ray.get(done[0])
        files = r.pop("files", b"")
        if files:
            dest = runs_root / r["key"]
            if dest.exists():
                shutil.rmtree(dest)
            with tarfile.open(fileobj=io.BytesIO(files), mode="r:gz") as tar:
                tar.extractall(runs_root, filter="data")
        yield r


def _check_teachers(cells: list[Cell]) -> None:
    """Fail before starting a grid whose teachers are not all here (one line, not one traceback per run)."""
    from rl_distill.errors import TeacherError
    from rl_distill.teachers import load_teacher

    missing = []
    for t in sorted({t for c in cells for t in (*c.teachers, *c.keep_teachers) if not t.startswith("cell:")}):
        try:
            load_teacher(t)
        except TeacherError:
            missing.append(t)
    if missing:
        raise UserError(
            f"the runs need teachers that are not here: {', '.join(missing)} "
            "(train them with `rl-distill teachers train ENV --algo ALGO --out rl_distill/zoo/ID --force`, "
            "or skip those runs with --only)"
        )


def _check_cell_teachers(suite: Suite, cells: list[Cell]) -> None:
    """Each cell's teachers (and its kept envs' reference teachers) fit its envs and were trained on them, as its run
    checks them before it starts (distill.check_teacher_env), unless its block says ``allow_mismatch = true``. A
    ``cell:`` teacher, a run's student (its head for the env), is its run's to check."""
    from rl_distill.distill import check_teacher_env
    from rl_distill.envs import env_spec
    from rl_distill.teachers import load_teacher

    loaded: dict[tuple[str, str], Any] = {}
    for c in cells:
        for t, e in (*zip(c.teachers, c.envs), *zip(c.keep_teachers, c.keep)):
            if t.startswith("cell:"):
                continue
            if (t, e) not in loaded:
                loaded[t, e] = load_teacher(t, env_id=e)
            try:
                check_teacher_env(loaded[t, e], env_spec(e), c.allow_mismatch, "allow_mismatch = true in its block")
            except UserError as err:
                where = f"grid block {suite.blocks[c.key] + 1} " if c.key in suite.blocks else ""
                raise type(err)(f"{suite.path}: {where}({c.label}, {'+'.join(c.envs)}): {err}") from None


def _write_snapshot(suite: Suite, runs_root: Path, out_dir: Path) -> None:
    """suite.json in the runs folder and the results folder: the suite as this bench expanded it, which the
    report and transfer runs read."""
    runs_root.mkdir(parents=True, exist_ok=True)
    snapshot = {
        "name": suite.name,
        "path": suite.path,
        "description": suite.description,
        "seeds": suite.seeds,
        "report": suite.report,
        "out": str(out_dir),
        "cells": [asdict(c) for c in suite.cells],
    }
    for d in (runs_root, out_dir):
        atomic_write_json(d / "suite.json", snapshot)


def _stale_and_changed(cells: list[Cell], out_dir: Path) -> tuple[list[Cell], dict[str, str]]:
    """The finished cells made with other teacher weights, and of the others those made with other method
    defaults (:func:`changed_defaults`)."""
    stale_keys = set(stale_records(cells, out_dir))
    stale = [c for c in cells if c.key in stale_keys]
    return stale, changed_defaults([c for c in cells if c.key not in stale_keys], out_dir)


def _set_aside_stale(
    suite: Suite, cells: list[Cell], runs_root: Path, out_dir: Path, rerun_changed: bool = False
) -> None:
    """Drop the records of finished cells made with other teacher weights, and with ``rerun_changed`` those made
    with other method defaults, so they run again (the run folder is kept aside, not deleted: the old numbers stay
    inspectable). Without it, the second kind is only counted here and listed in the report."""
    stale, changed = _stale_and_changed(cells, out_dir)
    again = stale + ([c for c in cells if c.key in changed] if rerun_changed else [])
    for c in again:
        record_path(out_dir, c.key).unlink()
        if cell_dir(runs_root, c).exists():
            cell_dir(runs_root, c).rename(runs_root / f"_stale_{int(time.time())}_{c.key}")
    if stale:
        print(
            f"bench {suite.name}: {len(stale)} finished runs were made with other teacher weights; running them again",
            file=sys.stderr,
        )
    if changed:
        print(
            f"bench {suite.name}: {len(changed)} finished runs were made with other method defaults than today's "
            + ("; running them again" if rerun_changed else "(listed in the report; --rerun-changed runs them again)"),
            file=sys.stderr,
        )


def plan(
    suite: Suite,
    cells: list[Cell],
    out_dir: Path,
    needed_by: dict[str, list[str]] | None = None,
    runs_root: Path | None = None,
) -> dict[str, Any]:
    """What ``bench`` would do with these cells, reading the records (and the run folders in ``runs_root``) only:
    which are finished and kept, which run again (other teacher weights, or a finished source whose run folder a
    run to do needs for its student's weights and is not in ``runs_root``), which were made with other method
    defaults (kept unless --rerun-changed), which have no record yet, and which records no cell of the suite claims
    any more. ``needed_by``: the cells an --only did not select but its cells need (:func:`with_sources`)."""
    finished = [c for c in cells if record_path(out_dir, c.key).exists()]
    stale, changed = _stale_and_changed(finished, out_dir)
    todo = [c for c in cells if c not in finished] + stale
    weights = [c.key for c in _weights_reruns(suite, todo, runs_root)] if runs_root is not None else []
    keys = {c.key for c in suite.cells}
    orphans = sorted(p.stem for p in (out_dir / "runs").glob("*.json") if p.stem not in keys)
    return {
        "suite": suite.name,
        "runs": len(cells),
        "finished": len(finished) - len(stale) - len(weights),
        "other_teachers": [c.key for c in stale],
        "other_defaults": sorted(changed),
        "to_run": [c.key for c in todo] + weights,
        "for_weights": weights,
        "needed_by": dict(needed_by or {}),
        "orphans": orphans,
        "dry_run": True,
    }


def _weights_reruns(suite: Suite, todo: list[Cell], runs_root: Path) -> list[Cell]:
    """The finished runs not in ``todo`` that run again for their students' weights: the sources of the runs to do,
    and theirs (a chain of stages), whose run folders are not in ``runs_root`` (a record does not hold a student)."""
    sources = same_seed_sources(suite.cells)
    needed, stack = set(), list(todo)
    while stack:
        c = stack.pop()
        for src in sources[c.key]:
            if src.key not in needed and finished_summary(cell_dir(runs_root, src)) is None:
                needed.add(src.key)
                stack.append(src)
    todo_keys = {c.key for c in todo}
    return [s for s in suite.cells if s.key in needed and s.key not in todo_keys]


def _todo(suite: Suite, cells: list[Cell], runs_root: Path, out_dir: Path, backend: str, workers: int) -> list[Cell]:
    """The cells without a record, after the finished sources whose run folder a transfer run among them needs;
    says how many there are."""
    todo = [c for c in cells if not record_path(out_dir, c.key).exists()]
    finished = len(cells) - len(todo)
    # A transfer run needs its source's student weights, which only a run folder holds.
    reruns = _weights_reruns(suite, todo, runs_root)
    todo = reruns + todo
    again = (
        f", {len(reruns)} of them finished elsewhere and run again for the student weights a transfer run starts from"
        if reruns
        else ""
    )
    print(
        f"bench {suite.name}: {len(cells)} runs, {finished} already finished, {len(todo)} to run{again} "
        f"({backend}, {workers} workers) in {runs_root}",
        file=sys.stderr,
    )
    return todo


def _results(
    todo: list[Cell],
    backend: str,
    runs_root: Path,
    workers: int,
    resume: bool,
    address: str | None,
    precision: str,
    suite_cells: list[Cell] | None = None,
):
    """Yield each cell's result from the backend: a run that starts from another run's student (init_from) or has
    one as its teacher goes after it (locally as soon as its sources end; on Ray stage by stage). ``suite_cells``:
    all the suite's runs, among which a ``cell:`` reference is resolved (default ``todo``)."""
    if backend == "local":
        yield from _local(todo, runs_root, workers, resume, precision, suite_cells)
        return
    depth = _depths(todo, suite_cells=suite_cells)
    for phase in [[c for c in todo if depth[c.key] == d] for d in sorted(set(depth.values()))]:
        if phase:
            yield from _ray(phase, runs_root, workers, address, precision)


def cell_kind(key: str) -> str:
    """A cell's key without its seed: the runs of one kind (method, envs, student, budget, options), which cost about
    the same CPU time."""
    return key.rsplit("__s", 1)[0]


class CpuEstimate:
    """The CPU seconds that runs will take, from the ``cpu_s`` of finished runs (their records'): a run of a kind
    with finished runs costs their mean; of another kind, the CPU seconds per env step of finished runs of the same
    method on the same envs, times its budget; else it is not estimated (one of the ``unknown``)."""

    def __init__(self) -> None:
        self._by_kind: dict[str, list[float]] = {}
        self._per_step: dict[tuple[str, tuple[str, ...]], list[float]] = {}

    def add(self, cell: dict[str, Any], summary: dict[str, Any]) -> None:
        """A finished run's cost: its cell (a record's, as a dict) and summary."""
        cpu, steps = summary.get("cpu_s"), summary.get("env_steps")
        if not isinstance(cpu, (int, float)) or cpu <= 0:
            return  # a record from before runs kept their CPU time
        self._by_kind.setdefault(cell_kind(cell["key"]), []).append(float(cpu))
        if steps:
            self._per_step.setdefault((cell["method"], tuple(cell["envs"])), []).append(float(cpu) / steps)

    def run_s(self, c: Cell) -> float | None:
        """The estimated CPU seconds of cell ``c``, or None where no finished run tells."""
        same = self._by_kind.get(cell_kind(c.key))
        if same:
            return sum(same) / len(same)
        rates = self._per_step.get((c.method, tuple(c.envs)))
        if rates:
            return sum(rates) / len(rates) * _budget(c)
        return None

    def left(self, cells: list[Cell]) -> tuple[float, int]:
        """The estimated CPU seconds of ``cells`` together, and how many of them have no estimate."""
        each = [self.run_s(c) for c in cells]
        return sum(x for x in each if x is not None), sum(x is None for x in each)


def _budget(c: Cell) -> int:
    from rl_distill.distill import default_budget
    from rl_distill.methods import get_method

    return c.steps or default_budget(get_method(c.method), c.envs)


def cpu_estimate(cells: list[Cell], out_dir: Path) -> CpuEstimate:
    """A :class:`CpuEstimate` from the records in ``out_dir`` of the suite's ``cells`` (this machine's and others')."""
    est = CpuEstimate()
    for c in cells:
        rec = load_record(out_dir, c.key)
        if rec is not None:
            est.add(asdict(c), rec.get("summary") or {})
    return est


def cpu_left_text(cpu_s: float, unknown: int, workers: int, runs: int) -> str:
    """What the CPU estimate says in words: the CPU time left, the wall time it comes to on ``workers`` free cores,
    and how many of the ``runs`` it could not count."""
    from rl_distill.report.tables import duration

    if unknown == runs:
        return "CPU time left unknown (no finished run of these kinds yet)"
    text = f"about {duration(cpu_s)} of CPU left"
    text += f", {duration(cpu_s / max(1, min(workers, runs - unknown)))} with {workers} workers on free cores"
    if unknown:
        text += f" (not counting {unknown} run{'s' if unknown > 1 else ''} of a kind none has finished yet)"
    return text


class _BenchProgress:
    """What ``bench`` shows while it runs, on stderr (stdout stays free for ``--json``): a line per finished run and,
    with ``show``, a bar of the runs done of the selection's total with the CPU time still to come."""

    def __init__(self, show: bool, cells: list[Cell], todo: list[Cell], out_dir: Path, workers: int, name: str):
        self.left = list(todo)
        self.workers = workers
        self.estimate = cpu_estimate(cells, out_dir)
        cpu_s, unknown = self.estimate.left(self.left)
        if todo:
            print(f"bench {name}: {cpu_left_text(cpu_s, unknown, workers, len(todo))}", file=sys.stderr)
        self.bar = None
        if show and todo:
            from tqdm import tqdm

            self.bar = tqdm(
                total=len(cells),
                initial=max(0, len(cells) - len(todo)),
                desc=f"bench {name}",
                bar_format="{desc}: {n_fmt}/{total_fmt} runs |{bar}| {elapsed}{postfix}",
                dynamic_ncols=True,
                file=sys.stderr,
            )
            self._postfix(0)

    def _postfix(self, failed: int) -> None:
        cpu_s, unknown = self.estimate.left(self.left)
        text = cpu_left_text(cpu_s, unknown, self.workers, len(self.left)) if self.left else ""
        self.bar.set_postfix_str("; ".join(t for t in (f"{failed} failed" if failed else "", text) if t))

    def ended(self, key: str, msg: str, summary: dict[str, Any] | None, failed: int) -> None:
        """A run ended (``summary``: it finished), with its line."""
        cell = next((c for c in self.left if c.key == key), None)
        if cell is not None:
            self.left.remove(cell)
            if summary is not None:
                self.estimate.add(asdict(cell), summary)
        if self.bar is None:
            print(msg, file=sys.stderr)
            return
        self.bar.write(msg, file=sys.stderr)  # tqdm.write's default is stdout, which `bench --json` keeps for its JSON
        self.bar.update(1)
        self._postfix(failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _collect(results, shown: _BenchProgress, runs_root: Path, out_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Save the record of each cell that finishes and show a line for each result; the failed results and the keys
    of the cells another bench process runs."""
    failed, busy = [], []
    for r in results:
        summary = None
        if r.get("busy"):
            busy.append(r["key"])
            msg = f"{r['key']}: running in another bench process on {runs_root}, which writes its record"
        elif not r["ok"]:
            failed.append(r)
            msg = f"FAILED {r['key']}: {r['error']}"
        else:
            summary = r["summary"]
            pct = summary["percent_of_teacher"]
            pct = ", ".join("-" if p is None else f"{p:.0f}%" for p in _as_list(pct))
            msg = f"{r['key']}: {pct} of teacher ({r['s']:.0f} s)"
            save_record(runs_root, out_dir, r["key"])
        shown.ended(r["key"], msg, summary, len(failed))
    shown.close()
    return failed, busy


def bench(
    suite_name: str,
    seeds: int | None = None,
    workers: int = 2,
    out: str | None = None,
    runs_dir: str | None = None,
    resume: bool = False,
    backend: str = "local",
    address: str | None = None,
    progress: bool = True,
    only: str | None = None,
    precision: str = "auto",
    rerun_changed: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run every unfinished cell of a suite, then write its report. Returns counts and the report path.
    ``rerun_changed``: also run again the finished cells made with other method defaults than today's.
    ``dry_run``: only say what a run would do (:func:`plan`), touching nothing."""
    from rl_distill.errors import check_count, check_dir
    from rl_distill.precision import check_precision

    check_precision(precision)
    check_count("workers", workers, none_ok=False)
    cores = os.cpu_count() or 1
    if backend == "local" and workers > 4 * cores:
        raise UserError(f"--workers {workers}: this machine has {cores} cores, and each worker runs a cell on one")
    check_count("seeds", seeds)
    check_dir("out", out)
    check_dir("runs_dir", runs_dir)
    if backend not in ("local", "ray"):
        raise UserError(f"unknown --backend {backend!r}; choose local or ray")
    if address is not None and backend != "ray":
        raise UserError("--address is the Ray cluster's: it goes with --backend ray")
    if only is not None and not (isinstance(only, str) and only.strip(",").strip()):
        raise UserError(f"--only {only!r}: give one or more comma-separated texts (e.g. --only Pong,dagger)")

    suite = load_suite(suite_name, seeds)
    runs_root = Path(runs_dir or f"runs/bench/{suite.name}")
    out_dir = Path(out) if out else default_out(suite.name)
    # Without --out the committed results stay as they are, and their records say which runs are finished already.
    committed = committed_results(suite.name) if out is None else None
    cells = [c for c in suite.cells if only is None or any(o in c.key or o in c.label for o in only.split(","))]
    if only is not None and not cells:
        raise UserError(
            f"--only {only!r} matches no cell of {suite.name} (it is matched against keys such as "
            f"{suite.cells[0].key} and labels such as {suite.cells[0].label!r})"
        )
    # The runs the selected ones start from or have as teachers come along: finished ones (a record) are used as
    # they are, the others run first.
    cells, needed_by = with_sources(cells, suite.cells)
    _check_teachers(cells)
    _check_cell_teachers(suite, cells)  # as each run would check them before it starts: --dry-run refuses them too
    if dry_run:
        if committed is None:
            return plan(suite, cells, out_dir, needed_by, runs_root)
        with tempfile.TemporaryDirectory() as tmp:  # the records the run would start from, as it would copy them
            keys = [c.key for c in suite.cells] + [p.stem for p in (out_dir / "runs").glob("*.json")]
            for src in (out_dir, committed):
                copy_records(src, tmp, keys)
            return plan(suite, cells, Path(tmp), needed_by, runs_root)
    if backend == "ray":
        _ray_connect(address, workers)  # one line within seconds where no cluster answers, before anything is written
    _write_snapshot(suite, runs_root, out_dir)
    if committed is not None:
        copy_records(committed, out_dir, [c.key for c in suite.cells])
    sync_records(runs_root, out_dir, [c.key for c in cells])
    _set_aside_stale(suite, cells, runs_root, out_dir, rerun_changed)
    todo = _todo(suite, cells, runs_root, out_dir, backend, workers)

    shown = _BenchProgress(progress, cells, todo, out_dir, workers, suite.name)
    t0 = time.time()
    failed, busy = _collect(
        _results(todo, backend, runs_root, workers, resume, address, precision, suite.cells),
        shown,
        runs_root,
        out_dir,
    )
    save_students(runs_root, out_dir, video_cells(suite))  # the [report] video env's: the report's clip needs them
    report = bench_report(
        out_dir, changed=changed_defaults(suite.cells, out_dir), stale=stale_records(suite.cells, out_dir)
    )
    result = {
        "suite": suite.name,
        "runs": len(cells),
        "ran": len(todo) - len(busy),
        "busy": len(busy),
        "failed": len(failed),
        "wall_s": round(time.time() - t0, 1),
        "runs_dir": str(runs_root),
        "report": str(report),
    }
    if failed:
        raise UserError(
            f"{len(failed)} of {len(todo)} runs failed (first: {failed[0]['key']}: {failed[0]['error']}); "
            f"tracebacks in {runs_root}/<run>/error.txt; the report covers the finished runs"
        )
    return result
