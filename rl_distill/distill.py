"""The harness every distillation method runs in.

``run(method_module, spec)`` loads the teachers, checks that they fit the envs, builds the student,
opens the run directory, hands a :class:`~rl_distill.context.Context` to the method's ``train(ctx, cfg)``, then
evaluates student and teacher with the same harness (same episodes, same seeds), saves the student (safetensors)
and writes ``summary.json`` atomically. A method module is what ``protocol.Method`` describes; it never builds
envs, writes files or evaluates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from rl_distill.configs import NO_FLAG, check_types, check_values, flag, make_config
from rl_distill.context import Checkpointer, Context, CurveEvaluator, RunClock
from rl_distill.envs import (
    EnvSpec,
    check_env_id,
    check_num_envs,
    env_spec,
    family_of,
    family_values,
    one_family,
    score_floor,
)
from rl_distill.errors import SpaceMismatchError, UserError, check_count, check_device, check_dir, check_seed, is_int
from rl_distill.evaluation import STALL_STEPS, evaluate, evaluate_teacher
from rl_distill.guard import DivergenceGuard, check_resume_steps, check_threads, default_threads, torch_threads
from rl_distill.precision import PRECISIONS, autocast, check_precision, resolve_precision
from rl_distill.protocol import EnvCheckHook, EnvDefaultsHook, Method
from rl_distill.runs import (
    RunLogger,
    atomic_write_bytes,
    atomic_write_json,
    claim_run_dir,
    cli_command,
    machine,
    to_json,
)
from rl_distill.students import (  # noqa: F401 (load_student: public here too)
    INPUT_CONV,
    Student,
    StudentSpec,
    check_compute,
    fit_input_conv,
    load_student,
    make_student,
    student_policy,
)
from rl_distill.teachers import Teacher, load_teacher
from rl_distill.teachers.hub import warn_protocol


@dataclass
class RunSpec:
    """What every method takes: the common `rl-distill distill` flags, one per field (rl_distill.configs), the
    field's docstring its help; ``NO_FLAG`` fields are set by a library caller or a bench cell."""

    method: str = field(metadata=NO_FLAG)
    teachers: list[str] = field(default_factory=list, metadata=flag("--teacher", action="append", metavar="TEACHER"))
    """Shipped id, teacher file or folder, a finished run (runs/<run>: its student) or a hub teacher
    hf://ORG/REPO[/FILE]; repeat for multi-task."""
    envs: list[str] = field(default_factory=list, metadata=flag("--env", action="append", metavar="ENV"))
    """Env id per teacher (default: the env each teacher records)."""
    student: str | None = field(default=None, metadata=flag(default_text=lambda: family_values("default_student")))
    """Student spec (students.py): mlp-64-64, cnn-32-64-64-512, nature, rusu-4x, rusu-15x, rusu-27x, mcnn-16-128 ...
    (None: the env family's)."""
    steps: int | None = None
    """Env-step budget (default: the method's budget for the env)."""
    seed: int = 0
    """Seed of the student, envs and sampling."""
    device: str = "auto"
    """auto|cpu|cuda."""
    precision: str = field(default="auto", metadata=flag(choices=PRECISIONS))
    """bf16 autocast for the networks' matrix products in training, fp32 parameters, optimizer state and losses;
    auto: bf16 for image (CNN) networks where the device computes it natively, else fp32 (precision.py);
    evaluations always in fp32."""
    eval_episodes: int | None = field(default=None, metadata=flag(default_text=lambda: family_values("eval_episodes")))
    """Final evaluation episodes (None: the env family's)."""
    eval_seed: int = field(default=2_000_000, metadata=NO_FLAG)
    runs_dir: str = "runs"
    """Where run folders go."""
    resume: bool = False
    """Continue the newest unfinished run of this env, method and seed from its checkpoint (same options); where
    there is none, one line says so and a new run starts."""
    progress: bool = field(default=True, metadata=flag("--no-progress"))
    """A progress bar while it trains (--no-progress: none)."""
    tensorboard: bool = field(default=True, metadata=NO_FLAG)
    checkpoint_every_s: float = field(default=120.0, metadata=NO_FLAG)
    """Seconds between resumable checkpoints (0: at every chance)."""
    eval_every: int | None = field(default=None, metadata=flag(metavar="STEPS"))
    """Env steps between learning-curve evaluations of the student (greedy and sampling, logged as eval/mean_reward
    and eval/sampled_mean_reward, drawn in the run's curve.png); none by default: only the final evaluation."""
    curve_episodes: int = field(default=10, metadata=flag(metavar="N"))
    """Episodes of each learning-curve evaluation."""
    init_from: str | None = None
    """A finished run folder whose student starts this one: its shared layers (Actor-Mimic transfer to new games),
    and the heads of the envs it had heads for (a continuation: transfer_weights)."""
    eval_cache: str | None = field(default=None, metadata=NO_FLAG)
    """Folder caching evaluations per (weights, env, episodes, seed): a grid evaluates each teacher, and each untrained
    student (the first learning-curve point, the same for every method of a seed), once."""
    options: dict[str, Any] = field(default_factory=dict, metadata=NO_FLAG)
    """Method-specific options (fields of the method's Config; the CLI's method flags)."""
    keep: list[str] = field(default_factory=list, metadata=flag(action="append", metavar="ENV"))
    """An env the student keeps a head for (from --init-from) without training on it, scored on the learning curve
    and at the end against its reference teacher (continual learning: how a game learnt before fares while the
    student learns these); repeatable."""
    keep_teachers: list[str] = field(
        default_factory=list, metadata=flag("--keep-teacher", action="append", metavar="TEACHER")
    )
    """The teacher each --keep env is scored against, in order (default: the shipped ppo-<env>)."""
    command: str | None = field(default_factory=cli_command, metadata=NO_FLAG)
    """The command line that started the run (None for a library call)."""
    threads: int | None = None
    """Torch threads (default: 1 for MLP and MinAtar networks, whose products are too small to gain from more;
    torch's default for the Nature CNN); several runs at once: one thread each."""
    keep_checkpoint: bool = False
    """Keep checkpoint.pt once the run has finished (by default it is deleted, with the run's .lock: a finished run
    is never resumed)."""
    allow_mismatch: bool = False
    """With --env (or --keep-teacher): run a teacher on an env other than the one it was trained on, where its
    observations and actions fit (by default refused: it has never played that game)."""

    def __post_init__(self) -> None:
        """Every value checked before any folder or file is made (one-line errors)."""
        check_types(self)
        check_threads(self.threads)
        check_count("steps", self.steps)
        check_seed(self.seed)
        check_device(self.device)
        check_precision(self.precision)
        check_count("eval_episodes", self.eval_episodes)
        check_count("eval_every", self.eval_every)
        check_count("curve_episodes", self.curve_episodes, none_ok=False)
        if not (self.checkpoint_every_s >= 0):
            raise UserError(f"checkpoint_every_s must be >= 0 (0: at every chance), got {self.checkpoint_every_s}")
        if self.student is not None:
            StudentSpec.parse(self.student)
        check_dir("runs_dir", self.runs_dir)
        check_dir("eval_cache", self.eval_cache)
        for e in self.keep:
            check_env_id(e)
        if set(self.keep) & set(self.envs) or len(set(self.keep)) != len(self.keep):
            raise UserError(f"--keep {' '.join(self.keep)}: a kept env is trained on too, or named twice")
        if self.keep_teachers and len(self.keep_teachers) != len(self.keep):
            raise UserError(
                f"give one --keep-teacher per --keep ({len(self.keep)} kept envs, {len(self.keep_teachers)} teachers)"
            )
        if self.allow_mismatch and not (self.envs or self.keep_teachers):
            raise UserError("--allow-mismatch goes with --env (the env to run the teacher on)")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def method_config(method: Method, options: dict[str, Any], env_ids: list[str] | None = None):
    """The method's Config from the given options over the env family's defaults for the method
    (``EnvFamily.method_defaults``), as the method's optional hook ``env_defaults(env_ids, options, family_defaults)``
    adjusts them (rl-zoo3's PPO settings for ppo; on-policy's dense form drops the replay memory)."""
    check_values(method.Config, options)  # a table, each value of its field's type: before the hook reads them
    names = {f.name for f in dataclasses.fields(method.Config)}
    bad = sorted(set(options) - names)
    if bad:
        flags = ", ".join("--" + b.replace("_", "-") for b in bad)
        raise UserError(f"{flags} does not apply to {method.NAME} (its options: {', '.join(sorted(names)) or 'none'})")
    if env_ids:
        defaults = dict(one_family(list(env_ids)).method_defaults.get(method.NAME, {}))
        if isinstance(method, EnvDefaultsHook):
            defaults = method.env_defaults(list(env_ids), options, defaults)
        options = {**defaults, **options}
    cfg = make_config(method.Config, options)
    if is_int(getattr(cfg, "num_envs", None)):  # the envs it builds side by side: refused now, not when built
        check_num_envs(cfg.num_envs)
    return cfg


