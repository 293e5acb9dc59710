"""bf16 against fp32, side by side (issue 22): the precision suite's two result folders and the CartPole teachers.

    python experiments/precision_report.py --train-teachers   # PPO CartPole teachers, 3 seeds x fp32/bf16
    rl-distill bench precision --precision fp32 --out results/precision/fp32 --runs-dir runs/bench/precision-fp32
    rl-distill bench precision --precision bf16 --out results/precision/bf16 --runs-dir runs/bench/precision-bf16
    python experiments/precision_report.py                    # results/precision/README.md

"Within noise" here: the difference of the two means is under twice its standard error (Welch), the usual
two-sigma reading of three seeds a side; the table shows the per-seed scores so a reader can judge too.

Not a report kind (rl_distill/report/kinds/): a kind draws one suite's results folder, and this compares two
folders of one suite run twice (``--precision fp32`` and ``bf16``) with teachers trained outside any suite.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path("results/precision")
PRECISIONS = ("fp32", "bf16")
SEEDS = (0, 1, 2)


def train_teachers(steps: int | None, runs_dir: str) -> None:
    """``rl-distill teachers train CartPole-v1 --algo ppo`` per seed and precision; keeps each teacher's JSON
    (score, curve, machine; the weights stay in runs/) under results/precision/teachers/."""
    out_dir = RESULTS / "teachers"
    out_dir.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS:  # the precisions alternate, so both sides see the same machine load
        for precision in PRECISIONS:
            kept = out_dir / f"ppo-CartPole-v1-{precision}-s{seed}.json"
            if kept.exists():
                continue
            out = Path(runs_dir) / f"ppo-CartPole-v1-{precision}-s{seed}"
            cmd = [sys.executable, "-m", "rl_distill.cli", "teachers", "train", "CartPole-v1", "--algo", "ppo"]
            cmd += ["--seed", str(seed), "--precision", precision, "--runs-dir", runs_dir, "--out", str(out)]
            cmd += ["--no-progress"] + (["--steps", str(steps)] if steps else [])
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            meta = json.loads(out.with_suffix(".json").read_text())
            kept.write_text(json.dumps(meta, indent=2) + "\n")


def _welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """(mean b - mean a, its standard error); each side has at least two values (``_row`` checks)."""
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return statistics.mean(b) - statistics.mean(a), se


def _cells() -> dict[str, dict[str, list[tuple[int, float, dict]]]]:
    """label -> precision -> [(seed, student score, summary)] from the two folders' records."""
    out: dict[str, dict[str, list]] = {}
    for precision in PRECISIONS:
        for f in sorted((RESULTS / precision / "runs").glob("*.json")):
            r = json.loads(f.read_text())
            s = r["summary"]
            if s.get("precision", precision) != precision:
                raise SystemExit(f"{f}: ran in {s.get('precision')}, not {precision}")
            label = f"{r['cell']['label']} on {r['cell']['envs'][0]} ({r['cell']['steps']:,} env steps)"
            score = float(s["student_score"]["mean"])
            out.setdefault(label, {}).setdefault(precision, []).append((r["cell"]["seed"], score, s))
    return out


def _teachers() -> dict[str, list[tuple[int, float, dict]]]:
    out: dict[str, list] = {}
    for precision in PRECISIONS:
        for seed in SEEDS:
            f = RESULTS / "teachers" / f"ppo-CartPole-v1-{precision}-s{seed}.json"
            if f.exists():
                m = json.loads(f.read_text())
                out.setdefault(precision, []).append((seed, float(m["score"]["mean"]), m))
    return out


def _first_at(curve: list[dict], level: float) -> float:
    """The first step of a teacher's learning curve whose mean reaches ``level`` (inf if none)."""
    return next((float(e["step"]) for e in curve if e["mean"] >= level), math.inf)


