"""Env id -> one batched env interface.

Classic control runs on gymnasium's vector envs; Atari (``ALE/<Game>-v5``) runs on ale-py's C++
``AtariVectorEnv`` with the DQN preprocessing (84x84 gray, 4-frame stack, frameskip 4, up to 30
no-op starts). Every env returned here is a gymnasium ``VectorEnv`` in SAME_STEP autoreset mode: when
an episode ends, the returned observation already starts the next one and ``info["final_obs"]``
holds the last observation of the finished one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rl_distill.errors import UnknownEnvError

CONTROL_ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
_ALE_ID = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")

# Random and human reference scores (DQN-zoo table) for the human-normalised score.
ATARI_RANDOM_HUMAN = {
    "Pong": (-20.7, 14.6),
    "Breakout": (1.7, 30.5),
    "SpaceInvaders": (148.0, 1668.7),
    "Seaquest": (68.4, 42054.7),
    "Qbert": (163.9, 13455.0),
    "BeamRider": (363.9, 16926.5),
    "Enduro": (0.0, 860.5),
    "Freeway": (0.0, 29.6),
}


# The score that 0% of a reference means, where the plain ratio score/reference misleads:
# returns that are negative (minimum possible return) and Atari games (the random policy's score).
_SCORE_FLOORS = {"Acrobot-v1": -500.0, "MountainCar-v0": -200.0}


def score_floor(env_id: str) -> float | None:
    """The floor for percent-of-teacher: 100% = teacher, 0% = this score (None: plain ratio)."""
    if is_atari(env_id):
        pair = ATARI_RANDOM_HUMAN.get(atari_game(env_id))
        return pair[0] if pair else None
    return _SCORE_FLOORS.get(env_id)


@dataclass(frozen=True)
class AtariProtocol:
    """How an Atari env is played. Evaluation always uses raw rewards and full games."""

    sticky_actions: float = 0.25
    """Probability of repeating the previous action (ALE v5 default 0.25; 0 turns it off)."""
    frame_cap: int = 108_000
    """Maximum emulator frames per episode (30 minutes of play)."""
    frameskip: int = 4
    noop_max: int = 30
    """Up to this many no-op actions at the start of each episode."""
    reward_clipping: bool = False
    """Training option: clip rewards to {-1, 0, 1}. Never used in evaluation."""
    episodic_life: bool = False
    """Training option: a lost life ends the agent's episode while the game goes on (DeepMind's and SB3's
    EpisodicLifeEnv). Never used in evaluation."""
    full_action_space: bool = False
    fire_reset: bool = True
    """Press FIRE after reset in games that need it to start."""

    def for_evaluation(self) -> "AtariProtocol":
        """The same protocol with the training-only options turned off."""
        return dataclasses.replace(self, reward_clipping=False, episodic_life=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "AtariProtocol":
        return cls(**(d or {}))


def is_atari(env_id: str) -> bool:
    """True for ``ALE/<Game>-v5`` ids."""
    return _ALE_ID.match(env_id) is not None


def atari_game(env_id: str) -> str:
    """``ALE/SpaceInvaders-v5`` -> ``SpaceInvaders``."""
    m = _ALE_ID.match(env_id)
    if m is None:
        raise UnknownEnvError(f"not an Atari env id: {env_id!r} (expected ALE/<Game>-v5)")
    return m.group(1)


FIRE_DOES_NOTHING = ("Pong",)
"""Games whose FIRE button has no effect once a point is under way (Pong serves by itself): there X and X+FIRE
are one action to the game, so agreement between two policies is better read over the groups."""


@functools.lru_cache(maxsize=None)
def action_groups(env_id: str) -> tuple[int, ...] | None:
    """The group of each action where a game's actions repeat one another (Pong: NOOP/FIRE, RIGHT/RIGHTFIRE,
    LEFT/LEFTFIRE from ALE's action meanings), numbered in order of first appearance; None elsewhere."""
    if not is_atari(env_id) or atari_game(env_id) not in FIRE_DOES_NOTHING:
        return None
    import ale_py
    import ale_py.roms

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.loadROM(ale_py.roms.get_rom_path(_ale_game_name(env_id)))
    meanings = [a.name for a in ale.getMinimalActionSet()]  # the order of the v5 envs' actions
    names = [m.replace("FIRE", "") or "NOOP" for m in meanings]
    order = list(dict.fromkeys(names))
    return tuple(order.index(n) for n in names)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _ale_game_name(env_id: str) -> str:
    import ale_py
    import ale_py.roms

    game = _snake(atari_game(env_id))
    known = set(ale_py.roms.get_all_rom_ids())
    if game not in known:
        raise UnknownEnvError(f"unknown Atari game in env id {env_id!r}: no ROM named {game!r} in ale-py")
    return game


def check_env_id(env_id: str) -> None:
    """Raise :class:`UnknownEnvError` with a one-line message if ``env_id`` cannot be built."""
    if is_atari(env_id):
        _ale_game_name(env_id)
        return
    if env_id.startswith("ALE/"):
        raise UnknownEnvError(f"unknown env id {env_id!r}: Atari ids look like ALE/Pong-v5")
    if env_id not in gym.registry:
        raise UnknownEnvError(f"unknown env id {env_id!r}; try one of {', '.join(CONTROL_ENVS)} or ALE/<Game>-v5")


def make_env(
    env_id: str,
    num_envs: int = 1,
    *,
    atari: AtariProtocol | None = None,
    num_threads: int = 0,
) -> gym.vector.VectorEnv:
    """Build ``num_envs`` copies of ``env_id`` as one batched env (SAME_STEP autoreset).

    Seed it with ``env.reset(seed=...)``. Atari observations are uint8 (N, 4, 84, 84); ``atari`` sets
    the protocol (default: ALE v5 with sticky actions, raw rewards, full games).
    """
    check_env_id(env_id)
    if is_atari(env_id):
        from ale_py.vector_env import AtariVectorEnv

        p = atari or AtariProtocol()
        env = AtariVectorEnv(
            _ale_game_name(env_id),
            num_envs,
            num_threads=num_threads or min(num_envs, os.cpu_count() or 1),
            max_num_frames_per_episode=p.frame_cap,
            repeat_action_probability=p.sticky_actions,
            full_action_space=p.full_action_space,
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
            frameskip=p.frameskip,
            noop_max=p.noop_max,
            # ale-py's own ``episodic_life`` restarts the whole game at every lost life (each "episode" is
            # then the first life of a fresh game); ``life_loss_info`` signals the lost life and lets the
            # game go on, which is what the protocol means.
            episodic_life=False,
            life_loss_info=p.episodic_life,
            reward_clipping=p.reward_clipping,
            use_fire_reset=p.fire_reset,
        )
        env.metadata["rl_distill_env_id"] = env_id
        env.metadata["rl_distill_protocol"] = p.to_dict()
        return env
    import warnings

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
    env.metadata["rl_distill_env_id"] = env_id
    env.metadata["rl_distill_protocol"] = None
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
        env = make_env(
            env_id, 1, atari=AtariProtocol(full_action_space=full_action_space) if is_atari(env_id) else None
        )
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
