"""The report's figures: a teacher's learning curve, a suite's learning curves, its aggregate, a sweep and its
aggregate over envs, the continual stages and expert iteration's search against its network. Each draws one PNG,
written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rl_distill.envs import score_floor
from rl_distill.report.stats import curve_band, groups, mean_ci, mean_present


def _plt():
    """pyplot, imported on first use (the commands that draw nothing never load matplotlib), on the Agg backend
    unless pyplot is already loaded: a notebook's inline backend is left alone, or its later figures would not
    show (a run with ``eval_every`` draws its ``curve.png`` here; ``save`` closes each figure, so none is shown)."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: float | None = None) -> None:
    """Write ``fig`` to ``path`` through a temporary file (a reader never sees half a PNG) and close it."""
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, **({"dpi": dpi} if dpi else {}))
    _plt().close(fig)
    tmp.replace(path)


def axis_name(x: str) -> str:
    """A runs.csv column or swept tag as an axis (or the text) names it: 'tag_beta_schedule' -> 'beta schedule'."""
    return x.replace("tag_", "").replace("_", " ")


def short_count(x: float) -> str:
    """A count (env steps, parameters, teacher queries) for an axis tick, to 3 significant digits: 500, 50k, 1.25M,
    2.5k for 2,504 (a budget rounded up to whole batches of envs)."""
    x = float(f"{x:.3g}")
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _short_steps(ax) -> None:
    ax.xaxis.set_major_formatter(lambda x, _pos: short_count(x))


def series_colours(rows: list[dict[str, Any]], key: str) -> dict[Any, str]:
    """One colour per series across a figure's panels, so a series missing from one env (a suite in progress)
    does not shift the others' colours."""
    return {s: f"C{i % 10}" for i, s in enumerate(dict.fromkeys(r[key] for r in rows))}


def plot_teacher_curve(meta: dict[str, Any], path: Path) -> None:
    """A shipped teacher's training curve (periodic greedy evaluations, mean ± std) and its final evaluation."""
    plt = _plt()
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
    _short_steps(ax)
    ax.set_ylabel("eval return (greedy)")
    ax.set_title(meta.get("id", ""), fontsize=10)
    fig.tight_layout()
    save(fig, path)


