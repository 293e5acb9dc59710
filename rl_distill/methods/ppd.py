"""Proximal Policy Distillation (Spigler, TMLR 2025): PPO on the student's own rollouts and the env's reward,
plus a per-state distillation term weighted by PPO's probability ratio.

    l = l_PPO + lambda * E_t[ max(r_t, 1 - eps) * KL(pi_T(.|s_t) || pi_S(.|s_t)) ]

where r_t = pi_S(a_t|s_t) / pi_S_old(a_t|s_t) is the ratio of the clipped surrogate for the action the student
took. KL and ratio are both >= 0, so max(r * KL, clip(r, 1 - eps, 1 + eps) * KL) = max(r, 1 - eps) * KL: the
distillation term, as the policy term, gains nothing from pushing an action's probability far below the policy
that collected the data. Unlike Kickstarting, lambda stays constant by default: the student keeps learning from
its teacher and from the rewards it collects together, and can pass an imperfect teacher. The teacher labels
every state the student visits; ``divergence="reverse-kl"`` uses KL(S || T) (sb3_distill's ``kl_mode``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import torch

from rl_distill import losses
from rl_distill.errors import check_choice, check_positive
from rl_distill.rl import PPOConfig, PPOMinibatch, ppo_loop, zoo_distill_ppo_settings

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "ppd"
MULTI_TASK = True
DIVERGENCES = {"forward-kl": losses.forward_kl, "reverse-kl": losses.reverse_kl}


@dataclass
class Config(PPOConfig):
    """PPO's knobs (rl-zoo3's entry for the env through ``env_defaults``, as PPO from scratch) plus the weight
    of the ratio-weighted distillation term."""

    ent_coef: float = 0.01
    """Entropy bonus (CleanRL: 0.01)."""
    lam: float = field(default=2.0, metadata={"flags": ("--distill-weight", "--lambda")})
    """Weight lambda of the distillation term (the paper's Atari setting: 2)."""
    divergence: str = "forward-kl"
    """forward-kl: KL(T || S), mass-covering | reverse-kl: KL(S || T), mode-seeking."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("lam", self.lam, none_ok=False)
        check_choice("divergence", self.divergence, tuple(DIVERGENCES))


def env_defaults(env_ids: list[str], options: dict, family_defaults: dict) -> dict:
    """The PPO inside takes rl-zoo3's settings for the env, as PPO from scratch does (the fair comparison), with
    the Atari rollout (8 envs x 128 steps) in 32 minibatches of 32 rather than rl-zoo3's 4 of 256, as kickstarting."""
    return zoo_distill_ppo_settings(env_ids) | family_defaults


def default_steps(env_id: str) -> int:
    return 40_000


def ppd_term(
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    actions: torch.Tensor,
    old_logp: torch.Tensor,
    clip: float,
    divergence=losses.forward_kl,
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean(max(r, 1 - clip) * D(T, S)) over a minibatch, and the mean divergence D itself (for logging)."""
    logp = torch.log_softmax(student_logits.float(), -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    ratio = (logp - old_logp).exp()
    d = divergence(teacher_logits, student_logits)
    return (ratio.clamp(min=1.0 - clip) * d).mean(), d.mean()


def distill_term(mb: PPOMinibatch, divergence=losses.forward_kl) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`ppd_term` over a PPO minibatch with the iteration's clip, which the PPO loop weights by lambda;
    logged with the mean divergence."""
    term, d = ppd_term(mb.teacher_logits, mb.student_logits, mb.actions, mb.old_logprobs, mb.clip, divergence)
    return term, {"distill/loss": term.item(), "distill/kl": d.item()}


def train(ctx: MethodContext, cfg: Config) -> None:
    term = partial(distill_term, divergence=DIVERGENCES[cfg.divergence])
    ppo_loop(ctx, cfg, distill_term=term, distill_weight=lambda progress: cfg.lam)
