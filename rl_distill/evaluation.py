"""The one evaluation harness: every score the suite reports comes from :func:`evaluate`.

Episodes run batched on the vectorized env. Each env has a fixed quota of episodes and the env
seeds are fixed, so the same policy and seed give identical returns. Atari is always evaluated with
raw rewards over full games (no life-loss episodes) under the frame cap, and the protocol is
recorded in the result.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rl_distill.envs import env_spec, family_of, make_env
from rl_distill.errors import UserTypeError, UserValueError, check_count, check_finite, check_seed
from rl_distill.metrics import summarize

Policy = Callable[[np.ndarray], Any]

STALL_STEPS = 1_000
"""``evaluate(stall_steps=...)`` for greedy policies (students' curve points and scores, teachers' periodic evaluations
in training): 1,000 agent steps (4,000 frames, ~67 s of play) of a frozen
screen under one constant action end a game (an env's last one) at the score it has."""


@dataclass
class EvalResult:
    """Per-episode returns and lengths, their summary, and the protocol they were measured under."""

    env_id: str
    seed: int
    returns: np.ndarray
    lengths: np.ndarray
    summary: dict[str, Any]
    protocol: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "episodes": int(len(self.returns)),
            "summary": self.summary,
            "protocol": self.protocol,
            "returns": [float(r) for r in self.returns],
            "lengths": [int(n) for n in self.lengths],
        }


def _to_numpy_actions(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a).reshape(-1)