def plot_run_curve(
    scalars: list[dict[str, float]], env_ids: list[str], teacher_scores: list[float | None], path: Path, title: str
) -> None:
    """One run's learning curve (a distill run's ``curve.png``): a panel per head, the greedy student's evaluations
    (the last one: the final evaluation), the sampling student's dotted, the teacher's score dashed."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(env_ids), figsize=(4.6 * len(env_ids), 3.4), dpi=100, squeeze=False)
    for ax, env, teacher in zip(axes[0], env_ids, teacher_scores):
        suffix = "" if len(env_ids) == 1 else "/" + env
        for key, style, label in (("eval/mean_reward", "-o", "greedy"), ("eval/sampled_mean_reward", ":", "sampling")):
            points = [(r["step"], r[key + suffix]) for r in scalars if key + suffix in r]
            if points:
                ax.plot(*zip(*points), style, ms=3, lw=1.2, color="C0", label=f"student, {label}")
        if teacher is not None:
            ax.axhline(teacher, color="k", ls="--", lw=0.8, label=f"teacher {teacher:.1f}")
        ax.set_title(env, fontsize=10)
        ax.set_xlabel("env steps")
        _short_steps(ax)
        ax.set_ylabel("eval return")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str) -> bool:
    """A panel per env, a line per series (mean over seeds, bootstrap band; dotted: the sampling student), the
    teacher dashed. False (nothing drawn) where no run has two curve points."""
    plt = _plt()
    with_curves = [r for r in rows if len(r["curve"]) >= 2]
    if not with_curves:
        return False
    by_env = {env: rs for (env,), rs in groups(with_curves, ["env"]).items()}
    colour = series_colours(with_curves, "label")
    # All series in every panel: one legend (the last panel's); a suite in progress: each panel lists its own.
    partial = any({r["label"] for r in rs} != set(colour) for rs in by_env.values())
    fig, axes = plt.subplots(1, len(by_env), figsize=(4.6 * len(by_env), 3.6), dpi=100, squeeze=False)
    for ax, (env, env_rows) in zip(axes[0], by_env.items()):
        for (label,), rs in groups(env_rows, ["label"]).items():
            x_max = max(r["env_steps"] for r in rs)
            xs, mean, lo, hi = curve_band([r["curve"] for r in rs], x_max)
            ax.plot(xs, mean, lw=1.4, label=f"{label} (n={len(rs)})", color=colour[label])
            ax.fill_between(xs, lo, hi, color=colour[label], alpha=0.18)
            sampled = [r["sampled_curve"] for r in rs if len(r.get("sampled_curve") or []) >= 2]
            if len(sampled) == len(rs):  # runs from before the sampled curve was kept have none
                xs, mean, _, _ = curve_band(sampled, x_max)
                ax.plot(xs, mean, lw=0.9, ls=":", color=colour[label])
        teacher = sum(r["teacher_score"] for r in env_rows) / len(env_rows)
        ax.axhline(teacher, color="k", ls="--", lw=0.8, label=f"teacher {teacher:.1f}")
        # Keep the teacher's range readable when a run collapses far below it (noted in the title).
        base = score_floor(env) or 0.0
        lowest = min(c[1] for r in env_rows for c in r["curve"])
        bottom = teacher - 2.5 * abs(teacher - base)
        if lowest < bottom:
            ax.set_ylim(bottom=bottom)
            ax.set_title(f"{env} (min {lowest:.0f}, cut)", fontsize=10)
        if lowest >= bottom:
            ax.set_title(env, fontsize=10)
        ax.set_xlabel("env steps")
        _short_steps(ax)
        ax.set_ylabel("eval return (greedy; dotted: sampling)")
        budgets = [r["env_steps"] for r in env_rows]
        if max(budgets) > 10 * min(budgets):  # budgets differ by orders of magnitude
            ax.set_xscale("symlog", linthresh=100)
            ax.set_xlim(0, max(budgets))
        if ax is axes[0][-1] or partial:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)
    return True


def plot_aggregate(agg: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Each series' IQM of % of teacher with its interval, one row each; the teacher's 100% dashed."""
    plt = _plt()
    names = list(agg)
    # Wide enough for the longest series name beside a 4-inch axes (~0.075 in a character at the tick font).
    width = max(6.0, 4.2 + 0.075 * max(len(n) for n in names))
    fig, ax = plt.subplots(figsize=(width, 0.45 * len(names) + 1.2), dpi=100)
    left = -25.0  # far-below-teacher aggregates are drawn at the edge with their value
    for i, n in enumerate(names):
        a = agg[n]
        if a["iqm"] < left:
            ax.annotate(
                f"IQM {a['iqm']:.0f}%",
                (left, i),
                xytext=(left + 8, i),
                va="center",
                fontsize=8,
                arrowprops={"arrowstyle": "->"},
            )
            continue
        lo, hi = max(a["iqm_ci"][0], left), a["iqm_ci"][1]
        ax.errorbar(a["iqm"], i, xerr=[[a["iqm"] - lo], [hi - a["iqm"]]], fmt="o", capsize=3)
    ax.axvline(100, color="k", ls="--", lw=0.8)
    ax.set_xlim(left - 5, max(110.0, *(agg[n]["iqm_ci"][1] + 5 for n in names)))
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("IQM of % of teacher (95% stratified bootstrap CI)")
    fig.suptitle(title, fontsize=10)  # over the whole figure: the axes alone can be narrower than the title
    fig.tight_layout()
    save(fig, path)


