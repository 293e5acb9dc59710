"""On-policy distillation (GKD: Agarwal et al., ICLR 2024; the dense reverse-KL reward form).

Each iteration collects ``n_steps`` steps of ``num_envs`` envs. With probability ``lam`` the student
plays (sampling its own actions: the on-policy data of GKD), else the teacher plays greedily (GKD's
fixed / teacher-generated data); the teacher labels every visited state either way. Student and
teacher play in separate rollouts, so their episodes never interleave.

``reward_form="none"`` (default): a few epochs of minibatch steps on the per-state divergence
D(T || S) over all actions (forward KL, reverse KL, generalized JSD(beta) or skew KL(alpha)).

``reward_form="dense"``: each step's reward is r = -(log pi_S(a|s) - log pi_T(a|s)) for the action
the student sampled, with discount 0, used directly as the advantage of PPO's clipped surrogate (no
critic). E_S[r] = -KL(S || T), so this is a sampled policy gradient of the reverse KL. It is
on-policy by construction: it needs ``lam = 1``.

``memory > 0`` (the Atari default): every visited state goes into a sliding memory of the last ``memory``
states with its teacher output, and after each chunk of play the student takes ``replay_ratio`` gradient
steps per env step on minibatches drawn iid from it (each step a fresh draw), as Policy Distillation's
replay does: the same 64 consecutive frames are never the minibatch of several steps in a row.

``lambda_schedule="ramp"``: lambda rises from 0 to ``lam`` over the first ``lambda_ramp`` of the budget,
so the teacher plays early and the student more and more (GKD's mix as a schedule).

lam defaults to 1 (only student data): GKD finds high lambda (mostly on-policy data) works best,
and lam = 1 spends no env steps on teacher episodes whose states the student may never visit.
Measured budgets and scores: results/methods, results/efficiency, results/lineage, results/atari-lineage.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rl_distill import losses
from rl_distill.diagnostics import policy_stats
from rl_distill.errors import UserError, check_count, check_positive
from rl_distill.rl import PPOConfig, ppo_update
from rl_distill.rollout import ReplayConfig, Rollout
from rl_distill.schedules import lambda_schedule
from rl_distill.supervised import supervised_step, train_from_replay

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "on-policy"
MULTI_TASK = True
REWARD_FORMS = ("none", "dense")


@dataclass
class Config:
    divergence: str = "reverse-kl"
    """Per-state D(T || S) of the default form: forward-kl | reverse-kl | jsd | skew-kl."""
    beta: float = field(default=0.5, metadata={"flags": ("--jsd-beta", "--beta")})
    """JSD's beta in [0, 1] (0 = forward KL, 1 = reverse KL, TRL's convention)."""
    alpha: float = field(default=0.1, metadata={"flags": ("--skew-alpha", "--alpha")})
    """Skew KL's alpha in [0, 1) (DistiLLM's 0.1)."""
    tau: float = 1.0
    """Teacher temperature: the divergence (and the dense reward) see softmax(teacher_logits / tau). 1 leaves
    the teacher as it is; Rusu et al.'s 0.01 sharpens it to nearly its greedy action, which an entropy-
    regularised RL teacher needs where it is close to uniform (PPO Pong: 1.49 nats of log 6 = 1.79 on a
    random student's states)."""
    lam: float = field(default=1.0, metadata={"flags": ("--student-fraction", "--lambda")})
    """Probability that an iteration's batch is played by the student, else by the teacher (GKD's lambda);
    with the ramp schedule, the value lambda rises to."""
    lambda_schedule: str = field(
        default="constant", metadata={"flags": ("--student-fraction-schedule", "--lambda-schedule")}
    )
    """constant (lambda throughout) | ramp (0 up to lambda over the first lambda_ramp of the budget)."""
    lambda_ramp: float = field(default=0.5, metadata={"flags": ("--student-fraction-ramp", "--lambda-ramp")})
    """The ramp schedule's fraction of the budget in (0, 1]."""
    memory: int = 0
    """States kept in the sliding memory that minibatches are drawn from (0: no memory, each fresh batch is
    trained on for ``epochs`` passes). Atari default: 20,000."""
    replay_ratio: float = 0.25
    """With a memory: gradient steps per env step collected."""
    reward_form: str = "none"
    """none: supervised divergence over all actions | dense: -(log pi_S - log pi_T) of the sampled action as a PPO
    advantage."""
    num_envs: int = 8
    """Parallel envs of each rollout."""
    n_steps: int = 8
    """Steps per env per iteration (a batch is num_envs * n_steps states). Small because PPO's clip
    bounds how far one dense-form iteration moves the policy: on CartPole 8 beat 16 and 32 per env step."""
    batch_size: int = 64
    """Minibatch size of the gradient steps."""
    epochs: int = 4
    """Passes over each batch."""
    lr: float = 1e-3
    """Adam learning rate."""
    clip: float = 0.2
    """PPO's ratio clip (dense form only)."""

    def __post_init__(self) -> None:
        if self.divergence not in losses.DIVERGENCES:
            raise UserError(f"unknown --divergence {self.divergence!r}; choose one of {', '.join(losses.DIVERGENCES)}")
        if self.reward_form not in REWARD_FORMS:
            raise UserError(f"unknown --reward-form {self.reward_form!r}; choose one of {', '.join(REWARD_FORMS)}")
        if not 0.0 <= self.lam <= 1.0:
            raise UserError(f"--lambda must be in [0, 1], got {self.lam}")
        if self.reward_form == "dense" and self.lam != 1.0:
            raise UserError(
                "--reward-form dense is a policy gradient on the student's own actions: it needs --lambda 1"
            )
        if not 0.0 <= self.beta <= 1.0:
            raise UserError(f"--beta must be in [0, 1], got {self.beta}")
        if not 0.0 <= self.alpha < 1.0:
            raise UserError(f"--alpha must be in [0, 1), got {self.alpha}")
        if not self.tau > 0.0:
            raise UserError(f"--tau must be > 0, got {self.tau}")
        for name in ("num_envs", "n_steps", "batch_size", "epochs"):
            check_count(name, getattr(self, name), none_ok=False)
        check_positive("lr", self.lr, none_ok=False)
        check_positive("clip", self.clip, none_ok=False)
        if self.lambda_schedule not in ("constant", "ramp"):
            raise UserError(
                f"unknown --lambda-schedule {self.lambda_schedule!r} for on-policy; choose constant or ramp"
            )
        if not 0.0 < self.lambda_ramp <= 1.0:
            raise UserError(f"--lambda-ramp must be in (0, 1], got {self.lambda_ramp}")
        if self.memory < 0:
            raise UserError(f"--memory must be >= 0 (0: no memory), got {self.memory}")
        check_positive("replay_ratio", self.replay_ratio, none_ok=False)
        if self.reward_form == "dense" and self.memory > 0:
            raise UserError(
                "--reward-form dense is a policy gradient on fresh samples of the student: "
                "it takes no --memory (give --memory 0)"
            )
        if self.reward_form == "dense" and self.lambda_schedule != "constant":
            raise UserError("--reward-form dense needs the student to play every batch: it takes no --lambda-schedule")


def env_defaults(env_ids: list[str], options: dict, family_defaults: dict) -> dict:
    """The env family's defaults (on Atari a replay memory), except for the dense form, which trains on fresh
    samples only."""
    return {} if options.get("reward_form") == "dense" else family_defaults


MEASURED_STEPS = {"CartPole-v1": 6_144, "Acrobot-v1": 4_096}
"""Budgets that reach the teacher on these envs (results/methods); other envs: unmeasured guesses."""


def default_steps(env_id: str) -> int:
    return MEASURED_STEPS.get(env_id, 20_000)


def divergence_fn(cfg: Config):
    """D(teacher_logits / tau, student_logits) -> (B,), with its parameter bound."""
    d = losses.DIVERGENCES[cfg.divergence]
    if cfg.divergence == "jsd":
        d = functools.partial(d, beta=cfg.beta)
    elif cfg.divergence == "skew-kl":
        d = functools.partial(d, alpha=cfg.alpha)
    if cfg.tau == 1.0:
        return d
    return lambda teacher_logits, student_logits: d(teacher_logits.float() / cfg.tau, student_logits)


def dense_reward(batch, tau: float = 1.0) -> torch.Tensor:
    """r = log pi_T(a|s) - log pi_S(a|s) of the sampled actions, (T, N); its mean estimates -KL(S || T)."""
    logp_t = (
        torch.log_softmax(batch.teacher_logits.float() / tau, -1).gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
    )
    return logp_t - batch.logprobs


def _supervised_epochs(ctx, opt, batch, loss_fn, cfg: Config, task: int = 0) -> dict[str, float]:
    obs, t_logits = batch.flat("obs"), batch.flat("teacher_logits")
    n = obs.shape[0]
    mb = min(cfg.batch_size, n)
    sums: dict[str, float] = {}
    count = 0
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=ctx.generator, device=ctx.generator.device).to(obs.device)
        for start in range(0, n - mb + 1, mb):  # full minibatches only; the tail is in the next epoch's shuffle
            idx = perm[start : start + mb]
            for k, v in supervised_step(ctx, opt, obs[idx], t_logits[idx], loss_fn, task).items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
    return {k: v / count for k, v in sums.items()}


