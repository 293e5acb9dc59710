"""What a user reads to see whether a student follows its teacher: agreement, divergence, teacher entropy.

Where a game's actions repeat one another (``envs.action_groups``: Pong's FIRE is NOOP, RIGHTFIRE is RIGHT,
LEFTFIRE is LEFT) the argmax of two policies can differ while they press the same button, and an entropy-
regularised teacher spreads its mass over the copies: the ``_grouped`` scalars read both over the groups
(probabilities summed within a group).
"""

from __future__ import annotations

import torch

from rl_distill.losses import forward_kl


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-row entropy (nats) of softmax(logits)."""
    logp = torch.log_softmax(logits.float(), -1)
    return -(logp.exp() * logp).sum(-1)


def group_logits(logits: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the action groups: logsumexp of the log-softmax within each group."""
    logp = torch.log_softmax(logits.float(), -1)
    n = int(groups.max()) + 1
    return torch.stack([torch.logsumexp(logp[..., groups == g], -1) for g in range(n)], -1)


@torch.no_grad()
def policy_stats(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, groups: torch.Tensor | None = None
) -> dict[str, float]:
    """distill/teacher_agreement (same argmax), distill/kl = KL(T || S), distill/teacher_entropy; with
    ``groups`` (an action's group, (A,)) the same three over the groups."""
    t, s = teacher_logits.float(), student_logits.float()
    out = {
        "distill/teacher_agreement": (s.argmax(-1) == t.argmax(-1)).float().mean().item(),
        "distill/kl": forward_kl(t, s).mean().item(),
        "distill/teacher_entropy": entropy(t).mean().item(),
    }
    if groups is not None:
        gt, gs = group_logits(t, groups), group_logits(s, groups)
        out |= {
            "distill/teacher_agreement_grouped": (gs.argmax(-1) == gt.argmax(-1)).float().mean().item(),
            "distill/kl_grouped": forward_kl(gt, gs).mean().item(),
            "distill/teacher_entropy_grouped": entropy(gt).mean().item(),
        }
    return out
