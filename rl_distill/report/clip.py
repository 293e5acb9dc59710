"""The clip a suite's report shows of the env its ``[report] video`` names: the teacher beside the best student there.

bench keeps the trained student of each cell on that env beside its record (``<results>/students/<cell key>/``,
records.save_students); the report picks the best of them (the highest final score on that env, the first on a tie),
plays it and its teacher greedily side by side from the same env seed (rl_distill/video.py: each panel captioned with
its name and running score) and writes ``<results>/video.gif``, one episode of at most :data:`CLIP_STEPS` agent
steps, so the file stays well under 2 MB. Where the best student's weights are not kept (a record from before bench
kept them) or its teacher is not here, the README says so in one line and the report goes on without a clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl_distill.errors import UserError
from rl_distill.records import student_dir

CLIP_FILE = "video.gif"
CLIP_STEPS = 300
"""Agent steps a panel plays at most: 20 s at MinAtar's 15 frames a second. Measured with two shipped teachers
playing to the cap or their game's end: MinAtar Breakout 50-160 KB of GIF, CartPole and LunarLander 0.5-0.6 MB, Atari
Pong and Breakout 100-150 KB."""
CLIP_SEED = 0
"""The env seed both panels start from."""


def best_row(rows: list[dict[str, Any]], env: str) -> dict[str, Any] | None:
    """The row of the best student trained on ``env``: the highest final score, the first (the suite's order) on a
    tie; None without a finished run there."""
    on_env = [r for r in rows if r["env"] == env and r.get("trained", True)]
    return max(on_env, key=lambda r: r["score"]) if on_env else None


def _teacher_source(cell: dict[str, Any], env: str, cells: list[dict[str, Any]], out: Path) -> tuple[str, str]:
    """What the clip loads as the cell's teacher on ``env``, and its caption. A ``cell:LABEL`` teacher is the kept
    student of that series' same-seed run."""
    envs = list(cell.get("envs") or [env])
    ref = cell["teachers"][envs.index(env)] if env in envs else cell["teachers"][0]
    if not ref.startswith("cell:"):
        return ref, Path(ref).stem if ref.endswith((".json", ".safetensors")) else ref
    src = next((c for c in cells if c["label"] == ref[5:] and c["seed"] == cell["seed"]), None)
    if src is None:
        raise UserError(f"its teacher {ref} names no run of the suite")
    kept = student_dir(out, src["key"])
    if not kept.is_dir():
        raise UserError(f"its teacher, the student of {src['key']}, is not kept in students/")
    return str(kept), f"{ref[5:]} s{cell['seed']}"


def clip_lines(suite: dict[str, Any], out: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The README's "Clip" section (none without ``[report] video``), after writing ``out/video.gif``."""
    env = suite.get("report", {}).get("video")
    if env is None:
        return []
    lines = ["## Clip", ""]
    best = best_row(rows, env)
    if best is None:
        return [*lines, f"No clip of {env}: no run on it has finished yet.", ""]
    key = best["key"]
    kept = student_dir(out, key)
    if not kept.is_dir():
        return [
            *lines,
            f"No clip of {env}: the weights of its best student (`{key}`) are not kept in students/ (its record is "
            "from before bench kept the students of the `[report] video` env; run that cell again to draw one).",
            "",
        ]
    from rl_distill.teachers import load_teacher
    from rl_distill.video import Panel, write_video

    cells = suite.get("cells", [])
    cell = next(c for c in cells if c["key"] == key)  # rows come from the snapshot's cells
    try:
        source, teacher_name = _teacher_source(cell, env, cells, out)
        panels = [
            Panel(teacher_name, load_teacher(source, env_id=env)),
            Panel(f"{best['label']} s{best['seed']}", load_teacher(str(kept), env_id=env)),
        ]
        clip = write_video(panels, env, out / CLIP_FILE, episodes=1, seed=CLIP_SEED, max_steps=CLIP_STEPS)
    except UserError as e:
        return [*lines, f"No clip of {env}: the best student's (`{key}`) clip cannot be drawn ({e}).", ""]
    played = "; ".join(
        f"{p['name']}: {format(p['returns'][0], 'g') if p['returns'] else f'cut at {CLIP_STEPS} steps'}"
        for p in clip["panels"]
    )
    return [
        *lines,
        f"![{teacher_name} beside the best student on {env}]({CLIP_FILE})",
        "",
        f"{env}: the teacher {teacher_name} (left) beside the best student, `{key}` ({best['label']}, seed "
        f"{best['seed']}, final score {best['score']:g}); one greedy game each from env seed {CLIP_SEED}, at most "
        f"{CLIP_STEPS} steps ({played}).",
        "",
    ]
