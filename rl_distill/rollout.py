"""Batched acting and teacher labelling, shared by every method.

One :class:`Rollout` drives one vectorized env. Each step makes one batched forward pass of the
teacher (logits or Q-values, hidden features) for all envs and, where needed, one of the student;
the actor is the student, the teacher, or a per-env, per-step beta-mixture of both. Tensors stay on
the device; the only per-env Python loop is the bookkeeping of finished episodes.

:class:`ReplayMemory` holds (observation, teacher output) pairs on the device for the off-policy
methods (Policy Distillation's replay, Actor-Mimic's per-task memories, DAgger's aggregate).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rl_distill.envs import family_of, make_env
from rl_distill.errors import check_count, check_positive
from rl_distill.students import Student
from rl_distill.teachers.base import Teacher


@dataclass
class Batch:
    """T steps of N envs, tensors shaped (T, N, ...)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    """1.0 where the episode ended at this step (terminated or truncated)."""
    teacher_logits: torch.Tensor
    teacher_features: torch.Tensor | None
    logprobs: torch.Tensor | None
    """log pi_actor(a|s) of the student (None when the student did not act)."""
    values: torch.Tensor | None
    student_logits: torch.Tensor | None
    last_obs: torch.Tensor
    """Observation after the last step (for bootstrapping)."""
    last_done: torch.Tensor
    terminated: torch.Tensor | None = None
    """1.0 where the episode ended at this step by termination (not by truncation: a time limit, a frame cap),
    the steps a TD target does not bootstrap from (QDagger)."""

    def flat(self, name: str) -> torch.Tensor:
        x = getattr(self, name)
        return x.reshape(-1, *x.shape[2:])


