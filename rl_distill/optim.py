"""Optimizer helpers for updates small enough that torch's per-call overhead shows: the suite's DQN core
(:mod:`rl_distill.td`) and the SB3 teachers' DQN updates (:mod:`rl_distill.teachers.train`) share them. A leaf
module (torch only), so both can import it without importing each other."""

from __future__ import annotations

import torch


def multi_tensor(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """``opt`` with ``foreach`` on: one call per operation over all parameters instead of a Python loop over
    them (torch's default on CUDA, not on the CPU), the same arithmetic per element, so the same numbers (tests).
    Apply again after ``load_state_dict``, which brings back a checkpoint's setting."""
    for g in opt.param_groups:
        g["foreach"] = True
    return opt


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)`` (the 2-norm over all gradients) in the same operations
    as its foreach path, without its per-call grouping and wrappers: with a gradient step every env step those
    are a noticeable part of a small network's update. Gradients on several devices or dtypes go to torch's."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    first = grads[0]
    if first.device.type not in ("cpu", "cuda") or any(
        type(g) is not torch.Tensor or g.device != first.device or g.dtype != first.dtype or g.is_sparse for g in grads
    ):
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    with torch.no_grad():
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
        torch._foreach_mul_(grads, torch.clamp(float(max_norm) / (total + 1e-6), max=1.0))
