"""Tables and plots from recorded results: the shipped teachers, and benchmark suites' run folders."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rl_distill.records import SUITES_DIR, copy_records, load_record, sync_records
from rl_distill.runs import atomic_write_text


def short_count(x: float) -> str:
    """A count (env steps, parameters, teacher queries) for an axis tick: 500, 50k, 1.25M."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def _short_steps(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: short_count(x)))


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
    _short_steps(ax)
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
        "| teacher | env | score (mean ± std) | IQM [95% CI] | human-norm. | train steps | weights from step "
        "| wall (s) | steps/s | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in shipped_meta():
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
        _plot_curve(m, out / f"{m['id']}.png")
    lines += [
        "",
        "Learning curves (periodic greedy evaluation during training; the exported model is the best one):",
        "",
    ]
    lines += [f"![{m['id']}]({m['id']}.png)" for m in shipped_meta()]
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# --- benchmark suites (`rl-distill bench`, `rl-distill report RUNS_DIR`) -------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    _plt().close(fig)
    tmp.replace(path)


def _percent(score: float, teacher: float, env_id: str) -> float | None:
    from rl_distill.envs import score_floor
    from rl_distill.metrics import percent_of_reference

    floor = score_floor(env_id)
    if teacher <= (floor if floor is not None else 0.0):
        return None
    return percent_of_reference(score, teacher, floor)


