"""DistiLLM (Ko et al., ICML 2024, arXiv 2402.03898): skew KL, replayed student data, an adaptive student share.

Skew KL on minibatches from replay memories of teacher play and student play, the student's share rising when a
held-out divergence stops improving.

The paper's adaptive off-policy approach (its Sec. 3.2; the schedule's values from its code), as run here on an env:

1. phi = ``student_fraction`` (the probability that a gradient step uses student-generated outputs, SGO; the
   paper starts it at 0). Memories: the teacher's data D (DistiLLM's fixed dataset) and a replay buffer of the
   student's own play (``student_memory`` states).
2. For every gradient step, draw u ~ U(0, 1): u < phi takes a minibatch of student-generated states, else one of
   teacher-played states (:func:`pick_source`).
3. Data are reused, not generated per step: each newly played state pays for ``reuse`` gradient steps on its own
   source's memory. When the drawn source has no steps left, its actor plays the next chunk (``n_steps`` of
   ``num_envs`` envs): the student sampling from its policy (its generations), the teacher greedily. The teacher
   labels every state either actor visits (each one a teacher query).
4. The loss is the skew KL of the teacher and student action distributions at the state: forward skew KL
   KL(T || alpha T + (1 - alpha) S) or reverse skew KL KL(S || alpha S + (1 - alpha) T), alpha = 0.1
   (:func:`skew_divergence`).
5. Every ``val_every`` gradient steps the same divergence is measured on a held-out validation set (teacher-played
   states never trained on); the first check sets the reference, and a later one that is not a new low by more
   than ``min_delta`` raises phi by ``student_fraction_step`` (0.1), capped at 1 (:class:`AdaptiveStudentFraction`).
   phi never falls.

Where it differs from the paper, and why (read: the paper's abstract and the authors' code, github.com/jongwooko/
distillm: ``finetune.py``, ``arguments.py``, ``distillm/losses.py``, ``distillm/buffer.py``, the GPT-2 scripts):

- Validation data and check. DistiLLM's dev set is a fixed split of its instruction data, checked once per epoch
  with the student's LM loss; it raises phi when that loss exceeds the value at the last raise by eps = 0.1 nat.
  An env has no such split and no ground truth, so here a fraction ``val_fraction`` of the teacher-played states is
  held out until ``val_size`` of them make a fixed validation set (checks begin when it is full), the loss checked
  is the training divergence, and "not improving" means no new lowest value: a per-state divergence to a PPO
  teacher is far below 0.1 nat (CartPole: 0.003 when the checks begin, 3e-5 at 2,048 steps), so a fixed 0.1-nat
  rise would never fire.
- Reuse. DistiLLM generates fresh outputs on a fraction phi (1 - t/T) of its steps (and always until its 1,000-
  sample buffer is full) and reuses the buffer on the rest, so reuse grows over training. Here every state (the
  student's and the teacher's: both cost env steps, where DistiLLM's dataset is free) buys a constant ``reuse``
  gradient steps, so the env-step budget sets the number of updates: ``reuse`` x trained states.
- The fixed data are teacher play (GKD's teacher-generated data; DistiLLM uses the dataset's responses), the
  skew forward KL is the KL itself (the code uses its cross-entropy form, the same gradient), and the student plays
  whole chunks of env steps instead of finishing a prompt's response.
- One task (MULTI_TASK False), Adam without DistiLLM's learning-rate decay and gradient clipping.

Scalars: ``distill/student_fraction`` (phi), ``distill/val_loss`` and ``distill/val_best`` at each check (their
count ``distill/val_checks``, the checks that raised phi ``distill/val_raises``),
``distill/on_policy_fraction`` (the share of trained states the student played), ``distill/student_states``,
``distill/teacher_states``, ``distill/held_out_states``; the harness logs ``time/teacher_queries`` (every visited
state is labelled once, so queries = env steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from rl_distill import losses
from rl_distill.errors import UserValueError, check_choice, check_count, check_finite, check_positive, check_probability
from rl_distill.rollout import ReplayMemory
from rl_distill.supervised import mean_stats, replay_memories, supervised_step

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "distillm"
MULTI_TASK = False
DIVERGENCES = ("skew-kl", "skew-reverse-kl")
SOURCES = ("teacher", "student")


@dataclass
class Config:
    divergence: str = "skew-kl"
    """skew-kl: KL(T || alpha T + (1 - alpha) S) | skew-reverse-kl: KL(S || alpha S + (1 - alpha) T)."""
    alpha: float = field(default=0.1, metadata={"flags": ("--skew-alpha", "--alpha")})
    """Skew KL's alpha in [0, 1): the mixture's weight on the first distribution (DistiLLM's 0.1; 0 is plain KL)."""
    tau: float = 1.0
    """Teacher temperature: the loss sees softmax(teacher_logits / tau)."""
    student_fraction: float = 0.0
    """phi at the start: the probability that a gradient step trains on student-generated states (DistiLLM: 0)."""
    student_fraction_step: float = 0.1
    """How much phi rises at a validation check that finds no improvement (DistiLLM: 0.1); phi stops at 1. 0 keeps
    phi fixed (GKD's constant mix)."""
    val_every: int = 32
    """Gradient steps between validation checks (DistiLLM: once per epoch)."""
    val_size: int = 128
    """Held-out teacher-played states in the fixed validation set; checks begin once it is full."""
    val_fraction: float = 0.125
    """Share of the teacher-played states held out (never trained on) until the validation set is full."""
    min_delta: float = 0.0
    """A check improves where the validation divergence falls below its lowest so far by more than this."""
    reuse: float = 0.25
    """Gradient steps per newly played state (student's or teacher's), each on a minibatch drawn from that
    source's memory: states are reused from a replay memory, not played afresh for every step."""
    memory: int | None = None
    """Teacher-played states kept for training (None: 100,000 for vector observations, 20,000 for Atari frames;
    never more than the budget)."""
    student_memory: int = 2048
    """Student-played states kept in the replay buffer of its generations (the newest; DistiLLM: 1,000 samples)."""
    num_envs: int = 8
    """Parallel envs of each actor."""
    n_steps: int = 8
    """Steps of each env per chunk of play."""
    batch_size: int = 64
    """Minibatch size of each gradient step."""
    lr: float = 1e-3
    """Adam learning rate."""

    def __post_init__(self) -> None:
        check_choice("divergence", self.divergence, DIVERGENCES)
        check_probability("alpha", self.alpha)
        if self.alpha == 1.0:
            raise UserValueError("--alpha must be in [0, 1): at 1 the skewed mixture is the first distribution itself")
        check_positive("tau", self.tau, none_ok=False)
        check_probability("student_fraction", self.student_fraction)
        check_probability("student_fraction_step", self.student_fraction_step)
        check_probability("val_fraction", self.val_fraction)
        if self.val_fraction == 0.0:
            raise UserValueError("--val-fraction must be in (0, 1]: without held-out states there is no validation")
        check_finite("min_delta", self.min_delta, minimum=0.0, none_ok=False)
        check_positive("reuse", self.reuse, none_ok=False)
        for name in ("val_every", "val_size", "student_memory", "num_envs", "n_steps", "batch_size"):
            check_count(name, getattr(self, name), none_ok=False)
        check_count("memory", self.memory)
        check_positive("lr", self.lr, none_ok=False)


MEASURED_STEPS = {"CartPole-v1": 2_048, "Acrobot-v1": 3_072}
"""Measured with the defaults, 20 episodes a run: CartPole 100% of the teacher for seeds 0-2 at 2,048, 3,072 and 4,096
steps (1,536: 98-100% for seeds 0-3, with few validation checks yet; 1,024: 50-99%); Acrobot the teacher's score for
seeds 0-2 at 3,072 (4,096 too; less not tried). Other envs: an unmeasured guess."""


def default_steps(env_id: str) -> int:
    return MEASURED_STEPS.get(env_id, 20_000)


def skew_divergence(name: str, alpha: float, tau: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(teacher_logits, student_logits) -> (B,): the forward skew KL(T || aT + (1-a)S) or the reverse skew
    KL(S || aS + (1-a)T), the teacher at temperature ``tau``. losses.skew_kl(p, q, a) is KL(p || a p + (1-a) q),
    so the reverse form is the same function with the two swapped."""

    def d(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        t = teacher_logits.float() / tau if tau != 1.0 else teacher_logits
        if name == "skew-kl":
            return losses.skew_kl(t, student_logits, alpha=alpha)
        return losses.skew_kl(student_logits, t, alpha=alpha)

    return d


class AdaptiveStudentFraction:
    """phi, DistiLLM's probability of student-generated data: starts at ``start``, rises by ``step`` (capped at 1)
    at each validation check whose loss is not below the lowest one so far by more than ``min_delta``."""

    def __init__(self, start: float, step: float, min_delta: float = 0.0):
        self.value, self.step, self.min_delta = float(start), float(step), float(min_delta)
        self.best = math.inf
        self.checks = self.raises = 0

    def update(self, val_loss: float) -> bool:
        """Take one check's validation loss; True where phi rose."""
        self.checks += 1
        if val_loss < self.best - self.min_delta:
            self.best = val_loss
            return False
        self.value = min(1.0, self.value + self.step)
        self.raises += 1
        return True

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "best": self.best, "checks": self.checks, "raises": self.raises}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.value, self.best = float(d["value"]), float(d["best"])
        self.checks, self.raises = int(d["checks"]), int(d["raises"])


def pick_source(phi: float, generator: torch.Generator) -> str:
    """Step 2 of the box: "student" with probability phi, else "teacher" (no draw at 0 or 1)."""
    if phi <= 0.0:
        return "teacher"
    if phi >= 1.0:
        return "student"
    return "student" if torch.rand(1, generator=generator, device=generator.device).item() < phi else "teacher"


@torch.no_grad()
def validation_loss(ctx: MethodContext, val: ReplayMemory, loss_fn) -> float:
    """The mean divergence of the student on the held-out states (step 5)."""
    out = ctx.student(val.obs[: len(val)], 0)
    return float(loss_fn(val.teacher_logits[: len(val)], out["logits"]).mean().item())


def train(ctx: MethodContext, cfg: Config) -> None:
    loss_fn = skew_divergence(cfg.divergence, cfg.alpha, cfg.tau)
    opt = torch.optim.Adam(ctx.student.parameters(), lr=cfg.lr)
    spec = ctx.env_specs[0]
    memories = {
        "teacher": replay_memories(ctx, cfg.memory)[0],
        "student": ReplayMemory.for_env(spec, min(cfg.student_memory, ctx.budget + 1), ctx.device),
    }
    val_size = min(cfg.val_size, ctx.budget)  # never more than the budget could fill
    val = ReplayMemory.for_env(spec, val_size, ctx.device)  # fills once, then stays fixed
    phi = AdaptiveStudentFraction(cfg.student_fraction, cfg.student_fraction_step, cfg.min_delta)
    owed = dict.fromkeys(SOURCES, 0.0)  # gradient steps each source's new states have paid for and not yet had
    states = {"student": 0, "teacher": 0, "held_out": 0}
    since_check = 0
    pending = None  # a source drawn whose memory had no steps left: its actor plays before it is used

    state = ctx.begin(opt) or {}
    if state:
        for k, m in memories.items():
            m.load_state_dict(state["memories"][k])
        val.load_state_dict(state["val"])
        phi.load_state_dict(state["phi"])
        owed.update(state["owed"])
        states.update(state["states"])
        since_check, pending = int(state["since_check"]), state["pending"]
    rollouts = {"student": ctx.rollout(0, cfg.num_envs), "teacher": ctx.rollout(0, cfg.num_envs)}

    def save() -> dict[str, Any]:
        return {
            "memories": {k: m.state_dict() for k, m in memories.items()},
            "val": val.state_dict(),
            "phi": phi.state_dict(),
            "owed": dict(owed),
            "states": dict(states),
            "since_check": since_check,
            "pending": pending,
        }

    def play(source: str) -> None:
        """Step 3: ``source``'s actor plays a chunk; the teacher labels it; a teacher chunk gives up its share of
        held-out states while the validation set is not full."""
        n = ctx.chunk_steps(cfg.num_envs, cfg.n_steps)
        if source == "student":
            b = rollouts["student"].collect(n, actor="student", student=ctx.student, label=True)
        else:
            b = rollouts["teacher"].collect(n, actor="teacher", label=True)
        obs, t_logits = b.flat("obs"), b.flat("teacher_logits")
        if source == "teacher" and len(val) < val_size:
            held = torch.rand(obs.shape[0], generator=ctx.generator, device=ctx.generator.device) < cfg.val_fraction
            held = held.to(obs.device)
            idx = torch.nonzero(held).squeeze(-1)[: val_size - len(val)]
            if idx.numel():
                val.add(obs[idx], t_logits[idx])
                states["held_out"] += int(idx.numel())
            keep = torch.ones_like(held)
            keep[idx] = False
            obs, t_logits = obs[keep], t_logits[keep]
        memories[source].add(obs, t_logits)
        states[source] += obs.shape[0]
        owed[source] += cfg.reuse * obs.shape[0]

    def step(source: str) -> dict[str, float]:
        """Steps 4-5: one gradient step on ``source``'s memory, then a validation check when one is due."""
        nonlocal since_check
        mb = memories[source].sample(cfg.batch_size, ctx.generator)
        stats = supervised_step(ctx, opt, mb["obs"], mb["teacher_logits"], loss_fn)
        owed[source] -= 1.0
        if len(val) >= val_size:
            since_check += 1
            if since_check >= cfg.val_every:
                since_check = 0
                loss = validation_loss(ctx, val, loss_fn)
                phi.update(loss)
                stats.update({"distill/val_loss": loss, "distill/val_best": phi.best})
        return stats

    def log(rows: list[dict[str, float]]) -> None:
        trained = states["student"] + states["teacher"]
        ctx.log(
            {
                **mean_stats(rows),
                "distill/student_fraction": phi.value,
                "distill/val_checks": phi.checks,
                "distill/val_raises": phi.raises,
                "distill/on_policy_fraction": states["student"] / max(1, trained),
                "distill/student_states": states["student"],
                "distill/teacher_states": states["teacher"],
                "distill/held_out_states": states["held_out"],
                "distill/memory_size": len(memories["teacher"]) + len(memories["student"]),
            }
        )

    rows: list[dict[str, float]] = []
    while not ctx.done():
        source = pending or pick_source(phi.value, ctx.generator)
        if owed[source] < 1.0:  # its states are used up: its actor plays the next chunk
            play(source)
            pending = source if owed[source] < 1.0 else None
            log(rows)
            rows = []
            ctx.maybe_checkpoint(opt, save)
            continue
        pending = None
        rows.append(step(source))
    for source in SOURCES:  # the steps the last chunks paid for, each on its own data
        while owed[source] >= 1.0:
            rows.append(step(source))
    log(rows)
    ctx.maybe_checkpoint(opt, save, force=True)
