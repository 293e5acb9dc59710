"""The supervised machinery that several methods share: one gradient step on teacher targets, the replay
memories and the replay loop.

The counterpart of rl.py's PPO loop for the methods that regress the teacher's outputs: behavioural
cloning and DAgger (on a dataset they aggregate), Policy Distillation and Actor-Mimic (on replay memories
the teacher fills) and on-policy distillation (on memories the student fills). The run's bookkeeping
(counters, clocks, logging, checkpoints) is the context's (protocol.MethodContext).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import torch

from rl_distill.diagnostics import policy_stats
from rl_distill.rollout import Batch, ReplayConfig, ReplayMemory, Rollout

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(teacher_logits, student_logits)``: a per-state loss (reduced by its mean)."""
ExtraTerm = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
"""``extra(student_out) -> (loss term, scalars)``: a method's own term beside the policy loss of a supervised step
(Actor-Mimic's feature regression, expert iteration's value loss)."""


def mean_stats(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-key mean of the scalars of a round of gradient steps (what gets logged), each over the rows that have
    it: in a multi-task round some scalars are only some games' (Pong's grouped agreement beside Breakout)."""
    keys = dict.fromkeys(k for r in rows for k in r)
    return {k: sum(vals) / len(vals) for k in keys if (vals := [r[k] for r in rows if k in r])}


def supervised_step(
    ctx: MethodContext,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    teacher_logits: torch.Tensor,
    loss_fn: LossFn,
    task: int = 0,
    extra: ExtraTerm | None = None,
) -> dict[str, float]:
    """One gradient step of ``mean(loss_fn(teacher_logits, student_logits))`` (+ ``extra(out)``).

    Returns the distill/... scalars: loss and diagnostics.policy_stats (agreement, KL(T || S), teacher
    entropy, and the same over aliased action groups where the game has them).
    """
    out = ctx.student(obs, task)
    loss = loss_fn(teacher_logits, out["logits"]).mean()
    stats = {}
    if extra is not None:
        term, stats = extra(out)
        loss = loss + term
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()  # one of the run's gradient steps: the context counts it
    stats.update({"distill/loss": loss.item(), **policy_stats(teacher_logits, out["logits"], ctx.action_groups[task])})
    return stats


def replay_memories(ctx: MethodContext, capacity: int | None, with_features: bool = False) -> list[ReplayMemory]:
    """One replay memory per task (None: 100,000 transitions for vector observations, 20,000 for
    Atari frames, ~0.6 GB), never larger than the task's share of the budget."""
    share = math.ceil(ctx.budget / ctx.num_tasks)
    out = []
    for i, spec in enumerate(ctx.env_specs):
        cap = min(capacity or (20_000 if len(spec.obs_shape) == 3 else 100_000), share + 1)
        features = ctx.teachers[i].features_dim if with_features else None
        out.append(ReplayMemory.for_env(spec, cap, ctx.device, feature_dim=features))
    return out


def train_from_replay(
    ctx: MethodContext,
    optimizer: torch.optim.Optimizer,
    cfg: ReplayConfig,
    play: Callable[[int, Rollout, int], Batch],
    update: Callable[[int, dict[str, torch.Tensor]], dict[str, float]],
    with_features: bool = False,
    extra_state: Callable[[], dict[str, Any]] = dict,
    load_extra: Callable[[dict[str, Any]], None] = lambda state: None,
) -> None:
    """The loop of the replay-memory methods, until the budget is spent.

    Each chunk, ``play(task, rollout, n)`` acts ``n`` steps of every env of each task and returns the
    Batch (teacher-labelled) whose states go into that task's memory; then ``replay_ratio`` gradient
    steps per env step, ``update(task, minibatch) -> scalars`` (a ``ReplayMemory.sample``), the tasks in
    turn (by ``ctx.gradient_steps``, so a resumed run goes on with the task it left). Memories, the
    carried fraction of a gradient step and ``extra_state()`` are checkpointed; on resume the saved
    state goes to ``load_extra(state)``.
    """
    memories = replay_memories(ctx, cfg.capacity, with_features)
    state = ctx.begin(optimizer) or {}
    for m, saved in zip(memories, state.get("memories", [])):
        m.load_state_dict(saved)
    load_extra(state)
    owed = float(state.get("owed", 0.0))  # fractional gradient steps carried between chunks
    rollouts = [ctx.rollout(i, cfg.num_envs) for i in range(ctx.num_tasks)]

    def save() -> dict[str, Any]:
        return {"memories": [m.state_dict() for m in memories], "owed": owed, **extra_state()}

    while not ctx.done():
        n = ctx.chunk_steps(cfg.num_envs, cfg.collect_steps)
        for task, (mem, r) in enumerate(zip(memories, rollouts)):
            b = play(task, r, n)
            mem.add(b.flat("obs"), b.flat("teacher_logits"), b.flat("teacher_features") if with_features else None)
        owed += cfg.replay_ratio * n * cfg.num_envs * ctx.num_tasks
        rows = []
        while owed >= 1.0:
            task = ctx.gradient_steps % ctx.num_tasks
            rows.append(update(task, memories[task].sample(cfg.batch_size, ctx.generator)))
            owed -= 1.0
        ctx.log({**mean_stats(rows), "distill/memory_size": sum(len(m) for m in memories)})
        ctx.maybe_checkpoint(optimizer, save)
    ctx.maybe_checkpoint(optimizer, save, force=True)