def collect_bench(
    source: str | Path, out_dir: str | Path | None = None
) -> tuple[dict[str, Any], Path, list[dict[str, Any]]]:
    """The suite snapshot, its results folder and one row per (finished run, task): cell, final scores and
    learning curve, read from the run records in ``<results>/runs/``. ``source`` is a results folder or a
    benchmark runs folder; from a runs folder, finished runs without a record get one first. With ``out_dir``
    elsewhere, a results folder's records are copied there (the report is drawn from ``out_dir``'s records)."""
    import json

    root = Path(source)
    if not (root / "suite.json").exists():
        from rl_distill.errors import UserError

        raise UserError(
            f"{root} is neither a benchmark results folder nor a runs folder (no suite.json); "
            "run `rl-distill bench` first"
        )
    suite = json.loads((root / "suite.json").read_text())
    out = Path(out_dir or suite.get("out") or f"results/{suite['name']}")
    if root.resolve() != out.resolve():
        keys = [cell["key"] for cell in suite["cells"]]
        # A results folder holds records (root/runs/<key>.json); a runs folder holds run folders (root/<key>/).
        copy_records(root, out, keys)
        sync_records(root, out, keys)
    rows = []
    for cell in suite["cells"]:
        rec = load_record(out, cell["key"])
        if rec is None:
            continue
        s = rec["summary"]
        multi = len(s["tasks"]) > 1  # several trained games, or kept ones beside them (RunSpec.keep)
        for i, t in enumerate(s["tasks"]):
            suffix = f"/{t['env']}" if multi else ""
            key, tkey = "eval/mean_reward" + suffix, "rollout/ep_rew_mean" + suffix
            curve = [(r["step"], r[key], r.get("time/wall_s")) for r in rec["curve"] if key in r]
            skey = "eval/sampled_mean_reward" + suffix
            sampled_curve = [(r["step"], r[skey], r.get("time/wall_s")) for r in rec["curve"] if skey in r]
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
                    "episodes": t["episodes"],
                    "curve": curve,
                    "train_curve": train_curve,
                    "sampled_curve": sampled_curve,
                }
            )
    return suite, out, rows


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _duration(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.1f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def _groups(rows: list[dict[str, Any]], keys: list[str]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def _mean_ci(xs: list[float], seed: int = 0) -> tuple[float, float, float]:
    import numpy as np

    from rl_distill.metrics import bootstrap_ci

    a = np.asarray(xs, dtype=float)
    lo, hi = bootstrap_ci(a, stat=np.mean, seed=seed) if len(a) > 1 else (a[0], a[0])
    return float(a.mean()), float(lo), float(hi)


def _curve_band(curves: list[list[tuple]], x_max: float, n: int = 40):
    """Curves of several seeds on one grid of env steps: mean and a bootstrap 95% band over seeds."""
    import numpy as np

    from rl_distill.metrics import bootstrap_ci

    xs = np.linspace(0, x_max, n)
    ys = np.array([np.interp(xs, [c[0] for c in cv], [c[1] for c in cv]) for cv in curves])
    mean = ys.mean(0)
    band = np.array(
        [bootstrap_ci(ys[:, j], stat=np.mean, reps=500) if len(ys) > 1 else (ys[0, j], ys[0, j]) for j in range(n)]
    )
    return xs, mean, band[:, 0], band[:, 1]


def _series_colours(rows: list[dict[str, Any]], key: str) -> dict[Any, str]:
    """One colour per series across a figure's panels, so a series missing from one env (a suite in progress)
    does not shift the others' colours."""
    return {s: f"C{i % 10}" for i, s in enumerate(dict.fromkeys(r[key] for r in rows))}


def _plot_curves(rows: list[dict[str, Any]], path: Path, title: str, x: str = "env_steps") -> bool:
    plt = _plt()
    with_curves = [r for r in rows if len(r["curve"]) >= 2]
    if not with_curves:
        return False
    by_env = {env: rs for (env,), rs in _groups(with_curves, ["env"]).items()}
    colour = _series_colours(with_curves, "label")
    # All series in every panel: one legend (the last panel's); a suite in progress: each panel lists its own.
    partial = any({r["label"] for r in rs} != set(colour) for rs in by_env.values())
    fig, axes = plt.subplots(1, len(by_env), figsize=(4.6 * len(by_env), 3.6), dpi=100, squeeze=False)
    for ax, (env, env_rows) in zip(axes[0], by_env.items()):
        for (label,), rs in _groups(env_rows, ["label"]).items():
            x_max = max(r["env_steps"] for r in rs)
            xs, mean, lo, hi = _curve_band([r["curve"] for r in rs], x_max)
            ax.plot(xs, mean, lw=1.4, label=f"{label} (n={len(rs)})", color=colour[label])
            ax.fill_between(xs, lo, hi, color=colour[label], alpha=0.18)
            sampled = [r["sampled_curve"] for r in rs if len(r.get("sampled_curve") or []) >= 2]
            if len(sampled) == len(rs):  # runs from before the sampled curve was kept have none
                xs, mean, _, _ = _curve_band(sampled, x_max)
                ax.plot(xs, mean, lw=0.9, ls=":", color=colour[label])
        teacher = sum(r["teacher_score"] for r in env_rows) / len(env_rows)
        ax.axhline(teacher, color="k", ls="--", lw=0.8, label=f"teacher {teacher:.1f}")
        # Keep the teacher's range readable when a run collapses far below it (noted in the title).
        from rl_distill.envs import score_floor

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
        if max(r["env_steps"] for r in env_rows) > 10 * min(
            r["env_steps"] for r in env_rows
        ):  # budgets differ by orders of magnitude
            ax.set_xscale("symlog", linthresh=100)
            ax.set_xlim(0, max(r["env_steps"] for r in env_rows))
        if ax is axes[0][-1] or partial:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return True


def _aggregate_percent(rows: list[dict[str, Any]], by: str = "label") -> dict[str, dict[str, Any]]:
    """Per series: IQM / mean of percent-of-teacher over runs x tasks, stratified-bootstrap 95% intervals."""
    import numpy as np

    from rl_distill.metrics import aggregate

    mats = {}
    for (series,), rs in _groups([r for r in rows if r["percent"] is not None], [by]).items():
        cols = [[r["percent"] for r in g] for g in _groups(rs, ["env"]).values()]
        n = min(len(c) for c in cols)
        mats[str(series)] = (
            np.array([c[:n] for c in cols]).T / 100.0
        )  # fractions of the teacher: the optimality gap's scale
    out = aggregate(mats) if mats else {}
    for a in out.values():
        for k in ("iqm", "mean", "median"):
            a[k] *= 100.0
            a[k + "_ci"] = [100.0 * v for v in a[k + "_ci"]]
    return out


def _plot_aggregate(agg: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    plt = _plt()
    names = list(agg)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.2), dpi=100)
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
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _plot_sweep(rows: list[dict[str, Any]], x: str, y: str, series: str, path: Path, title: str, logx: bool) -> None:
    import numpy as np

    plt = _plt()
    envs = list(dict.fromkeys(r["env"] for r in rows))
    colour = _series_colours(rows, series)
    fig, axes = plt.subplots(1, len(envs), figsize=(4.6 * len(envs), 3.6), dpi=100, squeeze=False)
    for ax, env in zip(axes[0], envs):
        for (s,), rs in _groups([r for r in rows if r["env"] == env and r[y] is not None], [series]).items():
            pts = sorted(_groups(rs, [x]).items())
            xs = [k[0] for k, _ in pts]
            stats = [_mean_ci([r[y] for r in g]) for _, g in pts]
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
        ax.set_xlabel(x.replace("tag_", "").replace("_", " "))
        ax.set_ylabel("% of teacher" if y == "percent" else "eval return")
        ax.set_title(env, fontsize=10)
        ax.legend(fontsize=7)  # each panel lists its own series (a suite in progress may lack some)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def _steps_to(r: dict[str, Any], fraction: float) -> tuple[int | None, float | None]:
    """First learning-curve point at >= ``fraction`` of the teacher (from the env's floor), with its training wall
    time."""
    for step, score, wall in r["curve"]:
        p = _percent(score, r["teacher_score"], r["env"])
        if p is not None and p >= 100 * fraction:
            return int(step), wall
    return None, None


def _median_to(xs: list[Any], cast=float) -> Any:
    """Median over all seeds of the steps (or seconds) to a threshold, a seed that never got there (None) counting as
    past the budget: None where the median seed did not get there. Series that got there on different numbers of
    seeds are then compared on the same statistic (a median over only the seeds that got there favours the series
    whose slow seeds never did)."""
    import math
    import statistics

    if not xs:
        return None
    m = statistics.median([math.inf if x is None else x for x in xs])
    return None if math.isinf(m) else cast(m)


def _write_csv(path: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    import csv

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c) for c in cols})
    atomic_write_text(path, buf.getvalue())


