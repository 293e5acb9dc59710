"""Stable-Baselines3 VecEnv over the suite's batched envs (the fast path for SB3 training).

For Atari this puts ale-py's C++ ``AtariVectorEnv`` under SB3 instead of SB3's per-env Python
wrappers. The wrapped env always runs full games with raw rewards, and the training-only options are
applied here: reward clipping, and a lost life signalled to the learner as an episode end (SB3's
EpisodicLifeEnv: the game itself goes on). The "episode" infos (SB3's Monitor convention, which feeds
``rollout/ep_rew_mean``) therefore always report raw full-game scores.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from rl_distill.envs import family_of, final_observations, make_env


class SB3VecEnv(VecEnv):
    """``make_env(env_id, n_envs)`` as an SB3 VecEnv."""

    def __init__(self, env_id: str, n_envs: int, seed: int = 0, protocol: Any = None):
        """``protocol``: the training protocol (default: the family's, e.g. Atari's clipped rewards and life loss)."""
        self.env_id = env_id
        family = family_of(env_id)
        self.protocol = protocol or family.training_protocol(family.protocol())
        env_protocol = self.protocol.for_evaluation() if self.protocol else None
        self.env = make_env(env_id, n_envs, protocol=env_protocol)
        super().__init__(n_envs, self.env.single_observation_space, self.env.single_action_space)
        self.clip_rewards = bool(getattr(self.protocol, "reward_clipping", False))
        self.episodic_life = bool(getattr(self.protocol, "episodic_life", False))
        self._seed = seed
        self._seeded = False
        self._returns = np.zeros(n_envs, dtype=np.float64)
        self._lengths = np.zeros(n_envs, dtype=np.int64)
        self._lives: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._t0 = time.time()

    def reset(self) -> np.ndarray:
        # Seed once; a later reset() (SB3 calls it at the start of learn) continues the RNG streams.
        obs, info = self.env.reset(seed=None if self._seeded else self._seed)
        self._seeded = True
        self._returns[:] = 0
        self._lengths[:] = 0
        self._lives = info.get("lives")
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self):
        obs, rew, term, trunc, info = self.env.step(self._actions)
        raw = np.asarray(rew, dtype=np.float32)
        self._returns += raw
        self._lengths += 1
        game_over = np.asarray(term | trunc)
        dones = game_over.copy()
        if self.episodic_life and "lives" in info:
            lives = np.asarray(info["lives"])
            if self._lives is not None:
                dones |= (lives < self._lives) & ~game_over
            self._lives = lives
        reward = np.sign(raw) if self.clip_rewards else raw
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = final_observations(obs, info, game_over)
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = final[i]
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
                if game_over[i]:
                    infos[i]["episode"] = {
                        "r": float(self._returns[i]),
                        "l": int(self._lengths[i]),
                        "t": round(time.time() - self._t0, 6),
                    }
                    self._returns[i] = 0
                    self._lengths[i] = 0
        return obs, reward, dones, infos

    def close(self) -> None:
        self.env.close()

    # SB3's VecEnv API for per-env attributes: this env has no per-env Python objects.
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * self.num_envs
        raise AttributeError(f"SB3VecEnv has no per-env attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"SB3VecEnv cannot set per-env attribute {attr_name!r}")

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        raise AttributeError(f"SB3VecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * self.num_envs
