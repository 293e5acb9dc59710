"""The Atari family: ``ALE/<Game>-v5`` on ale-py's C++ ``AtariVectorEnv`` with the DQN preprocessing (84x84 gray,
4-frame stack, frameskip 4, up to 30 no-op starts), observations uint8 (N, 4, 84, 84)."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rl_distill.envs.family import EnvFamily
from rl_distill.envs.family import check_protocol as _check_protocol
from rl_distill.errors import UnknownEnvError, check_count

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

    def __post_init__(self) -> None:
        _check_protocol(self)
        check_count("frame_cap", self.frame_cap, none_ok=False)
        check_count("frameskip", self.frameskip, none_ok=False)
        check_count("noop_max", self.noop_max, minimum=0, none_ok=False)

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
def _action_groups(env_id: str) -> tuple[int, ...] | None:
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


def atari_vector_env(
    env_id: str, num_envs: int, p: AtariProtocol, num_threads: int = 0, **screen: Any
) -> gym.vector.VectorEnv:
    """ale-py's ``AtariVectorEnv`` playing ``p``; ``screen`` overrides its image options (a video's colour screen:
    ``img_height=210, img_width=160, grayscale=False, stack_num=1, maxpool=False``)."""
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        _ale_game_name(env_id),
        num_envs,
        num_threads=num_threads or min(num_envs, os.cpu_count() or 1),
        max_num_frames_per_episode=p.frame_cap,
        repeat_action_probability=p.sticky_actions,
        full_action_space=p.full_action_space,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        frameskip=p.frameskip,
        noop_max=p.noop_max,
        # ale-py's own ``episodic_life`` restarts the whole game at every lost life (each "episode" is then the
        # first life of a fresh game); ``life_loss_info`` signals the lost life and lets the game go on, which is
        # what the protocol means.
        episodic_life=False,
        life_loss_info=p.episodic_life,
        reward_clipping=p.reward_clipping,
        use_fire_reset=p.fire_reset,
        **screen,
    )


class AtariFamily(EnvFamily):
    """ALE v5 games: sticky actions 0.25, full games with raw scores in evaluation; teachers train on clipped
    rewards with a lost life ending the learner's episode."""

    example_id = "ALE/Pong-v5"
    title = "Atari"

    def owns(self, env_id: str) -> bool:
        return env_id.startswith("ALE/")

    def check(self, env_id: str) -> None:
        if not is_atari(env_id):
            raise UnknownEnvError(f"unknown env id {env_id!r}: Atari ids look like ALE/Pong-v5")
        _ale_game_name(env_id)

    def make(self, env_id: str, num_envs: int, protocol: Any, num_threads: int = 0) -> gym.vector.VectorEnv:
        return atari_vector_env(env_id, num_envs, protocol or AtariProtocol(), num_threads)

    def protocol(self, **options: Any) -> AtariProtocol:
        return AtariProtocol(**{k: v for k, v in options.items() if v is not None})

    def training_protocol(self, protocol: AtariProtocol) -> AtariProtocol:
        return dataclasses.replace(protocol, reward_clipping=True, episodic_life=True)

    def score_floor(self, env_id: str) -> float | None:
        pair = ATARI_RANDOM_HUMAN.get(atari_game(env_id))
        return pair[0] if pair else None

    def human_pair(self, env_id: str) -> tuple[float, float] | None:
        return ATARI_RANDOM_HUMAN.get(atari_game(env_id))

    def capped_length(self, protocol: AtariProtocol) -> int | None:
        return protocol.frame_cap // protocol.frameskip

    def hyperparams_key(self, env_id: str) -> str:
        return "atari"  # one rl-zoo3 entry for every game

    def sb3_policy(self, env_id: str) -> tuple[str, dict[str, Any]]:
        return "CnnPolicy", {}

    def action_groups(self, env_id: str) -> tuple[int, ...] | None:
        """Pong: NOOP/FIRE, RIGHT/RIGHTFIRE, LEFT/LEFTFIRE (from ALE's action meanings), numbered in order of
        first appearance."""
        return _action_groups(env_id)


ATARI = AtariFamily(
    name="atari",
    default_student="nature",
    bf16=True,
    eval_episodes=10,
    teacher_eval_episodes=30,
    eval_envs=8,
    method_defaults={
        # The student's part of the mixture samples its actions and learns the teacher's softmax. A greedy student
        # starts as one constant action (on Pong it stayed at random play on 2 of 3 seeds), and soft labels carry
        # what a PPO teacher's argmax drops (results/probes/pong-dagger).
        "dagger": {"greedy": False, "loss": "kl"},
        # Policy Distillation's replay settings (a 20k-frame memory, 0.25 gradient steps per env step on iid
        # minibatches of 64, chunks of 16 steps of 8 envs), forward KL, which took Pong from random weights to its
        # teacher where reverse KL stayed at random play, and Adam at 2.5e-4, at which every seed left random play
        # where 1e-3 left one of three on the teacher's marginal policy (results/probes/pong-onpolicy-memory).
        "on-policy": {
            "memory": 20_000,
            "replay_ratio": 0.25,
            "n_steps": 16,
            "batch_size": 64,
            "divergence": "forward-kl",
            "lr": 2.5e-4,
        },
        # The teacher's pull at full weight to the end, and rl-zoo3's learning rate held: within a 200k-step budget
        # a decaying teacher term, or an annealed learning rate, left the student below 90% of the Pong teacher
        # (results/probes/pong-rl-baselines).
        "kickstarting": {"lambda_schedule": "constant", "lam": 20.0, "anneal_lr": False},
        # QDagger at CleanRL's Atari settings (qdagger_dqn_atari_impalacnn: Adam 1e-4, batch 32, a gradient step
        # every 4 env steps, the target network every 1,000 env steps = 250 gradient steps; 500k teacher steps and
        # 500k offline gradient steps in 10M: 5% of the budget each, here of the family's 1M), with rl-zoo3's
        # 100k-transition replay memory (2.8 GB of 4x84x84 frames; CleanRL's 1M would be 28 GB).
        "qdagger": {
            "lr": 1e-4,
            "batch_size": 32,
            "replay_ratio": 0.25,
            "target_update": 250,
            "capacity": 100_000,
            "teacher_steps": 50_000,
            "offline_steps": 50_000,
        },
    },
    method_steps={
        "policy-distillation": 1_000_000,
        "actor-mimic": 1_000_000,
        "dagger": 100_000,
        "on-policy": 100_000,
        "kickstarting": 1_000_000,
        "ppd": 1_000_000,
        "ppo": 1_000_000,
        # DQN from scratch: rl-zoo3's Atari DQN ([dqn.atari], through dqn's env_defaults: its 100k-transition replay
        # memory holds 2.8 GB of 4x84x84 frames) at PPO's budget, a tenth of rl-zoo3's 10M.
        "dqn": 1_000_000,
        "qdagger": 1_000_000,
        "bc": 50_000,
    },
)
