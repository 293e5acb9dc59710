"""The control family: gymnasium's classic-control and Box2D envs with discrete actions, on gymnasium's
synchronous vector env, observations float vectors."""

from __future__ import annotations

import functools
import warnings
from typing import Any

import gymnasium as gym

from rl_distill.envs.family import EnvFamily
from rl_distill.errors import UnknownEnvError

CONTROL_ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")

# The score that 0% of a teacher means where the plain ratio score/teacher misleads: returns that are negative
# (the minimum possible return).
_SCORE_FLOORS = {"Acrobot-v1": -500.0, "MountainCar-v0": -200.0}


class ControlFamily(EnvFamily):
    """Any gymnasium-registered env id with a discrete action space that no other family claims."""

    example_id = "CartPole-v1"
    title = "control"

    def owns(self, env_id: str) -> bool:
        return True  # the fallback: asked last

    def check(self, env_id: str) -> None:
        if env_id not in gym.registry:
            raise UnknownEnvError(f"unknown env id {env_id!r}; {SUPPORTED}")
        _check_spaces(env_id)

    def make(self, env_id: str, num_envs: int, protocol: Any, num_threads: int = 0) -> gym.vector.VectorEnv:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make_vec(
                env_id,
                num_envs=num_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            )
        if not isinstance(env.single_action_space, gym.spaces.Discrete):
            env.close()
            raise UnknownEnvError(
                f"{env_id!r} has a {type(env.single_action_space).__name__} action space; "
                "rl-distill handles discrete actions"
            )
        return env

    def score_floor(self, env_id: str) -> float | None:
        return _SCORE_FLOORS.get(env_id)


SUPPORTED = (
    f"rl-distill plays control envs ({', '.join(CONTROL_ENVS)}, or another gymnasium id with vector observations "
    "and discrete actions), MinAtar/<Game>-v1 and ALE/<Game>-v5"
)
"""The families, in words, for an error about an env id."""


@functools.lru_cache(maxsize=None)
def _check_spaces(env_id: str) -> None:
    """A registered id whose env the students and teachers can take: a Box observation of one dimension (a float
    vector) and a Discrete action space; built once to look (cached), else a one-line error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id, disable_env_checker=True)
    except Exception as e:  # noqa: BLE001 - a registered env that cannot be made here (a missing extra, a bad kwarg)
        raise UnknownEnvError(f"env {env_id!r} cannot be made here ({type(e).__name__}: {e}); {SUPPORTED}") from None
    try:
        obs, act = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(act, gym.spaces.Discrete):
        raise UnknownEnvError(
            f"{env_id!r} has a {type(act).__name__} action space; rl-distill handles discrete actions ({SUPPORTED})"
        )
    if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
        raise UnknownEnvError(
            f"{env_id!r} has {type(obs).__name__} observations"
            + (f" of shape {obs.shape}" if getattr(obs, "shape", None) else "")
            + f"; control students take a vector (a one-dimensional Box) ({SUPPORTED})"
        )


CONTROL = ControlFamily(
    name="control",
    default_student="mlp-64-64",
    bf16=False,
    eval_episodes=100,
    teacher_eval_episodes=100,
    eval_envs=16,
)
