"""The MinAtar family (Young & Tian 2019): five Atari analogues on a 10x10 grid, ``MinAtar/<Game>-v1`` (the
game's minimal action set) or ``-v0`` (all 6 actions, as in the paper), observations uint8 {0, 1} (N, C, 10, 10)
channels first.

Protocol (MinAtar's defaults, recorded in every record and teacher): sticky actions 0.1, difficulty ramping on,
and an episode cap of ``max_steps`` agent steps (MinAtar has none; a game that a good policy can play forever,
such as Breakout after a cleared wall, needs one for evaluation to end). The suite's teachers use the minimal
action sets: every action in them has a distinct effect, so agreement and a teacher's Q-values are not blurred by
actions that do the same thing, and a policy over the minimal set can do all that one over six actions can.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rl_distill.envs.family import EnvFamily
from rl_distill.envs.family import check_protocol as _check_protocol
from rl_distill.errors import UnknownEnvError, check_count

GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
_ID = re.compile(r"^MinAtar/([A-Za-z]+)-v([01])$")

PUBLISHED = {
    # game: (DQN, its best step size per game; DQN at step size 2^-12, about examples/dqn.py's 2.5e-4; AC(lambda=0.8))
    "Asterix": (17.0, 12.0, 18.7),
    "Breakout": (10.0, 8.9, 17.3),
    "Freeway": (50.2, 49.3, 47.5),
    "Seaquest": (20.0, 16.4, 15.0),
    "SpaceInvaders": (43.5, 45.4, 182.0),
}
"""The MinAtar paper's returns at 5M frames (Young & Tian 2019, arXiv 1903.03176 v2, the learning-curve and
step-size-sensitivity figures, which the MinAtar README shows; read from the plots, +-0.3 to 1.5, no table is
published): training returns of the epsilon = 0.1 behaviour policy, mean of the last 100 episodes over 30 runs, six
actions, sticky actions 0.1, difficulty ramping. Seaquest's are from minatar <= 1.0.10 (the oxygen bug), not
comparable with 1.0.15. A shipped teacher meets published strength when its greedy score reaches the first column."""

RANDOM_SCORES_FILE = Path(__file__).with_name("minatar_random.json")
"""The uniform random policy's mean return per env id under the default protocol (experiments/minatar_random.py
writes it): the 0% of "% of teacher" on this family."""


@functools.lru_cache(maxsize=1)
def random_scores() -> dict[str, float]:
    """{env id: the random policy's mean return} from :data:`RANDOM_SCORES_FILE` ({} before it is measured)."""
    if not RANDOM_SCORES_FILE.exists():
        return {}
    return {k: float(v["mean"]) for k, v in json.loads(RANDOM_SCORES_FILE.read_text())["scores"].items()}


@dataclass(frozen=True)
class MinAtarProtocol:
    """How a MinAtar game is played (the same in training and evaluation)."""

    sticky_actions: float = 0.1
    """Probability of repeating the previous action (MinAtar's default)."""
    difficulty_ramping: bool = True
    """Games speed up as they go on (MinAtar's default)."""
    max_steps: int = 10_000
    """Episode cap in agent steps (a truncation); MinAtar itself has none."""

    def __post_init__(self) -> None:
        _check_protocol(self)
        check_count("max_steps", self.max_steps, none_ok=False)

    def for_evaluation(self) -> "MinAtarProtocol":
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def minatar_game(env_id: str) -> tuple[str, bool]:
    """``MinAtar/SpaceInvaders-v1`` -> (``space_invaders``, minimal action set True)."""
    m = _ID.match(env_id)
    if m is None or m.group(1) not in GAMES:
        raise UnknownEnvError(
            f"unknown MinAtar env id {env_id!r}; the games are "
            + ", ".join(f"MinAtar/{g}-v1" for g in GAMES)
            + " (-v0: all 6 actions)"
        )
    return GAMES[m.group(1)], m.group(2) == "1"


class MinAtarEnv(gym.Env):
    """One MinAtar game as a gymnasium env: channels-first uint8 observations, an episode cap, seeded by reset."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, game: str, minimal_actions: bool, protocol: MinAtarProtocol, render_mode: str | None = None):
        from minatar import Environment

        self.game = Environment(
            game, sticky_action_prob=protocol.sticky_actions, difficulty_ramping=protocol.difficulty_ramping
        )
        self.actions = self.game.minimal_action_set() if minimal_actions else list(range(self.game.num_actions()))
        h, w, c = self.game.state_shape()
        self.observation_space = gym.spaces.Box(0, 1, (c, h, w), np.uint8)
        self.action_space = gym.spaces.Discrete(len(self.actions))
        self.max_steps = protocol.max_steps
        self.render_mode = render_mode
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)  # both the sticky-action and the game's random streams
        self.game.reset()
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        reward, terminal = self.game.act(self.actions[int(action)])
        self._t += 1
        return self._obs(), float(reward), bool(terminal), self._t >= self.max_steps and not terminal, {}

    def render(self) -> np.ndarray:
        return grid_rgb(self._obs())


def grid_rgb(obs: np.ndarray, cell: int = 16) -> np.ndarray:
    """A (C, 10, 10) {0, 1} grid as an RGB image, each channel a colour (the last set channel wins), each cell
    ``cell`` pixels square."""
    c = obs.shape[0]
    palette = (np.array([[0, 0, 0]] + [_hue(i / c) for i in range(c)]) * 255).astype(np.uint8)
    index = np.max(obs.astype(np.int64) * np.arange(1, c + 1)[:, None, None], axis=0)
    return np.repeat(np.repeat(palette[index], cell, axis=0), cell, axis=1)


def _hue(h: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, 0.75, 1.0)


class MinAtarFamily(EnvFamily):
    """MinAtar's five games, pure-Python envs on gymnasium's synchronous vector env."""

    example_id = "MinAtar/Breakout-v1"
    title = "MinAtar"

    def owns(self, env_id: str) -> bool:
        return env_id.startswith("MinAtar/")

    def check(self, env_id: str) -> None:
        minatar_game(env_id)

    def make(self, env_id: str, num_envs: int, protocol: Any, num_threads: int = 0) -> gym.vector.VectorEnv:
        game, minimal = minatar_game(env_id)
        p = protocol or MinAtarProtocol()
        return gym.vector.SyncVectorEnv(
            [lambda: MinAtarEnv(game, minimal, p) for _ in range(num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )

    def protocol(self, **options: Any) -> MinAtarProtocol:
        return MinAtarProtocol(**{k: v for k, v in options.items() if v is not None})

    def score_floor(self, env_id: str) -> float | None:
        return random_scores().get(env_id)

    def hyperparams_key(self, env_id: str) -> str:
        return "minatar"  # one entry for every game, as the paper; a game's own entry changes a few values

    def sb3_policy(self, env_id: str) -> tuple[str, dict[str, Any]]:
        from rl_distill.networks import MinAtarCNN

        # The paper's network: conv 16 3x3 stride 1 and a 128-unit layer, the heads straight on top; the {0, 1}
        # grid goes in unscaled.
        return "MlpPolicy", {
            "features_extractor_class": MinAtarCNN,
            "features_extractor_kwargs": {"channels": 16, "features": 128},
            "net_arch": [],
            "normalize_images": False,
        }


MINATAR = MinAtarFamily(
    name="minatar",
    default_student="minatar",
    bf16=False,
    eval_episodes=100,
    teacher_eval_episodes=100,
    eval_envs=16,
    method_defaults={
        # DQN from scratch is the MinAtar paper's DQN, whose settings dqn's env_defaults reads from [dqn.minatar] of
        # teachers/hyperparams.toml (rl_distill.td.zoo_dqn_settings: batch 32, a gradient step every env step,
        # replay 100k, 5k uniform steps first, epsilon 1.0 -> 0.1 over 105k steps, target every 1k gradient steps,
        # centered RMSprop lr 2.5e-4 alpha 0.95 eps 0.01, Huber, gamma 0.99, 1-step max target), so none here.
        # QDagger at CleanRL's proportions (qdagger_dqn_atari_jax_impalacnn: 500k teacher steps and 500k offline
        # gradient steps in a 10M-step run, 5% of the budget each) of its 100k-step budget here: 5k teacher steps,
        # 5k offline steps (the CartPole 2k of each were 20% of a 10k budget); and the MinAtar paper's 100k-transition
        # replay memory, not the 20k sized for Atari's 84x84 frames (a MinAtar frame is 400 bytes: 40 MB).
        "qdagger": {"teacher_steps": 5_000, "offline_steps": 5_000, "capacity": 100_000},
        # PPO from scratch reads [ppo.minatar] through its env_defaults (the shipped PPO teachers' settings); its
        # value loss is SB3's plain mean squared error, the form that vf_coef 0.5 was set for, not CleanRL's half
        # of it (the suite's default, kept for the other families). Its network, the teachers' two 64-64 tanh
        # towers on the encoder, is the student minatar-ppo (mcnn-16-128-t64-64), which a suite names. Kickstarting
        # and PPD are that PPO plus a teacher term: the same value loss.
        "ppo": {"sb3_value_loss": True},
        "kickstarting": {"sb3_value_loss": True},
        "ppd": {"sb3_value_loss": True},
        # AMM with 16 passes over each iteration's batches, not its CartPole-measured 4: at 4 it takes one policy
        # step per 32 env steps, half on-policy distillation's and an eighth of Policy Distillation's, and stayed
        # near random play at 50k where 16 did not (experiments/probes/minatar-amm.toml).
        "amm": {"epochs": 16},
    },
    method_steps={
        # A fifth of the MinAtar paper's 5M steps: epsilon has reached 0.1 by 105k.
        "dqn": 1_000_000,
    },
)