def check_method_envs(method: Method, env_ids: list[str]) -> None:
    """What a run refuses of ``method`` on ``env_ids`` before anything is built, the teachers aside: a second task
    for a single-task method, and what the method's own hook refuses (protocol.EnvCheckHook: expert iteration's
    search on an env it cannot reset to a state). ``bench`` calls it for each cell, ``--dry-run`` too."""
    if len(env_ids) > 1 and not method.MULTI_TASK:
        raise UserError(f"{method.NAME} trains a single-task student: give one --teacher")
    if isinstance(method, EnvCheckHook):
        method.check_envs(list(env_ids))


def check_teacher_env(
    teacher: Teacher, spec: EnvSpec, allow_mismatch: bool = False, opt_in: str = "--allow-mismatch"
) -> None:
    """``teacher`` can act in ``spec``'s env (observation shape, actions: Teacher.check_fits), and was trained on
    that env, unless ``allow_mismatch``: a CartPole teacher fits another env of 4 numbers and 2 actions, a MinAtar
    teacher another game of its shapes, but has never played it. A teacher that records no env (an SB3 zip alone)
    and a finished run's student (its head for the env) pass. ``opt_in``: what the one-line refusal offers."""
    teacher.check_fits(spec)
    trained = teacher.trained_env_id
    if trained and trained != spec.env_id and not allow_mismatch:
        raise SpaceMismatchError(
            f"teacher {teacher.name} was trained on {trained}, not {spec.env_id}: it has never played "
            f"{spec.env_id} ({opt_in} runs it there all the same)"
        )


