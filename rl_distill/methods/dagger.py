"""DAgger (Ross, Gordon, Bagnell 2011): on-policy imitation with the teacher as labeller.

    for round i = 1..N:
        act with pi_i = beta_i * T + (1 - beta_i) * S   (per env, per step)
        label every visited state with the teacher's action, add it to the aggregate D
        retrain S on D (NLL of the teacher's action)

The budget of env steps is split evenly over the rounds. The same student (and optimizer) is
trained on across rounds rather than re-initialized: each round starts from the previous policy,
which the aggregate keeps from forgetting the earlier states, and costs a few epochs instead of a
full retraining.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rl_distill import losses
from rl_distill.errors import check_choice, check_count, check_positive
from rl_distill.rollout import ReplayMemory
from rl_distill.schedules import beta_schedule
from rl_distill.supervised import supervised_step

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "dagger"
MULTI_TASK = False


@dataclass
class Config:
    rounds: int = 10
    """DAgger iterations N; the env-step budget is split evenly over them."""
    beta_schedule: str = field(default="exponential", metadata={"flags": ("--expert-schedule", "--beta-schedule")})
    """Probability beta_i that the expert acts in round i (DAgger's beta): exponential (beta_i = p^(i-1)) | indicator
    (1 in round 1, then 0) | linear (1 down to 0 over the rounds)."""
    beta: float = field(default=0.5, metadata={"flags": ("--expert-p", "--beta")})
    """p of the exponential schedule: the expert acts with probability p^(i-1) in round i."""
    num_envs: int = 8
    """Parallel envs the mixture policy acts in."""
    greedy: bool = True
    """The student acts with its argmax (the deterministic policy that is evaluated) instead of sampling."""
    epochs: int = 4
    """Passes over the aggregated dataset after each round."""
    batch_size: int = 256
    """Minibatch size of the gradient steps."""
    lr: float = 1e-3
    """Adam learning rate."""
    loss: str = "nll"
    """nll (of the teacher's greedy action) | kl (forward KL to the teacher's softmax)."""

    def __post_init__(self) -> None:
        for name in ("rounds", "num_envs", "epochs", "batch_size"):
            check_count(name, getattr(self, name), none_ok=False)
        check_positive("lr", self.lr, none_ok=False)
        check_choice("loss", self.loss, ("nll", "kl"))
        beta_schedule(self.beta_schedule, self.beta, self.rounds)  # refuses a bad name or p


def default_steps(env_id: str) -> int:
    return 20_000


def train(ctx: MethodContext, cfg: Config) -> None:
    loss_fn = losses.nll if cfg.loss == "nll" else losses.forward_kl
    betas = beta_schedule(cfg.beta_schedule, cfg.beta, cfg.rounds)
    student = ctx.student
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    spec = ctx.env_specs[0]
    data = ReplayMemory.for_env(spec, None, ctx.device)
    state = ctx.begin(opt) or {}
    if "data" in state:
        data.load_state_dict(state["data"])
    done_rounds = int(state.get("round", 0))
    rollout = ctx.rollout(0, cfg.num_envs)
    for i in range(done_rounds + 1, cfg.rounds + 1):
        beta = betas(i)
        # Round i ends at i/N of the budget: the split stays even after a resume.
        target = ctx.budget * i // cfg.rounds
        while ctx.env_steps < target:
            n = min(128, math.ceil((target - ctx.env_steps) / cfg.num_envs))
            b = rollout.collect(n, actor="mixture", student=student, beta=beta, greedy=cfg.greedy)
            data.add(b.flat("obs"), b.flat("teacher_logits"))
        ctx.log({"distill/beta": beta, "distill/dataset_size": len(data), "distill/round": i})
        updates = cfg.epochs * max(1, math.ceil(len(data) / cfg.batch_size))
        for u in range(updates):
            mb = data.sample(cfg.batch_size, ctx.generator)
            stats = supervised_step(ctx, opt, mb["obs"], mb["teacher_logits"], loss_fn)
            if u % 50 == 0 or u == updates - 1:
                ctx.log(stats)
        ctx.maybe_checkpoint(opt, lambda i=i: {"data": data.state_dict(), "round": i})  # the copy only when one is due
    ctx.maybe_checkpoint(opt, lambda: {"data": data.state_dict(), "round": cfg.rounds}, force=True)
