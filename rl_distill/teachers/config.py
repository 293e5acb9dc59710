"""What `rl-distill teachers train` takes: :class:`TrainConfig`, one flag per field (rl_distill.configs), and the
checks of its values. Kept apart from train.py (Stable-Baselines3, tensorboard), so that building the CLI's
parser imports neither."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_distill.configs import NO_FLAG, flag
from rl_distill.errors import UserError
from rl_distill.precision import PRECISIONS
from rl_distill.runs import cli_command


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (VALUE in TOML: 20000, 1e-4, "lin_2.5e-4", [256, 256], false) to a dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--hyperparams {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # a bare word, e.g. lin_1e-4
    return out


def _family_values(what: str) -> str:
    """The env families' defaults of a None field, as its help states them: ``final`` (the final evaluation's
    episodes), ``sticky`` (the protocols' sticky-action probability)."""
    from rl_distill.envs import FAMILIES, family_values

    if what == "final":
        return family_values("teacher_eval_episodes")
    return ", ".join(f"{p.sticky_actions} on {f.title}" for f in FAMILIES if (p := f.protocol()) is not None)


@dataclass
class TrainConfig:
    """What `rl-distill teachers train` takes: its flags, one per field, the field's docstring its help."""

    env_id: str = field(metadata=flag("env_id"))
    """Gymnasium, ALE or MinAtar env id, e.g. CartPole-v1, ALE/Pong-v5, MinAtar/Breakout-v1."""
    algo: str = field(default="ppo", metadata=flag(choices=("ppo", "dqn")))
    """SB3 algorithm."""
    seed: int = 0
    """Training seed."""
    steps: int | None = None
    """Total env steps (default: the hyperparameter entry's n_timesteps, rl-zoo3's budget)."""
    eval_every: int | None = None
    """Env steps between evaluations (default: 1/20 of the budget)."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation."""
    final_episodes: int | None = field(default=None, metadata=flag(default_text=lambda: _family_values("final")))
    """Episodes of the final evaluation (None: the env family's)."""
    checkpoint_every: int | None = None
    """Env steps between resumable checkpoints (default: every evaluation)."""
    stop_at: float | None = None
    """Stop once a periodic evaluation's mean reaches this score."""
    out: str | None = None
    """Exported teacher path (no suffix; default: the run folder's teacher); an existing teacher or the shipped zoo
    only with --force."""
    runs_dir: str = "runs"
    """Where run folders go."""
    resume: bool = False
    """Continue the latest unfinished run of this env, algorithm and seed from its checkpoint; where there is none,
    one line says so and a new run starts."""
    init_from: str | None = field(default=None, metadata=flag(metavar="TEACHER"))
    """Continue training an exported teacher (shipped id or path) in a new run: weights, steps, curve carry over."""
    hyperparams: dict[str, Any] = field(
        default_factory=dict, metadata=flag(convert=parse_overrides, metavar="KEY=VALUE")
    )
    """Override the rl-zoo3 entry, e.g. learning_starts=20000 exploration_fraction=0.05 (TOML values)."""
    device: str = "auto"
    """auto | cpu | cuda[:N]."""
    precision: str = field(default="auto", metadata=flag(choices=PRECISIONS))
    """bf16 autocast for the networks' matrix products (the encoders), fp32 parameters, optimizer state and losses;
    auto: bf16 for image (CNN) networks where the device computes it natively, else fp32 (precision.py)."""
    n_envs: int | None = None
    """Parallel envs (default: the hyperparameter entry's)."""
    sticky_actions: float | None = field(default=None, metadata=flag(default_text=lambda: _family_values("sticky")))
    """Atari and MinAtar: sticky-action probability used in training and evaluation (None: the family protocol's)."""
    progress: bool = field(default=True, metadata=flag("--no-progress"))
    """A progress bar while it trains (--no-progress: none)."""
    command: str | None = field(default_factory=cli_command, metadata=NO_FLAG)
    """The command line that started the run (None for a library call)."""
    threads: int | None = None
    """Torch threads (default: 1 for MLP and MinAtar networks, whose products are too small to gain from more;
    torch's default for the Nature CNN); several runs at once: one thread each."""
    force: bool = False
    """Let --out replace a teacher, or write into the shipped zoo."""

    def __post_init__(self) -> None:
        """Every value checked before any folder or file is made (one-line errors)."""
        from rl_distill.configs import check_types
        from rl_distill.errors import check_count, check_device, check_dir, check_finite, check_seed
        from rl_distill.guard import check_threads
        from rl_distill.precision import check_precision

        check_types(self)
        check_threads(self.threads)
        check_finite("stop_at", self.stop_at)
        if self.out is not None:  # with --resume, a teacher there may be the run's own: _claim_run_dir decides
            check_teacher_out(self.out, self.force, replace_ok=self.resume)
        check_seed(self.seed)
        for name in ("steps", "eval_every", "final_episodes", "checkpoint_every", "n_envs"):
            check_count(name, getattr(self, name))
        check_count("eval_episodes", self.eval_episodes, none_ok=False)
        check_device(self.device)
        check_precision(self.precision)
        check_dir("runs_dir", self.runs_dir)
        if self.sticky_actions is not None and not 0.0 <= self.sticky_actions <= 1.0:
            raise UserError(f"--sticky-actions must be a probability in [0, 1], got {self.sticky_actions}")


def check_teacher_out(out: str | Path, force: bool, flag: str = "--out", replace_ok: bool = False) -> None:
    """Where a teacher is exported: a path whose folder can be written, that replaces no teacher there (unless
    ``replace_ok``) and writes nothing into the shipped zoo, unless ``force``; else a one-line error (nothing
    user-owned is overwritten)."""
    from rl_distill.errors import check_dir
    from rl_distill.teachers import ZOO_DIR
    from rl_distill.teachers.checkpoint import paths_for

    if not str(out).strip() or Path(out).name in ("", ".", ".."):
        raise UserError(f"{flag} {str(out)!r}: give a teacher path without suffix, e.g. {flag} teachers/ppo-mine")
    weights, meta = paths_for(out)
    check_dir(flag, str(weights.parent))
    for p in (weights, meta):
        if p.is_dir():
            raise UserError(f"{flag} {out}: {p} is a folder")
    if force:
        return
    if weights.parent.resolve() == ZOO_DIR.resolve():
        raise UserError(
            f"{flag} {out}: that is the shipped zoo ({ZOO_DIR}), which a command writes only with --force "
            f"(export elsewhere, e.g. {flag} runs/staging/{weights.stem})"
        )
    there = next((p for p in (meta, weights) if p.exists()), None)
    if there is not None and not replace_ok:
        raise UserError(
            f"{flag} {out}: a teacher is already there ({there}); give another {flag}, or --force to replace it"
        )
