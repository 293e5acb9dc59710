"""`rl-distill ...`: parses, calls the API, prints. Errors the user can fix print one line, exit 2."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from contextvars import ContextVar
from types import ModuleType
from typing import Any, TextIO

from rl_distill.errors import UserError

_JSON_OUT: ContextVar[TextIO | None] = ContextVar("json_out", default=None)
"""The stdout a ``--json`` command writes its document to; everything else it prints goes to stderr (main)."""


def _print_json(obj: Any) -> None:
    from rl_distill.runs import to_json

    print(to_json(obj), file=_JSON_OUT.get() or sys.stdout, flush=True)


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]

    def line(vals):
        return "  ".join(v.ljust(w) for v, w in zip(vals, widths))

    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


def run_folder_line(run_dir: str) -> str:
    """A run's last line: its folder, what there is to look at in it, and how to open its tensorboard."""
    from pathlib import Path

    d = Path(run_dir)
    files = [f for f in ("summary.json", "curve.png") if (d / f).exists()]
    tb = f"; tensorboard --logdir {d / 'tb'}" if (d / "tb").is_dir() else ""
    return f"run folder: {d}" + (f" ({', '.join(files)})" if files else "") + tb


# --- teachers ----------------------------------------------------------------------------------
def cmd_teachers_train(a: argparse.Namespace) -> int:
    from rl_distill.teachers.train import TrainConfig, train_teacher

    cfg = TrainConfig(**config_values(a, TrainConfig))
    summary = train_teacher(cfg)
    if a.json:
        _print_json(summary)
    else:
        s = summary["score"]
        print(
            f"{cfg.algo} {cfg.env_id}: {s['mean']:.1f} ± {s['std']:.1f} over {s['n']} episodes "
            f"after {summary['steps']} steps ({summary['wall_s']:.0f} s) -> {summary['teacher']}"
        )
        print(run_folder_line(summary["run_dir"]))
    return 0


def cmd_teachers_export(a: argparse.Namespace) -> int:
    from rl_distill.teachers.train import export_run

    out, meta = export_run(a.run_dir, a.out, a.episodes, force=a.force)
    s, t = meta["score"], meta["training"]
    if a.json:
        _print_json({"teacher": str(out), "steps": t["steps"], "best_step": t["best_step"], "score": s})
    else:
        print(
            f"{meta['algo']} {meta['env_id']}: {s['mean']:.1f} ± {s['std']:.1f} over {s['n']} episodes "
            f"(model of step {t['best_step']}, {t['steps']} steps trained) -> {out}"
        )
    return 0


def _teacher_row(m: dict[str, Any]) -> dict[str, Any]:
    s = m.get("score") or {}
    t = m.get("training") or {}
    return {
        "id": m.get("id"),
        "env": m.get("env_id"),
        "algo": m.get("algo"),
        "score": s.get("mean"),
        "std": s.get("std"),
        "iqm": s.get("iqm"),
        "human_norm": None if s.get("human_normalized") is None else f"{s['human_normalized']:.2f}",
        "episodes": s.get("n"),
        "steps": t.get("steps"),
        "wall_s": t.get("wall_s"),
        "steps_per_s": t.get("steps_per_s"),
    }


def cmd_teachers_list(a: argparse.Namespace) -> int:
    from rl_distill.teachers import shipped_meta

    metas = shipped_meta()
    if a.json:
        _print_json([{k: m.get(k) for k in ("id", "env_id", "algo", "score", "training", "protocol")} for m in metas])
    else:
        print(
            _table(
                [_teacher_row(m) for m in metas],
                [
                    "id",
                    "env",
                    "algo",
                    "score",
                    "std",
                    "iqm",
                    "human_norm",
                    "episodes",
                    "steps",
                    "wall_s",
                    "steps_per_s",
                ],
            )
        )
    return 0


