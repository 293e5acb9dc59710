"""The control family: gymnasium's classic-control and Box2D envs with discrete actions, on gymnasium's
synchronous vector env, observations float vectors."""

from __future__ import annotations

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

    def owns(self, env_id: str) -> bool:
        return True  # the fallback: asked last

    def check(self, env_id: str) -> None:
        if env_id not in gym.registry:
            raise UnknownEnvError(f"unknown env id {env_id!r}; try one of {', '.join(CONTROL_ENVS)}")

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


CONTROL = ControlFamily(
    name="control",
    default_student="mlp-64-64",
    bf16=False,
    eval_episodes=100,
    teacher_eval_episodes=100,
    eval_envs=16,
)
