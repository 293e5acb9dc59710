"""results/teachers/README.md: one row per shipped teacher (score, budget, the command or commands that trained it)
and its learning curve."""

from __future__ import annotations

from pathlib import Path

from rl_distill import teachers
from rl_distill.report.plots import plot_teacher_curve
from rl_distill.runs import atomic_write_text


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
    lines += [
        "",
        "Learning curves (periodic greedy evaluation during training; the exported model is the best one):",
        "",
    ]
    lines += [f"![{m['id']}]({m['id']}.png)" for m in teachers.shipped_meta()]
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
