"""results/teachers/README.md: one row per shipped teacher (score, budget, the command or commands that trained it)
and its learning curve."""

from __future__ import annotations

from pathlib import Path

from rl_distill import teachers
from rl_distill.report.plots import plot_teacher_curve
from rl_distill.runs import atomic_write_text


def _minatar_published(metas: list[dict]) -> list[str]:
    """The MinAtar teachers beside the paper's returns at 5M frames (``envs.minatar.PUBLISHED``, with its source)."""
    from rl_distill.envs.minatar import GAMES, PUBLISHED

    ours = {(m["env_id"], m.get("algo")): m for m in metas if m["env_id"].startswith("MinAtar/")}
    lines = [
        "",
        "## MinAtar teachers against the MinAtar paper",
        "",
        "The paper (Young & Tian 2019, arXiv 1903.03176 v2) plots the epsilon = 0.1 behaviour policy's training return",
        "(last 100 episodes, 30 runs, six actions) at 5M frames; no table is published, so its figures are read from",
        "the plots (+-0.3 to 1.5). Ours: the greedy policy over 100 episodes, minimal action set, the same sticky",
        "actions and ramping. A teacher meets published strength at or above the paper's DQN (best step size).",
        "Seaquest's published curves predate minatar 1.0.11's oxygen fix.",
        "",
        "| game | paper DQN (best step size) | paper DQN (2^-12 = examples/dqn.py) | paper AC(0.8) | ours DQN "
        "| ours PPO |",
        "|---|---|---|---|---|---|",
    ]
    for game in GAMES:
        dqn, dqn_ref, ac = PUBLISHED[game]
        cells = []
        for algo in ("dqn", "ppo"):
            m = ours.get((f"MinAtar/{game}-v1", algo))
            if m is None:
                cells.append("not yet")
                continue
            s = m["score"]
            met = "met" if s["mean"] >= dqn else "below"
            cells.append(f"{s['mean']:.1f} ± {s['std']:.1f} ({met}; {m['training']['steps']:,} steps)")
        lines.append(f"| {game} | {dqn} | {dqn_ref} | {ac} | {cells[0]} | {cells[1]} |")
    return lines


def teacher_report(out_dir: str | Path = "results/teachers") -> Path:
    """results/teachers/README.md (one row per shipped teacher) and a learning-curve PNG each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Shipped teachers",
        "",
        "Trained here with `rl-distill teachers train` (Stable-Baselines3, rl-zoo3 hyperparameters from",
        "`rl_distill/teachers/hyperparams.toml`), exported to safetensors + JSON in `rl_distill/zoo/`. Score: the",
        "suite's evaluation harness, greedy actions, 100 episodes (Atari: 30 full games, raw score), evaluation seed",
        "1,000,000. Regenerate this page with `rl-distill teachers report`.",
        "",
        "| teacher | env | score (mean ± std) | IQM [95% CI] | human-norm. | train steps | weights from step "
        "| wall (s) | steps/s | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in teachers.shipped_meta():
        s, t = m.get("score") or {}, m.get("training") or {}
        ci = s.get("iqm_ci") or [float("nan")] * 2
        hn = s.get("human_normalized")
        segments = [g for g in t.get("segments") or [] if g["end_step"] > g["start_step"]]  # not export-only calls
        if len(segments) > 1:  # resumed, possibly on other machines: each invocation with its share
            command = "<br>".join(
                f"`{g['command']}` (steps {g['start_step']:,}-{g['end_step']:,}, {g['wall_s']:.0f} s, {g['machine']})"
                for g in segments
            )
        else:
            command = f"`{segments[0]['command'] if segments else t.get('command')}`"
        lines.append(
            f"| {m['id']} | {m['env_id']} | {s['mean']:.1f} ± {s['std']:.1f} (n={s['n']}) | "
            f"{s['iqm']:.1f} [{ci[0]:.1f}, {ci[1]:.1f}] | "
            f"{'-' if hn is None else f'{hn:.2f}'} | {t.get('steps')} | {t.get('best_step') or '-'} | "
            f"{t.get('wall_s')} | {t.get('steps_per_s')} | {command} |"
        )
        plot_teacher_curve(m, out / f"{m['id']}.png")
    lines += _minatar_published(teachers.shipped_meta())
    lines += [
        "",
        "Learning curves (periodic greedy evaluation during training; the exported model is the best one):",
        "",
    ]
    lines += [f"![{m['id']}]({m['id']}.png)" for m in teachers.shipped_meta()]
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
