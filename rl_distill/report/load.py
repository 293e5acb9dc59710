"""A suite's report reads its snapshot (``suite.json``) and run records, never run folders: one row per finished run
and task, with the cell, final scores, costs and learning curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rl_distill.errors import UserError
from rl_distill.records import copy_records, load_record, save_students, sync_records


def collect_bench(
    source: str | Path, out_dir: str | Path | None = None
) -> tuple[dict[str, Any], Path, list[dict[str, Any]]]:
    """The suite snapshot, its results folder and one row per (finished run, task): cell, final scores and
    learning curve, read from the run records in ``<results>/runs/``. ``source`` is a results folder or a
    benchmark runs folder; from a runs folder, finished runs without a record get one first (and those on the
    ``[report] video`` env their kept student). With ``out_dir`` elsewhere, a results folder's records are copied
    there (the report is drawn from ``out_dir``'s records)."""
    root = Path(source)
    snapshot = root / "suite.json"
    if not snapshot.exists():
        raise UserError(
            f"{root} is neither a benchmark results folder nor a runs folder (no suite.json); "
            "run `rl-distill bench` first"
        )
    suite = read_snapshot(root)
    out = report_out(root, suite, out_dir)
    if root.resolve() != out.resolve():
        keys = [cell["key"] for cell in suite["cells"]]
        # A results folder holds records (root/runs/<key>.json); a runs folder holds run folders (root/<key>/).
        copy_records(root, out, keys)
        sync_records(root, out, keys)
        video = suite.get("report", {}).get("video")
        save_students(root, out, [c["key"] for c in suite["cells"] if video is not None and video in c.get("envs", [])])
    rows = []
    for cell in suite["cells"]:
        rec = load_record(out, cell["key"])
        if rec is not None:
            rows += _record_rows(cell, rec)
    return suite, out, rows


def read_snapshot(root: str | Path) -> dict[str, Any]:
    """A results or runs folder's ``suite.json``, with a one-line error where it is not one bench wrote."""
    path = Path(root) / "suite.json"
    try:
        suite = json.loads(path.read_text())
        if not (isinstance(suite, dict) and isinstance(suite["name"], str) and isinstance(suite["cells"], list)):
            raise ValueError("not a suite snapshot")
        for cell in suite["cells"]:
            cell["key"], cell["label"], cell["seed"]  # noqa: B018 - what the report reads of each cell
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a suite snapshot written by `rl-distill bench` ({e})") from None
    return suite


def is_runs_folder(root: str | Path, suite: dict[str, Any]) -> bool:
    """Whether ``root`` is a bench runs folder (run folders by cell key, its locks and evaluation cache) rather than
    a results folder (``runs/<key>.json`` records, README.md)."""
    root = Path(root)
    return (
        (root / "_locks").is_dir()
        or (root / "_eval_cache").is_dir()
        or any((root / c["key"]).is_dir() for c in suite["cells"])
    )


def report_out(root: str | Path, suite: dict[str, Any], out_dir: str | Path | None = None) -> Path:
    """Where the report of ``root`` goes: ``out_dir`` if given; a results folder's own (a copy of one is reported
    where it is, not into the folder its snapshot names); a runs folder's, the results folder its bench wrote to."""
    if out_dir is not None:
        return Path(out_dir)
    if not is_runs_folder(root, suite):
        return Path(root)
    return Path(suite.get("out") or f"results/{suite['name']}")  # a snapshot from before bench recorded its out


def _point(r: dict[str, Any], key: str) -> tuple[int, float, float | None, float | None]:
    """A learning-curve point of a record: its env step, ``key``'s return and the training wall and CPU seconds
    (``time/wall_s``, ``time/cpu_s``; None where the run did not log them)."""
    return r["step"], r[key], r.get("time/wall_s"), r.get("time/cpu_s")


def _record_rows(cell: dict[str, Any], rec: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task of a run record: its cell and swept tags (``tag_<name>``), scores, costs, and its greedy,
    sampling and training-game curves for that task (``curve``: points as :func:`_point`), and the training CPU
    seconds (``train_cpu_s``: the summary's, else the last curve point's; None where the run did not log them)."""
    s = rec["summary"]
    multi = len(s["tasks"]) > 1  # several trained games, or kept ones beside them (RunSpec.keep)
    rows = []
    for i, t in enumerate(s["tasks"]):
        suffix = f"/{t['env']}" if multi else ""
        key, tkey = "eval/mean_reward" + suffix, "rollout/ep_rew_mean" + suffix
        curve = [_point(r, key) for r in rec["curve"] if key in r]
        skey = "eval/sampled_mean_reward" + suffix
        sampled_curve = [_point(r, skey) for r in rec["curve"] if skey in r]
        train_curve = [(r["step"], r[tkey]) for r in rec.get("train_curve", []) if r.get(tkey) is not None]
        rows.append(
            {
                "key": cell["key"],
                "label": cell["label"],
                "method": cell["method"],
                "env": t["env"],
                "task": i,
                "tasks": len(s["envs"]),
                "trained": t.get("trained", True),
                "teacher": t.get("teacher"),
                "seed": cell["seed"],
                **{f"tag_{k}": v for k, v in cell["tags"].items()},
                "student": s["student"],
                "student_params": s["student_params"],
                "score": t["student_score"]["mean"],
                "score_std": t["student_score"]["std"],
                "teacher_score": t["teacher_score"]["mean"],
                "percent": t["percent_of_teacher"],
                "env_steps": s["env_steps"],
                "teacher_queries": s["teacher_queries"],
                "gradient_steps": s["gradient_steps"],
                "train_s": s.get("train_time_s", s["train_wall_s"]),
                "wall_s": s["wall_s"],
                "cpu_s": s.get("cpu_s"),
                "train_cpu_s": _train_cpu(s, curve),
                "episodes": t["episodes"],
                "curve": curve,
                "train_curve": train_curve,
                "sampled_curve": sampled_curve,
            }
        )
    return rows


def _train_cpu(summary: dict[str, Any], curve: list[tuple]) -> float | None:
    """A run's training CPU seconds: its summary's ``train_cpu_s``, else the latest ``time/cpu_s`` of its curve (the
    final evaluation's point, at its last step, where it carries one; else the last curve point before it, a lower
    bound short of at most one curve interval), else None."""
    if summary.get("train_cpu_s") is not None:
        return summary["train_cpu_s"]
    cpus = [p[3] for p in curve if p[3] is not None]
    return max(cpus) if cpus else None
