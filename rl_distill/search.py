"""A search teacher: a simulator the search can reset to any state, real episodes, and a PUCT tree search.

Expert iteration (Anthony et al. 2017; AlphaGo Zero) needs a planner that can try actions from a state the
agent is in without moving the real game on. :class:`Simulator` is that for the classic-control envs whose
whole state is the vector ``env.unwrapped.state`` (CartPole-v1, Acrobot-v1, MountainCar-v0): ``step(state,
action)`` writes the state into a private gymnasium env and calls the env's own ``step``, so a simulated
transition is gymnasium's, bit for bit. Its limits:

- deterministic dynamics only: the envs above have none that is random (Acrobot's torque noise is 0 by default),
  and there are no sticky actions; a stochastic env would need sampled transitions, which the tree does not model.
- no episode cap: the time limit is a wrapper of the real env (500 steps in CartPole-v1 and Acrobot-v1, 200 in
  MountainCar-v0), not part of the state, so the search never sees a truncation and plans as if the game went on.
- no other envs: LunarLander's Box2D bodies cannot be set from a vector, and ALE's ``cloneState`` is not wired
  here; any other id is a one-line :class:`UserError`.

:class:`RealEpisodes` plays the real episodes (gymnasium's envs with their time limit, as evaluation plays them)
one at a time per env, exposes each env's current state for the search's root, and counts real steps the way
:class:`rl_distill.rollout.Rollout` does (``env_steps``, ``teacher_queries`` = 0, ``mean_return``).

:func:`mcts` is AlphaZero's search (PUCT selection with the network's policy as the prior, the network's value at
the leaves or rollouts, random or by the network, bootstrapped with it, optional Dirichlet noise at the root) run on
K roots in lockstep, so each simulation costs one batched network evaluation for all K trees; Q values are
normalised by the range seen in the tree (MuZero), so rewards of any scale work. :func:`visit_distribution` turns
the root's visit counts into the targets pi(a) ~ N(a)^(1/tau).
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import gymnasium as gym
import numpy as np

from rl_distill.errors import UserError, check_choice, check_count, check_positive, check_probability

SEARCHABLE_ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
"""Envs whose whole state is ``env.unwrapped.state`` and whose dynamics are deterministic."""


def check_searchable(env_id: str) -> None:
    """A one-line :class:`UserError` for an env the simulator cannot be reset in."""
    if env_id not in SEARCHABLE_ENVS:
        raise UserError(
            f"the search needs a simulator it can reset to any state, and {env_id!r} has none here "
            f"(supported: {', '.join(SEARCHABLE_ENVS)})"
        )


def _make(env_id: str) -> gym.Env:
    check_searchable(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, disable_env_checker=True)


class Simulator:
    """Gymnasium's dynamics of ``env_id`` from any state: ``step(state, action)`` leaves the real game untouched."""

    def __init__(self, env_id: str):
        self.env_id = env_id
        self._env = _make(env_id).unwrapped
        self._env.reset(seed=0)  # a state to replace, and the env's np_random (none of these envs draws from it)
        self.n_actions = int(self._env.action_space.n)
        self.steps = 0
        """Simulated transitions so far (the search's cost; the budget is counted in real steps)."""

    def step(self, state: np.ndarray, action: int) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """(next state, observation, reward, terminated) of ``action`` in ``state``."""
        env = self._env
        env.state = np.array(state, dtype=np.float64)
        if hasattr(env, "steps_beyond_terminated"):
            env.steps_beyond_terminated = None  # CartPole: the step that ends the episode pays its +1
        obs, reward, terminated, _, _ = env.step(int(action))
        self.steps += 1
        return np.array(env.state, dtype=np.float64), obs, float(reward), bool(terminated)