def _dense_update(ctx, opt, batch, cfg: Config) -> dict[str, float]:
    # ppo_update standardizes the advantages per minibatch. Kept on purpose: subtracting the mean is a
    # constant baseline (unbiased), and dividing by the std tames the reward's heavy tail (small and
    # positive where the student picks the teacher's action, -10 or lower where it picks one a
    # confident teacher never takes), so a step's size does not hang on how confident the teacher is.
    # On CartPole the three (standardized, mean-only, raw) reached the teacher alike (commit 7c09de6).
    reward = dense_reward(batch, cfg.tau)
    n = reward.numel()
    ppo = PPOConfig(n_epochs=cfg.epochs, minibatches=max(1, n // min(cfg.batch_size, n)), clip=cfg.clip, ent_coef=0.0)
    before = {
        "distill/reward_mean": reward.mean().item(),
        **policy_stats(batch.flat("teacher_logits"), batch.flat("student_logits"), ctx.action_groups[0]),
    }
    stats = ppo_update(ctx.student, opt, batch, reward, None, ppo, ctx.generator)
    return {**stats, **before, "distill/loss": stats["train/loss"]}


def _student_plays(ctx, lam: float) -> bool:
    """GKD's draw: the student plays the next batch with probability lambda (no draw at 0 or 1)."""
    return lam >= 1.0 or (
        lam > 0.0 and torch.rand(1, generator=ctx.generator, device=ctx.generator.device).item() < lam
    )


def _train_from_memory(ctx, cfg: Config, opt, loss_fn, schedule) -> None:
    """Play (the student with probability lambda(t), else the teacher), keep the states in a sliding memory,
    take ``replay_ratio`` gradient steps per env step on iid minibatches from it."""
    replay = ReplayConfig(
        num_envs=cfg.num_envs,
        collect_steps=cfg.n_steps,
        replay_ratio=cfg.replay_ratio,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        capacity=cfg.memory,
    )
    steps = {"student": 0, "teacher": 0}
    teacher_rollouts: dict[int, Rollout] = {}  # per task, built when the teacher first plays there: its episodes
    mix = {"lambda": schedule(0.0)}  # never mix with the student's

    def play(task, rollout, n):
        mix["lambda"] = lam = schedule(ctx.env_steps / ctx.budget)
        on_policy = _student_plays(ctx, lam)
        if on_policy:
            steps["student"] += n * cfg.num_envs
            return rollout.collect(n, actor="student", student=ctx.student, label=True)
        if task not in teacher_rollouts:
            teacher_rollouts[task] = ctx.rollout(task, cfg.num_envs)
        steps["teacher"] += n * cfg.num_envs
        return teacher_rollouts[task].collect(n, actor="teacher", label=True)

    def update(task, mb):
        stats = supervised_step(ctx, opt, mb["obs"], mb["teacher_logits"], loss_fn, task)
        total = steps["student"] + steps["teacher"]
        return {
            **stats,
            "distill/lambda": mix["lambda"],
            "distill/on_policy_fraction": steps["student"] / max(1, total),
        }

    def load(state):
        steps.update(state.get("steps", {}))

    train_from_replay(ctx, opt, replay, play, update, extra_state=lambda: {"steps": dict(steps)}, load_extra=load)


def train(ctx: MethodContext, cfg: Config) -> None:
    """With several teachers (one per task), the tasks take turns: each plays its chunk and trains on it (or fills
    its own memory), so one student keeps them all, as in the recovery stage of the continual suite."""
    if cfg.reward_form == "dense" and ctx.num_tasks > 1:
        raise UserError("--reward-form dense trains one task: give one --teacher (the default form takes several)")
    student = ctx.student
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    loss_fn = divergence_fn(cfg)
    schedule = lambda_schedule(cfg.lambda_schedule, cfg.lam, ramp=cfg.lambda_ramp)
    if cfg.memory > 0:
        return _train_from_memory(ctx, cfg, opt, loss_fn, schedule)
    state = ctx.begin(opt) or {}
    steps = {"student": int(state.get("student_steps", 0)), "teacher": int(state.get("teacher_steps", 0))}
    rollouts: dict[tuple[str, int], Rollout] = {}  # one per data source and task, built when first needed
    while not ctx.done():
        lam = schedule(ctx.env_steps / ctx.budget)
        for task in range(ctx.num_tasks):
            if ctx.done():
                break
            on_policy = _student_plays(ctx, lam)
            actor = "student" if on_policy else "teacher"
            if (actor, task) not in rollouts:
                rollouts[actor, task] = ctx.rollout(task, cfg.num_envs)
            n = max(1, min(cfg.n_steps, (ctx.budget - ctx.env_steps) // cfg.num_envs))
            batch = rollouts[actor, task].collect(n, actor=actor, student=student, label=True)
            steps[actor] += n * cfg.num_envs
            if cfg.reward_form == "dense":
                stats = _dense_update(ctx, opt, batch, cfg)
            else:
                stats = _supervised_epochs(ctx, opt, batch, loss_fn, cfg, task)
            stats["distill/lambda"] = lam
            stats["distill/on_policy_fraction"] = steps["student"] / max(1, steps["student"] + steps["teacher"])
            ctx.log(stats)
        ctx.maybe_checkpoint(opt, {"student_steps": steps["student"], "teacher_steps": steps["teacher"]})
    ctx.maybe_checkpoint(opt, {"student_steps": steps["student"], "teacher_steps": steps["teacher"]}, force=True)