def _suite_arg(suite: dict[str, Any]) -> str:
    """How `rl-distill bench` names this suite: its name for experiments/<name>.toml, else its path."""

    return suite["name"] if Path(suite.get("path", "")) == SUITES_DIR / f"{suite['name']}.toml" else suite["path"]


def _ci_text(xs: list[float], nd: int = 1) -> str:
    """'mean [lo, hi]' with a bootstrap 95% interval over ``xs`` (seeds), or '-' for none."""
    return "-" if not xs else "{0:.{3}f} [{1:.{3}f}, {2:.{3}f}]".format(*_mean_ci(xs), nd)


def _transfer_pairs(cells: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each transfer series (cells with ``init_from``) -> (its baseline, the series it starts from). The baseline is
    the first series of the same method, envs and budget from random weights that is not itself a source."""
    sources = {c["init_from"][5:] for c in cells if c.get("init_from")}
    pairs = {}
    for c in cells:
        if c.get("init_from") and c["label"] not in pairs:
            base = next(
                (
                    b["label"]
                    for b in cells
                    if not b.get("init_from")
                    and b["label"] not in sources
                    and b["method"] == c["method"]
                    and b["envs"] == c["envs"]
                    and b["steps"] == c["steps"]
                ),
                None,
            )
            if base:
                pairs[c["label"]] = (base, c["init_from"][5:])
    return pairs


def _transfer_intro(pairs: dict[str, tuple[str, str]], cells: list[dict[str, Any]]) -> list[str]:
    """The Transfer section's heading and what its tables show (with the games per evaluation of the series)."""
    compared = set(pairs) | {b for b, _ in pairs.values()}
    games = " or ".join(
        str(g) for g in sorted({c.get("curve_episodes") for c in cells if c["label"] in compared} - {None})
    )
    return [
        "## Transfer",
        "",
        "Each series that starts from another run's student beside the same method, env and budget "
        "from random weights. Return at each learning-curve point "
        f"(mean over seeds{f' of {games} games each' if games else ''}), "
        "the mean over the whole curve (area under it / budget; trapezoids) and the final evaluation, "
        "all greedy; then the raw return of the games the run played while training, with sampled "
        "actions (mean of the logged last-100-games averages over the run, and the last one), which "
        "shows learning where a greedy policy is stuck. Bootstrap 95% intervals over seeds.",
        "",
    ]


def _transfer_table(rows: list[dict[str, Any]], label: str, base: str, source: str, env: str) -> list[str]:
    """One transfer series beside its baseline on one env: a row each, its columns the transfer series' curve
    points."""
    series = [(x, [r for r in rows if r["label"] == x and r["env"] == env]) for x in (label, base)]
    grids = [sorted({int(p[0]) for r in rs for p in r["curve"]}) for _, rs in series]
    steps = grids[0]  # the columns: the transfer series' curve points
    other_grid = bool(series[1][1]) and grids[1] != steps
    head = [
        "series",
        "seeds",
        *(f"return at {_fmt(x)}" for x in steps),
        "mean over the curve [95% CI]",
        "final [95% CI]",
        "training games: mean over the run [95% CI]",
        "training games: last [95% CI]",
    ]
    lines = [f"### {label} (from `{source}`) against {base}, {env}", ""]
    if other_grid:
        lines += [
            f"`{base}` was evaluated at other steps ({len(grids[1])} points): "
            "each column shows its curve at its last point at or before that step.",
            "",
        ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_transfer_row(name, rs, steps) for name, rs in series]
    lines.append("")
    return lines


def _transfer_row(name: str, rs: list[dict[str, Any]], steps: list[int]) -> str:
    """One series' row of a transfer table: its mean return at each column's step, the mean over the curve, the
    final score and the training games, over its seeds."""
    import numpy as np

    if not rs:
        return f"| {name} | 0 | " + " | ".join("-" for _ in steps) + " | - | - | - | - |"
    # each seed's curve read at its last point at or before each column's step (the same points where the grids
    # agree)
    at = [np.mean([next((p[1] for p in reversed(r["curve"]) if p[0] <= x), np.nan) for r in rs]) for x in steps]
    area = [
        float(np.trapezoid([p[1] for p in r["curve"]], [p[0] for p in r["curve"]]) / max(p[0] for p in r["curve"]))
        for r in rs
        if len(r["curve"]) > 1
    ]
    trained = [r["train_curve"] for r in rs if r.get("train_curve")]
    cis = [
        _ci_text(area),
        _ci_text([r["score"] for r in rs]),
        _ci_text([float(np.mean([p[1] for p in c])) for c in trained], 2),
        _ci_text([c[-1][1] for c in trained], 2),
    ]
    return (
        f"| {name} | {len(rs)} | "
        + " | ".join("-" if np.isnan(v) else _fmt(float(v)) for v in at)
        + " | "
        + " | ".join(cis)
        + " |"
    )


def _transfer_lines(rows: list[dict[str, Any]], cells: list[dict[str, Any]]) -> list[str]:
    """Each transfer series (cells with ``init_from``) beside the same method, env and budget from random weights:
    mean return at each learning-curve point, the mean over the curve (its area / budget: what "learns faster"
    means) and the final score, each a mean over seeds with a bootstrap 95% interval."""
    pairs = _transfer_pairs(cells)
    lines: list[str] = []
    for label, (base, source) in pairs.items():
        for env in dict.fromkeys(r["env"] for r in rows if r["label"] == label):  # only where the transfer series ran
            lines += _transfer_table(rows, label, base, source, env)
    return _transfer_intro(pairs, cells) + lines if lines else []


def _ratio(ours: float | None, theirs: float | None, theirs_budget: float | None) -> str:
    """How many times fewer steps (or seconds) than the baseline: theirs / ours; where the baseline never got there
    (``theirs`` None) its whole budget over ours, a lower bound marked '>'. '-' where the series never got there or
    was there at its first point (ours 0: no ratio)."""
    if not ours or theirs_budget is None:
        return "-"
    if theirs is not None:
        return f"{theirs / ours:.1f}x"
    bound = theirs_budget / ours
    return f"> {bound:.0f}x" if bound >= 10 else f"> {bound:.1f}x"


def _series_row(summary_rows: list[dict[str, Any]], label: str | None, env: str) -> dict[str, Any] | None:
    """The summary row of a series on an env, or None where it has none."""
    return next((x for x in summary_rows if x["label"] == label and x["env"] == env), None)


def _start(cells: dict[str, dict[str, Any]], label: str) -> str | None:
    """The series a series starts from (its ``init_from``, "cell:LABEL" -> LABEL), or None for one from scratch."""
    return (cells[label].get("init_from") or "")[5:] or None


def _efficiency_head(suite: dict[str, Any], base: str, threshold: float, starts: bool) -> list[str]:
    """The efficiency section's heading, what it measures, and its table's header (a start column and a
    from-scratch column where some series start from another's student)."""
    grids = sorted({(c["curve_points"], c["curve_episodes"]) for c in suite["cells"]}, reverse=True)
    every = " or ".join(f"budget/{max(1, p)} steps, {e} episodes" for p, e in grids)
    return [
        f"## Env steps and training time to {threshold:.0%} of the teacher",
        "",
        f"First learning-curve point (every {every}) at >= {threshold:.0%} of the teacher; median over the seeds, "
        f"one that never got there counting as past the budget. Ratio: `{base}` over the method "
        "(how many times fewer steps; none for a series already there at its first point)."
        + (
            " A series with a start began from that cell's student (same seed, all its weights): its steps and "
            "seconds count from there, its ratio is to the same method as `"
            + base
            + "` from the same start, and the last "
            "column compares it with `" + base + "` from scratch, the start's own steps and training time added."
            if starts
            else ""
        ),
        "",
        "| series | env |"
        + (" start |" if starts else "")
        + " reached (seeds) | env steps to threshold | train s to threshold | step ratio vs "
        + base
        + " | time ratio vs "
        + base
        + " |"
        + (f" step / time ratio vs {base} from scratch, start counted |" if starts else ""),
        "|---|---|" + ("---|" if starts else "") + "---|---|---|---|---|" + ("---|" if starts else ""),
    ]


def _efficiency_baseline(
    s: dict[str, Any], summary_rows: list[dict[str, Any]], cells: dict[str, dict[str, Any]], base: str
) -> dict[str, Any] | None:
    """The row a series is compared with: ``base`` on the same env, or for a series with a start the base method
    from that same start."""
    src = _start(cells, s["label"])
    if not src:
        return _series_row(summary_rows, base, s["env"])
    base_method = cells[base]["method"] if base in cells else base
    return next(
        (
            x
            for x in summary_rows
            if x["env"] == s["env"] and cells[x["label"]]["method"] == base_method and _start(cells, x["label"]) == src
        ),
        None,
    )


def _from_scratch_ratios(
    s: dict[str, Any], st: dict[str, Any] | None, sc: dict[str, Any] | None, src: str | None
) -> str:
    """The last column for a series with a start: its steps and training time plus those of its start ``st``,
    against the base from scratch ``sc``."""
    if src and st and s["steps_to_threshold"] is not None:
        steps_ratio = _ratio(
            st["env_steps"] + s["steps_to_threshold"], sc and sc["steps_to_threshold"], sc and sc["env_steps"]
        )
        wall_ratio = _ratio(
            st["train_s"] + s["wall_to_threshold"], sc and sc["wall_to_threshold"], sc and sc["train_s"]
        )
        return f" {steps_ratio} / {wall_ratio} |"
    return " - |"


def _efficiency_row(
    s: dict[str, Any], summary_rows: list[dict[str, Any]], cells: dict[str, dict[str, Any]], base: str, starts: bool
) -> str:
    """One series' row of the efficiency table: reached, steps and time to the threshold, its ratios to the base."""
    src = _start(cells, s["label"])
    b = _efficiency_baseline(s, summary_rows, cells, base)
    st = _series_row(summary_rows, src, s["env"]) if src else None
    line = f"| {s['label']} | {s['env']} |"
    if starts:
        line += f" `{src}` ({_fmt(st['env_steps'] if st else None)} steps) |" if src else " - |"
    line += (
        f" {s['reached']}/{s['seeds']} | {_fmt(s['steps_to_threshold'])} | {_fmt(s['wall_to_threshold'])} | "
        f"{_ratio(s['steps_to_threshold'], b and b['steps_to_threshold'], b and b['env_steps'])} | "
        f"{_ratio(s['wall_to_threshold'], b and b['wall_to_threshold'], b and b['train_s'])} |"
    )
    if starts:
        line += _from_scratch_ratios(s, st, _series_row(summary_rows, base, s["env"]), src)
    return line


def _efficiency_lines(
    summary_rows: list[dict[str, Any]], suite: dict[str, Any], base: str, threshold: float
) -> list[str]:
    """Steps and training time to ``threshold`` of the teacher, as ratios to the ``base`` series (PPO from scratch).
    A series that starts from another cell's student (``init_from``: the Qwen3 report's off-policy then on-policy
    stages) is compared with the base method from the same start, and with the base from scratch counting the
    start's own env steps and training time."""
    cells = {c["label"]: c for c in suite["cells"]}
    starts = any(c.get("init_from") for c in cells.values())
    lines = _efficiency_head(suite, base, threshold, starts)
    lines += [_efficiency_row(s, summary_rows, cells, base, starts) for s in summary_rows]
    return lines + [
        "",
        f"Where the baseline never reached {threshold:.0%} within its budget, the ratio is its whole budget "
        "(env steps, or training seconds) over the method's: a lower bound, marked `>`. "
        "The curve's resolution (budget / points) bounds every figure from above.",
        "",
    ]


def _run_columns(tag_cols: list[str]) -> list[str]:
    """runs.csv's columns: the cell and its swept tags, the run's scores and costs, the steps and time to the
    threshold."""
    return [
        "label",
        "method",
        "env",
        "seed",
        *tag_cols,
        "student",
        "student_params",
        "score",
        "score_std",
        "teacher_score",
        "percent",
        "env_steps",
        "teacher_queries",
        "gradient_steps",
        "train_s",
        "wall_s",
        "episodes",
        "steps_to_threshold",
        "wall_to_threshold",
    ]


def _header_lines(suite: dict[str, Any], out: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The README's title, the suite's description, how many runs finished and how to regenerate or resume."""
    total = len(suite["cells"])
    done = len({r["key"] for r in rows})
    return [
        f"# Benchmark suite `{suite['name']}`",
        "",
        suite.get("description", "").strip(),
        "",
        f"Runs finished: {done} of {total}. Regenerate with `rl-distill report {out}`; run the rest with "
        f"`rl-distill bench {_suite_arg(suite)} --resume"
        f"{'' if out == Path('results', suite['name']) else f' --out {out}'}`. "
        f"Every number below comes from the run records in `{out}/runs/`, "
        "each copied from its run folder when the run finished.",
        "",
    ]


def _time_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The wall clock and CPU time of the finished runs: what the suite took, and what it takes on free cores."""
    import statistics

    done = len({r["key"] for r in rows})
    lines: list[str] = []
    # train_s covers every part of a resumed run; records of runs resumed before checkpoints kept elapsed_s hold only
    # their last part's wall_s, so the larger of the two is the better figure.
    walls = list({r["key"]: max(r["wall_s"], r["train_s"]) for r in rows}.values())
    if walls:
        lines += [
            f"Wall clock of the finished runs, each on one core with its evaluations: {_duration(sum(walls))} in all, "
            f"{_duration(statistics.median(walls))} a run (median; {_duration(min(walls))} to "
            f"{_duration(max(walls))}). A run that shared the cores with other jobs may have been slowed by them, "
            "so these are upper bounds.",
            "",
        ]
    cpus = {r["key"]: r["cpu_s"] for r in rows if r.get("cpu_s") is not None}
    if cpus:
        # CPU time does not grow when other jobs share the cores: N workers alone take about its sum / N.
        some = "" if len(cpus) == done else f" (the {len(cpus)} of {done} runs that record it)"
        lines += [
            f"CPU time{some}: {_duration(sum(cpus.values()))} in all, "
            f"so about {_duration(sum(cpus.values()) / 2)} with 2 workers on 2 free cores; "
            f"{_duration(statistics.median(cpus.values()))} a run (median).",
            "",
        ]
    return lines


def _summary_rows(rows: list[dict[str, Any]], group_keys: list[str]) -> list[dict[str, Any]]:
    """One row per series, env and varying tag (summary.csv): means over its seeds, a bootstrap interval of the
    percent of teacher, and the median steps and time to the threshold."""
    import statistics

    summary_rows = []
    for k, rs in _groups(rows, group_keys).items():
        pct = [r["percent"] for r in rs if r["percent"] is not None]
        m, lo, hi = _mean_ci(pct) if pct else (None, None, None)
        summary_rows.append(
            {
                **dict(zip(group_keys, k)),
                "seeds": len(rs),
                "score": statistics.mean(r["score"] for r in rs),
                "score_sd": statistics.pstdev(r["score"] for r in rs),
                "teacher": statistics.mean(r["teacher_score"] for r in rs),
                "percent": m,
                "percent_lo": lo,
                "percent_hi": hi,
                "student_params": rs[0]["student_params"],
                "env_steps": int(statistics.mean(r["env_steps"] for r in rs)),
                "teacher_queries": int(statistics.mean(r["teacher_queries"] for r in rs)),
                "train_s": statistics.mean(r["train_s"] for r in rs),
                "reached": sum(r["steps_to_threshold"] is not None for r in rs),
                "steps_to_threshold": _median_to([r["steps_to_threshold"] for r in rs], int),
                "wall_to_threshold": _median_to([r["wall_to_threshold"] for r in rs]),
            }
        )
    return summary_rows


def _final_score_lines(
    summary_rows: list[dict[str, Any]], rows: list[dict[str, Any]], group_keys: list[str], threshold: float
) -> list[str]:
    """The Final scores section: what its columns mean, then one row per summary row (with the steps to the
    threshold where the runs have learning curves)."""
    extra = [c for c in group_keys if c.startswith("tag_")]
    curves = any(len(r["curve"]) > 2 for r in rows)
    head = [
        "series",
        "env",
        *[c[4:] for c in extra],
        "seeds",
        "student (params)",
        "return (mean ± sd)",
        "teacher",
        "% of teacher [95% CI]",
        "env steps",
        "teacher labels",
        "train s",
    ] + ([f"env steps to {threshold:.0%} (seeds there)"] if curves else [])
    lines = [
        "## Final scores",
        "",
        "Mean over seeds; the interval is a bootstrap over seeds of the mean percent of teacher "
        "(0% = the env's floor where it has one: Acrobot -500, MountainCar -200, Atari random play)."
        + (
            f" Env steps to {threshold:.0%}: the first learning-curve evaluation at or above {threshold:.0%} "
            "of the teacher, median over the seeds, one that never got there counting as past the budget, "
            "so '-' where half or more never did (the curve is sampled every budget / curve_points steps; "
            "bc collects first and trains at the end, so it only gets there at its last point)."
            if curves
            else ""
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += [_final_score_row(s, extra, curves) for s in summary_rows]
    lines.append("")
    return lines


def _final_score_row(s: dict[str, Any], extra: list[str], curves: bool) -> str:
    """One summary row of the Final scores table."""
    pc = "-" if s["percent"] is None else f"{s['percent']:.1f} [{s['percent_lo']:.1f}, {s['percent_hi']:.1f}]"
    return (
        "| "
        + " | ".join(
            [
                s["label"],
                s["env"],
                *[_fmt(s[c]) for c in extra],
                str(s["seeds"]),
                _fmt(s["student_params"]),
                f"{s['score']:.1f} ± {s['score_sd']:.1f}",
                f"{s['teacher']:.1f}",
                pc,
                _fmt(s["env_steps"]),
                _fmt(s["teacher_queries"]),
                _fmt(s["train_s"]),
            ]
            + ([f"{_fmt(s['steps_to_threshold'])} ({s['reached']}/{s['seeds']})"] if curves else [])
        )
        + " |"
    )


def _aggregate_lines(rows: list[dict[str, Any]], out: Path, name: str) -> list[str]:
    """The aggregate over envs (aggregate.png and its table), or nothing where no run has a percent of teacher."""
    agg = _aggregate_percent(rows)
    if not agg:
        return []
    _plot_aggregate(agg, out / "aggregate.png", f"{name}: aggregate over envs and seeds")
    lines = [
        "## Aggregate over envs",
        "",
        "IQM and mean of percent of teacher over all runs x envs of a series, with 95% "
        "stratified-bootstrap intervals (rliable's protocol, `rl_distill.metrics.aggregate`).",
        "",
        "| series | runs x envs | IQM [95% CI] | mean [95% CI] | optimality gap (fraction below 100%) |",
        "|---|---|---|---|---|",
    ]
    for n, a in agg.items():
        lines.append(
            f"| {n} | {a['runs']} x {a['tasks']} | {a['iqm']:.1f} [{a['iqm_ci'][0]:.1f}, {a['iqm_ci'][1]:.1f}] | "
            f"{a['mean']:.1f} [{a['mean_ci'][0]:.1f}, {a['mean_ci'][1]:.1f}] | {a['optimality_gap']:.2f} |"
        )
    return lines + ["", "![aggregate](aggregate.png)", ""]


def _sweep_lines(rows: list[dict[str, Any]], rep: dict[str, Any], out: Path, name: str) -> list[str]:
    """A sweep suite's plot (sweep.png: x, y and series from its [report]) and its section."""
    x = rep.get("x", "teacher_queries")
    x = x if x in rows[0] else f"tag_{x}"
    y = rep.get("y", "percent")
    series = rep.get("series", "label")
    series = series if series in rows[0] else f"tag_{series}"
    _plot_sweep(rows, x, y, series, out / "sweep.png", rep.get("title", name), bool(rep.get("logx", True)))
    return ["## " + rep.get("title", "Sweep"), "", "![sweep](sweep.png)", ""]


def _stage_offsets(cells: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, tuple[int, str | None]]:
    """Per series: the env steps of the stages before it (its ``init_from`` chain, each stage's budget) and the
    series it starts from: where its curves begin on one time axis."""
    budget = {r["label"]: r["env_steps"] for r in rows}
    source = {c["label"]: (c.get("init_from") or "")[5:] or None for c in cells}
    out: dict[str, tuple[int, str | None]] = {}

    def offset(label: str, seen: tuple[str, ...] = ()) -> int:
        src = source.get(label)
        if src is None or src in seen:
            return 0
        return offset(src, (*seen, label)) + budget.get(src, 0)

    for label in dict.fromkeys(c["label"] for c in cells):
        out[label] = (offset(label), source.get(label))
    return out


def _continual_lines(rows: list[dict[str, Any]], suite: dict[str, Any], out: Path) -> list[str]:
    """The continual suite's table (each stage's and baseline's final score on game A and game B, % of each
    game's teacher, mean and 95% bootstrap CI over seeds; a kept game is marked as not trained in that stage)
    and continual.png (both games' curves, the stages one after another on one env-step axis)."""
    rep = suite.get("report", {})
    games = [rep.get("a"), rep.get("b")]
    offsets = _stage_offsets(suite["cells"], rows)
    # One reference per game for every stage: the shipped teacher (a stage whose teacher is a run's student, as the
    # recovery's, would otherwise be scored against that student).
    ref = {}
    for g in games:
        named = [r["teacher_score"] for r in rows if r["env"] == g and not str(r.get("teacher")).startswith("run:")]
        ref[g] = sum(named) / len(named) if named else None
    lines = [
        "## Forgetting and recovery",
        "",
        f"Game A: {games[0]}, game B: {games[1]}. Percent of each game's shipped teacher ("
        + ", ".join(f"{g}: {_fmt(ref[g])}" for g in games)
        + ") at the end of each stage (mean over seeds [95% bootstrap CI], 100 = the teacher, 0 = the env's floor or "
        "random play); *kept*: the student has the game's head but did not train on it in that stage, so its score "
        "shows what the stage did to it.",
        "",
        "| stage | starts from | env steps | A: " + str(games[0]) + " | B: " + str(games[1]) + " | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for label, (_, src) in offsets.items():
        rs = [r for r in rows if r["label"] == label]
        if not rs:
            lines.append(f"| {label} | {src or '-'} | not run yet | | | |")
            continue
        cols = []
        for g in games:
            gs = [r for r in rs if r["env"] == g and ref[g] is not None]
            kept = " (kept)" if gs and not gs[0]["trained"] else ""
            pct = [_percent(r["score"], ref[g], g) for r in gs]
            cols.append(_ci_text([p for p in pct if p is not None]) + kept if gs else "-")
        seeds = len({r["seed"] for r in rs})
        lines.append(f"| {label} | {src or '-'} | {_fmt(rs[0]['env_steps'], 0)} | {cols[0]} | {cols[1]} | {seeds} |")
    if _plot_continual(rows, offsets, games, out / "continual.png", suite["name"]):
        lines += ["", "![continual](continual.png)"]
    return lines + [""]


def _plot_continual(
    rows: list[dict[str, Any]], offsets: dict[str, tuple[int, str | None]], games: list[str], path: Path, name: str
) -> bool:
    plt = _plt()
    with_curves = [r for r in rows if len(r["curve"]) >= 2 and r["env"] in games]
    if not with_curves:
        return False
    colour = _series_colours(with_curves, "label")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), dpi=100, squeeze=False)
    for ax, game in zip(axes[0], games):
        for (label,), rs in _groups([r for r in with_curves if r["env"] == game], ["label"]).items():
            start = offsets.get(label, (0, None))[0]
            xs, mean, lo, hi = _curve_band([r["curve"] for r in rs], max(r["env_steps"] for r in rs))
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
    _save(fig, path)
    return True


def _curve_lines(rows: list[dict[str, Any]], out: Path, name: str) -> list[str]:
    """The learning curves (curves.png) and their section, or nothing where no run has a curve to draw."""
    if not _plot_curves(rows, out / "curves.png", f"{name}: return vs env steps"):
        return []
    return [
        "## Learning curves",
        "",
        "Greedy evaluation of the student during training; band: bootstrap 95% CI of the mean over seeds; "
        "dashed: the teacher.",
        "",
        "![curves](curves.png)",
        "",
    ]


def _changed_lines(rows: list[dict[str, Any]], changed: dict[str, str]) -> list[str]:
    """The runs whose record was made with another method config than the suite's cell resolves to today (a default
    changed since), grouped by series and change: their numbers describe the older settings."""
    if not changed:
        return []
    groups: dict[tuple[str, str], dict[str, set[int]]] = {}
    for r in rows:
        if r["key"] in changed:
            groups.setdefault((r["label"], changed[r["key"]]), {}).setdefault(r["env"], set()).add(r["seed"])
    lines = [
        "## Runs made with older defaults",
        "",
        f"{len(changed)} of these runs were made before a default of their method changed: their numbers describe the "
        "settings below, not today's (`rl-distill bench <suite> --rerun-changed` runs them again).",
        "",
        "| series | runs | then -> today |",
        "|---|---|---|",
    ]
    for (label, what), envs in sorted(groups.items()):
        lines.append(f"| {label} | {_env_seeds(envs)} | {what} |")
    return lines + [""]


def _env_seeds(envs: dict[str, set[int]]) -> str:
    """'CartPole-v1 (seeds 0, 1); Acrobot-v1 (seeds 2)': which runs of a series a listing section means."""
    return "; ".join(f"{env} (seeds {', '.join(map(str, sorted(seeds)))})" for env, seeds in sorted(envs.items()))


def _stale_lines(rows: list[dict[str, Any]], stale: list[str]) -> list[str]:
    """The runs whose record was made with other teacher weights than the shipped ones (a teacher retrained since,
    in cells a ``--only`` left out): their % of teacher is of the old teacher's score."""
    if not stale:
        return []
    groups: dict[str, dict[str, set[int]]] = {}
    for r in rows:
        if r["key"] in stale:
            groups.setdefault(r["label"], {}).setdefault(r["env"], set()).add(r["seed"])
    lines = [
        "## Runs made with other teacher weights",
        "",
        f"{len(stale)} of these runs were made with teacher weights other than the shipped ones (retrained since): "
        "their numbers are against the old teacher; the next `rl-distill bench <suite>` over them runs them again.",
        "",
        "| series | runs |",
        "|---|---|",
    ]
    for label, envs in sorted(groups.items()):
        lines.append(f"| {label} | {_env_seeds(envs)} |")
    return lines + [""]


def bench_report(
    source: str | Path,
    out_dir: str | Path | None = None,
    changed: dict[str, str] | None = None,
    stale: list[str] | None = None,
) -> Path:
    """results/<suite>/: README.md (tables), runs.csv (one row per run and task), summary.csv and PNG plots,
    from the run records (see :func:`collect_bench`). ``changed``: the runs made with older method defaults
    (bench.changed_defaults), and ``stale``: those made with other teacher weights, each listed in a section."""
    suite, out, rows = collect_bench(source, out_dir)
    rep = suite.get("report", {})
    out.mkdir(parents=True, exist_ok=True)
    tag_cols = sorted({k for r in rows for k in r if k.startswith("tag_")})
    kind = rep.get("kind", "lineage")
    threshold = float(rep.get("threshold", 0.9))
    for r in rows:
        r["steps_to_threshold"], r["wall_to_threshold"] = _steps_to(r, threshold)
    _write_csv(out / "runs.csv", rows, _run_columns(tag_cols))

    lines = _header_lines(suite, out, rows) + _time_lines(rows)
    varying = [c for c in tag_cols if len({str(r.get(c)) for r in rows}) > 1]
    group_keys = ["label", "env", *varying]
    summary_rows = _summary_rows(rows, group_keys)
    _write_csv(out / "summary.csv", summary_rows, list(summary_rows[0]) if summary_rows else group_keys)
    if summary_rows:
        lines += _final_score_lines(summary_rows, rows, group_keys, threshold)
    if rows and kind not in ("sweep", "continual"):  # a sweep's points are not runs of one setting; a continual
        lines += _aggregate_lines(rows, out, suite["name"])  # suite's kept games are not trained on
    if kind == "continual" and rows:
        lines += _continual_lines(rows, suite, out)
    if kind == "efficiency" and summary_rows:
        lines += _efficiency_lines(summary_rows, suite, rep.get("baseline", "ppo"), threshold)
    if kind == "sweep" and rows:
        lines += _sweep_lines(rows, rep, out, suite["name"])
    lines += _transfer_lines(rows, suite["cells"])
    lines += _curve_lines(rows, out, suite["name"])
    lines += _changed_lines(rows, changed or {})
    lines += _stale_lines(rows, stale or [])
    if rep.get("notes"):
        lines += ["## Against the papers", "", rep["notes"].strip(), ""]
    lines += ["## Runs", "", "One row per run and task: [runs.csv](runs.csv); grouped: [summary.csv](summary.csv)."]
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
