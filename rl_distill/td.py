"""DQN's machinery, shared by the methods whose student is a Q-network: DQN from scratch (methods/dqn.py) and
QDagger (methods/qdagger.py: the same learner with a teacher's data and a distillation term).

The student's per-action outputs (its heads' logits) are its Q-values Q(s, .). One gradient step minimises the
Huber loss (delta 1) between Q(s_t, a_t) and the n-step target

    y = sum_{k<m} gamma^k r_{t+k} + [not terminated] gamma^m Q_target(s_{t+m}, a'),
    a' = argmax_a Q(s_{t+m}, a) (double-DQN, ``double_q``) or argmax_a Q_target(s_{t+m}, a) (Mnih et al. 2015)

on a minibatch of n-step windows (m <= ``n_step``) from a replay memory, plus a method's extra term where it has
one (:data:`TDTerm`). The window stops at an episode's end: a termination ends the sum without bootstrapping; a
truncation (time limit, frame cap) or the newest stored step bootstraps from the last state before it (the
transition into a truncation is never TD-trained: its final observation is not stored). The target network is a
copy of the student refreshed every ``target_update`` gradient steps. The student plays epsilon-greedy on its
Q-values (epsilon linear from ``epsilon_start`` to ``epsilon_end`` over ``epsilon_decay_steps`` of its env steps;
uniformly random until learning starts where ``random_start``) and takes ``replay_ratio`` gradient steps per env
step once the memory holds ``learning_starts`` transitions.

- :class:`TransitionMemory`: the ring of played steps and its n-step windows.
- :func:`td_target`, :func:`td_loss`, :func:`linear_epsilon`: the target, the loss, the exploration schedule.
- :class:`DQNConfig`: the knobs (a method's Config derives from it); :func:`zoo_dqn_settings`: rl-zoo3's DQN entry
  for an env (the MinAtar paper's on MinAtar) as those knobs.
- :class:`DQNLearner`: optimizer, target network and memory of a run; :meth:`~DQNLearner.step` (one gradient step),
  :meth:`~DQNLearner.remember` (a chunk of anyone's play into the memory), :meth:`~DQNLearner.play` (the student's
  epsilon-greedy play with its gradient steps until the budget is spent).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F

from rl_distill.errors import UserError, UserValueError, check_choice, check_count, check_positive, check_probability
from rl_distill.optim import clip_grad_norm, multi_tensor
from rl_distill.supervised import mean_stats

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext, MethodState
    from rl_distill.rollout import Batch

CONTINUE, TERMINATED, CUT = 0, 1, 2
"""What a stored step's transition is: the episode goes on (the next slot holds its next state), it terminated (no
bootstrap), or it was truncated / its successor is not stored (a TD window stops before it)."""

OPTIMIZERS = ("adam", "rmsprop")


@dataclass
class DQNConfig:
    """DQN's knobs. Defaults: Mnih et al. 2015's DQN (1-step max target, Huber loss, batch 32, gamma 0.99, epsilon
    1.0 -> 0.1, uniform play until learning starts, RMSprop lr 2.5e-4 with squared-gradient momentum 0.95 and
    eps 0.01, centered) at the scale of the MinAtar paper's (Young & Tian 2019: one env, a gradient step every env
    step, replay 100k, 5k steps before learning, epsilon over 100k steps, target every 1k gradient steps), with
    SB3's gradient norm clip of 10."""

    num_envs: int = 1
    """Parallel envs the student plays."""
    collect_steps: int = 1
    """Steps of each env per chunk of play, before the chunk's gradient steps (SB3's train_freq)."""
    gamma: float = 0.99
    """Discount factor of the TD target."""
    n_step: int = 1
    """Steps of the TD target's reward sum before it bootstraps (Mnih et al.: 1)."""
    double_q: bool = False
    """Double-DQN target (the online network picks the next action, the target network values it); false: the
    target network's max (Mnih et al.)."""
    target_update: int = 1_000
    """Gradient steps between copies of the student into the target network."""
    replay_ratio: float = 1.0
    """Gradient steps per env step (Mnih et al.'s 1 per 4: 0.25; the MinAtar paper's: 1)."""
    batch_size: int = 32
    """Minibatch size of each gradient step."""
    lr: float = 2.5e-4
    """Learning rate of the optimizer."""
    optimizer: str = "rmsprop"
    """adam or rmsprop (torch's, with optimizer_eps, and rmsprop_alpha and rmsprop_centered for rmsprop)."""
    optimizer_eps: float | None = 0.01
    """The optimizer's eps, added to the root of its squared-gradient average (None: torch's default, 1e-8)."""
    rmsprop_alpha: float = 0.95
    """rmsprop: the decay of its squared-gradient average (torch's default 0.99; Mnih et al. 0.95)."""
    rmsprop_centered: bool = True
    """rmsprop: divide by the gradient's variance rather than its second moment (Graves 2013, as Mnih et al.)."""
    max_grad_norm: float = 10.0
    """Gradient norm clip of each step (SB3's DQN: 10)."""
    epsilon_start: float = 1.0
    """Exploration: probability of a uniform action at the student's first env step."""
    epsilon_end: float = 0.1
    """Exploration: the probability after epsilon_decay_steps student env steps."""
    epsilon_decay_steps: int = 100_000
    """Student env steps over which epsilon falls linearly from epsilon_start to epsilon_end."""
    learning_starts: int = 5_000
    """Gradient steps wait until the memory holds this many transitions."""
    random_start: bool = True
    """Uniform actions until learning starts (Mnih et al.'s replay start; SB3's learning_starts); false: epsilon
    from the schedule from the first step."""
    capacity: int | None = 100_000
    """Replay memory size in transitions (None: 100,000 for vector observations, 20,000 for Atari frames), never
    more than the budget."""
    clip_rewards: bool = False
    """Clip rewards to their sign in the TD target (the Atari convention)."""
    log_steps: int | None = 1_000
    """Env steps between log lines of the student's play, the gradient steps' scalars between them averaged (None:
    one line per chunk of play)."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "collect_steps", "n_step", "target_update", "batch_size"):
            check_count(name, getattr(self, name), none_ok=False)
        for name in ("epsilon_decay_steps", "learning_starts"):
            check_count(name, getattr(self, name), minimum=0, none_ok=False)
        check_count("capacity", self.capacity)
        check_count("log_steps", self.log_steps)
        for name in ("replay_ratio", "lr", "max_grad_norm"):
            check_positive(name, getattr(self, name), none_ok=False)
        check_positive("optimizer_eps", self.optimizer_eps)
        for name in ("gamma", "epsilon_start", "epsilon_end", "rmsprop_alpha"):
            check_probability(name, getattr(self, name))
        for name in ("double_q", "rmsprop_centered", "random_start", "clip_rewards"):
            if not isinstance(getattr(self, name), bool):
                raise UserValueError(f"--{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)


def make_optimizer(params, cfg: DQNConfig) -> torch.optim.Optimizer:
    """The Config's optimizer on ``params``: torch's Adam or RMSprop with its eps (and alpha, centered), in its
    multi-tensor form (:func:`multi_tensor`)."""
    eps = {} if cfg.optimizer_eps is None else {"eps": cfg.optimizer_eps}
    if cfg.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, centered=cfg.rmsprop_centered, **eps)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, **eps)
    return multi_tensor(opt)


# --- the target, the loss, the exploration schedule ---------------------------------------------------------------


@torch.no_grad()
def td_target(
    rewards: torch.Tensor,
    discount: torch.Tensor,
    q_next_online: torch.Tensor,
    q_next_target: torch.Tensor,
    double_q: bool = True,
) -> torch.Tensor:
    """y = rewards + discount * Q_target(s', a'), a' = argmax Q_online(s') (``double_q``) or argmax Q_target(s');
    ``discount`` is gamma^m, 0 where the window ended by a termination."""
    a = (q_next_online if double_q else q_next_target).argmax(-1, keepdim=True)
    return rewards + discount * q_next_target.gather(-1, a).squeeze(-1)


def td_loss(q: torch.Tensor, actions: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean Huber loss (delta 1) of Q(s, a) against the target over the ``valid`` rows (0 where there are none)."""
    per = F.smooth_l1_loss(q.gather(-1, actions.unsqueeze(-1)).squeeze(-1), target, reduction="none")
    return (per * valid).sum() / valid.sum().clamp(min=1.0)


def linear_epsilon(start: float, end: float, decay_steps: int, step: int) -> float:
    """Epsilon after ``step`` student env steps: linear from ``start`` to ``end`` over ``decay_steps``."""
    if decay_steps <= 0 or step >= decay_steps:
        return end
    return start + (end - start) * step / decay_steps


# --- the replay memory -------------------------------------------------------------------------------------------


class TransitionMemory:
    """A ring of ``slots`` steps of ``num_envs`` envs in time order (obs, action, reward, end code, and where
    ``labels`` the teacher's output), from which n-step TD windows are drawn: a step's next state is the next slot's
    observation of the same env, so no observation is stored twice."""

    def __init__(
        self, slots: int, num_envs: int, obs_shape, obs_dtype, n_actions: int, device: torch.device, labels: bool = True
    ):
        self.slots, self.num_envs, self.device = slots, num_envs, device
        self.obs = torch.zeros((slots, num_envs, *obs_shape), dtype=obs_dtype, device=device)
        self.actions = torch.zeros((slots, num_envs), dtype=torch.long, device=device)
        self.rewards = torch.zeros((slots, num_envs), device=device)
        self.codes = torch.zeros((slots, num_envs), dtype=torch.uint8, device=device)
        self.teacher = torch.zeros((slots, num_envs, n_actions), device=device) if labels else None
        self.size = 0  # filled slots
        self.head = 0  # the next slot to write

    def _keys(self) -> tuple[str, ...]:
        return ("obs", "actions", "rewards", "codes") + (("teacher",) if self.teacher is not None else ())

    def __len__(self) -> int:
        return self.size * self.num_envs

    def add(self, b: Batch, labelled: bool = False, clip_rewards: bool = False) -> None:
        """A chunk (T, N) of one rollout, continuing the previous chunk of the same rollout; ``labelled``: the
        batch carries the teacher's outputs (else they are stored as 0); ``clip_rewards``: rewards to their sign.
        A chunk that does not wrap around the ring is written into a slice of it (no index tensor)."""
        T = b.obs.shape[0]
        dev = self.device
        if self.head + T <= self.slots:
            idx: slice | torch.Tensor = slice(self.head, self.head + T)
        else:
            idx = (self.head + torch.arange(T, device=dev)) % self.slots
        dones, terminated = b.dones.to(dev), b.terminated.to(dev)
        codes = torch.where(terminated > 0, TERMINATED, torch.where(dones > 0, CUT, CONTINUE))
        self.codes[idx] = codes.to(torch.uint8)
        self.obs[idx] = b.obs.to(dev, self.obs.dtype)
        self.actions[idx] = b.actions.to(dev)
        rewards = b.rewards.to(dev)
        self.rewards[idx] = rewards.sign() if clip_rewards else rewards
        if self.teacher is not None:
            self.teacher[idx] = b.teacher_logits.to(dev).float() if labelled else 0.0
        self.head = int((self.head + T) % self.slots)
        self.size = min(self.size + T, self.slots)

    def cut(self) -> None:
        """The newest step's successor will not be stored (the rollout that played it is gone: a phase's end, a
        resume): no TD window crosses it."""
        if self.size:
            last = (self.head - 1) % self.slots
            self.codes[last][self.codes[last] == CONTINUE] = CUT

    def sample(self, batch_size: int, n_step: int, gamma: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A minibatch of n-step windows: obs, actions, teacher outputs (where the memory has them), the discounted
        reward sums, the bootstrap states, their discount (gamma^m, 0 after a termination) and ``valid`` (0 where the
        step's own transition cannot be TD-trained: it led into a truncation). The newest slot is never a window's
        start (its successor is not stored yet). Rows are read by one flat index (slot * num_envs + env) per
        window step, and the window's first step, which always has a stored successor, skips the bounds checks."""
        dev, S, N, size = self.device, self.slots, self.num_envs, self.size
        start = (self.head - size) % S
        p = torch.randint(0, size - 1, (batch_size,), generator=generator, device=dev)  # logical positions
        e = torch.randint(0, N, (batch_size,), generator=generator, device=dev)
        codes, rewards = self.codes.view(-1), self.rewards.view(-1)
        slot = (start + p) % S
        row = slot * N + e
        code = codes.index_select(0, row)
        alive = code != CUT  # a step whose successor is stored (p <= size - 2), not into a truncation
        ret = torch.where(alive, rewards.index_select(0, row), 0.0) + 0.0  # 0 + r, as the sum's first term
        m = alive.long()  # steps summed
        terminated = alive & (code == TERMINATED)
        alive &= ~terminated
        for k in range(1, n_step):
            pos = p + k
            alive &= pos <= size - 2
            row_k = (start + pos.clamp(max=size - 1)) % S * N + e
            code = codes.index_select(0, row_k)
            alive &= code != CUT
            r = rewards.index_select(0, row_k)
            ret += torch.where(alive, gamma**k * r, 0.0)
            m += alive.long()
            ended = alive & (code == TERMINATED)
            terminated |= ended
            alive &= ~ended
        boot = (slot + m) % S * N + e
        discount = torch.where(terminated, 0.0, gamma ** m.float())

        def rows(t: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
            return t.view(S * N, *t.shape[2:]).index_select(0, at)

        out = {"obs": rows(self.obs, row), "actions": rows(self.actions, row)}
        if self.teacher is not None:
            out["teacher"] = rows(self.teacher, row)
        return out | {
            "returns": ret,
            "next_obs": rows(self.obs, boot),
            "discount": discount,
            "valid": (m > 0).float(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k).cpu() for k in self._keys()}, "size": self.size, "head": self.head}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if tuple(d["obs"].shape[:2]) != (self.slots, self.num_envs):
            raise UserError(
                f"--resume: the checkpoint's replay memory holds {tuple(d['obs'].shape[:2])} (slots, envs), "
                f"this run's {(self.slots, self.num_envs)}: give the same --num-envs, --capacity and --steps"
            )
        for k in self._keys():
            getattr(self, k).copy_(d[k])
        self.size, self.head = int(d["size"]), int(d["head"])


# --- the learner -------------------------------------------------------------------------------------------------

TDTerm = Callable[[dict[str, torch.Tensor], torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
"""``term(minibatch, q) -> (loss term, scalars)``: a method's term on a gradient step's loss, weighted already, from
the memory's minibatch (:meth:`TransitionMemory.sample`) and the student's Q-values on its states (with
gradients); the step adds it to the TD loss and logs its scalars."""

ChunkHook = Callable[[list[float]], tuple[TDTerm | None, dict[str, Any]]]
"""``hook(returns) -> (term, scalars)``: before a chunk's gradient steps, from the returns of the student's last
100 training episodes, the term its steps add (None: plain TD) and the method's scalars for the chunk's log line."""


class DQNLearner:
    """A run's DQN: the optimizer (``ctx.begin`` is called with it), the target network, the replay memory, the
    student's played steps and owed gradient steps; what a method saved beside them is ``resumed``."""

    def __init__(self, ctx: MethodContext, cfg: DQNConfig, labels: bool = False):
        spec = ctx.env_specs[0]
        self.ctx, self.cfg, self.student = ctx, cfg, ctx.student
        self.params = list(self.student.parameters())
        self.opt = make_optimizer(self.params, cfg)
        self.resumed: dict[str, Any] = ctx.begin(self.opt) or {}
        multi_tensor(self.opt)  # a resumed optimizer brings back its checkpoint's settings
        self.target = copy.deepcopy(self.student).requires_grad_(False)
        if "target" in self.resumed:
            self.target.load_state_dict(self.resumed["target"])
        N = cfg.num_envs
        frames = len(spec.obs_shape) == 3
        cap = min(cfg.capacity or (20_000 if frames else 100_000), ctx.budget + N)
        self.memory = TransitionMemory(
            max(2, math.ceil(cap / N)),
            N,
            spec.obs_shape,
            torch.uint8 if frames else torch.float32,
            spec.n_actions,
            ctx.device,
            labels=labels,
        )
        if "memory" in self.resumed:
            self.memory.load_state_dict(self.resumed["memory"])
            self.memory.cut()  # the rollout that played its newest step is gone
        self.played = int(self.resumed.get("student_played", 0))
        self.owed = float(self.resumed.get("owed", 0.0))
        self.returns: deque[float] = deque(self.resumed.get("student_returns", []), maxlen=100)

    def state_dict(self) -> dict[str, Any]:
        """The learner's part of a checkpoint's method state."""
        return {
            "memory": self.memory.state_dict(),
            "target": {k: v.cpu() for k, v in self.target.state_dict().items()},
            "student_played": self.played,
            "owed": self.owed,
            "student_returns": list(self.returns),
        }

    def remember(self, b: Batch, labelled: bool = False) -> None:
        """A chunk of play (the student's, or a teacher's) into the memory."""
        self.memory.add(b, labelled=labelled, clip_rewards=self.cfg.clip_rewards)

    def learning(self) -> bool:
        """Whether the memory holds enough transitions for gradient steps."""
        return len(self.memory) >= max(self.cfg.learning_starts, 2 * self.cfg.num_envs)

    def epsilon(self) -> float:
        """The student's exploration now: 1 until learning starts (``random_start``), then the linear schedule."""
        cfg = self.cfg
        if cfg.random_start and not self.learning():
            return 1.0
        return linear_epsilon(cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_decay_steps, self.played)

    def step(self, term: TDTerm | None = None) -> dict[str, float]:
        """One gradient step of the TD loss (plus ``term``) on a minibatch; the target network is refreshed after
        every ``target_update``-th of the run's gradient steps. Its scalars."""
        cfg, student = self.cfg, self.student
        mb = self.memory.sample(cfg.batch_size, cfg.n_step, cfg.gamma, self.ctx.generator)
        with torch.no_grad():
            q_next_target = self.target(mb["next_obs"], 0)["logits"]
            q_next_online = student(mb["next_obs"], 0)["logits"] if cfg.double_q else q_next_target
            y = td_target(mb["returns"], mb["discount"], q_next_online, q_next_target, cfg.double_q)
        q = student(mb["obs"], 0)["logits"]
        l_td = td_loss(q, mb["actions"], y, mb["valid"])
        loss = l_td
        s = {"train/td_loss": l_td.item(), "train/q_mean": q.detach().float().mean().item()}
        if term is not None:
            extra, extra_scalars = term(mb, q)
            loss = loss + extra
            s.update(extra_scalars)
        for p in self.params:  # opt.zero_grad() (set_to_none), without its per-call wrappers
            p.grad = None
        loss.backward()
        clip_grad_norm(self.params, cfg.max_grad_norm)
        self.opt.step()  # one of the run's gradient steps: the context counts it
        if self.ctx.gradient_steps % cfg.target_update == 0:
            self.target.load_state_dict(student.state_dict())
        s["train/loss"] = loss.item()
        return s

    def play(
        self,
        save: MethodState,
        hook: ChunkHook | None = None,
        label: bool = False,
        memory_scalar: str = "train/memory_size",
    ) -> None:
        """The student plays epsilon-greedy on its Q-values until the budget is spent, chunk by chunk: each chunk
        into the memory, then ``replay_ratio`` gradient steps per env step once learning has started. ``hook``: the
        method's term and scalars for the chunk; ``label``: the teacher labels every state (for a term that needs
        its outputs); ``save``: the method state of a checkpoint; ``memory_scalar``: the name the memory's size is
        logged under. Ends with a checkpoint."""
        ctx, cfg, N = self.ctx, self.cfg, self.cfg.num_envs
        if not ctx.done():
            rollout = ctx.rollout(0, N)
            rollout.episode_returns.extend(self.returns)
        rows: list[dict[str, float]] = []
        last_log = ctx.env_steps
        while not ctx.done():
            eps = self.epsilon()
            n = ctx.chunk_steps(N, cfg.collect_steps)
            b = rollout.collect(n, actor="student", student=self.student, greedy=True, epsilon=eps, label=label)
            self.remember(b, labelled=label)
            self.played += n * N
            self.returns = deque(rollout.episode_returns, maxlen=100)
            term, scalars = hook(list(self.returns)) if hook is not None else (None, {})
            if self.learning():
                self.owed += cfg.replay_ratio * n * N
                while self.owed >= 1.0:
                    rows.append(self.step(term))
                    self.owed -= 1.0
            if cfg.log_steps is None or ctx.env_steps - last_log >= cfg.log_steps or ctx.done():
                ctx.log(
                    {
                        **mean_stats(rows),
                        "rollout/ep_rew_mean": rollout.mean_return(),
                        **scalars,
                        "train/epsilon": eps,
                        memory_scalar: len(self.memory),
                    }
                )
                rows, last_log = [], ctx.env_steps
            ctx.maybe_checkpoint(self.opt, save)
        ctx.maybe_checkpoint(self.opt, save, force=True)


# --- rl-zoo3's settings ------------------------------------------------------------------------------------------

_SB3_DQN = {
    "n_envs": 1,
    "learning_rate": 1e-4,
    "buffer_size": 1_000_000,
    "learning_starts": 100,
    "batch_size": 32,
    "gamma": 0.99,
    "train_freq": 4,
    "gradient_steps": 1,
    "target_update_interval": 10_000,
    "exploration_fraction": 0.1,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,
    "max_grad_norm": 10.0,
}
"""SB3's DQN defaults (2.9), for what an rl-zoo3 entry does not set."""


def zoo_dqn_settings(env_ids: list[str]) -> dict[str, Any]:
    """DQNConfig fields from the envs' DQN entry of teachers/hyperparams.toml (rl-zoo3's tuned entries; on MinAtar
    the MinAtar paper's DQN; SB3's defaults where it is silent), as SB3's DQN runs them: one chunk of play per
    ``train_freq`` steps, ``gradient_steps`` (-1: one per env step) after each, the target network copied every
    ``target_update_interval`` env steps (so at most once per chunk), epsilon over ``exploration_fraction`` of the
    entry's ``n_timesteps`` (whatever the run's budget), uniform play until ``learning_starts``, SB3's optimizer
    (Adam) unless the entry names RMSprop, rewards clipped where the family's teachers train on clipped rewards
    (Atari). {} where an env has no entry, or several envs have different ones (a multi-task run)."""
    from rl_distill.rl import clips_rewards, shared_zoo_entry

    hp = shared_zoo_entry(env_ids, "dqn", _SB3_DQN)
    if hp is None:
        return {}
    n_envs, train_freq = int(hp["n_envs"]), int(hp["train_freq"])
    round_steps = n_envs * train_freq
    grads = round_steps if int(hp["gradient_steps"]) < 0 else int(hp["gradient_steps"])
    ratio = grads / round_steps
    kwargs = dict(hp.get("optimizer_kwargs", {}))
    rmsprop = str(hp.get("optimizer_class", "Adam")).lower() == "rmsprop"
    settings = {
        "num_envs": n_envs,
        "collect_steps": train_freq,
        "replay_ratio": ratio,
        "target_update": max(1, round(max(int(hp["target_update_interval"]), round_steps) * ratio)),
        "batch_size": int(hp["batch_size"]),
        "lr": float(hp["learning_rate"]),
        "gamma": float(hp["gamma"]),
        "capacity": int(hp["buffer_size"]),
        "learning_starts": int(hp["learning_starts"]),
        "random_start": True,
        "epsilon_start": float(hp["exploration_initial_eps"]),
        "epsilon_end": float(hp["exploration_final_eps"]),
        "epsilon_decay_steps": round(float(hp["exploration_fraction"]) * int(hp["n_timesteps"])),
        "max_grad_norm": float(hp["max_grad_norm"]),
        "optimizer": "rmsprop" if rmsprop else "adam",
        "optimizer_eps": float(kwargs["eps"]) if "eps" in kwargs else None,
        "clip_rewards": clips_rewards(env_ids[0]),
    }
    if rmsprop:
        settings["rmsprop_alpha"] = float(kwargs.get("alpha", 0.99))
        settings["rmsprop_centered"] = bool(kwargs.get("centered", False))
    return settings


def zoo_dqn_budget(env_id: str) -> int | None:
    """The ``n_timesteps`` of the env's DQN entry in teachers/hyperparams.toml (None where it has none)."""
    from rl_distill.teachers.train import hyperparams

    try:
        return int(hyperparams(env_id, "dqn")["n_timesteps"])
    except UserError:
        return None