def _eval_one(
    source: str,
    episodes: int | None,
    seed: int,
    env_id: str | None,
    own_protocol: bool = True,
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Evaluate a teacher on its env (or ``env_id``, which must be its own unless ``allow_mismatch``), under the
    protocol it records unless ``own_protocol`` is False (then the env family's default); ``episodes`` None: the
    family's ``eval_episodes``. A bar on stderr shows the games done and their running mean."""
    from rl_distill.envs import check_env_id, family_of
    from rl_distill.errors import check_count, check_seed
    from rl_distill.evaluation import evaluate
    from rl_distill.teachers import load_teacher

    check_count("episodes", episodes)
    check_seed(seed)
    if env_id:
        check_env_id(env_id)
    t = load_teacher(source, env_id=env_id)
    env = env_id or t.env_id
    if not env:
        raise UserError(f"teacher {source} does not record its env; pass --env")
    trained = t.trained_env_id  # a hub teacher's env_id is the one it was loaded for; its repo says where it trained
    if env_id and trained and env_id != trained and not allow_mismatch:
        raise UserError(
            f"teacher {source} was trained on {trained}, not {env_id}: its score there means little "
            "(--env with --allow-mismatch evaluates it there all the same)"
        )
    proto = family_of(env).protocol(**t.meta["protocol"]) if own_protocol and t.meta.get("protocol") else None
    episodes = episodes or family_of(env).eval_episodes
    res = evaluate(t, env, episodes=episodes, seed=seed, protocol=proto, progress=f"{source} on {env}")
    return {
        "teacher": source,
        "env_id": env,
        "algo": t.meta.get("algo"),
        "recorded_score": t.score,
        **res.summary,
        "protocol": res.protocol,
        "seed": seed,
    }


def cmd_teachers_eval(a: argparse.Namespace) -> int:
    if a.allow_mismatch and not a.env:
        raise UserError("--allow-mismatch goes with --env (the env to evaluate the teacher on)")
    r = _eval_one(a.teacher, a.episodes, a.seed, a.env, a.protocol == "teacher", a.allow_mismatch)
    if a.json:
        _print_json(r)
    else:
        ci = r.get("iqm_ci") or [None, None]
        print(
            f"{r['teacher']} on {r['env_id']}: mean {r['mean']:.2f} ± {r['std']:.2f}, median {r['median']:.2f}, "
            f"IQM {r['iqm']:.2f} [{_fmt(ci[0], 2)}, {_fmt(ci[1], 2)}] over {r['n']} episodes (seed {a.seed})"
        )
        if r.get("human_normalized") is not None:
            print(f"human-normalized: {r['human_normalized']:.3f}; protocol: {r['protocol']}")
    return 0


def cmd_teachers_fetch(a: argparse.Namespace) -> int:
    from rl_distill.teachers.hub import fetch_teacher, is_hub_uri, summary_line

    if not is_hub_uri(a.uri):
        raise UserError(f"teachers fetch takes a hub teacher hf://ORG/REPO[/FILE], got {a.uri!r}")
    t = fetch_teacher(a.uri)
    if a.json:
        _print_json({"algo": t.meta["algo"], **t.meta["hub"], "env_id": t.env_id})
    else:
        print(summary_line(t))
    return 0


def cmd_teachers_eval_all(a: argparse.Namespace) -> int:
    from rl_distill.errors import check_count, check_seed
    from rl_distill.teachers import ZOO_DIR, shipped_ids
    from rl_distill.teachers.checkpoint import read_meta

    check_count("episodes", a.episodes)  # None: each teacher's own count; 0 is not a default, it is refused
    check_seed(a.seed)
    rows = []
    for tid in shipped_ids():
        episodes = a.episodes if a.episodes is not None else int(read_meta(ZOO_DIR / tid)["score"]["n"])
        r = _eval_one(tid, episodes, a.seed, None)
        rows.append(
            {
                "id": tid,
                "env": r["env_id"],
                "recorded": r["recorded_score"],
                "mean": r["mean"],
                "std": r["std"],
                "iqm": r["iqm"],
                "n": r["n"],
            }
        )
        print(f"evaluated {tid}: {r['mean']:.1f}", file=sys.stderr)
    if a.json:
        _print_json(rows)
    else:
        print(_table(rows, ["id", "env", "recorded", "mean", "std", "iqm", "n"]))
    return 0


# --- distill -----------------------------------------------------------------------------------
def _boolean(text: str) -> bool:
    """true/false, yes/no, 1/0 for a boolean method option (e.g. ``--greedy false``)."""
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


_OPTION = "option:"
"""Namespace prefix of the method options' dests (``option:lam``), apart from the common flags."""
_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT", bool: "true|false"}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value)
    return str(value)


def _option_type(opt):
    """The argparse ``type`` of a Config option: int, float, str, ``_boolean``; ``none`` too where it is optional."""
    base = _boolean if opt.type is bool else opt.type
    if not opt.optional:
        return base

    def parse(text: str):
        return None if text.lower() == "none" else base(text)

    parse.__name__ = base.__name__  # argparse's "invalid int value: ..." names it
    return parse


_TYPED = "typed:"
"""Namespace prefix recording the flag a user typed for a method option (``typed:lam`` = ``--lambda``)."""


class _StoreTyped(argparse.Action):
    """Store a method option's value and the flag it came by, so that an error names the flag the user typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, _TYPED + self.dest[len(_OPTION) :], option_string)


def typed_flags(a: argparse.Namespace) -> dict[str, str]:
    """Method option (Config field) -> the flag the user typed for it."""
    return {k[len(_TYPED) :]: v for k, v in vars(a).items() if k.startswith(_TYPED) and v}


def add_method_options(parser: argparse.ArgumentParser, method: ModuleType) -> None:
    """One flag per field of ``method.Config`` (rl_distill.configs): its type, its default shown in the help, its
    docstring as the help. A flag not given is left out of the namespace (``argparse.SUPPRESS``), so only the
    options a user gives reach ``RunSpec.options`` and the method's per-env defaults apply under them."""
    from rl_distill.configs import options

    group = parser.add_argument_group(
        f"{method.NAME} options",
        "the fields of its Config (suite files give them by field name); the first flag of each is its name, "
        "the others aliases",
    )
    for opt in options(method.Config):
        group.add_argument(
            *opt.flags,
            dest=_OPTION + opt.name,
            action=_StoreTyped,
            type=_option_type(opt),
            nargs="+" if opt.many else None,
            default=argparse.SUPPRESS,
            metavar=_METAVARS[opt.type] + ("|none" if opt.optional else ""),
            help=_help(opt, opt.default is not dataclasses.MISSING),
        )


def _help(opt, show_default: bool) -> str:
    """An option's help: its field's docstring, and its default where ``show_default`` (or its field says the values
    a None default stands for)."""
    shown = opt.default_text() if opt.default_text else _shown(opt.default) if show_default else None
    return (opt.help + (f" (default: {shown})" if shown else "")).replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of the dataclass ``cls`` that has one (rl_distill.configs.options: RunSpec's,
    TrainConfig's), named, typed and explained as its field says, with its default where it is a value; a bool is
    a switch (``--resume``, or ``--no-progress`` for one on by default). A flag not given is left out of the
    namespace (``argparse.SUPPRESS``), so the field's default is the one default: :func:`config_values` reads the
    rest."""
    from rl_distill.configs import options

    for opt in options(cls):
        # A value is shown; None, an empty list and a switch's state are what the docstring says they mean.
        shown = not (opt.default in (dataclasses.MISSING, None, [], {}) or isinstance(opt.default, bool))
        kw: dict[str, Any] = {"help": _help(opt, shown)}
        if opt.type is bool and not opt.many:
            kw["action"] = "store_false" if opt.default else "store_true"
        else:
            kw.update(type=opt.type, nargs="+" if opt.many and "action" not in opt.argparse else None)
        kw.update(opt.argparse)
        if opt.flags[0].startswith("-"):
            parser.add_argument(*opt.flags, dest=opt.name, default=argparse.SUPPRESS, **kw)
        else:  # a positional argument
            parser.add_argument(opt.flags[0], **kw)


def config_values(a: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (:func:`add_config_flags`), by name, each converted where
    its field says (``--hyperparams KEY=VALUE ...`` to a dict)."""
    from rl_distill.configs import options

    given = vars(a)
    return {o.name: o.convert(given[o.name]) if o.convert else given[o.name] for o in options(cls) if o.name in given}


def method_options(a: argparse.Namespace) -> dict[str, Any]:
    """The method options given on the command line, by Config field name."""
    return {k[len(_OPTION) :]: v for k, v in vars(a).items() if k.startswith(_OPTION)}


def run_spec(a: argparse.Namespace):
    """The RunSpec of a parsed ``distill`` command."""
    from rl_distill.distill import RunSpec

    return RunSpec(method=a.method, options=method_options(a), **config_values(a, RunSpec))


def cmd_distill(a: argparse.Namespace) -> int:
    from rl_distill.configs import flag_message
    from rl_distill.distill import run
    from rl_distill.methods import get_method

    method = get_method(a.method)
    try:
        summary = run(method, run_spec(a))
    except UserError as e:  # name each method option by the flag the user typed (--lambda, not --distill-weight)
        raise type(e)(flag_message(method.Config, str(e), typed_flags(a))) from None
    if a.json:
        _print_json(summary)
    else:
        for t in summary["tasks"]:
            ss = t["student_score"]
            pct = (
                "n/a (teacher not above the score floor)"
                if t["percent_of_teacher"] is None
                else f"{t['percent_of_teacher']:.1f}%"
            )
            print(
                f"{summary['method']} {t['env']}: student {ss['mean']:.1f} ± {ss['std']:.1f} (IQM {ss['iqm']:.1f}) "
                f"vs teacher {t['teacher_score']['mean']:.1f}: {pct} of teacher"
            )
        print(
            f"env_steps {summary['env_steps']}, teacher_queries {summary['teacher_queries']}, "
            f"gradient_steps {summary['gradient_steps']}, "
            f"wall {summary['wall_s']:.1f} s, student {summary['student']} ({summary['student_params']} params)"
        )
        print(run_folder_line(summary["run_dir"]))
    return 0


def cmd_teachers_report(a: argparse.Namespace) -> int:
    from rl_distill.errors import check_dir
    from rl_distill.report import teacher_report

    check_dir("out", a.out)

    print(teacher_report(a.out))
    return 0


# --- bench / report --------------------------------------------------------------------------------
def cmd_bench(a: argparse.Namespace) -> int:
    from rl_distill.bench import bench

    r = bench(
        a.suite,
        seeds=a.seeds,
        workers=a.workers,
        out=a.out,
        runs_dir=a.runs_dir,
        resume=a.resume,
        backend=a.backend,
        address=a.address,
        progress=not a.no_progress,
        only=a.only,
        precision=a.precision,
        rerun_changed=a.rerun_changed,
        dry_run=a.dry_run,
    )
    if a.json:
        _print_json(r)
    elif a.dry_run:
        lines = [
            f"bench {r['suite']} (dry run, nothing written): {r['runs']} runs, {r['finished']} finished and kept, "
            f"{len(r['to_run'])} to run ({len(r['other_teachers'])} of them again, made with other teacher weights), "
            f"{len(r['other_defaults'])} made with other method defaults (kept; --rerun-changed runs them again), "
            f"{len(r['orphans'])} records no cell claims"
        ]
        needed_by = r.get("needed_by", {})
        if needed_by:
            lines[0] += f"; {len(needed_by)} of the runs not selected by --only but needed by those it selects"

        def why(k: str) -> str:
            notes = ["again for its student's weights"] if k in r.get("for_weights", []) else []
            notes += [f"needed by {', '.join(needed_by[k])}"] if k in needed_by else []
            return f" ({'; '.join(notes)})" if notes else ""

        lines += [f"  to run{why(k)}: {k}" for k in r["to_run"]]
        lines += [f"  finished, used{why(k)}: {k}" for k in needed_by if k not in r["to_run"]]
        for what in ("other_defaults", "orphans"):
            lines += [f"  {what.replace('_', ' ')}: {k}" for k in r[what]]
        print("\n".join(lines))
    else:
        busy = f", {r['busy']} left to the other bench process running them" if r["busy"] else ""
        print(
            f"bench {r['suite']}: {r['ran']} runs done in {r['wall_s']:.0f} s ({r['runs']} in the suite{busy}); "
            f"report: {r['report']}"
        )
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from rl_distill.bench import report_changes
    from rl_distill.errors import check_dir
    from rl_distill.report import bench_report

    if not os.path.isdir(a.runs_dir):
        raise UserError(f"report {a.runs_dir}: not a folder (give a results folder or a bench runs folder)")
    check_dir("out", a.out)

    changed, stale = report_changes(a.runs_dir, a.out)
    print(bench_report(a.runs_dir, a.out, changed=changed, stale=stale))
    return 0


def cmd_video(a: argparse.Namespace) -> int:
    from rl_distill.video import video

    r = video(
        [s for s in (a.source, a.source2) if s], a.env, a.out, episodes=a.episodes, seed=a.seed, max_steps=a.max_steps
    )
    if a.json:
        _print_json(r)
        return 0
    for p in r["panels"]:
        cut = f", stopped at --max-steps {a.max_steps} in episode {len(p['returns']) + 1}" if p["cut"] else ""
        print(f"{p['name']}: returns {', '.join(_fmt(x) for x in p['returns']) or '-'} ({p['steps']} steps{cut})")
    print(f"{r['env_id']} (seed {r['seed']}): {r['frames']} frames at {r['fps']:g} fps, {r['size'][0]}x{r['size'][1]}")
    print(f"-> {r['out']}")
    return 0


# --- parser ------------------------------------------------------------------------------------
PRECISIONS = ("auto", "fp32", "bf16")  # rl_distill.precision.PRECISIONS, without importing torch for --help
PRECISION_HELP = (
    "bf16 autocast for the networks' matrix products, fp32 parameters, optimizer state and losses; "
    "auto: bf16 for image (CNN) networks where the device computes it natively, else fp32"
)


class UsageError(UserError):
    """A command line argparse refuses (unknown flag, bad value, missing argument)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error in one line, pointing at the --help of the (sub)command that refused it (not
    the usage block): a UsageError, which main prints as ``rl-distill: error: ...`` and returns 2 for."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        # Unknown arguments are refused by the (sub)parser that got them, so the hint names its --help.
        ns, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return ns, extra


JSON_HELP = "print one JSON document on stdout (everything else on stderr)"


def _add_teachers_train(t) -> None:
    """`teachers train`: its flags are TrainConfig's (add_config_flags), and --json."""
    from rl_distill.teachers.config import TrainConfig

    tr = t.add_parser("train", help="train a teacher with Stable-Baselines3 (rl-zoo3 hyperparameters)")
    add_config_flags(tr, TrainConfig)
    tr.add_argument("--json", action="store_true", help=JSON_HELP)
    tr.set_defaults(func=cmd_teachers_train)


def _add_teachers_others(t) -> None:
    """`teachers export`, `list`, `eval`, `eval-all` and `report`."""
    from rl_distill.envs import family_values

    ex = t.add_parser(
        "export",
        help="measure a training run's best model so far and export it as a teacher (the run may go on training)",
    )
    ex.add_argument("run_dir", help="the run folder, runs/<env>__<algo>-teacher__<seed>__<time>")
    ex.add_argument(
        "--out",
        default=None,
        help="teacher path without suffix (default: the run's --out); an existing teacher or the zoo only with --force",
    )
    ex.add_argument("--force", action="store_true", help="let --out replace a teacher, or write into the zoo")
    ex.add_argument(
        "--episodes",
        type=int,
        default=None,
        help=f"evaluation episodes (default {family_values('teacher_eval_episodes')})",
    )
    ex.add_argument("--json", action="store_true", help=JSON_HELP)
    ex.set_defaults(func=cmd_teachers_export)

    ls = t.add_parser("list", help="shipped teachers and their measured scores")
    ls.add_argument("--json", action="store_true", help=JSON_HELP)
    ls.set_defaults(func=cmd_teachers_list)

    ev = t.add_parser("eval", help="evaluate a shipped id, a suite checkpoint, an SB3 zip or a hub teacher")
    ev.add_argument(
        "teacher",
        help="a shipped teacher id (teachers list), a path to <name>.json / .safetensors / an SB3 .zip / an rl-zoo "
        "folder, or hf://ORG/REPO[/FILE]",
    )
    ev.add_argument(
        "--episodes",
        type=int,
        default=None,
        help=f"evaluation episodes (default {family_values('eval_episodes')}, as a distill run's final evaluation; "
        "a bar on stderr shows the games done and their mean)",
    )
    ev.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    ev.add_argument("--env", default=None, help="env id (default: the one the teacher records)")
    ev.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="with --env: evaluate the teacher on an env other than the one it was trained on",
    )
    ev.add_argument(
        "--protocol",
        choices=["teacher", "suite"],
        default="teacher",
        help="play the protocol the teacher records (a hub teacher's from its files, e.g. no sticky actions for "
        "NoFrameskip-v4), or the suite's default for the env (default teacher)",
    )
    ev.add_argument("--json", action="store_true", help=JSON_HELP)
    ev.set_defaults(func=cmd_teachers_eval)

    fe = t.add_parser(
        "fetch", help="download a teacher from the Hugging Face Hub into its cache and check that it loads"
    )
    fe.add_argument(
        "uri",
        metavar="hf://ORG/REPO[@REVISION][/FILE]",
        help="e.g. hf://sb3/dqn-PongNoFrameskip-v4 (needs the hub extra)",
    )
    fe.add_argument("--json", action="store_true", help=JSON_HELP)
    fe.set_defaults(func=cmd_teachers_fetch)

    ea = t.add_parser("eval-all", help="evaluate every shipped teacher and print the table")
    ea.add_argument(
        "--episodes", type=int, default=None, help="episodes per teacher (default: as many as each recorded score used)"
    )
    ea.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    ea.add_argument("--json", action="store_true", help=JSON_HELP)
    ea.set_defaults(func=cmd_teachers_eval_all)

    rp = t.add_parser("report", help="write results/teachers/README.md and learning-curve plots")
    rp.add_argument("--out", default="results/teachers", help="report folder (default results/teachers)")
    rp.set_defaults(func=cmd_teachers_report)


def _add_teachers(sub) -> None:
    """`rl-distill teachers ...`: train, export, list, evaluate and report teachers."""
    t = sub.add_parser("teachers", help="train, list and evaluate teachers").add_subparsers(
        dest="teachers_cmd", required=True
    )
    _add_teachers_train(t)
    _add_teachers_others(t)


def _distill_common() -> argparse.ArgumentParser:
    """The flags every method takes (RunSpec's), as a parent parser; each method's parser adds its own options."""
    from rl_distill.distill import RunSpec

    d = argparse.ArgumentParser(add_help=False)
    add_config_flags(d, RunSpec)
    d.add_argument("--json", action="store_true", help="print the run summary as one JSON document")
    return d


def _method_epilog(name: str, module: ModuleType) -> str | None:
    """For a method with per-family or per-env defaults: that the help shows the Config's, and which others apply
    where (each family's values, and what the method's ``env_defaults`` hook does)."""
    from rl_distill.envs import FAMILIES

    env_defaults = getattr(module, "env_defaults", None)
    per_family = [
        f"on {f.name} envs " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in f.method_defaults[name].items())
        for f in FAMILIES
        if f.method_defaults.get(name)
    ]
    if env_defaults is None and not per_family:
        return None
    return (
        "The defaults shown are the Config's; "
        + (f"{'; '.join(per_family)}. " if per_family else "")
        + "Flags given override them (the run's method_config records the values used). "
        + " ".join((env_defaults.__doc__ or "").split() if env_defaults else [])
    ).replace("%", "%%")


def _add_distill(sub) -> None:
    """`rl-distill distill METHOD ...`: one subcommand per method, the common flags and the method's options."""
    dp = sub.add_parser(
        "distill",
        help="train a student with one method and evaluate it against its teacher",
        description="Train a student with one method and evaluate it against its teacher. "
        "`rl-distill distill METHOD --help` lists the method's options.",
    )
    d = _distill_common()
    methods = dp.add_subparsers(dest="method", required=True, metavar="METHOD", title="methods")
    from rl_distill.methods import METHODS, get_method

    for name in METHODS:
        module = get_method(name)
        doc = (module.__doc__ or "").strip()
        mp = methods.add_parser(
            name,
            parents=[d],
            help=doc.split("\n")[0].replace("%", "%%"),
            description=" ".join(doc.split("\n\n")[0].split()).replace("%", "%%"),
            epilog=_method_epilog(name, module),
            usage="%(prog)s --teacher TEACHER [--teacher ...] [options]",
            allow_abbrev=False,  # --lam must not silently mean --lam-final-ratio
        )
        add_method_options(mp, module)
        mp.set_defaults(func=cmd_distill)


def _add_bench(sub) -> None:
    """`rl-distill bench [SUITE]`: bench()'s arguments."""
    b = sub.add_parser(
        "bench",
        help="run a benchmark suite (experiments/<suite>.toml), write its records and report (runs/results/<suite>/)",
    )
    b.add_argument(
        "suite", nargs="?", default="lineage", help="suite name in experiments/ or a .toml path (default: lineage)"
    )
    b.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default: the suite's)")
    b.add_argument("--workers", type=int, default=2, help="runs at once, one core each (default 2)")
    b.add_argument(
        "--out",
        default=None,
        help="results folder (default runs/results/<suite>, which starts from the records of the committed "
        "results/<suite> and leaves it as it is; --out results/<suite> updates the committed results)",
    )
    b.add_argument("--runs-dir", default=None, help="run folders (default runs/bench/<suite>)")
    b.add_argument(
        "--resume",
        action="store_true",
        help="continue interrupted runs from their checkpoints (finished runs are always kept)",
    )
    b.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="worker processes here, or Ray tasks (default local)",
    )
    b.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    b.add_argument(
        "--only",
        default=None,
        help="run only the cells whose key or label contains one of these comma-separated texts (e.g. Pong,dagger), "
        "and the runs they start from or have as teachers (init_from / teacher = 'cell:LABEL', and theirs): a "
        "finished one (its record in --out) is used as it is, the others run first (--dry-run marks them 'needed by')",
    )
    b.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    b.add_argument(
        "--rerun-changed",
        action="store_true",
        help="also run again the finished runs made with other method defaults than today's (the report lists them)",
    )
    b.add_argument(
        "--dry-run",
        action="store_true",
        help="only list what would run (no record, or made with other teacher weights), the records made with other "
        "method defaults and those no cell claims any more; writes nothing",
    )
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--json", action="store_true", help=JSON_HELP)
    b.set_defaults(func=cmd_bench)