class Rollout:
    """Vectorized acting in ``env_id`` with teacher labels on every visited state."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        teacher: Teacher | None,
        seed: int,
        device: torch.device | str = "cpu",
        task: int = 0,
        protocol: Any = None,
    ):
        self.env_id = env_id
        self.num_envs = num_envs
        self.teacher = teacher
        self.device = torch.device(device)
        self.task = task
        p = protocol or family_of(env_id).protocol()
        self.env = make_env(env_id, num_envs, protocol=p.for_evaluation() if p is not None else None)
        obs, _ = self.env.reset(seed=seed)
        self.obs = torch.as_tensor(obs, device=self.device)
        self.done = torch.zeros(num_envs, device=self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._ep_return = np.zeros(num_envs)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self.episode_returns: deque[float] = deque(maxlen=100)
        self.episodes = 0
        self.env_steps = 0
        self.teacher_queries = 0

    def _uniform(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, device=self.device)

    @torch.no_grad()
    def collect(
        self,
        n_steps: int,
        actor: str = "student",
        student: Student | None = None,
        beta: float = 0.0,
        epsilon: float = 0.0,
        greedy: bool = False,
        label: bool = True,
        features: bool = False,
    ) -> Batch:
        """Act for ``n_steps`` steps of all envs and return the batch.

        ``actor``: "student" (samples from its policy, or greedy with ``greedy``), "teacher" (greedy),
        or "mixture" (each env, each step: the teacher with probability ``beta``, else the student).
        ``epsilon``: probability of a uniformly random action instead. ``label``: query the teacher on
        every state (counted in ``teacher_queries``).
        """
        if actor not in ("student", "teacher", "mixture"):
            raise ValueError(f"unknown actor {actor!r}")
        need_student = actor in ("student", "mixture")
        need_teacher = label or actor in ("teacher", "mixture")
        if need_student and student is None:
            raise ValueError("a student is needed to act")
        N = self.num_envs
        buf: dict[str, list[torch.Tensor]] = {
            k: []
            for k in ("obs", "actions", "rewards", "dones", "term", "t_logits", "t_feat", "logp", "values", "s_logits")
        }
        for _ in range(n_steps):
            obs = self.obs
            if need_teacher:
                t_out = self.teacher.forward(obs)
                self.teacher_queries += N
                buf["t_logits"].append(t_out["logits"].float())
                if features:
                    buf["t_feat"].append(t_out["features"].float())
            if need_student:
                s_out = student(obs, self.task)
                logits = s_out["logits"]
                if greedy:
                    s_act = logits.argmax(-1)
                else:
                    s_act = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=self.generator).squeeze(
                        -1
                    )
                buf["values"].append(s_out["value"])
                buf["s_logits"].append(logits)
            if actor == "student":
                act = s_act
            elif actor == "teacher":
                act = t_out["logits"].argmax(-1)
            else:
                use_t = self._uniform(N) < beta
                act = torch.where(use_t, t_out["logits"].argmax(-1), s_act)
            if epsilon > 0:
                n_act = (t_out if need_teacher else s_out)["logits"].shape[-1]
                rand = torch.randint(0, n_act, (N,), generator=self.generator, device=self.device)
                act = torch.where(self._uniform(N) < epsilon, rand, act)
            if need_student:
                buf["logp"].append(torch.log_softmax(logits.float(), -1).gather(-1, act.unsqueeze(-1)).squeeze(-1))
            next_obs, rew, term, trunc, _ = self.env.step(act.cpu().numpy())
            done = np.logical_or(term, trunc)
            self._track(rew, done)
            buf["obs"].append(obs)
            buf["actions"].append(act)
            buf["rewards"].append(torch.as_tensor(rew, dtype=torch.float32, device=self.device))
            self.done = torch.as_tensor(done, dtype=torch.float32, device=self.device)
            buf["dones"].append(self.done)
            buf["term"].append(torch.as_tensor(term, dtype=torch.float32, device=self.device))
            self.obs = torch.as_tensor(next_obs, device=self.device)
            self.env_steps += N

        def stack(k):
            return torch.stack(buf[k]) if buf[k] else None

        return Batch(
            obs=stack("obs"),
            actions=stack("actions"),
            rewards=stack("rewards"),
            dones=stack("dones"),
            teacher_logits=stack("t_logits"),
            teacher_features=stack("t_feat"),
            logprobs=stack("logp"),
            values=stack("values"),
            student_logits=stack("s_logits"),
            last_obs=self.obs,
            last_done=self.done,
            terminated=stack("term"),
        )

    def _track(self, rew: np.ndarray, done: np.ndarray) -> None:
        self._ep_return += rew
        self._ep_length += 1
        for i in np.flatnonzero(done):
            self.episode_returns.append(float(self._ep_return[i]))
            self.episodes += 1
            self._ep_return[i] = 0.0
            self._ep_length[i] = 0

    def mean_return(self) -> float | None:
        """Mean raw return of the last 100 finished episodes (SB3's rollout/ep_rew_mean)."""
        return float(np.mean(self.episode_returns)) if self.episode_returns else None

    def close(self) -> None:
        self.env.close()


@dataclass
class ReplayConfig:
    """Knobs of the replay-memory methods (Policy Distillation, Actor-Mimic): play in chunks, then
    take ``replay_ratio`` gradient steps per env step on minibatches from one task's memory."""

    num_envs: int = 8
    """Parallel envs per task."""
    collect_steps: int = 16
    """Steps of each env per chunk of play, before the next round of gradient steps."""
    replay_ratio: float = 0.25
    """Gradient steps per env step collected (each on ``batch_size`` samples from one task's memory)."""
    batch_size: int = 64
    """Minibatch size of each gradient step."""
    lr: float = 1e-3
    """Adam learning rate."""
    capacity: int | None = None
    """Replay memory size per task, in transitions (None: 100,000 for vector observations, 20,000 for
    Atari frames, ~0.6 GB); never more than the task's share of the budget."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "collect_steps", "batch_size"):
            check_count(name, getattr(self, name), none_ok=False)
        check_count("capacity", self.capacity)
        check_positive("replay_ratio", self.replay_ratio, none_ok=False)
        check_positive("lr", self.lr, none_ok=False)


class ReplayMemory:
    """A ring buffer of (observation, teacher logits[, teacher features]) on the device; a minibatch from
    :meth:`sample` names them as a :class:`Batch` does (``obs``, ``teacher_logits``, ``teacher_features``).

    With ``capacity=None`` it only grows (DAgger's aggregated dataset).
    """

    def __init__(
        self,
        capacity: int | None,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        n_actions: int,
        feature_dim: int | None = None,
        device: torch.device | str = "cpu",
    ):
        self.capacity = capacity
        self.device = torch.device(device)
        cap = capacity or 1024
        self.obs = torch.zeros((cap, *obs_shape), dtype=obs_dtype, device=self.device)
        self.teacher_logits = torch.zeros((cap, n_actions), device=self.device)
        self.teacher_features = torch.zeros((cap, feature_dim), device=self.device) if feature_dim else None
        self.size = 0
        self.pos = 0

    @classmethod
    def for_env(
        cls, spec, capacity: int | None, device: torch.device | str, feature_dim: int | None = None
    ) -> ReplayMemory:
        """A memory shaped for an ``EnvSpec``: Atari frames (3-d observations) kept as uint8, the rest as float32."""
        dtype = torch.uint8 if len(spec.obs_shape) == 3 else torch.float32
        return cls(capacity, spec.obs_shape, dtype, spec.n_actions, feature_dim=feature_dim, device=device)

    def __len__(self) -> int:
        return self.size

    def _grow(self, need: int) -> None:
        cap = self.obs.shape[0]
        while cap < need:
            cap *= 2

        def g(t):
            out = torch.zeros((cap, *t.shape[1:]), dtype=t.dtype, device=t.device)
            out[: self.size] = t[: self.size]
            return out

        self.obs, self.teacher_logits = g(self.obs), g(self.teacher_logits)
        if self.teacher_features is not None:
            self.teacher_features = g(self.teacher_features)

    def add(
        self, obs: torch.Tensor, teacher_logits: torch.Tensor, teacher_features: torch.Tensor | None = None
    ) -> None:
        """Add a flat batch (B, ...)."""
        b = obs.shape[0]
        if self.capacity is None:
            if self.size + b > self.obs.shape[0]:
                self._grow(self.size + b)
            idx = torch.arange(self.size, self.size + b, device=self.device)
        else:
            idx = (self.pos + torch.arange(b, device=self.device)) % self.capacity
        self.obs[idx] = obs.to(self.device, self.obs.dtype)
        self.teacher_logits[idx] = teacher_logits.to(self.device, torch.float32)
        if self.teacher_features is not None and teacher_features is not None:
            self.teacher_features[idx] = teacher_features.to(self.device, torch.float32)
        self.pos = int((self.pos + b) % (self.capacity or (1 << 62)))
        self.size = min(self.size + b, self.capacity or (self.size + b))

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``batch_size`` entries drawn uniformly with replacement."""
        idx = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)
        out = {"obs": self.obs[idx], "teacher_logits": self.teacher_logits[idx]}
        if self.teacher_features is not None:
            out["teacher_features"] = self.teacher_features[idx]
        return out

    def state_dict(self) -> dict[str, Any]:
        """The memory for a checkpoint; its keys ``logits`` and ``features`` are the teacher's (kept as earlier
        checkpoints wrote them, so that those still resume)."""
        d = {
            "obs": self.obs[: self.size if self.capacity is None else self.obs.shape[0]].cpu(),
            "logits": self.teacher_logits.cpu(),
            "size": self.size,
            "pos": self.pos,
        }
        if self.teacher_features is not None:
            d["features"] = self.teacher_features.cpu()
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Refill from :meth:`state_dict`'s output, oldest first; this memory's capacity may differ from
        the saved one's (a run resumed with another budget): then only the newest entries are kept."""
        size, pos, cap = int(d["size"]), int(d["pos"]), d["obs"].shape[0]
        order = ((torch.arange(size) + (pos if size == cap else 0)) % cap)[-(self.capacity or size) :]
        self.add(d["obs"][order], d["logits"][order], d["features"][order] if "features" in d else None)