def evaluate(
    policy: Policy,
    env_id: str,
    episodes: int = 100,
    seed: int = 0,
    *,
    num_envs: int | None = None,
    protocol: Any = None,
    reference: float | None = None,
    floor: float | None = None,
    bootstrap_reps: int = 2000,
    max_steps: int | None = None,
    stall_steps: int | None = None,
    progress: str | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` (batched obs -> actions) on ``env_id``.

    ``reference`` (the teacher's score) adds ``percent_of_reference``; Atari games with a known
    random/human pair add ``human_normalized``. ``num_envs`` is part of the seed: keep the default
    for comparable numbers.

    ``stall_steps`` (Atari, for a deterministic policy such as a greedy student): an env's last game whose
    screen (the whole frame stack) and action have not changed for that many steps is scored as it stands,
    at the frame cap's length, instead of being played to the cap. Under a constant input a frozen screen
    stays frozen (Breakout waits for FIRE after a lost life: a policy that never serves otherwise plays
    108k frames of nothing), so the score is the one the full game would give; only an env's last game
    is cut, so no other game's random state changes. ``summary["stalled_games"]`` counts them.

    ``progress`` (a label): a bar on stderr with the games done of ``episodes`` and their running mean; it only
    watches, so every number is the same with it or without.
    """
    family = _check_arguments(policy, env_id, episodes, seed, num_envs, protocol, reference, floor, bootstrap_reps)
    check_count("max_steps", max_steps)
    check_count("stall_steps", stall_steps)
    n = num_envs or min(episodes, family.eval_envs)
    p = protocol or family.protocol()
    p = p.for_evaluation() if p is not None else None
    spec = env_spec(env_id, getattr(p, "full_action_space", False))
    check = getattr(policy, "check_fits", None)
    if callable(check):
        check(spec)
    quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)
    env = make_env(env_id, n, protocol=p)
    returns: list[list[float]] = [[] for _ in range(n)]
    lengths: list[list[int]] = [[] for _ in range(n)]
    capped = family.capped_length(p) if p is not None else None
    stall = stall_steps if capped is not None and stall_steps else None
    stalled = 0
    bar = None  # shown from the first step on: a policy refused at its first actions leaves one error line only
    try:
        obs, _ = env.reset(seed=seed)
        ep_ret = np.zeros(n)
        ep_len = np.zeros(n, dtype=np.int64)
        still = np.zeros(n, dtype=np.int64)  # steps in a row with the same frame stack and action
        prev_actions = None
        steps = 0
        while any(len(returns[i]) < quota[i] for i in range(n)):
            actions = _checked_actions(policy(obs), n, spec.n_actions)
            prev_obs = obs
            obs, rew, term, trunc, _ = env.step(actions)
            if progress and bar is None:
                bar = GamesBar(progress, episodes)
            ep_ret += rew
            ep_len += 1
            steps += 1
            done = term | trunc
            if stall:
                same = (obs.reshape(n, -1) == prev_obs.reshape(n, -1)).all(1) & (rew == 0) & ~done
                if prev_actions is not None:
                    same &= actions == prev_actions
                prev_actions = actions
                still = np.where(same, still + 1, 0)
                for i in np.flatnonzero(still >= stall):
                    if len(returns[i]) == quota[i] - 1:  # its last game: scored as the capped game would be
                        returns[i].append(float(ep_ret[i]))
                        lengths[i].append(capped)
                        stalled += 1
                        if bar is not None:
                            bar.game(ep_ret[i])
            for i in np.flatnonzero(done):
                if len(returns[i]) < quota[i]:
                    returns[i].append(float(ep_ret[i]))
                    lengths[i].append(int(ep_len[i]))
                    if bar is not None:
                        bar.game(ep_ret[i])
                ep_ret[i] = 0.0
                ep_len[i] = 0
            if max_steps is not None and steps >= max_steps:
                break
    finally:
        env.close()
        if bar is not None:
            bar.close()
    r = np.array([x for rs in returns for x in rs], dtype=np.float64)
    ln = np.array([x for ls in lengths for x in ls], dtype=np.int64)
    human = family.human_pair(env_id)
    summary = summarize(r, reference=reference, floor=floor, human=human, reps=bootstrap_reps, seed=seed)
    summary["mean_length"] = float(ln.mean()) if len(ln) else float("nan")
    if stall:
        summary["stalled_games"] = stalled
    return EvalResult(env_id, seed, r, ln, summary, p.to_dict() if p else None)


class GamesBar:
    """An evaluation's progress on stderr: games done of the total and the running mean of their returns (a tqdm
    bar that leaves no line behind once the evaluation ends; stdout stays free for ``--json``)."""

    def __init__(self, label: str, total: int):
        from tqdm import tqdm

        self._sum, self._n = 0.0, 0
        self._bar = tqdm(
            total=total, desc=label, unit="game", leave=False, dynamic_ncols=True, file=sys.stderr, mininterval=0.5
        )
        self._bar.set_postfix_str("mean return -", refresh=True)  # shown at once: a full Atari game takes minutes

    def game(self, ret: float) -> None:
        """One game ended with return ``ret``."""
        self._sum, self._n = self._sum + float(ret), self._n + 1
        self._bar.set_postfix_str(f"mean return {self._sum / self._n:.1f}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _check_arguments(
    policy: Any,
    env_id: str,
    episodes: int,
    seed: int,
    num_envs: int | None,
    protocol: Any,
    reference: float | None,
    floor: float | None,
    bootstrap_reps: int,
) -> Any:
    """:func:`evaluate`'s arguments, each refused in one line as the CLI refuses its flags (a
    :class:`~rl_distill.errors.UserTypeError` for a wrong type, a ``UserValueError`` out of range); returns the env's
    family."""
    if isinstance(policy, (str, Path)):
        raise UserTypeError(
            f"evaluate() takes a policy (a Teacher, or a function from a batch of observations to actions), not the "
            f"name {str(policy)!r}: rd.evaluate(rd.load_teacher({str(policy)!r}), ...)"
        )
    if not callable(policy):
        raise UserTypeError(f"evaluate() takes a callable policy (batch of observations -> actions), got {policy!r}")
    family = family_of(env_id)
    family.check(env_id)
    check_count("episodes", episodes, none_ok=False)
    check_seed(seed)
    check_count("num_envs", num_envs)
    check_count("bootstrap_reps", bootstrap_reps, none_ok=False)
    check_finite("reference", reference)
    check_finite("floor", floor)
    default = family.protocol()
    if protocol is not None and (default is None or type(protocol) is not type(default)):
        want = type(default).__name__ if default is not None else "none (this env has no play protocol)"
        raise UserTypeError(f"protocol for {env_id} must be {want}, got {protocol!r}")
    return family


def _checked_actions(actions: Any, n: int, n_actions: int) -> np.ndarray:
    """The policy's actions as an int array of one action per env, each in range, else a one-line error."""
    a = _to_numpy_actions(actions)
    if a.shape != (n,) or not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise UserValueError(
            f"the policy returned actions of shape {a.shape} and dtype {a.dtype}; expected {n} integer actions "
            "(one per env of the batch)"
        )
    if len(a) and (a.min() < 0 or a.max() >= n_actions):
        raise UserValueError(
            f"the policy returned action {a.max() if a.max() >= n_actions else a.min()}; "
            f"the env has actions 0 to {n_actions - 1}"
        )
    return a


def weights_fingerprint(net: torch.nn.Module) -> str:
    """sha256 of a network's weights (names, shapes, bytes): the cache key of its evaluations."""
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def teacher_fingerprint(teacher: Any) -> str:
    """sha256 of a teacher's weights: the identity of a teacher in benchmark records."""
    return weights_fingerprint(teacher.net)


def evaluate_cached(
    policy: Policy,
    fingerprint: str,
    env_id: str,
    episodes: int,
    seed: int,
    cache_dir: str | Path | None,
    label: str | None = None,
    stall_steps: int | None = None,
    progress: str | None = None,
) -> dict[str, Any]:
    """The summary of ``evaluate(policy, env_id, episodes, seed)``, or the same summary from ``cache_dir`` when
    that exact evaluation (same ``fingerprint`` -- the weights, and anything else the policy's actions depend on --,
    env, protocol, episodes, seed) was done before. The evaluation is deterministic, so the cache changes no number;
    it only saves a benchmark grid from evaluating one network again for every cell. Plain JSON types either way.
    ``progress``: :func:`evaluate`'s bar label (none when the cache answers)."""
    from rl_distill.runs import atomic_write_json, to_json

    if cache_dir is None:
        res = evaluate(policy, env_id, episodes=episodes, seed=seed, stall_steps=stall_steps, progress=progress)
        return json.loads(to_json(res.summary))

    p = family_of(env_id).protocol()
    proto = p.for_evaluation().to_dict() if p is not None else None
    key = _cache_key(fingerprint, env_id, episodes, seed, proto, *([stall_steps] if stall_steps else []))
    path = Path(cache_dir) / f"{key}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())["summary"]
        except (json.JSONDecodeError, KeyError):
            pass  # a foreign or damaged file: evaluate again and overwrite it
    res = evaluate(policy, env_id, episodes=episodes, seed=seed, stall_steps=stall_steps, progress=progress)
    atomic_write_json(
        path,
        {
            "policy": label,
            "env_id": env_id,
            "episodes": episodes,
            "seed": seed,
            "protocol": proto,
            "summary": res.summary,
        },
    )
    return json.loads(to_json(res.summary))


def evaluate_teacher(
    teacher: Any,
    env_id: str,
    episodes: int,
    seed: int,
    cache_dir: str | Path | None = None,
    progress: str | None = None,
) -> dict[str, Any]:
    """A teacher's evaluation summary through :func:`evaluate_cached`: a grid evaluates each teacher once."""
    name = getattr(teacher, "name", None)
    return evaluate_cached(
        teacher, teacher_fingerprint(teacher), env_id, episodes, seed, cache_dir, name, progress=progress
    )


def _cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