def plot_sweep(rows: list[dict[str, Any]], x: str, y: str, series: str, path: Path, title: str, logx: bool) -> None:
    """A panel per env: ``y`` (mean over seeds, bootstrap band) against the swept ``x``, a line per ``series``."""
    plt = _plt()
    envs = list(dict.fromkeys(r["env"] for r in rows))
    colour = series_colours(rows, series)
    fig, axes = plt.subplots(1, len(envs), figsize=(4.6 * len(envs), 3.6), dpi=100, squeeze=False)
    for ax, env in zip(axes[0], envs):
        for (s,), rs in groups([r for r in rows if r["env"] == env and r[y] is not None], [series]).items():
            pts = sorted(groups(rs, [x]).items())
            xs = [k[0] for k, _ in pts]
            stats = [mean_ci([r[y] for r in g]) for _, g in pts]
            ax.plot(xs, [m for m, _, _ in stats], marker="o", ms=3, label=str(s), color=colour[s])
            ax.fill_between(xs, [lo for _, lo, _ in stats], [hi for _, _, hi in stats], color=colour[s], alpha=0.18)
        if y == "percent":
            ax.axhline(100, color="k", ls="--", lw=0.8)
        else:
            t = np.mean([r["teacher_score"] for r in rows if r["env"] == env])
            ax.axhline(t, color="k", ls="--", lw=0.8, label=f"teacher {t:.1f}")
        if logx:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ticks = sorted({r[x] for r in rows if r["env"] == env and r[x]})
            ax.set_xticks(ticks, [short_count(t) for t in ticks], fontsize=8)
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(axis_name(x))
        ax.set_ylabel("% of teacher" if y == "percent" else "eval return")
        ax.set_title(env, fontsize=10)
        ax.legend(fontsize=7)  # each panel lists its own series (a suite in progress may lack some)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def plot_sweep_aggregate(
    points: dict[str, list[tuple[float, float, float, float]]], path: Path, title: str, xlabel: str, logx: bool
) -> None:
    """A sweep's aggregate over envs in one panel: per series, the IQM of % of teacher (with its interval as a band)
    at each swept ``x``; ``points``: series -> [(x, iqm, lo, hi)], the teacher's 100% dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    for i, (series, pts) in enumerate(points.items()):
        pts = sorted(pts)
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1] for p in pts], marker="o", ms=3, label=series, color=f"C{i % 10}")
        ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], color=f"C{i % 10}", alpha=0.18)
    ax.axhline(100, color="k", ls="--", lw=0.8)
    if logx:
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ticks = sorted({p[0] for pts in points.values() for p in pts if p[0]})
        ax.set_xticks(ticks, [short_count(t) for t in ticks], fontsize=8)  # x: a median over envs
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("IQM of % of teacher (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)


def plot_continual(
    rows: list[dict[str, Any]], offsets: dict[str, tuple[int, str | None]], games: list[str], path: Path, name: str
) -> bool:
    """A panel per game of a continual suite, each stage's curves from its offset on one env-step axis (dashed: a
    kept game, not trained in that stage). False where no run has two curve points on these games."""
    plt = _plt()
    with_curves = [r for r in rows if len(r["curve"]) >= 2 and r["env"] in games]
    if not with_curves:
        return False
    colour = series_colours(with_curves, "label")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), dpi=100, squeeze=False)
    for ax, game in zip(axes[0], games):
        for (label,), rs in groups([r for r in with_curves if r["env"] == game], ["label"]).items():
            start = offsets.get(label, (0, None))[0]
            xs, mean, lo, hi = curve_band([r["curve"] for r in rs], max(r["env_steps"] for r in rs))
            ls = "-" if rs[0]["trained"] else "--"
            ax.plot(xs + start, mean, lw=1.4, ls=ls, color=colour[label], label=f"{label} (n={len(rs)})")
            ax.fill_between(xs + start, lo, hi, color=colour[label], alpha=0.15)
        teacher = next(r["teacher_score"] for r in rows if r["env"] == game)
        ax.axhline(teacher, color="k", ls=":", lw=0.8, label=f"teacher {teacher:.1f}")
        ax.set_title(f"{game} (dashed: kept, not trained)", fontsize=10)
        ax.set_xlabel("env steps, stages one after another")
        _short_steps(ax)
        ax.set_ylabel("eval return (greedy)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{name}: forgetting and recovery", fontsize=11)
    fig.tight_layout()
    save(fig, path)
    return True


def plot_search_vs_network(runs_by_series: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """A panel per expert-iteration series: the search's and the network's return at each iteration, each seed thin
    and the mean over seeds marked, the teacher (a reference the run never asks) dashed."""
    plt = _plt()
    n_panels = len(runs_by_series)
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels, 4), squeeze=False, sharey=True)
    for ax, (series, runs) in zip(axes[0], runs_by_series.items()):
        for name, color in (("search", "tab:orange"), ("network", "tab:blue")):
            for r in runs:
                xs = [i + 1 for i, it in enumerate(r["iterations"]) if it[name] is not None]
                ys = [it[name] for it in r["iterations"] if it[name] is not None]
                ax.plot(xs, ys, color=color, alpha=0.25, lw=1)
            n = max(len(r["iterations"]) for r in runs)
            means = [
                mean_present([r["iterations"][i][name] for r in runs if i < len(r["iterations"])])[0] for i in range(n)
            ]
            xs = [i + 1 for i, m in enumerate(means) if m is not None]
            label = "MCTS (search acts)" if name == "search" else "network (greedy)"
            ax.plot(xs, [m for m in means if m is not None], "o-", color=color, label=f"{label}, mean of seeds")
        ax.axhline(runs[0]["summary"]["teacher_score"], color="k", ls="--", lw=1, label="PPO teacher (reference)")
        ax.set_xlabel("expert-iteration iteration")
        ax.set_ylabel("episode return")
        ax.set_title(f"{series} ({len(runs)} seeds; thin: each seed)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, path, dpi=110)
