"""Policy Distillation (Rusu et al. 2015): the student learns from the teacher's replay.

Each task's teacher plays epsilon-greedy in its env; every visited state goes into that task's replay
memory with the teacher's output (logits, or Q-values for a DQN teacher). Collection and training
interleave: after each chunk of play the student takes ``replay_ratio`` gradient steps per env step
on minibatches from the memories, with one of Rusu's three losses (NLL of the teacher's greedy
action, MSE on the outputs, KL to the teacher sharpened by ``tau``). With several teachers the
student has one head per task and each minibatch comes from one task's memory, the tasks in turn
(multi-task distillation). The budget counts env steps over all tasks.

Default budgets (``default_steps``): the smallest that reach the teacher on control tasks (measured in
results/methods by ``benchmarks/method_budgets.py``); on Atari Rusu's 1M env steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch

from rl_distill import losses
from rl_distill.errors import check_choice, check_positive, check_probability
from rl_distill.rollout import ReplayConfig
from rl_distill.supervised import supervised_step, train_from_replay

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "policy-distillation"
MULTI_TASK = True


@dataclass
class Config(ReplayConfig):
    loss: str = "kl"
    """nll (teacher's greedy action) | mse (regress the teacher's outputs) | kl (KL to softmax(q_T / tau))."""
    tau: float = 0.01
    """Temperature of the teacher's softmax in the kl loss (Rusu: 0.01, i.e. nearly its greedy action)."""
    epsilon: float = 0.05
    """Probability of a random action instead of the teacher's (Rusu's epsilon-greedy teacher play)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("loss", self.loss, ("nll", "mse", "kl"))
        check_positive("tau", self.tau, none_ok=False)
        check_probability("epsilon", self.epsilon)


def default_steps(env_id: str) -> int:
    return {"CartPole-v1": 2_000, "Acrobot-v1": 3_000}.get(env_id, 50_000)


def train(ctx: MethodContext, cfg: Config) -> None:
    loss_fn = {"nll": losses.nll, "mse": losses.mse, "kl": partial(losses.kl_tau, tau=cfg.tau)}[cfg.loss]
    opt = torch.optim.Adam(ctx.student.parameters(), lr=cfg.lr)
    train_from_replay(
        ctx,
        opt,
        cfg,
        play=lambda task, rollout, n: rollout.collect(n, actor="teacher", epsilon=cfg.epsilon),
        update=lambda task, mb: supervised_step(ctx, opt, mb["obs"], mb["teacher_logits"], loss_fn, task),
    )
