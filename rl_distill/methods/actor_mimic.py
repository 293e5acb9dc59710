"""Actor-Mimic (Parisotto et al. 2015): a multi-task student that mimics each expert's policy and features.

The student itself plays, epsilon-greedy on its own head for the task, in every task's env; each
visited state goes into that task's replay memory with expert i's logits and hidden features. The
student (the Actor-Mimic Network) trains on minibatches from one task's memory at a time on

    L = H(softmax(q_Ei / tau), pi_S) + feature_beta * ||f_i(h_S) - h_Ei||^2

where f_i is a linear map, learned jointly with the student, from the student's last hidden layer to
expert i's. Early on the student is bad and its episodes are short: the data follow the student's
own states, not the expert's (the difference from Policy Distillation).

Default budgets (``default_steps``), measured through the harness with 20 evaluation episodes on 2
loaded CPU cores, one torch thread: CartPole-v1 2,000 env steps, 100% of the teacher's 500 on seeds
0-4 (95% at 1,000), 4-7 s including evaluation; Acrobot-v1 3,000 steps, -84.2 vs the teacher's -84.2
(seeds 0-3 all >= 99.9%), 5-8 s; both teachers into one student, 5,000 steps, 100% / 99.9%, ~7 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rl_distill import losses
from rl_distill.distill import mean_stats

NAME = "actor-mimic"
MULTI_TASK = True


@dataclass
class Config:
    tau: float = 1.0
    """Temperature of the expert policy softmax(q_E / tau). 1.0 suits policy-gradient teachers, whose
    logits already are log-probabilities; DQN teachers' Q-values want a smaller one (e.g. 0.1)."""
    feature_beta: float = 0.01
    """Weight of the feature-regression term (Parisotto: 0.01)."""
    epsilon: float = 0.1
    """Probability of a random action instead of the student's greedy one."""
    num_envs: int = 8
    """Parallel envs the student plays in, per task."""
    collect_steps: int = 16
    """Steps of each env per chunk of play, before the next round of gradient steps."""
    replay_ratio: float = 0.25
    """Gradient steps per env step collected (each on ``batch_size`` samples from one task's memory)."""
    batch_size: int = 64
    """Minibatch size of each gradient step."""
    lr: float = 1e-3
    """Adam learning rate (student and feature maps)."""
    capacity: int | None = None
    """Replay memory size per task, in transitions (None: 100,000 for vector observations, 20,000 for
    Atari frames); never more than the task's share of the budget."""


def default_steps(env_id: str) -> int:
    if env_id.startswith("ALE/"):
        return 1_000_000
    return {"CartPole-v1": 2_000, "Acrobot-v1": 3_000}.get(env_id, 50_000)


def feature_regression(f: nn.Linear, expert_features: torch.Tensor, beta: float):
    """The ``extra`` term of a supervised step: beta * ||f(h_S) - h_E||^2 (logged unweighted)."""

    def term(out: dict[str, torch.Tensor]):
        fr = (f(out["features"]) - expert_features).pow(2).sum(-1).mean()
        return beta * fr, {"distill/feature_loss": fr.item()}

    return term


def train(ctx, cfg: Config) -> None:
    student = ctx.student
    # f_i: student features -> expert i's features, trained with the student.
    maps = nn.ModuleList(nn.Linear(student.features_dim, t.features_dim) for t in ctx.teachers).to(ctx.device)
    opt = torch.optim.Adam([*student.parameters(), *maps.parameters()], lr=cfg.lr)
    memories = ctx.replay_memories(cfg.capacity, with_features=True)
    state = ctx.restore(opt) or {}
    if "feature_maps" in state:
        maps.load_state_dict(state["feature_maps"])
    for m, saved in zip(memories, state.get("memories", [])):
        m.load_state_dict(saved)
    owed = float(state.get("owed", 0.0))  # fractional gradient steps carried between chunks
    rollouts = [ctx.rollout(i, cfg.num_envs) for i in range(ctx.num_tasks)]
    save = lambda: {"memories": [m.state_dict() for m in memories], "feature_maps": maps.state_dict(), "owed": owed}
    policy_loss = lambda t_logits, s_logits: losses.cross_entropy(t_logits / cfg.tau, s_logits)

    while not ctx.done():
        n = ctx.chunk_steps(cfg.num_envs, cfg.collect_steps)
        for mem, r in zip(memories, rollouts):
            b = r.collect(n, actor="student", student=student, greedy=True, epsilon=cfg.epsilon, features=True)
            mem.add(b.flat("obs"), b.flat("teacher_logits"), b.flat("teacher_features"))
        owed += cfg.replay_ratio * n * cfg.num_envs * ctx.num_tasks
        rows = []
        while owed >= 1.0:
            task = ctx.gradient_steps % ctx.num_tasks
            mb = memories[task].sample(cfg.batch_size, ctx.generator)
            extra = feature_regression(maps[task], mb["features"], cfg.feature_beta)
            rows.append(ctx.supervised_step(opt, mb["obs"], mb["logits"], policy_loss, task, extra=extra))
            owed -= 1.0
        ctx.log({**mean_stats(rows), "distill/memory_size": sum(len(m) for m in memories)})
        ctx.maybe_checkpoint(opt, save)
    ctx.maybe_checkpoint(opt, save, force=True)