def default_budget(method: Method, env_ids: list[str]) -> int:
    """Env steps a run takes when it names none: per task, the family's budget for the method
    (``EnvFamily.method_steps``) or else the method's ``default_steps(env_id)``; a multi-task run sums them."""
    return sum(family_of(e).method_steps.get(method.NAME) or method.default_steps(e) for e in env_ids)


def _check_setup(
    method: Method,
    teachers: list[Teacher],
    env_ids: list[str],
    specs: list[EnvSpec],
    student_spec: str | None,
    allow_mismatch: bool = False,
) -> None:
    check_method_envs(method, env_ids)
    for t, s in zip(teachers, specs):
        check_teacher_env(t, s, allow_mismatch)
    kinds = {len(s.obs_shape) for s in specs}
    if len(kinds) > 1:
        raise SpaceMismatchError("teachers mix image and vector observations: one student cannot take both")
    # Channel counts may differ (the student zero-pads them up to the largest: students.Student), grids may not.
    if len(specs) > 1 and len(specs[0].obs_shape) == 3 and len({s.obs_shape[1:] for s in specs}) > 1:
        raise SpaceMismatchError(
            f"teachers' image observations differ in height or width "
            f"({', '.join('x'.join(map(str, s.obs_shape)) for s in specs)}): a multi-task CNN student needs one grid"
        )


