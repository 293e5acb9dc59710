"""A suite's files: where suite definitions live, and the run records that a results folder keeps.

A finished bench cell leaves a record, ``<results>/runs/<cell key>.json`` (its cell, summary and learning curve),
copied from its run folder, where ``<results>`` is ``runs/results/<suite>`` by default and ``results/<suite>``, the
committed one, when a bench names it with ``--out``; reports are drawn from records only. bench writes them,
report reads them: both import this module, neither the other's internals.

Records keep no weights, except for the env a suite's ``[report] video`` names: there each finished cell's trained
student is kept beside its record, ``<results>/students/<cell key>/`` (``student.safetensors`` and ``student.json``,
a run folder's own two files, a few hundred KB at most for MinAtar), so the report can draw the teacher beside the
best student after the run folders are gone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rl_distill.errors import UserError
from rl_distill.runs import atomic_write_bytes, atomic_write_json, read_scalars

SUITES_DIR = Path("experiments")
"""Where ``rl-distill bench NAME`` looks for ``NAME.toml`` first: relative to the working directory (a repository
checkout, so records name the suite ``experiments/NAME.toml``), then :data:`CHECKOUT_SUITES`."""
CHECKOUT_SUITES = Path(__file__).resolve().parents[1] / "experiments"
"""The suites of the checkout this package is installed from (``pip install -e .``), for a run started elsewhere."""


RESULTS_DIR = Path("results")
"""The committed results folders, ``results/<suite>``: a bench writes into one only when ``--out`` names it."""
CHECKOUT_RESULTS = Path(__file__).resolve().parents[1] / "results"
"""The committed results of the checkout this package is installed from, for a bench started elsewhere."""


def default_out(name: str) -> Path:
    """Where ``bench`` writes a suite's records and report without ``--out``: under ``runs/`` (not tracked), so that
    a checkout's committed results change only when asked (``--out results/<suite>``)."""
    return Path("runs") / "results" / name


def committed_results(name: str) -> Path | None:
    """The committed results folder of suite ``name`` (here, else in the checkout), or None: a bench without
    ``--out`` starts from its records, so the runs they hold are not run again."""
    return next((d / name for d in (RESULTS_DIR, CHECKOUT_RESULTS) if (d / name / "runs").is_dir()), None)


def suite_path(name: str) -> Path:
    p = Path(name)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise UserError(f"no suite file {name}")
        return p
    for folder in (SUITES_DIR, CHECKOUT_SUITES):
        if (folder / f"{name}.toml").exists():
            return folder / f"{name}.toml"
    known = sorted({q.stem for folder in (SUITES_DIR, CHECKOUT_SUITES) for q in folder.glob("*.toml")})
    raise UserError(f"unknown suite {name!r}; known: {', '.join(known) or f'none (no {SUITES_DIR}/*.toml here)'}")


def record_path(out_dir: str | Path, key: str) -> Path:
    return Path(out_dir) / "runs" / f"{key}.json"


def load_record(out_dir: str | Path, key: str) -> dict[str, Any] | None:
    p = record_path(out_dir, key)
    return json.loads(p.read_text()) if p.exists() else None


def save_record(runs_root: str | Path, out_dir: str | Path, key: str) -> bool:
    """Copy a finished cell's numbers (cell, summary, evaluation curve) from its run folder into its record."""
    d = Path(runs_root) / key
    s = finished_summary(d)
    if s is None:
        return False
    run_dir = _run_dir(d, s)
    scalars = read_scalars(run_dir)

    def points(prefix: str, *extra: str) -> list[dict[str, Any]]:
        """The scalar rows that log ``prefix`` (per task too), with their step and ``extra`` keys only."""
        return [
            {k: v for k, v in r.items() if k == "step" or k.startswith(prefix) or k in extra}
            for r in scalars
            if any(k.startswith(prefix) for k in r)
        ]

    # greedy eval/mean_reward and eval/sampled_mean_reward, with the training wall and CPU seconds at each point (a run
    # from before time/cpu_s was logged has only the first)
    curve = points("eval/", "time/wall_s", "time/cpu_s")
    # The training episodes' raw return (actions sampled, as the run played them): what RL papers plot, and the only
    # sign of learning where a greedy policy is stuck (a Breakout policy that never serves scores 0 greedily).
    train_curve = points("rollout/ep_rew_mean")
    atomic_write_json(
        record_path(out_dir, key),
        {"cell": json.loads((d / "cell.json").read_text()), "summary": s, "curve": curve, "train_curve": train_curve},
    )
    return True


def _run_dir(cell_dir: Path, summary: dict[str, Any]) -> Path:
    """The run folder of a cell's finished run: where its summary says, else the folder of that name in the cell's
    folder (a runs folder moved, or run files sent back from a Ray worker)."""
    run_dir = Path(summary["run_dir"])
    return run_dir if run_dir.exists() else cell_dir / run_dir.name


STUDENT_FILES = ("student.safetensors", "student.json")
"""What a finished run keeps of its student (distill.py), and a results folder of the cells it keeps students of."""


def student_dir(out_dir: str | Path, key: str) -> Path:
    """Where a results folder keeps the trained student of cell ``key``: a folder that ``load_teacher`` reads as a
    finished run's student."""
    return Path(out_dir) / "students" / key


def save_students(runs_root: str | Path, out_dir: str | Path, keys: list[str]) -> int:
    """Copy the trained student of each cell among ``keys`` whose record was made from the finished run in
    ``runs_root`` (the same run: its summary's ``run_dir``) into :func:`student_dir`, unless it is there already,
    byte for byte; returns how many were written. A cell without a record or a run folder here is left out."""
    n = 0
    for k in keys:
        rec, s = load_record(out_dir, k), finished_summary(Path(runs_root) / k)
        if rec is None or s is None or rec.get("summary", {}).get("run_dir") != s.get("run_dir"):
            continue
        run_dir, dst = _run_dir(Path(runs_root) / k, s), student_dir(out_dir, k)
        if not all((run_dir / f).is_file() for f in STUDENT_FILES):
            continue
        wrote = False
        for f in STUDENT_FILES:
            data = (run_dir / f).read_bytes()
            if not (dst / f).is_file() or (dst / f).read_bytes() != data:
                atomic_write_bytes(dst / f, data)
                wrote = True
        n += wrote
    return n


def sync_records(runs_root: str | Path, out_dir: str | Path, keys: list[str]) -> int:
    """Write the record of every finished run among ``keys`` that has none yet (runs finished before records
    existed, or a report drawn from a runs folder); returns how many were written."""
    return sum(save_record(runs_root, out_dir, k) for k in keys if not record_path(out_dir, k).exists())


def copy_records(src_out: str | Path, out_dir: str | Path, keys: list[str]) -> int:
    """Copy the records among ``keys`` that another results folder holds and ``out_dir`` lacks (byte for byte,
    atomically), with the students it keeps of them (:func:`student_dir`); returns how many records."""
    n = 0
    for k in keys:
        src, dst = record_path(src_out, k), record_path(out_dir, k)
        if src.exists() and not dst.exists():
            atomic_write_bytes(dst, src.read_bytes())
            n += 1
            kept, to = student_dir(src_out, k), student_dir(out_dir, k)
            if all((kept / f).is_file() for f in STUDENT_FILES) and not to.exists():
                for f in STUDENT_FILES:
                    atomic_write_bytes(to / f, (kept / f).read_bytes())
    return n


def finished_summary(path: Path) -> dict[str, Any] | None:
    """The summary of the cell's finished run, if any (the newest)."""
    done = sorted(path.glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(done[-1].read_text()) if done else None
