"""Actor-Mimic (Parisotto et al. 2015): a multi-task student that mimics each expert's policy and features.

The student itself plays, epsilon-greedy on its own head for the task, in every task's env; each
visited state goes into that task's replay memory with expert i's logits and hidden features. The
student (the Actor-Mimic Network) trains on minibatches from one task's memory at a time on

    L = H(softmax(q_Ei / tau), pi_S) + feature_beta * ||f_i(h_S) - h_Ei||^2

where f_i is a linear map, learned jointly with the student, from the student's last hidden layer to
expert i's. Early on the student is bad and its episodes are short: the data follow the student's
own states, not the expert's (the difference from Policy Distillation).

Default budgets (``default_steps``) are the smallest that reach the teacher on control tasks; what they
reach is measured in results/methods (``benchmarks/method_budgets.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from rl_distill import losses
from rl_distill.errors import UserError, check_positive, check_probability
from rl_distill.rollout import ReplayConfig
from rl_distill.supervised import supervised_step, train_from_replay

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "actor-mimic"
MULTI_TASK = True


@dataclass
class Config(ReplayConfig):
    tau: float = 1.0
    """Temperature of the expert policy softmax(q_E / tau). 1.0 suits policy-gradient teachers, whose
    logits already are log-probabilities; DQN teachers' Q-values want a smaller one (e.g. 0.1)."""
    feature_beta: float = 0.01
    """Weight of the feature-regression term (Parisotto: 0.01)."""
    epsilon: float = 0.1
    """Probability of a random action instead of the student's greedy one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("tau", self.tau, none_ok=False)
        check_probability("epsilon", self.epsilon)
        if not (self.feature_beta >= 0 and math.isfinite(self.feature_beta)):
            raise UserError(f"--feature-beta must be a finite number >= 0, got {self.feature_beta}")


def default_steps(env_id: str) -> int:
    return {"CartPole-v1": 2_000, "Acrobot-v1": 3_000}.get(env_id, 50_000)


def feature_regression(f: nn.Linear, expert_features: torch.Tensor, beta: float):
    """The ``extra`` term of a supervised step: beta * ||f(h_S) - h_E||^2 (logged unweighted)."""

    def term(out: dict[str, torch.Tensor]):
        fr = (f(out["features"]) - expert_features).pow(2).sum(-1).mean()
        return beta * fr, {"distill/feature_loss": fr.item()}

    return term


def train(ctx: MethodContext, cfg: Config) -> None:
    student = ctx.student
    # f_i: student features -> expert i's features, trained with the student (same Adam, lr).
    maps = nn.ModuleList(nn.Linear(student.features_dim, t.features_dim) for t in ctx.teachers).to(ctx.device)
    opt = torch.optim.Adam([*student.parameters(), *maps.parameters()], lr=cfg.lr)

    def policy_loss(t_logits, s_logits):
        return losses.cross_entropy(t_logits / cfg.tau, s_logits)

    def update(task: int, mb: dict[str, torch.Tensor]) -> dict[str, float]:
        extra = feature_regression(maps[task], mb["teacher_features"], cfg.feature_beta)
        return supervised_step(ctx, opt, mb["obs"], mb["teacher_logits"], policy_loss, task, extra=extra)

    def play(task: int, rollout, n: int):
        return rollout.collect(n, actor="student", student=student, greedy=True, epsilon=cfg.epsilon, features=True)

    def load_extra(state: dict) -> None:
        if "feature_maps" in state:
            maps.load_state_dict(state["feature_maps"])

    train_from_replay(
        ctx,
        opt,
        cfg,
        play,
        update,
        with_features=True,
        extra_state=lambda: {"feature_maps": maps.state_dict()},
        load_extra=load_extra,
    )
