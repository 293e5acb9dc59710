"""MinAtar DQN training speed against MinAtar's own reference agent (issue 38, item 6), side by side in one run.

The reference is ``examples/dqn.py`` of kenjyoung/MinAtar (the paper's agent), run unchanged from a scratch copy
outside this repository (it is GPL-3.0 and not vendored): give its path with ``--reference``. Both play the same
game with the paper's six actions (``MinAtar/<Game>-v0`` here), sticky actions 0.1 and difficulty ramping, at the
paper's settings: an update of batch 32 every frame, replay 100k, 5k random frames first, target every 1k, centered
RMSProp. Each runs ``--frames`` frames in its own process on its own core (``taskset``), one torch thread, at the
same time, so they share the machine's state. Frames/s is frames over the process's wall time (start-up and its
final save included for both; the suite's run evaluates one episode at the end). Nothing else should run.

    .venv/bin/python benchmarks/minatar_dqn_speed.py --reference /path/to/MinAtar/examples/dqn.py \\
        [--game breakout] [--frames 100000] [--out results/benchmarks/minatar_dqn_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rl_distill.envs.minatar import GAMES
from rl_distill.runs import atomic_write_json, machine

REPO = Path(__file__).resolve().parents[1]


def _reference_cmd(reference: Path, game: str, frames: int, out: Path) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(reference.parent)!r}); import dqn; dqn.NUM_FRAMES = {frames}; "
        f"sys.argv = ['dqn.py', '-g', {game!r}, '-o', {str(out / 'ref')!r}]; dqn.main()"
    )
    return [sys.executable, "-c", code]


def _suite_cmd(env_id: str, frames: int, out: Path) -> list[str]:
    cli = str(Path(sys.executable).with_name("rl-distill"))
    return [
        cli, "teachers", "train", env_id, "--algo", "dqn", "--steps", str(frames), "--eval-every", str(frames),
        "--eval-episodes", "1", "--final-episodes", "1", "--runs-dir", str(out / "runs"), "--out",
        str(out / "teacher"), "--no-progress",
    ]  # fmt: skip


def _distill_speed(steps: int, env: dict[str, str]) -> dict[str, float]:
    """Env steps/s of one Policy Distillation run (the shipped Breakout DQN teacher, the paper-size student ``minatar``,
    Rusu's KL with tau = 0.01), alone on the machine after the side-by-side pair: the training time only, as the run's
    summary counts it (its evaluations apart)."""
    cli = str(Path(sys.executable).with_name("rl-distill"))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [cli, "distill", "policy-distillation", "--teacher", "dqn-MinAtar-Breakout-v1", "--student", "minatar",
               "--steps", str(steps), "--eval-episodes", "10", "--runs-dir", tmp, "--no-progress", "--json",
               "--loss", "kl", "--tau", "0.01"]  # fmt: skip
        out = subprocess.run(["taskset", "-c", "0", *cmd], env=env, capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    train_s = summary["train_time_s"]
    row = {
        "env_steps": summary["env_steps"],
        "train_s": train_s,
        "env_steps_per_s": round(summary["env_steps"] / train_s, 1),
    }
    print(f"policy-distillation, minatar student: {row['env_steps_per_s']} env steps/s of training", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="path of MinAtar's examples/dqn.py (a scratch copy)")
    ap.add_argument("--game", default="breakout", choices=sorted(GAMES.values()), help="game (default breakout)")
    ap.add_argument("--frames", type=int, default=100_000, help="frames (agent steps) each agent runs (default 100k)")
    ap.add_argument("--distill-steps", type=int, default=50_000, help="env steps of the Policy Distillation run")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "minatar_dqn_speed.json")
    a = ap.parse_args()
    env_id = f"MinAtar/{next(k for k, v in GAMES.items() if v == a.game)}-v0"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cmds = {
            "reference examples/dqn.py": _reference_cmd(a.reference.resolve(), a.game, a.frames, tmp),
            "rl-distill teachers train --algo dqn": _suite_cmd(env_id, a.frames, tmp),
        }
        procs, errs, t0 = {}, {}, time.perf_counter()
        for core, (name, cmd) in enumerate(cmds.items()):
            errs[name] = open(tmp / f"stderr{core}.txt", "w+")  # a file, not a pipe: nothing blocks on a full one
            procs[name] = subprocess.Popen(
                ["taskset", "-c", str(core % (os.cpu_count() or 1)), *cmd],
                env=env,
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=errs[name],
                text=True,
            )
        walls: dict[str, float] = {}
        while len(walls) < len(procs):  # each process's own end, whichever finishes first
            for name, p in procs.items():
                if name not in walls and p.poll() is not None:
                    walls[name] = time.perf_counter() - t0
            time.sleep(0.02)
        rows = {}
        for name, p in procs.items():
            wall = walls[name]
            if p.returncode != 0:
                errs[name].seek(0)
                raise SystemExit(f"{name} failed ({p.returncode}): {errs[name].read().strip().splitlines()[-1:]}")
            errs[name].close()
            rows[name] = {"wall_s": round(wall, 1), "frames_per_s": round(a.frames / wall, 1)}
            print(f"{name}: {a.frames} frames in {wall:.1f} s = {a.frames / wall:.1f} frames/s", flush=True)
    ref, ours = rows["reference examples/dqn.py"], rows["rl-distill teachers train --algo dqn"]
    distill_row = _distill_speed(a.distill_steps, env)
    result = {
        "what": "MinAtar DQN at the paper's settings, frames/s of the suite's teachers train against MinAtar's "
        "reference agent, side by side (one core each, one torch thread)",
        "env_id": env_id,
        "frames": a.frames,
        "rows": rows,
        "ratio_suite_over_reference": round(ours["frames_per_s"] / ref["frames_per_s"], 3),
        "policy_distillation": distill_row,
        "command": " ".join(["python", "benchmarks/minatar_dqn_speed.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    atomic_write_json(a.out, result)
    print(f"suite / reference: {result['ratio_suite_over_reference']}x -> {a.out}")


if __name__ == "__main__":
    main()
