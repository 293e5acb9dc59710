"""PPO from scratch: the reinforcement-learning baseline that distillation must beat.

Same student, same rollout engine, same evaluation as the distillation methods, but the teacher is
never queried during training (``label=False``, so ``teacher_queries`` stays 0; the harness still
evaluates the teacher afterwards for the "% of teacher" reference). :func:`ppo_loop` is also the
loop of Kickstarting, which adds its distillation term through ``extra``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch

from rl_distill.rl import ExtraLoss, PPOConfig, ppo_iteration
from rl_distill.rollout import Batch

NAME = "ppo"
MULTI_TASK = False


@dataclass
class Config(PPOConfig):
    """CleanRL's classic-control PPO (4 envs x 128 steps, lr 2.5e-4 annealed, 4 epochs x 4 minibatches,
    gamma 0.99, GAE lambda 0.95, clip 0.2) with its entropy bonus of 0.01."""

    ent_coef: float = 0.01
    """Entropy bonus (CleanRL: 0.01)."""


def default_steps(env_id: str) -> int:
    # CleanRL's PPO solves CartPole in ~100-200k steps; Acrobot is near its plateau (~-85) by ~150k.
    return 1_000_000 if env_id.startswith("ALE/") else 150_000


# extra(task, progress) -> (extra-loss factory for this iteration's batch or None, scalars to log)
Extra = Callable[[int, float], tuple[Callable[[Batch], ExtraLoss] | None, dict[str, float]]]


def ppo_loop(ctx, cfg: PPOConfig, label: bool = False, extra: Extra | None = None) -> None:
    """PPO iterations until the budget is spent, round-robin over the tasks (one rollout per task).

    ``label``: let the teacher label every state (Kickstarting's term needs its logits in the batch).
    ``extra(task, progress)`` is asked before each iteration for the extra loss (see ``ppo_iteration``)
    and the scalars to log with it; ``progress`` is the fraction of the budget spent.
    """
    student = ctx.student
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr, eps=1e-5)
    state = ctx.restore(opt) or {}
    it = int(state.get("iteration", 0))
    rollouts = [ctx.rollout(k, cfg.num_envs) for k in range(ctx.num_tasks)]
    multi = ctx.num_tasks > 1
    while not ctx.done():
        task = it % ctx.num_tasks
        progress = min(1.0, ctx.env_steps / ctx.budget)
        lr = cfg.lr * (1.0 - progress) if cfg.anneal_lr else cfg.lr
        for g in opt.param_groups:
            g["lr"] = lr
        # The last iteration is cut so that the run spends exactly its budget (rounded up to num_envs).
        n_steps = min(cfg.n_steps, math.ceil((ctx.budget - ctx.env_steps) / cfg.num_envs))
        it_cfg = cfg if n_steps == cfg.n_steps else dataclasses.replace(cfg, n_steps=n_steps)
        factory, scalars = extra(task, progress) if extra is not None else (None, {})
        _, stats = ppo_iteration(rollouts[task], student, opt, it_cfg, ctx.generator, task=task, label=label,
                                 extra_loss_factory=factory)
        n = n_steps * cfg.num_envs
        ctx.gradient_steps += cfg.n_epochs * math.ceil(n / max(1, n // cfg.minibatches))
        it += 1
        vals = {**stats, **scalars, "train/learning_rate": lr}
        if multi:
            for r, env_id in zip(rollouts, ctx.env_ids):
                vals[f"rollout/ep_rew_mean/{env_id}"] = r.mean_return()
        ctx.log(vals)
        ctx.maybe_checkpoint(opt, {"iteration": it})


def train(ctx, cfg: Config) -> None:
    ppo_loop(ctx, cfg, label=False)
