"""QDagger (Agarwal et al., NeurIPS 2022, "Reincarnating Reinforcement Learning"): a DQN student that reuses a teacher.

The student is a DQN (rl_distill/td.py: its replay memory, n-step double-DQN target, Huber loss, target network and
epsilon-greedy play): its network's per-action outputs (the suite's student heads) are its Q-values Q_S(s, .). Every
gradient step, on a minibatch from one replay memory, minimises

    L = L_TD + lambda * H(softmax(q_T(s, .) / teacher_tau), softmax(Q_S(s, .) / student_tau))

- L_TD: the core's TD loss (td.py): Huber (delta 1) between Q_S(s, a) and the n-step target
  y = sum_{k<m} gamma^k r_{t+k} + [not terminated] gamma^m Q_target(s_{t+m}, argmax_a Q_S(s_{t+m}, a))
  (double-DQN; ``double_q false``: max_a Q_target, as the paper and CleanRL), the target network refreshed every
  ``target_update`` gradient steps (both phases).
- H: the cross-entropy between the teacher's policy softmax(q_T / teacher_tau), from its Q-values (a DQN teacher)
  or its logits (a PPO teacher), and the student's softmax(Q_S / student_tau). Its gradient is that of the paper's
  KL(teacher || student): the two differ by the teacher's entropy, a constant.

The algorithm:

1. Teacher play: the teacher acts greedily with probability 1 - ``teacher_epsilon`` (else a uniform action) for
   ``teacher_steps`` env steps (num_envs envs side by side); every transition goes into the replay memory with the
   teacher's output on its state.
2. Offline pre-training: ``offline_steps`` gradient steps of L with lambda = ``lam`` on that memory (no env steps);
   logged every ``log_every`` of them (``qdagger/offline_steps``, ``train/td_loss``, ``distill/loss``).
3. Online: the student plays epsilon-greedy on its Q-values (epsilon linearly from ``epsilon_start`` to
   ``epsilon_end`` over ``epsilon_decay_steps`` of its env steps); its transitions join the same memory (the
   teacher's stay until the ring overwrites them); ``replay_ratio`` gradient steps of L per env step, once the memory
   holds ``learning_starts`` transitions. lambda decays with the student's progress towards the teacher:

       lambda = lam * clip(1 - (G_S - G_0) / (G_T - G_0), 0, 1)

   G_S: the mean return of the student's last ``return_window`` training episodes (lambda = lam until it has that
   many); G_T: the teacher's recorded score (its JSON's greedy evaluation; where it records none, the mean return of
   its episodes in step 1); G_0: the env's score floor (the suite's 0% of a teacher: the random score on Atari and
   MinAtar, -500 on Acrobot) or 0 where it has none. Where G_T is unknown or not above G_0, lambda stays ``lam``.
4. Until the budget is spent.

Env steps: the budget counts both phases' real env steps, the teacher's of step 1 included (so the online phase
has ``budget - teacher_steps``); the offline gradient steps are no env steps (the run's ``gradient_steps`` counts
them with the online ones). ``lam 0 teacher_steps 0 offline_steps 0`` is DQN from scratch with the same settings
(the teacher is then never queried), the paper's tabula-rasa comparison: ``rl-distill distill dqn`` with this
method's DQN options (``num_envs``, ``n_step``, ``lr`` ... as ``qdagger --help`` lists them; ``--random-start false``)
runs the same learner.

Deviations from the paper (google-research/reincarnating_rl, qdagger_dqn_agent.py, run_experiment.py,
configs/qdagger_dqn.gin) and from CleanRL (qdagger_dqn_atari_jax_impalacnn.py):

- One replay memory for both phases. The paper's Atari runs pre-train on the teacher's own final 1M-transition
  replay and then fill the agent's; its ``teacher_steps > 0`` path (and CleanRL) collect the teacher's data by
  running it (here: constant ``teacher_epsilon``; CleanRL decays epsilon from 1.0 to 0.01 over that play). CleanRL's
  online phase starts an empty memory and waits 80k steps; here the teacher's transitions stay in the memory.
- lambda: CleanRL uses lambda = max(1 - G_S / G_T, 0) with G_S over the last 10 training episodes and G_T from a
  10-episode teacher evaluation; the paper uses max(1 - (G_S - G_random) / (G_T - G_random), 0) with G_S from its
  evaluation phase, latched at 0 once reached, and 0 after 1.5M online steps; it also anneals the learning rate
  from 1e-4 to 1e-5 with lambda. Here: the paper's normalisation (G_random = the suite's score floor, so negative
  returns on Pong or Acrobot give a ratio in [0, 1]), CleanRL's training-episode window, recomputed every chunk
  (no latch, no deadline), a constant learning rate.
- Target: double-DQN by default (both references take max_a Q_target), n-step with n = ``n_step`` (paper 3,
  CleanRL 1), Huber (paper; CleanRL squares).
- Both temperatures separate (the paper divides both by one temperature, 0.1; CleanRL 1.0), so a PPO teacher's
  logits and a DQN teacher's Q-values can each get their own; default 0.01 (Rusu et al.'s), as the CartPole DQN
  teacher's Q-values differ by a median 0.04 between its actions: softmax(q_T / 0.1) is nearly uniform there (mean
  entropy 0.61 nats of ln 2 = 0.69), softmax(q_T / 0.01) is not (0.22).
- Teacher outputs are stored with each transition (one teacher query per visited state) rather than recomputed on
  every sampled minibatch; with ``lam 0`` the online phase does not query the teacher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rl_distill import losses
from rl_distill.envs import score_floor
from rl_distill.errors import UserError, UserValueError, check_count, check_finite, check_positive, check_probability
from rl_distill.supervised import mean_stats
from rl_distill.td import DQNConfig, DQNLearner, TDTerm

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext
    from rl_distill.teachers import Teacher

NAME = "qdagger"
MULTI_TASK = False


@dataclass
class Config(DQNConfig):
    """QDagger's options after the DQN's (rl_distill/td.py), whose defaults here are the CartPole settings this
    method was measured with (4 envs, chunks of 16 steps, 3-step double-DQN, Adam 1e-3, batch 64, target every
    500 gradient steps, 0.5 gradient steps per env step, epsilon 0.1 -> 0.01 over 5k steps from the first step)."""

    num_envs: int = 4
    """Parallel envs, the teacher's in step 1 and the student's online."""
    collect_steps: int = 16
    n_step: int = 3
    """Steps of the TD target's reward sum before it bootstraps (paper: 3, CleanRL: 1)."""
    double_q: bool = True
    target_update: int = 500
    """Gradient steps between copies of the student into the target network (both phases)."""
    replay_ratio: float = 0.5
    """Online gradient steps per env step (DQN's 1 per 4: 0.25)."""
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    optimizer_eps: float | None = None
    epsilon_start: float = 0.1
    """Online exploration: probability of a uniform action at the student's first online step."""
    epsilon_end: float = 0.01
    epsilon_decay_steps: int = 5_000
    learning_starts: int = 1_000
    """Online gradient steps wait until the memory holds this many transitions (matters without teacher play)."""
    random_start: bool = False
    capacity: int | None = None
    log_steps: int | None = None
    teacher_steps: int = 2_000
    """Step 1: env steps the teacher plays to fill the replay memory (counted in the budget); 0: no teacher play."""
    teacher_epsilon: float = 0.1
    """Step 1: probability of a uniform action instead of the teacher's greedy one."""
    offline_steps: int = 2_000
    """Step 2: gradient steps on the teacher's transitions before the student plays (no env steps)."""
    lam: float = 1.0
    """Weight lambda of the distillation cross-entropy (its value in step 2 and its start online; 0: plain DQN)."""
    teacher_tau: float = 0.01
    """Temperature of the teacher's policy softmax(q_T / teacher_tau), on its Q-values or logits (paper: 0.1 on
    Atari; a CartPole DQN teacher's actions differ by ~0.04 in Q, near-uniform at 0.1)."""
    student_tau: float = 0.01
    """Temperature of the student's policy softmax(Q_S / student_tau) in the distillation term (paper: 0.1)."""
    return_window: int = 10
    """Online lambda: the student's return is the mean of its last this many training episodes (CleanRL: 10)."""
    log_every: int = 100
    """Offline phase: gradient steps between log lines (and checkpoint chances)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("log_every", self.log_every, none_ok=False)
        check_count("return_window", self.return_window, none_ok=False)
        if self.return_window > 100:
            raise UserValueError(f"--return-window must be at most 100 episodes, got {self.return_window}")
        for name in ("teacher_steps", "offline_steps"):
            check_count(name, getattr(self, name), minimum=0, none_ok=False)
        for name in ("teacher_tau", "student_tau"):
            check_positive(name, getattr(self, name), none_ok=False)
        check_finite("lam", self.lam, minimum=0.0, none_ok=False)
        check_probability("teacher_epsilon", self.teacher_epsilon)
        if self.offline_steps > 0 and self.teacher_steps == 0:
            raise UserValueError(
                f"--offline-steps {self.offline_steps} needs transitions to train on: give --teacher-steps > 0 "
                "(or --offline-steps 0)"
            )


def default_steps(env_id: str) -> int:
    return {"CartPole-v1": 10_000, "Acrobot-v1": 10_000}.get(env_id, 100_000)


# --- the distillation term and its weight ------------------------------------------------------------------------


def distill_term(teacher_out: torch.Tensor, q: torch.Tensor, teacher_tau: float, student_tau: float) -> torch.Tensor:
    """Per state, H(softmax(teacher_out / teacher_tau), softmax(q / student_tau)), shape (B,)."""
    return losses.cross_entropy(teacher_out.float() / teacher_tau, q.float() / student_tau)


def distill_weight(
    lam: float, student_returns: list[float], teacher_return: float | None, floor: float | None, window: int
) -> float:
    """Online lambda: lam * clip(1 - (G_S - G_0) / (G_T - G_0), 0, 1), G_S the mean of the last ``window`` student
    returns, G_0 = ``floor`` (0 where None); ``lam`` while fewer than ``window`` episodes have ended, and where
    G_T is unknown or not above G_0."""
    g0 = 0.0 if floor is None else float(floor)
    if len(student_returns) < window or teacher_return is None or teacher_return <= g0:
        return float(lam)
    g_s = float(np.mean(student_returns[-window:]))
    progress = (g_s - g0) / (teacher_return - g0)
    return float(lam) * min(1.0, max(0.0, 1.0 - progress))


def teacher_policy_source(teacher: Teacher) -> str:
    """What the teacher's policy softmax(output / tau) is made of: "Q-values" or "logits"; a one-line error for a
    teacher that has neither."""
    if teacher.kind == "q":
        return "Q-values"
    if teacher.kind == "actor_critic":
        return "logits"
    raise UserError(
        f"qdagger needs a teacher with Q-values (DQN) or policy logits (PPO); {teacher.name} is a {teacher.kind!r} one"
    )


def distillation(cfg: Config, lam: float) -> TDTerm | None:
    """lambda * H on a gradient step's minibatch (the teacher's stored outputs) and the student's Q-values, with its
    scalars; None where lambda is 0 (plain TD)."""
    if lam <= 0:
        return None

    def term(mb: dict[str, torch.Tensor], q: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        h = distill_term(mb["teacher"], q, cfg.teacher_tau, cfg.student_tau).mean()
        with torch.no_grad():
            kl = losses.forward_kl(mb["teacher"] / cfg.teacher_tau, q.float() / cfg.student_tau).mean()
            agree = (mb["teacher"].argmax(-1) == q.argmax(-1)).float().mean()
        scalars = {"distill/loss": h.item(), "distill/kl": kl.item(), "distill/teacher_agreement": agree.item()}
        return lam * h, scalars

    return term


# --- the algorithm -----------------------------------------------------------------------------------------------


def train(ctx: MethodContext, cfg: Config) -> None:
    teacher, env_id = ctx.teachers[0], ctx.env_ids[0]
    teacher_policy_source(teacher)
    dqn = DQNLearner(ctx, cfg, labels=True)  # optimizer, target network, replay memory (a resumed run's)
    state = dqn.resumed
    teacher_played = int(state.get("teacher_played", 0))
    offline_done = int(state.get("offline_done", 0))
    teacher_returns: list[float] = list(state.get("teacher_returns", []))
    floor = score_floor(env_id)
    lam_now = float(state.get("lam_now", cfg.lam))
    teacher_steps = min(cfg.teacher_steps, ctx.budget)
    N = cfg.num_envs

    def save() -> dict[str, Any]:
        return {
            **dqn.state_dict(),
            "teacher_played": teacher_played,
            "offline_done": offline_done,
            "teacher_returns": list(teacher_returns),
            "lam_now": lam_now,
        }

    # 1. Teacher play: its epsilon-greedy transitions fill the memory.
    if teacher_played < teacher_steps:
        rollout = ctx.rollout(0, N)
        earlier = list(teacher_returns)  # a resumed run's teacher episodes
        while teacher_played < teacher_steps and not ctx.done():
            n = min(ctx.chunk_steps(N, cfg.collect_steps), math.ceil((teacher_steps - teacher_played) / N))
            before = rollout.episodes
            dqn.remember(rollout.collect(n, actor="teacher", epsilon=cfg.teacher_epsilon), labelled=True)
            teacher_played += n * N
            if rollout.episodes > before:
                teacher_returns = earlier + list(rollout.episode_returns)
            ctx.log(
                {
                    "rollout/ep_rew_mean": rollout.mean_return(),
                    "qdagger/phase": 1,
                    "distill/memory_size": len(dqn.memory),
                }
            )
            ctx.maybe_checkpoint(dqn.opt, save)
        dqn.memory.cut()  # the student's rollout does not continue the teacher's episodes
    teacher_return = (
        teacher.score if teacher.score is not None else (float(np.mean(teacher_returns)) if teacher_returns else None)
    )

    # 2. Offline pre-training on the teacher's transitions: L with lambda = lam.
    rows: list[dict[str, float]] = []
    while offline_done < cfg.offline_steps and dqn.memory.size >= 2:
        rows.append(dqn.step(distillation(cfg, cfg.lam)))
        offline_done += 1
        if offline_done % cfg.log_every == 0 or offline_done == cfg.offline_steps:
            ctx.log(
                {
                    **mean_stats(rows),
                    "distill/lambda": cfg.lam,
                    "qdagger/phase": 2,
                    "qdagger/offline_steps": offline_done,
                }
            )
            rows = []
            ctx.maybe_checkpoint(dqn.opt, save)

    # 3. Online: the student's DQN play; each chunk's lambda follows its return towards the teacher's.
    def online(returns: list[float]) -> tuple[TDTerm | None, dict[str, Any]]:
        nonlocal lam_now
        lam_now = distill_weight(cfg.lam, returns, teacher_return, floor, cfg.return_window)
        scalars = {"distill/lambda": lam_now, "qdagger/phase": 3, "qdagger/teacher_return": teacher_return}
        return distillation(cfg, lam_now), scalars

    dqn.play(save, online, label=cfg.lam > 0, memory_scalar="distill/memory_size")
