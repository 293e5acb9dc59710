"""DQN from scratch (Mnih et al. 2015, "Human-level control through deep reinforcement learning"): the value-based
RL baseline that distillation into a Q-network (QDagger) must beat, with rl-zoo3's tuned settings.

The student's per-action outputs are its Q-values. Mnih et al.'s algorithm, as rl_distill/td.py runs it:

1. A replay memory D of ``capacity`` transitions; Q with random weights; the target network Q^ = Q.
2. Play: ``num_envs`` envs, chunks of ``collect_steps`` steps each, uniform actions until D holds
   ``learning_starts`` transitions (``random_start``), then epsilon-greedy on Q, epsilon linear from
   ``epsilon_start`` to ``epsilon_end`` over ``epsilon_decay_steps`` env steps; every transition into D.
3. Learn: once D holds ``learning_starts`` transitions, ``replay_ratio`` gradient steps per env step, each on
   ``batch_size`` transitions drawn uniformly from D, of the Huber loss between Q(s, a) and
   y = r + gamma * max_a' Q^(s', a') (0 after a termination); ``double_q``: Q^(s', argmax_a' Q(s', a')) (van Hasselt
   et al. 2016); ``n_step`` > 1: the n-step sum of rewards before the bootstrap.
4. Every ``target_update`` gradient steps, Q^ = Q. Until the budget is spent.

Defaults: the Config's are Mnih et al.'s at the MinAtar paper's scale (td.DQNConfig: 1-step max target, RMSprop
2.5e-4 centered, batch 32, replay 100k, 5k steps first, epsilon 1.0 -> 0.1 over 100k, target every 1k gradient
steps, one gradient step per env step). Where teachers/hyperparams.toml has a DQN entry for the env, ``env_defaults``
gives it (rl-zoo3's tuned DQN on control and Atari, the MinAtar paper's on MinAtar), as SB3's DQN runs it
(td.zoo_dqn_settings); the env family's ``method_defaults["dqn"]`` lie over it. The budget: the family's
``method_steps["dqn"]``, else the entry's ``n_timesteps``.

Same student, rollout engine and evaluation as the distillation methods; the teacher is never queried in training
(``teacher_queries`` stays 0), the harness evaluates it afterwards for the "% of teacher" reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rl_distill.td import DQNConfig, DQNLearner, zoo_dqn_budget, zoo_dqn_settings

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "dqn"
MULTI_TASK = False


@dataclass
class Config(DQNConfig):
    """DQN's options (rl_distill/td.py), with their defaults for an env that hyperparams.toml has no DQN entry for."""


def env_defaults(env_ids: list[str], options: dict, family_defaults: dict) -> dict:
    """rl-zoo3's DQN entry for the env (the MinAtar paper's DQN on MinAtar; the shipped DQN teachers' own settings)
    as SB3's DQN runs it, under what the env family and a user or suite set."""
    return zoo_dqn_settings(env_ids) | family_defaults


def default_steps(env_id: str) -> int:
    # rl-zoo3's budget for the env (CartPole 50k, Acrobot and LunarLander 100k), 100k where it has none.
    return zoo_dqn_budget(env_id) or 100_000


def train(ctx: MethodContext, cfg: Config) -> None:
    dqn = DQNLearner(ctx, cfg)
    dqn.play(dqn.state_dict)