def run(method: Method, spec: RunSpec) -> dict[str, Any]:
    """Train ``method`` as ``spec`` says, evaluate, write the run directory; returns the summary."""
    t0 = time.time()
    device = resolve_device(spec.device)
    method_config(method, spec.options)  # the options alone are checked before any teacher loads
    if not spec.teachers:
        raise UserError(f"{method.NAME} needs at least one --teacher")
    for e in spec.envs:
        check_env_id(e)
    given = list(spec.envs) + [None] * (len(spec.teachers) - len(spec.envs))
    teachers = [load_teacher(t, device=device, env_id=e) for t, e in zip(spec.teachers, given)]
    env_ids = list(spec.envs) or [t.env_id for t in teachers]
    cfg = method_config(method, spec.options, [e for e in env_ids if e])
    if len(env_ids) != len(teachers):
        raise UserError(f"give one --env per --teacher ({len(teachers)} teachers, {len(env_ids)} envs)")
    if any(e is None for e in env_ids):
        raise UserError("a teacher does not record its env: pass --env")
    specs = [env_spec(e) for e in env_ids]
    _check_setup(method, teachers, env_ids, specs, spec.student, spec.allow_mismatch)
    # A hub teacher trained under another protocol (e.g. NoFrameskip-v4, no sticky actions): one warning line, and
    # the run records both.
    teacher_protocols = {t.name: m for t, e in zip(teachers, env_ids) if (m := warn_protocol(t, e))}
    precision = resolve_precision(spec.precision, device, images=one_family(env_ids).bf16)
    kept = _kept_tasks(spec, env_ids, device)
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed)
    heads = specs + [k.spec for k in kept]  # the student's heads: the trained games, then the kept ones
    shapes, n_actions = [s.obs_shape for s in heads], [s.n_actions for s in heads]
    student_spec = spec.student or one_family(env_ids).default_student
    # Multi-task: each task gets its own default budget, the total is their sum.
    budget = int(spec.steps or default_budget(method, env_ids))
    check_compute(student_spec, shapes, n_actions, budget, device)  # too deep or too slow to train: refused now
    student = make_student(student_spec, shapes, n_actions, spec.seed, device=device).to(device)
    init = transfer_weights(student, spec.init_from, [s.env_id for s in heads]) if spec.init_from else None
    config = {
        "run": {k: v for k, v in dataclasses.asdict(spec).items()},
        "method_config": dataclasses.asdict(cfg),
        "budget": budget,
        "envs": env_ids,
        "student": str(student.spec),
        "device": str(device),
        "precision": precision,
        "init": init,
        **({"teacher_protocols": teacher_protocols} if teacher_protocols else {}),
    }
    threads = spec.threads or default_threads(StudentSpec.parse(student_spec).kind == "cnn")
    with _claim_run_dir(method, spec, env_ids, config) as run_dir, torch_threads(threads):
        return _train_and_evaluate(
            method, spec, cfg, teachers, env_ids, specs, student, device, precision, run_dir, config, t0, kept
        )


@dataclass
class KeptTask:
    """A game the student has a head for but does not train on (``RunSpec.keep``), and its reference teacher."""

    spec: EnvSpec
    teacher: Teacher

    @property
    def env_id(self) -> str:
        return self.spec.env_id


def _kept_tasks(spec: RunSpec, env_ids: list[str], device: torch.device) -> list[KeptTask]:
    """The kept envs with their reference teachers (default: the shipped ppo-<env>), checked against the envs."""
    from rl_distill.teachers import shipped_ids

    if set(spec.keep) & set(env_ids):
        raise UserError(f"--keep {' '.join(spec.keep)}: a kept env is trained on too ({', '.join(env_ids)})")
    kept = []
    for i, env_id in enumerate(spec.keep):
        name = spec.keep_teachers[i] if spec.keep_teachers else f"ppo-{env_id.replace('/', '-')}"
        if not spec.keep_teachers and name not in shipped_ids():
            raise UserError(f"--keep {env_id}: no shipped teacher {name} to score it against; give --keep-teacher")
        teacher = load_teacher(name, device=device, env_id=env_id)
        es = env_spec(env_id)
        check_teacher_env(teacher, es, spec.allow_mismatch)
        kept.append(KeptTask(es, teacher))
    return kept


