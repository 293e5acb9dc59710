"""The RL machinery that several methods share: GAE, the clipped PPO update and the PPO loop.

PPO from scratch, Kickstarting (PPO + lambda * H(T || S)), PPD and the dense-reward form of on-policy
distillation all update a :class:`~rl_distill.students.Student` with :func:`ppo_update`; they differ
only in the advantages they pass and the distillation term (:data:`PPOTerm`) the loop adds to PPO's loss.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from rl_distill.errors import UserError, check_count, check_positive, check_probability
from rl_distill.rollout import Batch

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext


@dataclass
class PPOConfig:
    """PPO knobs (CleanRL's defaults for classic control)."""

    num_envs: int = 4
    """Parallel envs of the rollout."""
    n_steps: int = 128
    """Steps per env per rollout."""
    gamma: float = 0.99
    """Discount factor of the returns and advantages."""
    gae_lambda: float = 0.95
    """GAE's lambda: trades the advantages' bias (0: one-step TD) against their variance (1: Monte Carlo)."""
    n_epochs: int = field(default=4, metadata={"flags": ("--n-epochs", "--epochs")})
    """Passes over each rollout (``--epochs`` as in the supervised methods)."""
    minibatches: int = 4
    """Minibatches each pass splits the rollout into (minibatch size: num_envs * n_steps / minibatches)."""
    clip: float = 0.2
    """PPO's ratio clip epsilon: how far one update may move the probability of an action."""
    vf_coef: float = 0.5
    """Weight of the value loss beside the policy loss (one network, shared layers)."""
    sb3_value_loss: bool = False
    """The value loss as SB3 computes it, mean (V - R)^2, the form rl-zoo3's vf_coef is tuned for; false: CleanRL's
    0.5 mean (V - R)^2, half the weight for the same vf_coef (on MinAtar the family's defaults set it true)."""
    ent_coef: float = 0.0
    """Entropy bonus weight: keeps the policy exploring."""
    lr: float = 2.5e-4
    """Adam learning rate (annealed to 0 over the budget with anneal_lr)."""
    anneal_lr: bool = True
    """Learning rate linearly down to 0 over the budget (rl-zoo3's ``lin_`` schedules)."""
    anneal_clip: bool = False
    """The ratio clip linearly down to 0 over the budget, as SB3 does with a ``lin_`` clip_range."""
    max_grad_norm: float = 0.5
    """Gradient norm clip of each update: bounds a step on a rare large-loss minibatch."""
    clip_rewards: bool = False
    """Clip rewards to their sign (the Atari convention)."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "n_epochs", "minibatches"):
            check_count(name, getattr(self, name), none_ok=False)
        for name in ("lr", "clip", "max_grad_norm"):
            check_positive(name, getattr(self, name), none_ok=False)
        for name in ("gamma", "gae_lambda"):
            check_probability(name, getattr(self, name))
        for name in ("ent_coef", "vf_coef"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {getattr(self, name)}")


# SB3's PPO defaults, for what an rl-zoo3 entry does not set.
_SB3_PPO = {
    "n_envs": 1,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "learning_rate": 3e-4,
    "max_grad_norm": 0.5,
}


def _rate(v) -> tuple[float, bool]:
    """An rl-zoo3 value, ``lin_X`` (X linearly down to 0) or a constant: (X, annealed)."""
    return (float(v[4:]), True) if isinstance(v, str) and v.startswith("lin_") else (float(v), False)


ATARI_DISTILL_MINIBATCHES = 32
"""On Atari the PPO inside a distillation method (kickstarting, PPD) splits rl-zoo3's rollout (8 envs x 128 steps)
into 32 minibatches of 32, not 4 of 256: 8x the Adam steps on the same samples. With 4 kickstarting stayed on the
teacher's marginal policy on Pong; 16 and 32 were compared in results/probes/pong-rl-baselines, and 32 learned
best for both methods. PPO from scratch keeps rl-zoo3's entry as it is."""


def zoo_distill_ppo_settings(env_ids: list[str]) -> dict:
    """``zoo_ppo_settings`` with the Atari rollout in ATARI_DISTILL_MINIBATCHES minibatches: the PPO inside the
    methods that add a distillation term to it."""
    settings = zoo_ppo_settings(env_ids)
    if settings and settings["clip_rewards"]:  # Atari (zoo_ppo_settings clips rewards exactly there)
        settings["minibatches"] = ATARI_DISTILL_MINIBATCHES
    return settings


def zoo_ppo_settings(env_ids: list[str]) -> dict:
    """PPOConfig fields from rl-zoo3's PPO entry for the envs (teachers/hyperparams.toml, the settings the shipped
    teachers were trained with; SB3's defaults where it is silent): the fair RL baseline. Atari adds reward
    clipping. {} where an env has no entry, or several envs have different ones (a multi-task run)."""
    hp, env_id = shared_zoo_entry(env_ids, "ppo", _SB3_PPO), env_ids[0]
    if hp is None:
        return {}
    lr, anneal_lr = _rate(hp["learning_rate"])
    clip, anneal_clip = _rate(hp["clip_range"])
    n_envs, n_steps = int(hp["n_envs"]), int(hp["n_steps"])
    return {
        "num_envs": n_envs,
        "n_steps": n_steps,
        "minibatches": max(1, n_envs * n_steps // int(hp["batch_size"])),
        "n_epochs": int(hp["n_epochs"]),
        "gamma": float(hp["gamma"]),
        "gae_lambda": float(hp["gae_lambda"]),
        "clip": clip,
        "anneal_clip": anneal_clip,
        "ent_coef": float(hp["ent_coef"]),
        "vf_coef": float(hp["vf_coef"]),
        "lr": lr,
        "anneal_lr": anneal_lr,
        "max_grad_norm": float(hp["max_grad_norm"]),
        "clip_rewards": clips_rewards(env_id),
    }


def shared_zoo_entry(env_ids: list[str], algo: str, sb3_defaults: dict[str, Any]) -> dict[str, Any] | None:
    """The envs' one ``algo`` entry of teachers/hyperparams.toml over SB3's defaults, shared by the PPO and DQN
    baselines. A multi-task run over one family's games whose own entries differ (MinAtar Seaquest's PPO discount)
    shares the family's entry; None where an env has no entry, or the envs' families or rl-zoo3 entries differ."""
    from rl_distill.envs import family_of
    from rl_distill.teachers.train import hyperparams

    try:
        if len({family_of(e).name for e in env_ids}) > 1:
            return None
        entries = [sb3_defaults | hyperparams(e, algo) for e in env_ids]
        if any(e != entries[0] for e in entries):
            entries = [sb3_defaults | hyperparams(e, algo, game_entry=False) for e in env_ids]
    except UserError:
        return None
    return entries[0] if all(e == entries[0] for e in entries) else None


def clips_rewards(env_id: str) -> bool:
    """Whether the env family's teachers train on clipped rewards (Atari's training protocol), as PPO does here."""
    from rl_distill.envs import family_of

    family = family_of(env_id)
    return bool(getattr(family.training_protocol(family.protocol()), "reward_clipping", False))


@torch.no_grad()
def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimates and returns for (T, N) tensors.

    ``dones[t]`` marks that the episode ended at step t (so step t+1 does not bootstrap into it).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in reversed(range(T)):
        next_value = last_value if t == T - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    return adv, adv + values


@dataclass(frozen=True)
class PPOMinibatch:
    """What a method's term on PPO's loss sees of one minibatch."""

    student_logits: torch.Tensor
    """The student's outputs on the minibatch's states (with gradients)."""
    actions: torch.Tensor
    """The actions taken."""
    old_logprobs: torch.Tensor
    """Their log-probabilities under the policy that collected the rollout."""
    teacher_logits: torch.Tensor
    """The teacher's outputs on the same states."""
    clip: float
    """The iteration's ratio clip."""


PPOTerm = Callable[[PPOMinibatch], tuple[torch.Tensor, dict[str, float]]]
"""``term(minibatch) -> (loss term, scalars)``: a method's distillation term (Kickstarting's, PPD's), which the PPO
update weights and adds to its loss on every minibatch; the scalars are averaged over the update's minibatches."""


def ppo_update(
    student: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    advantages: torch.Tensor,
    returns: torch.Tensor | None,
    cfg: PPOConfig,
    generator: torch.Generator,
    task: int = 0,
    term: PPOTerm | None = None,
    weight: float = 1.0,
) -> dict[str, float]:
    """Clipped-surrogate epochs over a rollout; returns mean stats (SB3's train/... names).

    ``returns=None`` skips the value loss (the dense-reward form has no critic). ``term`` adds ``weight`` times a
    method's term to each minibatch's loss; it needs a batch the teacher labelled.
    """
    obs = batch.flat("obs")
    actions = batch.flat("actions")
    old_logp = batch.flat("logprobs")
    teacher_logits = batch.flat("teacher_logits") if term is not None else None
    adv_all = advantages.reshape(-1)
    ret_all = returns.reshape(-1) if returns is not None else None
    n = obs.shape[0]
    mb = max(1, n // cfg.minibatches)
    stats: dict[str, list[float]] = {}
    for _ in range(cfg.n_epochs):
        perm = torch.randperm(n, generator=generator, device=generator.device).to(obs.device)
        for start in range(0, n, mb):
            idx = perm[start : start + mb]
            out = student(obs[idx], task)
            logp_all = torch.log_softmax(out["logits"].float(), -1)
            logp = logp_all.gather(-1, actions[idx].unsqueeze(-1)).squeeze(-1)
            ratio = (logp - old_logp[idx]).exp()
            adv = adv_all[idx]
            if adv.numel() > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
            loss = pg - cfg.ent_coef * entropy
            s = {
                "train/policy_gradient_loss": pg.item(),
                "train/entropy_loss": -entropy.item(),
                "train/clip_fraction": ((ratio - 1).abs() > cfg.clip).float().mean().item(),
                "train/approx_kl": ((ratio - 1) - (logp - old_logp[idx])).mean().item(),
            }
            if ret_all is not None:
                v_loss = ((out["value"] - ret_all[idx]) ** 2).mean() * (1.0 if cfg.sb3_value_loss else 0.5)
                loss = loss + cfg.vf_coef * v_loss
                s["train/value_loss"] = v_loss.item()
            if term is not None:
                minibatch = PPOMinibatch(out["logits"], actions[idx], old_logp[idx], teacher_logits[idx], cfg.clip)
                extra, extra_stats = term(minibatch)
                loss = loss + weight * extra
                s.update(extra_stats)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(student.parameters(), cfg.max_grad_norm)
            optimizer.step()
            s["train/loss"] = loss.item()
            for k, v in s.items():
                stats.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in stats.items()}


def ppo_iteration(
    rollout,
    student,
    optimizer,
    cfg: PPOConfig,
    generator: torch.Generator,
    task: int = 0,
    term: PPOTerm | None = None,
    weight: float = 1.0,
) -> tuple[Batch, dict[str, float]]:
    """One PPO iteration: collect ``n_steps`` with the student (the teacher labelling every state where a ``term``
    needs its logits), compute GAE, update."""
    batch = rollout.collect(cfg.n_steps, actor="student", student=student, label=term is not None)
    rewards = batch.rewards.sign() if cfg.clip_rewards else batch.rewards
    with torch.no_grad():
        last_value = student(batch.last_obs, task)["value"]
    adv, ret = gae(rewards, batch.values, batch.dones, last_value, cfg.gamma, cfg.gae_lambda)
    stats = ppo_update(student, optimizer, batch, adv, ret, cfg, generator, task, term, weight)
    return batch, stats


def iteration_clip(cfg: PPOConfig, progress: float) -> float:
    """The ratio clip of the iteration at ``progress`` (the fraction of the budget spent): annealed to 0 with
    ``anneal_clip``, as SB3 does with a ``lin_`` clip_range."""
    return cfg.clip * (1.0 - progress) if cfg.anneal_clip else cfg.clip


def ppo_loop(
    ctx: MethodContext,
    cfg: PPOConfig,
    distill_term: PPOTerm | None = None,
    distill_weight: Callable[[float], float] | None = None,
) -> None:
    """PPO iterations until the budget is spent, round-robin over the tasks (one rollout per task).

    With a ``distill_term`` the teacher labels every state and each minibatch's loss adds
    ``distill_weight(progress)`` times the term (``progress``: the fraction of the budget spent before the
    iteration; the weight is logged as ``distill/lambda``). Without one the teacher is never asked (PPO).
    """
    student = ctx.student
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr, eps=1e-5)
    state = ctx.begin(opt) or {}
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
        if cfg.anneal_clip:
            it_cfg = dataclasses.replace(it_cfg, clip=iteration_clip(cfg, progress))
        weight = distill_weight(progress) if distill_weight is not None else 1.0
        _, stats = ppo_iteration(rollouts[task], student, opt, it_cfg, ctx.generator, task, distill_term, weight)
        it += 1
        scalars = {"distill/lambda": weight} if distill_weight is not None else {}
        vals = {**stats, **scalars, "train/learning_rate": lr, "train/clip_range": it_cfg.clip}
        if multi:
            for r, env_id in zip(rollouts, ctx.env_ids):
                vals[f"rollout/ep_rew_mean/{env_id}"] = r.mean_return()
        ctx.log(vals)
        ctx.maybe_checkpoint(opt, {"iteration": it})
    ctx.maybe_checkpoint(opt, {"iteration": it}, force=True)
