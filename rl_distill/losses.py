"""Divergences between a teacher's and a student's action distributions.

Every function takes logits (B, A) (a DQN teacher's Q-values count as logits) and returns one
value per row, shape (B,). Log-probabilities come from log_softmax, so nothing overflows. An optional
boolean ``mask`` (B, A) marks the valid actions; invalid ones get zero probability in both
distributions and contribute nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_NEG = -1e9  # "minus infinity" that keeps 0 * log 0 terms finite


def _masked(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return logits if mask is None else logits.masked_fill(~mask, _NEG)


def _logp(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return F.log_softmax(_masked(logits.float(), mask), dim=-1)


def _kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row from log-probabilities; rows where p = 0 contribute 0."""
    p = logp.exp()
    return torch.where(p > 0, p * (logp - logq), torch.zeros_like(p)).sum(-1)


def nll(teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """-log pi_S(argmax_a teacher(s, a) | s): behaviour cloning of the teacher's greedy action."""
    target = _masked(teacher_logits, mask).argmax(-1)
    return -_logp(student_logits, mask).gather(-1, target.unsqueeze(-1)).squeeze(-1)


def mse(teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """||q_T - q_S||^2 summed over the (valid) actions: regression on the teacher's outputs."""
    d = (teacher_logits.float() - student_logits.float()) ** 2
    if mask is not None:
        d = d * mask
    return d.sum(-1)


def kl_tau(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, tau: float = 0.01, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(softmax(q_T / tau) || softmax(q_S)): Rusu et al.'s loss with a sharpened teacher."""
    return _kl(_logp(teacher_logits.float() / tau, mask), _logp(student_logits, mask))


def forward_kl(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(T || S), mean-seeking."""
    return _kl(_logp(teacher_logits, mask), _logp(student_logits, mask))


def reverse_kl(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(S || T), mode-seeking."""
    return _kl(_logp(student_logits, mask), _logp(teacher_logits, mask))


def cross_entropy(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """H(T, S) = -sum_a pi_T(a) log pi_S(a): Kickstarting's and Actor-Mimic's policy term."""
    lt, ls = _logp(teacher_logits, mask), _logp(student_logits, mask)
    pt = lt.exp()
    return -torch.where(pt > 0, pt * ls, torch.zeros_like(pt)).sum(-1)


def generalized_jsd(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, beta: float = 0.5, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """beta * KL(T || M) + (1 - beta) * KL(S || M), M = beta * T + (1 - beta) * S (TRL's GKD).

    beta = 0 is forward KL(T || S) and beta = 1 reverse KL(S || T), as in TRL; in between the value
    is bounded by the entropy mixing terms.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError("beta must be in [0, 1]")
    lt, ls = _logp(teacher_logits, mask), _logp(student_logits, mask)
    if beta == 0.0:
        return _kl(lt, ls)
    if beta == 1.0:
        return _kl(ls, lt)
    lm = torch.logsumexp(torch.stack([lt + math.log(beta), ls + math.log(1 - beta)]), dim=0)
    return beta * _kl(lt, lm) + (1 - beta) * _kl(ls, lm)


def skew_kl(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, alpha: float = 0.1, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(T || alpha * T + (1 - alpha) * S) (DistiLLM's skew KL); alpha = 0 is forward KL."""
    if not 0.0 <= alpha < 1.0:
        raise ValueError("alpha must be in [0, 1)")
    lt, ls = _logp(teacher_logits, mask), _logp(student_logits, mask)
    if alpha == 0.0:
        return _kl(lt, ls)
    lm = torch.logsumexp(torch.stack([lt + math.log(alpha), ls + math.log(1 - alpha)]), dim=0)
    return _kl(lt, lm)


DIVERGENCES = {"forward-kl": forward_kl, "reverse-kl": reverse_kl, "jsd": generalized_jsd, "skew-kl": skew_kl}
