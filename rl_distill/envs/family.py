"""The env family: one object per kind of env (control, MinAtar, Atari) that owns everything that differs
between them, so that no other module asks "is this Atari?".

A family answers: which env ids are its own, how to build them batched, what a play protocol is (and which
options are for training only), the score that 0% of a teacher means, the default student, the teacher
hyperparameter entry, how many evaluation episodes and envs, and each method's defaults and budget on it.
Adding a family means one module in this package and one line in ``FAMILIES``; method files never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym


@dataclass(frozen=True)
class EnvFamily:
    """What differs between env families. Subclasses fill the data fields and implement the four methods."""

    name: str
    """Short name, recorded in run summaries: "control", "minatar", "atari"."""
    default_student: str
    """Student spec used when a run names none (students.py's spec syntax)."""
    bf16: bool
    """``--precision auto`` computes this family's networks in bf16 where the device does so natively (worth it
    for the Nature CNN; not for MLPs or the small MinAtar network)."""
    eval_episodes: int
    """Episodes of a run's final evaluation when the run names none."""
    teacher_eval_episodes: int
    """Episodes of a trained teacher's final (shipped) score."""
    eval_envs: int
    """Most envs an evaluation runs side by side (part of its seed: keep it for comparable numbers)."""
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per method NAME: Config values that suit this family (a user's or suite's options override them)."""
    method_steps: dict[str, int] = field(default_factory=dict)
    """Per method NAME: the default env-step budget on this family (the method's own ``default_steps`` elsewhere)."""

    example_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    """The family's name in help texts and messages ("control", "MinAtar", "Atari")."""

    def owns(self, env_id: str) -> bool:
        """True if ``env_id`` names an env of this family (known or not: ``check`` says which)."""
        raise NotImplementedError

    def check(self, env_id: str) -> None:
        """Raise :class:`~rl_distill.errors.UnknownEnvError` (one line) if ``env_id`` cannot be built."""
        raise NotImplementedError

    def make(self, env_id: str, num_envs: int, protocol: Any, num_threads: int = 0) -> gym.vector.VectorEnv:
        """``num_envs`` copies as one gymnasium VectorEnv in SAME_STEP autoreset mode."""
        raise NotImplementedError

    def protocol(self, **options: Any) -> Any:
        """The play protocol (a frozen dataclass with ``for_evaluation()`` and ``to_dict()``), or None."""
        return None

    def training_protocol(self, protocol: Any) -> Any:
        """The protocol a teacher trains under (Atari adds reward clipping and life loss); the same elsewhere."""
        return protocol

    def score_floor(self, env_id: str) -> float | None:
        """The score that 0% of a teacher means (None: the plain ratio score / teacher)."""
        return None

    def hyperparams_key(self, env_id: str) -> str:
        """The entry of teachers/hyperparams.toml that trains this env's teachers."""
        return env_id

    def sb3_policy(self, env_id: str) -> tuple[str, dict[str, Any]]:
        """SB3 policy class name and the policy kwargs it needs on this family."""
        return "MlpPolicy", {}

    def human_pair(self, env_id: str) -> tuple[float, float] | None:
        """(random, human) reference scores for the human-normalised score, where published."""
        return None

    def capped_length(self, protocol: Any) -> int | None:
        """The episode length at which a capped game ends, for the evaluation's stall rule (None: no stall rule)."""
        return None

    def action_groups(self, env_id: str) -> tuple[int, ...] | None:
        """Groups of actions that are one action to the game (for grouped agreement); None where all differ."""
        return None


def check_protocol(protocol: Any) -> None:
    """A play protocol's fields of their types (no coercion) and its sticky-action probability in [0, 1]: a
    protocol from a teacher file or a library call is checked as a flag would be."""
    from rl_distill.configs import check_types
    from rl_distill.errors import check_probability

    check_types(protocol)
    check_probability("sticky_actions", protocol.sticky_actions)
