"""Behaviour cloning: the off-policy baseline.

The teacher plays greedily; every visited state is labelled with the teacher's output; the student
is trained on that fixed dataset with the NLL of the teacher's action. Unlike DAgger, the student
never sees the states its own mistakes lead to (Ross et al.'s compounding error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from rl_distill import losses
from rl_distill.errors import check_choice, check_count, check_positive
from rl_distill.rollout import ReplayMemory
from rl_distill.supervised import supervised_step

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "bc"
MULTI_TASK = False


@dataclass
class Config:
    num_envs: int = 8
    """Parallel envs the teacher plays in."""
    batch_size: int = 256
    """Minibatch size of the gradient steps."""
    lr: float = 1e-3
    """Adam learning rate."""
    epochs: int = 20
    """Passes over the dataset once it is collected."""
    loss: str = "nll"
    """nll | kl (forward KL to the teacher's softmax) | mse."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "batch_size", "epochs"):
            check_count(name, getattr(self, name), none_ok=False)
        check_positive("lr", self.lr, none_ok=False)
        check_choice("loss", self.loss, ("nll", "kl", "mse"))


def default_steps(env_id: str) -> int:
    return 20_000


def train(ctx: MethodContext, cfg: Config) -> None:
    loss_fn = {"nll": losses.nll, "kl": losses.forward_kl, "mse": losses.mse}[cfg.loss]
    student = ctx.student
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    state = ctx.begin(opt)
    spec = ctx.env_specs[0]
    data = ReplayMemory.for_env(spec, None, ctx.device)
    if state and "data" in state:
        data.load_state_dict(state["data"])
    rollout = ctx.rollout(0, cfg.num_envs)
    while not ctx.done():
        n = min(128, max(1, (ctx.budget - ctx.env_steps) // cfg.num_envs))
        b = rollout.collect(n, actor="teacher")
        data.add(b.flat("obs"), b.flat("teacher_logits"))
        ctx.log({"distill/dataset_size": len(data)})
    ctx.maybe_checkpoint(opt, {"data": data.state_dict()}, force=True)
    updates = cfg.epochs * max(1, len(data) // cfg.batch_size)
    for u in range(updates):
        mb = data.sample(cfg.batch_size, ctx.generator)
        stats = supervised_step(ctx, opt, mb["obs"], mb["teacher_logits"], loss_fn)
        if u % 50 == 0 or u == updates - 1:
            ctx.log(stats)
