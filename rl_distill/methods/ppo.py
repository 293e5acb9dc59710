"""PPO from scratch: the reinforcement-learning baseline that distillation must beat, with rl-zoo3's settings.

Same student, same rollout engine, same evaluation as the distillation methods, but the teacher is
never queried during training (no distillation term, so ``teacher_queries`` stays 0; the harness still
evaluates the teacher afterwards for the "% of teacher" reference). The loop itself,
:func:`rl_distill.rl.ppo_loop`, is shared with Kickstarting and PPD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rl_distill.rl import PPOConfig, ppo_loop, zoo_ppo_settings

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "ppo"
MULTI_TASK = False


@dataclass
class Config(PPOConfig):
    """CleanRL's classic-control PPO (4 envs x 128 steps, lr 2.5e-4 annealed, 4 epochs x 4 minibatches,
    gamma 0.99, GAE lambda 0.95, clip 0.2) with its entropy bonus of 0.01, for envs that rl-zoo3 has no entry
    for; where it has one (hyperparams.toml), ``env_defaults`` gives its settings."""

    ent_coef: float = 0.01
    """Entropy bonus (CleanRL: 0.01)."""


def env_defaults(env_ids: list[str], options: dict, family_defaults: dict) -> dict:
    """rl-zoo3's PPO entry for the env (the shipped teachers' own settings), under what a user or suite sets."""
    return zoo_ppo_settings(env_ids) | family_defaults


def default_steps(env_id: str) -> int:
    # CleanRL's PPO solves CartPole in ~100-200k steps; Acrobot is near its plateau (~-85) by ~150k.
    return 150_000


def train(ctx: MethodContext, cfg: Config) -> None:
    ppo_loop(ctx, cfg)