class RealEpisodes:
    """``num_envs`` real copies of ``env_id`` (gymnasium's, time limit included), each one episode at a time.

    Counted like a :class:`~rl_distill.rollout.Rollout`, so a Context sums its ``env_steps`` into the run's.
    """

    def __init__(self, env_id: str, num_envs: int):
        self.envs = [_make(env_id) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.env_steps = 0
        self.teacher_queries = 0
        self.episode_returns: deque[float] = deque(maxlen=100)
        self._returns = np.zeros(num_envs)

    def reset(self, k: int, seed: int) -> np.ndarray:
        """Start a new episode in env ``k``; its first observation."""
        obs, _ = self.envs[k].reset(seed=seed)
        self._returns[k] = 0.0
        return obs

    def state(self, k: int) -> np.ndarray:
        """Env ``k``'s current state, for a :class:`Simulator` (a copy)."""
        return np.array(self.envs[k].unwrapped.state, dtype=np.float64)

    def step(self, k: int, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """(observation, reward, terminated, truncated) of one real step of env ``k``."""
        obs, reward, terminated, truncated, _ = self.envs[k].step(int(action))
        self.env_steps += 1
        self._returns[k] += reward
        if terminated or truncated:
            self.episode_returns.append(float(self._returns[k]))
        return obs, float(reward), bool(terminated), bool(truncated)

    def mean_return(self) -> float | None:
        """Mean return of the last 100 finished episodes (SB3's rollout/ep_rew_mean)."""
        return float(np.mean(self.episode_returns)) if self.episode_returns else None

    def close(self) -> None:
        for e in self.envs:
            e.close()


# --- the search ---------------------------------------------------------------------------------------------


class Model(Protocol):
    def step(self, state: np.ndarray, action: int) -> tuple[np.ndarray, np.ndarray, float, bool]: ...


PolicyValue = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``policy_value(obs (B, ...)) -> (action probabilities (B, A), values (B,))``: the network the search asks."""


ROLLOUT_POLICIES = ("random", "network")


@dataclass
class SearchConfig:
    """AlphaZero's search knobs (a method's Config may extend it, as expert iteration's does)."""

    simulations: int = 32
    """Simulations per search; each expands one leaf (one simulator step and its rollout's, one network evaluation)."""
    c_puct: float = 1.25
    """Weight of the prior's exploration term against the normalised Q."""
    gamma: float = 0.99
    """Discount of the rewards along a simulated path and of the leaf value."""
    dirichlet_alpha: float = 0.5
    """Concentration of the Dirichlet noise mixed into the root's prior."""
    dirichlet_eps: float = 0.25
    """Weight of that noise (0: none)."""
    rollout_steps: int = 0
    """Score a new leaf by a rollout of up to this many simulator steps (classic MCTS, ExIt's first expert): its
    discounted return, plus the network's value where the cap cut it; 0: the value alone."""
    rollout_policy: str = "random"
    """Who plays the rollouts: ``random`` (uniform actions) or ``network`` (the network's greedy action, one batched
    evaluation per rollout step for all new leaves: the leaf is then worth what the network itself would make of
    it, so the search's choice is a policy-improvement step over the network, as with AlphaGo's rollout policy)."""

    def __post_init__(self) -> None:
        check_choice("rollout_policy", self.rollout_policy, ROLLOUT_POLICIES)
        check_count("simulations", self.simulations, none_ok=False)
        check_count("rollout_steps", self.rollout_steps, minimum=0, none_ok=False)
        check_positive("c_puct", self.c_puct, none_ok=False)
        check_positive("dirichlet_alpha", self.dirichlet_alpha, none_ok=False)
        check_probability("gamma", self.gamma)
        check_probability("dirichlet_eps", self.dirichlet_eps)


class Bounds:
    """The range of the values seen in one tree; Q is scored as its position in that range (MuZero)."""

    def __init__(self) -> None:
        self.lo, self.hi = np.inf, -np.inf

    def update(self, value: float) -> None:
        self.lo, self.hi = min(self.lo, value), max(self.hi, value)

    def normalize(self, q: np.ndarray) -> np.ndarray:
        return (q - self.lo) / (self.hi - self.lo) if self.hi > self.lo else np.full_like(q, 0.5)


class Node:
    """A state in the tree, with the statistics of its outgoing edges (one per action)."""

    __slots__ = ("state", "obs", "terminal", "value", "prior", "visits", "value_sum", "reward", "children")

    def __init__(self, state: np.ndarray, obs: np.ndarray | None, n_actions: int, terminal: bool = False):
        self.state, self.obs, self.terminal = state, obs, terminal
        self.value = 0.0
        """The network's value of the state (0 for a terminal one); also the Q of an edge not yet tried."""
        self.prior = np.full(n_actions, 1.0 / n_actions)
        self.visits = np.zeros(n_actions)
        self.value_sum = np.zeros(n_actions)
        self.reward = np.zeros(n_actions)
        self.children: list[Node | None] = [None] * n_actions

    def q(self) -> np.ndarray:
        """Mean backed-up return of each edge. An edge not yet tried gets the mean over the node's tried edges (or
        the node's value before any): its own value v(s) would undercut every tried edge's r + gamma * v(s') by
        the reward r (+1 a step in CartPole), and the first action tried would keep all the visits."""
        n = self.visits.sum()
        first = self.value_sum.sum() / n if n > 0 else self.value
        return np.where(self.visits > 0, self.value_sum / np.maximum(self.visits, 1), first)


def puct_scores(node: Node, bounds: Bounds, c_puct: float) -> np.ndarray:
    """normalised Q(s,a) + c_puct * P(s,a) * sqrt(N(s)) / (1 + N(s,a)), with N(s) = 1 + sum_a N(s,a) (the
    node's own expansion counts as its first visit, as in AlphaZero, so the prior decides the first choice)."""
    u = c_puct * node.prior * np.sqrt(1.0 + node.visits.sum()) / (1.0 + node.visits)
    return bounds.normalize(node.q()) + u


def visit_distribution(visits: np.ndarray, temperature: float) -> np.ndarray:
    """pi(a) ~ N(a)^(1/tau) per row; tau = 0: uniform over the most visited actions."""
    n = np.asarray(visits, dtype=np.float64)
    n = n / n.max(-1, keepdims=True)  # in [0, 1] before the power: no overflow at small tau
    x = (n == 1.0).astype(np.float64) if temperature == 0 else n ** (1.0 / temperature)
    return x / x.sum(-1, keepdims=True)


@dataclass
class SearchResult:
    """The searches from K roots."""

    visits: np.ndarray
    """Visit counts of the roots' edges (K, A)."""
    q: np.ndarray
    """Mean backed-up return of the roots' edges (K, A); the root's value where an edge has no visit."""
    prior: np.ndarray
    """The network's policy at the roots (K, A), before the noise."""
    value: np.ndarray
    """The network's value of the roots (K,)."""


def _descend(root: Node, bounds: Bounds, c_puct: float, model: Model) -> tuple[list[tuple[Node, int]], Node, bool]:
    """Follow PUCT from ``root`` to an edge never tried (expanded with one model step) or to a terminal state;
    returns the path of (node, action), the leaf, and whether the leaf is new."""
    node, path = root, []
    while True:
        a = int(np.argmax(puct_scores(node, bounds, c_puct)))  # ties: the first action
        path.append((node, a))
        child = node.children[a]
        if child is None:
            state, obs, reward, terminal = model.step(node.state, a)
            node.reward[a] = reward
            child = node.children[a] = Node(state, obs, len(node.prior), terminal)
            return path, child, True
        if child.terminal:
            return path, child, False
        node = child


def _backup(path: list[tuple[Node, int]], leaf_value: float, gamma: float, bounds: Bounds) -> None:
    g = leaf_value
    for node, a in reversed(path):
        g = node.reward[a] + gamma * g
        node.visits[a] += 1
        node.value_sum[a] += g
        bounds.update(node.value_sum[a] / node.visits[a])


def rollout(
    model: Model, state: np.ndarray, n_actions: int, cfg: SearchConfig, rng: np.random.Generator
) -> tuple[float, float, np.ndarray | None]:
    """Up to ``cfg.rollout_steps`` uniformly random actions from ``state``: (discounted return, the discount left,
    the last observation to bootstrap from, or None where the game ended)."""
    g, discount, obs = 0.0, 1.0, None
    for _ in range(cfg.rollout_steps):
        state, obs, reward, terminal = model.step(state, int(rng.integers(n_actions)))
        g += discount * reward
        discount *= cfg.gamma
        if terminal:
            return g, 0.0, None
    return g, discount, obs


def network_rollouts(
    model: Model, states: list[np.ndarray], obs: list[np.ndarray], policy_value: PolicyValue, cfg: SearchConfig
) -> list[tuple[float, float, np.ndarray | None]]:
    """:func:`rollout`'s triple for each of several states, the network's greedy action at every step: the
    rollouts run in lockstep, one batched network evaluation a step for those still going."""
    states, last = list(states), list(obs)
    g, discount = np.zeros(len(states)), np.ones(len(states))
    alive = list(range(len(states)))
    for _ in range(cfg.rollout_steps):
        if not alive:
            break
        actions = policy_value(np.stack([last[i] for i in alive]))[0].argmax(-1)
        still = []
        for i, a in zip(alive, actions):
            states[i], last[i], reward, terminal = model.step(states[i], int(a))
            g[i] += discount[i] * reward
            discount[i] *= cfg.gamma
            if terminal:
                discount[i], last[i] = 0.0, None
            else:
                still.append(i)
        alive = still
    return [(float(g[i]), float(discount[i]), last[i]) for i in range(len(states))]


def mcts(
    model: Model,
    states: list[np.ndarray],
    obs: list[np.ndarray],
    policy_value: PolicyValue,
    cfg: SearchConfig,
    rng: np.random.Generator,
) -> SearchResult:
    """``cfg.simulations`` simulations from each root (its simulator state and observation), K trees in lockstep:
    each simulation descends every tree to a new leaf, evaluates the new leaves in one batch, and backs up
    reward + gamma * return along each path (a terminal leaf is worth 0)."""
    prior, value = policy_value(np.stack(obs))
    n_actions = prior.shape[1]
    roots = [Node(s, o, n_actions) for s, o in zip(states, obs)]
    bounds = [Bounds() for _ in roots]
    for root, p, v, b in zip(roots, prior, value, bounds):
        root.prior, root.value = p, float(v)
        if cfg.dirichlet_eps > 0:
            root.prior = (1 - cfg.dirichlet_eps) * p + cfg.dirichlet_eps * rng.dirichlet(
                [cfg.dirichlet_alpha] * n_actions
            )
        b.update(root.value)
    for _ in range(cfg.simulations):
        walks = [_descend(root, b, cfg.c_puct, model) for root, b in zip(roots, bounds)]
        new = [leaf for _, leaf, fresh in walks if fresh and not leaf.terminal]
        if new:
            rolls = []
            if cfg.rollout_steps and cfg.rollout_policy == "network":
                rolls = network_rollouts(
                    model, [leaf.state for leaf in new], [leaf.obs for leaf in new], policy_value, cfg
                )
            elif cfg.rollout_steps:
                rolls = [rollout(model, leaf.state, n_actions, cfg, rng) for leaf in new]
            ends = [o for _, _, o in rolls if o is not None]  # rollouts the cap cut: bootstrapped with the value
            p, v = policy_value(np.stack([leaf.obs for leaf in new] + ends))
            v_end = iter(v[len(new) :])
            for i, leaf in enumerate(new):
                leaf.prior, leaf.value = p[i], float(v[i])
                if rolls:
                    g, discount, end = rolls[i]
                    leaf.value = g + (discount * float(next(v_end)) if end is not None else 0.0)
        for (path, leaf, _), b in zip(walks, bounds):
            if not leaf.terminal:
                b.update(leaf.value)
            _backup(path, leaf.value, cfg.gamma, b)
    return SearchResult(
        visits=np.stack([r.visits for r in roots]),
        q=np.stack([r.q() for r in roots]),
        prior=np.asarray(prior),
        value=np.asarray(value, dtype=np.float64),
    )