def _fmt(v: float) -> str:
    """Large values (env steps) with thousands separators, scores with one decimal."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}"


def _row(name: str, by_precision: dict[str, list[tuple[int, float, dict]]], cpu_s=None, higher_is_better=True) -> str:
    """One table row: the per-seed values of each precision, their difference and whether it is within noise."""
    seeds = [sorted(seed for seed, _, _ in by_precision.get(p, [])) for p in PRECISIONS]
    if seeds[0] != seeds[1] or len(seeds[0]) < 2:  # not yet the same seeds on both sides: the values alone
        return (
            f"| {name} | "
            + " | ".join(", ".join(_fmt(v) for _, v, _ in by_precision.get(p, [])) or "-" for p in PRECISIONS)
            + " | - | - | - | - |"
        )
    vals = {p: [v for _, v, _ in sorted(by_precision[p], key=lambda t: t[0])] for p in PRECISIONS}
    diff, se = _welch(vals["fp32"], vals["bf16"])
    better = diff >= 0 if higher_is_better else diff <= 0
    within = "yes" if abs(diff) <= 2 * se or better else "no"
    secs = {p: sum(cpu_s(x) for _, _, x in by_precision[p]) if cpu_s else 0.0 for p in PRECISIONS}
    cells = [
        name,
        ", ".join(map(_fmt, vals["fp32"])) + f" (mean {_fmt(statistics.mean(vals['fp32']))})",
        ", ".join(map(_fmt, vals["bf16"])) + f" (mean {_fmt(statistics.mean(vals['bf16']))})",
        f"{'+' if diff >= 0 else '-'}{_fmt(abs(diff))} ± {_fmt(se)}",
        within,
        f"{secs['fp32']:,.0f} / {secs['bf16']:,.0f}" if secs["bf16"] else "-",
        f"{secs['fp32'] / secs['bf16']:.2f}" if secs["bf16"] else "-",
    ]
    return "| " + " | ".join(cells) + " |"


def report() -> None:
    from rl_distill.runs import machine

    lines = [
        "# bf16 autocast against fp32 (issue 22)",
        "",
        "Generated by `python experiments/precision_report.py` from `results/precision/{fp32,bf16}/runs/` and",
        "`results/precision/teachers/`; the commands are in that script's docstring. The same seeds, teachers and",
        "cells; only `--precision` differs. Scores: the harness's final evaluation (CartPole teachers: 100",
        "episodes; LunarLander: 30; Pong: 10 full games). \"Within noise\": bf16's mean is not below fp32's by more",
        "than twice the standard error of the difference (Welch). The seconds are training time of the runs",
        "(teachers: the whole `teachers train` wall clock), summed over seeds. The two sides alternated (teachers)",
        "or ran as two bench processes at once beside a niced teacher-training job (cells), but the last bf16",
        "cells ran with one process fewer, so read the speed column as rough; results/benchmarks has the timed",
        "ratios.",
        "",
        "| cell | fp32 (seeds 0, 1, 2) | bf16 (seeds 0, 1, 2) | bf16 - fp32 | within noise "
        "| seconds fp32 / bf16 | speed bf16 / fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    teachers = _teachers()
    machines = set()
    if teachers:
        lines.append(
            _row("PPO CartPole-v1 teacher (rl-zoo3 settings, 100k steps)", teachers, lambda m: m["training"]["wall_s"])
        )
        # how fast, not only where to: the first periodic evaluation (every 5k steps) at the maximum, 500
        first = {
            p: [(seed, float(_first_at(m["training"]["curve"], 500.0)), m) for seed, _, m in v]
            for p, v in teachers.items()
        }
        lines.append(_row("the same teachers: env steps to the first 500 evaluation", first, higher_is_better=False))
        area = {
            p: [(seed, statistics.mean(e["mean"] for e in m["training"]["curve"]), m) for seed, _, m in v]
            for p, v in teachers.items()
        }
        lines.append(_row("the same teachers: mean of the learning curve (20 evaluations of 20 episodes)", area))
        machines |= {m["training"]["segments"][-1]["machine"] for v in teachers.values() for _, _, m in v}
    for label, by_precision in _cells().items():
        lines.append(_row(label, by_precision, lambda s: s.get("train_wall_s", s.get("wall_s", 0.0))))
    here = machine()
    lines += [
        "",
        f"Teachers trained on: {'; '.join(sorted(machines)) or '-'}. "
        f"CPU of this report: {here['cpu']} ({here['isa']}).",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-teachers", action="store_true", help="train the 6 PPO CartPole teachers first")
    ap.add_argument("--steps", type=int, default=None, help="teacher budget (default: rl-zoo3's)")
    ap.add_argument("--runs-dir", default="runs/precision-teachers", help="teacher run folders")
    a = ap.parse_args()
    if a.train_teachers:
        train_teachers(a.steps, a.runs_dir)
    report()


if __name__ == "__main__":
    main()
