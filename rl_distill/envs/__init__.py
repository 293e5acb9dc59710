"""Env id -> its family -> one batched env interface.

Every env id belongs to one :class:`EnvFamily` (control, MinAtar, Atari), which owns what differs between
families (construction, protocol, score floor, default student, teacher hyperparameters, method defaults).
Every env built here is a gymnasium ``VectorEnv`` in SAME_STEP autoreset mode: when an episode ends, the returned
observation already starts the next one and ``info["final_obs"]`` holds the last observation of the finished one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rl_distill.envs.atari import ATARI, ATARI_RANDOM_HUMAN, AtariProtocol, atari_game, is_atari
from rl_distill.envs.control import CONTROL, CONTROL_ENVS
from rl_distill.envs.family import EnvFamily
from rl_distill.envs.minatar import MINATAR, MinAtarProtocol
from rl_distill.errors import UnknownEnvError, UserTypeError, UserValueError, check_count, flag

MAX_ENVS = 4096
"""The most envs one batched env holds: more only exhaust memory (an Atari emulator is ~10 MB) or time."""

FAMILIES: tuple[EnvFamily, ...] = (ATARI, MINATAR, CONTROL)
"""Asked in order; control, which takes any other gymnasium id, last."""

__all__ = [
    "ATARI_RANDOM_HUMAN",
    "CONTROL_ENVS",
    "FAMILIES",
    "AtariProtocol",
    "EnvFamily",
    "EnvSpec",
    "MinAtarProtocol",
    "action_groups",
    "atari_game",
    "check_env_id",
    "check_num_envs",
    "env_spec",
    "family_of",
    "family_values",
    "final_observations",
    "is_atari",
    "make_env",
    "one_family",
    "score_floor",
]


def family_of(env_id: str) -> EnvFamily:
    """The family that ``env_id`` belongs to (by its form; :func:`check_env_id` says whether it exists)."""
    if not isinstance(env_id, str):
        raise UserTypeError(f"an env id is a string such as CartPole-v1, got {env_id!r}")
    return next(f for f in FAMILIES if f.owns(env_id))


def family_values(field: str) -> str:
    """A per-family default (an :class:`EnvFamily` field) as a help text states it, e.g. ``family_values(
    "eval_episodes")`` = "100 on control and MinAtar, 10 on Atari"."""
    by_value: dict[Any, list[str]] = {}
    for f in reversed(FAMILIES):  # control first
        by_value.setdefault(getattr(f, field), []).append(f.title)
    return ", ".join(f"{v} on {' and '.join(names)}" for v, names in by_value.items())


def one_family(env_ids: list[str]) -> EnvFamily:
    """The family of a multi-task run's envs, which must share one."""
    fams = {family_of(e).name: family_of(e) for e in env_ids}
    if len(fams) != 1:
        raise UnknownEnvError(
            f"the envs {', '.join(env_ids)} mix the {' and '.join(sorted(fams))} families: one student takes one"
        )
    return next(iter(fams.values()))


def check_env_id(env_id: str) -> None:
    """Raise :class:`UnknownEnvError` with a one-line message if ``env_id`` cannot be built."""
    family_of(env_id).check(env_id)


def score_floor(env_id: str) -> float | None:
    """The floor for percent-of-teacher: 100% = teacher, 0% = this score (None: plain ratio)."""
    return family_of(env_id).score_floor(env_id)


def action_groups(env_id: str) -> tuple[int, ...] | None:
    """The group of each action where a game's actions repeat one another (Pong's FIRE); None elsewhere."""
    return family_of(env_id).action_groups(env_id)


def check_num_envs(num_envs: int, name: str = "num_envs") -> None:
    """``num_envs`` an integer from 1 to :data:`MAX_ENVS`, else a one-line error naming ``name`` as a flag: a method's
    Config is checked with it before a run starts (distill.method_config), not only when its envs are built."""
    check_count(name, num_envs, none_ok=False)
    if num_envs > MAX_ENVS:
        raise UserValueError(f"{flag(name)} {num_envs}: at most {MAX_ENVS:,} envs are built side by side")


def make_env(env_id: str, num_envs: int = 1, *, protocol: Any = None, num_threads: int = 0) -> gym.vector.VectorEnv:
    """Build ``num_envs`` copies of ``env_id`` as one batched env (SAME_STEP autoreset).

    Seed it with ``env.reset(seed=...)``. ``protocol``: the family's play protocol (``AtariProtocol``,
    ``MinAtarProtocol``; default: the family's own defaults).
    """
    check_num_envs(num_envs)
    family = family_of(env_id)
    family.check(env_id)
    p = protocol if protocol is not None else family.protocol()
    env = family.make(env_id, num_envs, p, num_threads)
    env.metadata["rl_distill_env_id"] = env_id
    env.metadata["rl_distill_protocol"] = p.to_dict() if p is not None else None
    return env


@dataclass(frozen=True)
class EnvSpec:
    """What a policy must fit: observation shape and dtype, number of actions."""

    env_id: str
    obs_shape: tuple[int, ...]
    obs_dtype: str
    n_actions: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "obs_shape": list(self.obs_shape),
            "obs_dtype": self.obs_dtype,
            "n_actions": self.n_actions,
        }


_SPEC_CACHE: dict[tuple[str, bool], EnvSpec] = {}


def env_spec(env_id: str, full_action_space: bool = False) -> EnvSpec:
    """The observation/action spec of ``env_id`` (built once, then cached)."""
    key = (env_id, full_action_space)
    if key not in _SPEC_CACHE:
        protocol = AtariProtocol(full_action_space=full_action_space) if full_action_space else None
        env = make_env(env_id, 1, protocol=protocol)
        try:
            sp = env.single_observation_space
            _SPEC_CACHE[key] = EnvSpec(
                env_id, tuple(int(s) for s in sp.shape), str(np.dtype(sp.dtype)), int(env.single_action_space.n)
            )
        finally:
            env.close()
    return _SPEC_CACHE[key]


def final_observations(obs: np.ndarray, info: dict[str, Any], done: np.ndarray) -> np.ndarray:
    """The true last observation of each env (SAME_STEP: done rows hold the next episode's first obs)."""
    if not done.any():
        return obs
    final = obs.copy()
    if "final_obs" in info:
        for i in np.flatnonzero(done):
            final[i] = info["final_obs"][i]
    return final
