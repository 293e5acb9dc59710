"""Tables and plots from recorded results (teacher metadata now; benchmark runs later)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl_distill.runs import atomic_write_text


def _plot_curve(meta: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = (meta.get("training") or {}).get("curve") or []
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    if curve:
        steps = [c["step"] for c in curve]
        means = [c["mean"] for c in curve]
        stds = [c["std"] for c in curve]
        ax.plot(steps, means, marker="o", ms=3)
        ax.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], alpha=0.2)
    score = (meta.get("score") or {}).get("mean")
    if score is not None:
        ax.axhline(score, color="k", ls="--", lw=0.8, label=f"final eval {score:.1f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return (greedy)")
    ax.set_title(meta.get("id", ""), fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def teacher_report(out_dir: str | Path = "results/teachers") -> Path:
    """results/teachers/README.md (one row per shipped teacher) and a learning-curve PNG each."""
    from rl_distill.teachers import shipped_meta

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
        "| teacher | env | score (mean ± std) | IQM [95% CI] | human-norm. | train steps | wall (s) | steps/s | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in shipped_meta():
        s, t = m.get("score") or {}, m.get("training") or {}
        ci = s.get("iqm_ci") or [float("nan")] * 2
        hn = s.get("human_normalized")
        lines.append(
            f"| {m['id']} | {m['env_id']} | {s['mean']:.1f} ± {s['std']:.1f} (n={s['n']}) | {s['iqm']:.1f} [{ci[0]:.1f}, {ci[1]:.1f}] | "
            f"{'-' if hn is None else f'{hn:.2f}'} | {t.get('steps')} | {t.get('wall_s')} | {t.get('steps_per_s')} | `{t.get('command')}` |"
        )
        _plot_curve(m, out / f"{m['id']}.png")
    lines += ["", "Learning curves (periodic greedy evaluation during training; the exported model is the best one):", ""]
    lines += [f"![{m['id']}]({m['id']}.png)" for m in shipped_meta()]
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