RESUME_MAY_CHANGE = (
    "resume",
    "progress",
    "tensorboard",
    "command",
    "checkpoint_every_s",
    "eval_cache",
    "device",
    "runs_dir",
    "steps",
    "student",
    "envs",
    "options",
    "threads",
    "keep_checkpoint",
    "allow_mismatch",
)
"""RunSpec fields a resumed run may give differently: how it runs, not what it trains, and the budget (``--steps``
continues a run further, as ``teachers train --resume`` does). ``student``, ``envs`` and ``options`` are compared
resolved: the student spec, the env ids, the method config."""


def _changed_on_resume(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The options of ``new`` (a config.json dict) that differ from the run's ``old`` one, as ``--flag (a -> b)``."""
    old, new = json.loads(to_json(old)), json.loads(to_json(new))
    pairs = [(k, old["run"].get(k), v) for k, v in new["run"].items() if k not in RESUME_MAY_CHANGE]
    pairs += [(k, old["method_config"].get(k), v) for k, v in new["method_config"].items()]
    pairs += [(k, old.get(k), new[k]) for k in ("envs", "student", "precision") if k in old]
    return [f"--{k.replace('_', '-')} ({a} -> {b})" for k, a, b in pairs if a != b]


@contextlib.contextmanager
def _claim_run_dir(method: Method, spec: RunSpec, env_ids: list[str], config: dict[str, Any]):
    """The run folder (runs.claim_run_dir: locked while the block runs, removed if a user error stops a new one
    before its first checkpoint), with its config.json: with ``resume``, the newest unfinished one of this env,
    method and seed, refused if it was started with other options or has trained past the budget; else a new one.
    A finished run's checkpoint goes unless ``keep_checkpoint``: a finished run is never resumed."""
    tag = "+".join(env_ids)
    with claim_run_dir(
        spec.runs_dir,
        tag,
        method.NAME,
        spec.seed,
        resume=spec.resume,
        marker="checkpoint.pt",
        what=f"{method.NAME} run of {tag} (seed {spec.seed})",
        hint=" (a finished run's student goes on with --init-from its run folder)",
        drop_when_done=() if spec.keep_checkpoint else ("checkpoint.pt",),
    ) as (run_dir, resumed):
        if resumed and (run_dir / "config.json").exists():
            changed = _changed_on_resume(json.loads((run_dir / "config.json").read_text()), config)
            if changed:
                raise UserError(
                    f"--resume: {run_dir} was started with other options: {', '.join(changed)}; "
                    "give the same ones, or drop --resume for a new run"
                )
        if resumed:
            check_resume_steps(run_dir / "checkpoint.pt", config["budget"])
        atomic_write_json(run_dir / "config.json", config)
        yield run_dir


def _context(
    spec: RunSpec,
    teachers: list[Teacher],
    env_ids: list[str],
    specs: list[EnvSpec],
    student: Student,
    device: torch.device,
    run_dir: Path,
    logger: RunLogger,
    budget: int,
    started_at: float,
    kept: list[KeptTask],
) -> Context:
    """The context ``method.train`` gets, with its clock, checkpointer and learning-curve evaluator."""
    clock = RunClock(started_at)
    ckpt = Checkpointer(run_dir, spec.checkpoint_every_s, spec.resume, device)
    heads = env_ids + [k.env_id for k in kept]  # the student's heads: the trained games, then the kept ones
    every, episodes, seed, cache = spec.eval_every, spec.curve_episodes, spec.eval_seed, spec.eval_cache
    curve = CurveEvaluator(student, device, heads, logger, clock, every, episodes, seed, cache)
    label = f"{spec.method} {','.join(env_ids)}" if spec.progress else None  # a progress bar's label, or none
    return Context(
        teachers, env_ids, specs, student, device, spec.seed, budget, run_dir, logger, clock, ckpt, curve, label
    )


def _train_and_evaluate(
    method: Method,
    spec: RunSpec,
    cfg: Any,
    teachers: list[Teacher],
    env_ids: list[str],
    specs: list[EnvSpec],
    student: Student,
    device: torch.device,
    precision: str,
    run_dir: Path,
    config: dict[str, Any],
    t0: float,
    kept: list[KeptTask] | None = None,
) -> dict[str, Any]:
    """The method's training in ``run_dir``, then the final evaluation (the kept games' too) and the run's files."""
    kept = kept or []
    budget = config["budget"]
    logger = RunLogger(run_dir, tensorboard=spec.tensorboard)
    logger.hparams({**{k: v for k, v in dataclasses.asdict(spec).items() if k != "options"}, **dataclasses.asdict(cfg)})
    ctx = _context(spec, teachers, env_ids, specs, student, device, run_dir, logger, budget, t0, kept)
    if spec.eval_every and not (spec.resume and (run_dir / "checkpoint.pt").exists()):
        ctx.curve.maybe_evaluate(ctx.env_steps, force=True)  # the curve's first point: the untrained student
    try:
        with autocast(precision, device), ctx.checkpoints.stop.catching(), DivergenceGuard(ctx, cfg).watching():
            method.train(ctx, cfg)
    except BaseException:
        logger.close()
        raise
    finally:
        ctx.close()
    if ctx.checkpoints.interrupted:  # the signal came after the method's last checkpoint: stop before the evaluation
        logger.close()
        print(
            f"\n{ctx.checkpoints.interrupted}: stopped; the same command with --resume continues {run_dir}",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    train_wall = ctx.clock.elapsed_s  # wall seconds until training ended, setup and curve evaluations included
    train_time = ctx.clock.training_s  # of those, the seconds spent training (RunClock says which is which)
    train_times = ctx.clock.training_times()  # the scalars of those: time/wall_s, and time/cpu_s where known

    all_envs, all_teachers = env_ids + [k.env_id for k in kept], teachers + [k.teacher for k in kept]
    tasks = _final_evaluation(spec, all_envs, all_teachers, student, device, logger, ctx.env_steps, train_times)
    for t in tasks[len(env_ids) :]:
        t["trained"] = False  # a kept game: scored, not trained on
    _save_student(run_dir, student, all_envs)
    summary = {
        "method": method.NAME,
        "envs": env_ids,
        **({"kept_envs": [k.env_id for k in kept]} if kept else {}),
        **({"teacher_protocols": config["teacher_protocols"]} if "teacher_protocols" in config else {}),
        "seed": spec.seed,
        "teacher_score": tasks[0]["teacher_score"]["mean"]
        if len(tasks) == 1
        else [t["teacher_score"]["mean"] for t in tasks],
        "student_score": tasks[0]["student_score"] if len(tasks) == 1 else [t["student_score"] for t in tasks],
        "percent_of_teacher": tasks[0]["percent_of_teacher"]
        if len(tasks) == 1
        else [t["percent_of_teacher"] for t in tasks],
        "env_steps": ctx.env_steps,
        "teacher_queries": ctx.teacher_queries,
        "gradient_steps": ctx.gradient_steps,
        # Whole-run figures (RunClock): a resumed run adds the time of its earlier parts. wall_s: elapsed, the final
        # evaluation included; train_wall_s: elapsed when training ended; train_time_s: training only.
        "wall_s": round(ctx.clock.elapsed_s, 2),
        "train_wall_s": round(train_wall, 2),
        "train_time_s": round(train_time, 2),
        "cpu_s": round(ctx.clock.cpu_s, 2),
        "train_cpu_s": None if "time/cpu_s" not in train_times else round(train_times["time/cpu_s"], 2),
        "resumed_from_step": ctx.checkpoints.resumed_from,
        "student": str(student.spec),
        "student_params": student.policy_params(),
        "teacher_params": [t.num_params for t in all_teachers] if len(tasks) > 1 else teachers[0].num_params,
        "protocol": tasks[0]["protocol"],
        "tasks": tasks,
        "method_config": dataclasses.asdict(cfg),
        "device": str(device),
        "precision": precision,
        "machine": machine(str(device)),
        "run_dir": str(run_dir),
        "init": config["init"],
    }
    logger.close()
    atomic_write_json(run_dir / "summary.json", summary)
    # After the summary: drawing the curve is no part of the run's cost (cpu_s, wall_s).
    teacher_scores = [t["teacher_score"]["mean"] for t in tasks]
    ctx.curve.plot(run_dir / "curve.png", teacher_scores, f"{method.NAME}, seed {spec.seed}")
    return summary


def _final_evaluation(
    spec: RunSpec,
    env_ids: list[str],
    teachers: list[Teacher],
    student: Student,
    device: torch.device,
    logger: RunLogger,
    step: int,
    train_times: dict[str, float],
) -> list[dict[str, Any]]:
    """Student and teacher on each task with the same harness, episodes and seeds: the run's per-task scores."""
    student.eval()
    tasks = []
    for i, (env_id, teacher) in enumerate(zip(env_ids, teachers)):
        episodes = spec.eval_episodes or family_of(env_id).eval_episodes
        shown = f"final evaluation, {{}} on {env_id}" if spec.progress else None  # the bars' label, or no bars
        t_res = evaluate_teacher(
            teacher, env_id, episodes, spec.eval_seed, spec.eval_cache, progress=shown and shown.format("teacher")
        )
        floor = score_floor(env_id)
        # A teacher no better than the floor (e.g. an untrained one) has no meaningful "% of teacher": None.
        ref = t_res["mean"] if t_res["mean"] > (floor if floor is not None else 0.0) else None
        s_res = evaluate(
            student_policy(student, i, device),
            env_id,
            episodes=episodes,
            seed=spec.eval_seed,
            reference=ref,
            floor=floor,
            stall_steps=STALL_STEPS,
            progress=shown and shown.format("student"),
        )
        logger.scalars(
            step,
            {
                f"eval/mean_reward{'' if len(env_ids) == 1 else '/' + env_id}": s_res.summary["mean"],
                **train_times,
            },
        )
        tasks.append(
            {
                "env": env_id,
                "teacher": teacher.name,
                "teacher_score": {k: t_res[k] for k in ("mean", "std", "iqm")},
                "student_score": {k: s_res.summary[k] for k in ("mean", "std", "iqm", "iqm_ci")},
                "percent_of_teacher": s_res.summary.get("percent_of_reference"),
                "episodes": episodes,
                "protocol": s_res.protocol,
                "stalled_games": s_res.summary.get("stalled_games"),
            }
        )
    return tasks


def _save_student(run_dir: Path, student: Student, env_ids: list[str]) -> None:
    """``student.safetensors`` and ``student.json`` (its spec, shapes and games), each written atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}
    with tempfile.TemporaryDirectory() as d:
        save_file(tensors, f"{d}/s.safetensors")
        atomic_write_bytes(run_dir / "student.safetensors", Path(f"{d}/s.safetensors").read_bytes())
    meta = {
        "spec": str(student.spec),
        "obs_shapes": student.obs_shapes,
        "n_actions": student.n_actions,
        "envs": env_ids,
    }
    if student.in_channels is not None:  # the channels its images are zero-padded to (the largest of obs_shapes)
        meta["input_channels"] = student.in_channels
    atomic_write_json(run_dir / "student.json", meta)


def transfer_weights(student: Student, run_dir: str | Path, envs: list[str] | None = None) -> dict[str, Any]:
    """Copy a finished run's student weights into ``student``: every layer the two students share by name (all of
    them or none: a shared layer of another shape, e.g. a source of another width, is a one-line
    :class:`SpaceMismatchError` naming the layer, both shapes and both specs). Layers only one student has (an
    input layer for another observation size, a deeper trunk's extra layer) stay fresh. The per-task policy and
    value heads belong to games: ``envs`` names this student's heads in order, and each head whose game the source
    also had a head for is copied from that head (a continuation, e.g. on-policy distillation or RL from an
    off-policy-distilled student, as in the Qwen3 report, or a continual-learning stage), the others stay fresh
    (Actor-Mimic transfer to a new game). An image student's first convolution is copied whatever the two
    students' channel counts (a multi-task source's are its games' largest, zero-padded: students.Student): onto
    fewer channels its first ones (the same function as the source on this game's grid zero-padded to its count),
    onto more with zero weights for the extra channels (the copy computes what the source did on the first ones,
    the rest learn from zero). Returns what was copied (``heads``: the games whose heads came; ``input_channels``:
    {source, here} where the first convolution's channels were fitted)."""
    p = Path(run_dir)
    if not (p / "student.safetensors").exists():
        raise UserError(f"cannot initialise from {p}: no student.safetensors there (is it a finished run?)")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        src_meta = json.loads((p / "student.json").read_text())
    except (OSError, ValueError):
        src_meta = None
    src_meta = src_meta if isinstance(src_meta, dict) else {}
    src_envs = list(src_meta.get("envs") or [])
    try:
        src = load_file(str(p / "student.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(
            f"cannot initialise from {p}: unreadable student.safetensors ({str(e).splitlines()[0]})"
        ) from None
    bad = next((k for k, v in src.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise UserError(f"cannot initialise from {p}: its student's {bad} holds nan or inf (its training diverged)")
    own = student.state_dict()
    take = {k: src[k] for k in own if k in src and not k.startswith(("heads.", "value_heads."))}
    heads = [e for e in (envs or []) if e in src_envs]
    for j, env in enumerate(envs or []):
        if env in src_envs:
            i = src_envs.index(env)
            for part in ("heads", "value_heads"):
                for param in ("weight", "bias"):
                    if f"{part}.{i}.{param}" in src and f"{part}.{j}.{param}" in own:
                        take[f"{part}.{j}.{param}"] = src[f"{part}.{i}.{param}"]
    channels = None
    if INPUT_CONV in take and take[INPUT_CONV].dim() == 4 and own[INPUT_CONV].dim() == 4:
        w, c = take[INPUT_CONV], int(own[INPUT_CONV].shape[1])
        if w.shape[1] != c and (w.shape[0], *w.shape[2:]) == (own[INPUT_CONV].shape[0], *own[INPUT_CONV].shape[2:]):
            channels = {"source": int(w.shape[1]), "here": c}
            take[INPUT_CONV] = fit_input_conv(w, c)
    for k, v in take.items():
        if tuple(v.shape) != tuple(own[k].shape):
            layer, _, param = k.rpartition(".")
            raise SpaceMismatchError(
                f"cannot initialise from {p}: its student ({src_meta.get('spec', 'spec unknown')}) and this one "
                f"({student.spec}) differ in the shared layer {layer}: {param} {tuple(v.shape)} there, "
                f"{tuple(own[k].shape)} here (--init-from copies every shared layer: use the same widths)"
            )
    if not take:
        raise SpaceMismatchError(
            f"the student of {p} shares no layer with this student ({student.spec}): nothing to transfer"
        )
    student.load_state_dict(take, strict=False)
    params = int(sum(v.numel() for v in take.values()))
    if channels is not None and channels["here"] > channels["source"]:  # the appended zeros came from nowhere
        params -= take[INPUT_CONV][:, channels["source"] :].numel()
    info = {"from": str(p), "tensors": len(take), "params": params, "heads": heads}
    return {**info, "input_channels": channels} if channels else info
