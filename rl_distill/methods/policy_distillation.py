"""Policy Distillation (Rusu et al. 2015): the student learns from the teacher's replay.

Each task's teacher plays epsilon-greedy in its env; every visited state goes into that task's replay
memory with the teacher's output (logits, or Q-values for a DQN teacher). Collection and training
interleave: after each chunk of play the student takes ``replay_ratio`` gradient steps per env step
on minibatches from the memories, with one of Rusu's three losses (NLL of the teacher's greedy
action, MSE on the outputs, KL to the teacher sharpened by ``tau``). With several teachers the
student has one head per task and each minibatch comes from one task's memory, the tasks in turn
(multi-task distillation). The budget counts env steps over all tasks.

Default budgets, measured on 2 loaded CPU cores (seed 0, 20 evaluation episodes, loss kl):
CartPole-v1 6,000 env steps, ~8 s of training, 100% of the teacher (500);
Acrobot-v1 20,000 env steps, ~25 s, student -84 vs teacher -84 (100%);
CartPole-v1 + Acrobot-v1 together 30,000 steps, ~40 s, >= 99% on both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import torch

from rl_distill import losses
from rl_distill.rollout import ReplayMemory

NAME = "policy-distillation"
MULTI_TASK = True


@dataclass
class Config:
    loss: str = "kl"
    """nll (teacher's greedy action) | mse (regress the teacher's outputs) | kl (KL to softmax(q_T / tau))."""
    tau: float = 0.01
    """Temperature of the teacher's softmax in the kl loss (Rusu: 0.01, i.e. nearly its greedy action)."""
    epsilon: float = 0.05
    """Probability of a random action instead of the teacher's (Rusu's epsilon-greedy teacher play)."""
    num_envs: int = 8
    """Parallel envs the teacher plays in, per task."""
    collect_steps: int = 16
    """Steps of each env per chunk of play, before the next round of gradient steps."""
    replay_ratio: float = 0.25
    """Gradient steps per env step collected (each on ``batch_size`` samples from one task's memory)."""
    batch_size: int = 64
    lr: float = 1e-3
    """Adam learning rate."""
    capacity: int | None = None
    """Replay memory size per task, in transitions (None: 100,000 for vector observations, 20,000 for
    Atari frames, ~0.6 GB); never more than the task's share of the budget."""


def default_steps(env_id: str) -> int:
    if env_id.startswith("ALE/"):
        return 1_000_000
    return {"CartPole-v1": 6_000, "Acrobot-v1": 20_000}.get(env_id, 50_000)


def make_memories(ctx, capacity: int | None, with_features: bool = False) -> list[ReplayMemory]:
    """One replay memory per task, sized to the task's share of the budget at most."""
    share = math.ceil(ctx.budget / ctx.num_tasks)
    out = []
    for i, spec in enumerate(ctx.env_specs):
        image = len(spec.obs_shape) == 3
        cap = min(capacity or (20_000 if image else 100_000), share + 1)
        out.append(ReplayMemory(cap, spec.obs_shape, torch.uint8 if image else torch.float32, spec.n_actions,
                                feature_dim=ctx.teachers[i].features_dim if with_features else None, device=ctx.device))
    return out


def chunk_steps(ctx, num_envs: int, collect_steps: int) -> int:
    """Steps of each env in the next chunk: ``collect_steps``, fewer at the end of the budget."""
    left = ctx.budget - ctx.env_steps
    return max(1, min(collect_steps, math.ceil(left / (num_envs * ctx.num_tasks))))


def mean_stats(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} if rows else {}


def train(ctx, cfg: Config) -> None:
    loss_fn = {"nll": losses.nll, "mse": losses.mse, "kl": partial(losses.kl_tau, tau=cfg.tau)}.get(cfg.loss)
    if loss_fn is None:
        from rl_distill.errors import UserError

        raise UserError(f"--loss {cfg.loss} does not apply to {NAME}: use nll, mse or kl")
    opt = torch.optim.Adam(ctx.student.parameters(), lr=cfg.lr)
    memories = make_memories(ctx, cfg.capacity)
    state = ctx.restore(opt) or {}
    for m, s in zip(memories, state.get("memories", [])):
        m.load_state_dict(s)
    owed = float(state.get("owed", 0.0))  # fractional gradient steps carried between chunks
    rollouts = [ctx.rollout(i, cfg.num_envs) for i in range(ctx.num_tasks)]
    save = lambda: {"memories": [m.state_dict() for m in memories], "owed": owed}
    last_ckpt = time.time()

    while not ctx.done():
        n = chunk_steps(ctx, cfg.num_envs, cfg.collect_steps)
        for mem, r in zip(memories, rollouts):
            b = r.collect(n, actor="teacher", epsilon=cfg.epsilon)
            mem.add(b.flat("obs"), b.flat("teacher_logits"))
        owed += cfg.replay_ratio * n * cfg.num_envs * ctx.num_tasks
        rows = []
        while owed >= 1.0 and len(memories[0]) >= 1:
            task = ctx.gradient_steps % ctx.num_tasks
            mb = memories[task].sample(cfg.batch_size, ctx.generator)
            rows.append(ctx.supervised_step(opt, mb["obs"], mb["logits"], loss_fn, task))
            owed -= 1.0
        ctx.log({**mean_stats(rows), "distill/memory_size": sum(len(m) for m in memories)})
        if time.time() - last_ckpt >= ctx.checkpoint_every_s:
            ctx.maybe_checkpoint(opt, save(), force=True)
            last_ckpt = time.time()
    ctx.maybe_checkpoint(opt, save(), force=True)
