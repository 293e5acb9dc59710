"""Kickstarting (Schmitt et al. 2018): PPO on the student's own rollouts plus a decaying distillation term.

    l = l_PPO + lambda_k * H(pi_T(.|s) || pi_S(.|s))

The teacher labels every state the student visits (its logits are stored in the batch); the
cross-entropy of the student against the teacher (:func:`distill_term`) is added to each PPO minibatch with
weight lambda_k, which decays over the budget so that the reinforcement-learning term takes over and the
student can end above its teacher. With several teachers, the PPO iterations go round-robin over
the tasks and each teacher's term applies on its own task (one policy and value head per task).
On Atari (the family's defaults, rl_distill/envs/atari.py) lambda is held at 20 and the learning rate at
rl-zoo3's 2.5e-4: within a 200k-step budget a decaying teacher term, or rl-zoo3's annealed learning rate, left
the student below 90% of the Pong teacher (results/probes/pong-rl-baselines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rl_distill import losses
from rl_distill.errors import UserError
from rl_distill.rl import PPOConfig, PPOMinibatch, ppo_loop, zoo_distill_ppo_settings
from rl_distill.schedules import lambda_schedule

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "kickstarting"
MULTI_TASK = True


@dataclass
class Config(PPOConfig):
    """PPO's knobs plus the distillation weight and its schedule. Where rl-zoo3 has a PPO entry for the env,
    ``env_defaults`` puts its settings under these (CleanRL's classic-control defaults elsewhere)."""

    ent_coef: float = 0.01
    """Entropy bonus (CleanRL: 0.01)."""
    lr: float = 1e-3
    """Adam learning rate, annealed to 0 (4x CleanRL's PPO: the distillation term is a supervised target)."""
    lam: float = field(default=5.0, metadata={"flags": ("--distill-weight", "--lambda")})
    """Initial weight lambda_0 of the cross-entropy H(pi_T || pi_S) added to the PPO loss."""
    lambda_schedule: str = field(
        default="linear", metadata={"flags": ("--distill-weight-schedule", "--lambda-schedule")}
    )
    """constant | linear (lambda_0 down to 0 at the end of the budget) | exponential (to lambda_0 * lam_final_ratio)."""
    lam_final_ratio: float = field(
        default=0.01, metadata={"flags": ("--distill-weight-final-ratio", "--lam-final-ratio")}
    )
    """The exponential schedule's lambda at the end of the budget, as a fraction of lambda_0."""

    def __post_init__(self) -> None:
        super().__post_init__()
        lambda_schedule(self.lambda_schedule, self.lam, self.lam_final_ratio)  # refuses a bad name, weight or ratio
        if not math.isfinite(self.lam):
            raise UserError(f"--lambda must be finite, got {self.lam}")


def env_defaults(env_ids: list[str], options: dict, family_defaults: dict) -> dict:
    """The PPO inside takes rl-zoo3's settings for the env, as PPO from scratch does (the fair comparison), with
    the Atari rollout (8 envs x 128 steps) in 32 minibatches of 32 rather than rl-zoo3's 4 of 256, under the
    family's defaults."""
    return zoo_distill_ppo_settings(env_ids) | family_defaults


def default_steps(env_id: str) -> int:
    return 40_000


def distill_term(mb: PPOMinibatch) -> tuple[torch.Tensor, dict[str, float]]:
    """H(pi_T || pi_S) over a PPO minibatch, which the PPO loop weights by lambda_k; logged with KL(T || S)."""
    ce = losses.cross_entropy(mb.teacher_logits, mb.student_logits).mean()
    with torch.no_grad():
        kl = losses.forward_kl(mb.teacher_logits, mb.student_logits).mean()
    return ce, {"distill/loss": ce.item(), "distill/kl": kl.item()}


def train(ctx: MethodContext, cfg: Config) -> None:
    schedule = lambda_schedule(cfg.lambda_schedule, cfg.lam, cfg.lam_final_ratio)
    ppo_loop(ctx, cfg, distill_term=distill_term, distill_weight=schedule)