def _add_report(sub) -> None:
    """`rl-distill report DIR`: bench_report()'s arguments."""
    rp2 = sub.add_parser("report", help="regenerate a suite's tables and plots from its run records")
    rp2.add_argument(
        "runs_dir", metavar="DIR", help="a results folder (results/lineage) or a bench runs folder (runs/bench/lineage)"
    )
    rp2.add_argument("--out", default=None, help="default: the folder the suite wrote to")
    rp2.set_defaults(func=cmd_report)


def _add_video(sub) -> None:
    """`rl-distill video SOURCE [SOURCE2]`: video()'s arguments."""
    from rl_distill.video import DEFAULT_MAX_STEPS

    v = sub.add_parser(
        "video",
        help="greedy play of a teacher or a run's student, or two side by side, as an MP4 or GIF",
        description="Greedy play of one policy, or two side by side on the same env seed, each panel titled with "
        "its name and running score: Atari's colour screen, MinAtar's grid in colours, control envs' own drawing.",
    )
    v.add_argument("source", metavar="SOURCE", help="what --teacher takes: a shipped id, a teacher file, a run folder")
    v.add_argument("source2", metavar="SOURCE2", nargs="?", default=None, help="a second policy, shown on the right")
    v.add_argument("--env", default=None, help="env id (default: the one the first SOURCE records)")
    v.add_argument("--episodes", type=int, default=1, help="episodes each policy plays (default 1)")
    v.add_argument("--seed", type=int, default=0, help="env seed of the first episode, the same for both (default 0)")
    v.add_argument(
        "--max-steps",
        type=int,
        default=DEFAULT_MAX_STEPS,
        help=f"agent steps a policy plays at most (default {DEFAULT_MAX_STEPS}; GIF frames are held in memory)",
    )
    v.add_argument("--out", default=None, help="FILE.mp4 or FILE.gif (default video-<env>.mp4)")
    v.add_argument("--json", action="store_true", help=JSON_HELP)
    v.set_defaults(func=cmd_video)


def build_parser() -> argparse.ArgumentParser:
    """The `rl-distill` parser: --version, and its subcommands teachers, distill, bench, report and video, in that
    order."""
    from importlib.metadata import version

    p = _Parser(prog="rl-distill", description="Policy distillation benchmark suite.")
    p.add_argument("--version", action="version", version=f"rl-distill {version('rl-distill')}", help="print it, exit")
    sub = p.add_subparsers(dest="command", required=True)
    _add_teachers(sub)
    _add_distill(sub)
    _add_bench(sub)
    _add_report(sub)
    _add_video(sub)
    return p


def _run_json(args: argparse.Namespace) -> int:
    """A ``--json`` command: its one JSON document on stdout, anything else it or a library prints on stderr."""
    token = _JSON_OUT.set(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return int(args.func(args) or 0)
    finally:
        _JSON_OUT.reset(token)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        rc = _run_json(args) if getattr(args, "json", False) else int(args.func(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is caught below rather than at exit
        return rc
    except UserError as e:
        print(f"rl-distill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rl-distill: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rl-distill ... | head`: the reader left; say nothing more (Python's own advice)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
