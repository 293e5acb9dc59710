"""Expert iteration (Anthony, Tian & Barber 2017, "Thinking Fast and Slow"; AlphaGo Zero's self-distillation).

The teacher is a tree search, not a network: from every state of the real episodes, PUCT MCTS guided by the
student's own policy (prior) and value (leaf evaluation) returns an improved action distribution, and the student
distils it; a better student makes a better search, and the loop repeats::

    for iteration i = 1, 2, ... until the budget of real env steps is spent:
        play one episode in each real env; at every state s:
            pi(.|s) ~ N(s, .)^(1/tau)  from MCTS(s; prior p_S, leaf value v_S) in a resettable simulator
                                       (a new leaf: a rollout, random or by S, bootstrapped with v_S where cut)
            the expert's envs act argmax_a N(s, a); the apprentice's envs act argmax_a p_S(a|s)
        z(s) = the discounted return from s (bootstrapped with v_S where the time limit cut the episode),
               regressed in units of 1 / (1 - gamma)
        D = the (s, pi, z) of the last `window` iterations
        train S on D:  -sum_a pi(a|s) log p_S(a|s) + value_coef * (z - v_S(s))^2

The shipped teacher is never asked (``teacher_queries`` stays 0); the harness only scores it as the reference of
"% of teacher". The budget is the real env steps (``env_steps``); the simulator's steps, which cost CPU but no
interaction with the real env, are logged as ``search/sim_steps``. Per iteration the run logs the return of the
expert's episodes (``search/return``) and of the apprentice's (``train/network_return``): what the paper shows is the
search ahead of the network, the network catching up, and both rising (results/expert-iteration: what was measured).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rl_distill import losses
from rl_distill.errors import UserError, check_count, check_positive
from rl_distill.search import RealEpisodes, SearchConfig, Simulator, check_searchable, mcts, visit_distribution
from rl_distill.supervised import mean_stats, supervised_step

if TYPE_CHECKING:
    from rl_distill.protocol import MethodContext

NAME = "expert-iteration"
MULTI_TASK = False


@dataclass
class Config(SearchConfig):
    """The search's knobs (search.SearchConfig: simulations, c_puct, gamma, Dirichlet noise), then the loop's."""

    rollout_steps: int = 50
    """A new leaf is scored by a rollout (``rollout_policy``) of up to this many simulator steps, bootstrapped with
    the value head where the cap cuts it (AlphaGo's mix of rollouts and value; ExIt's first expert used rollouts);
    0: the value alone. The first iteration's search, before the value head's first fit, bootstraps with 0."""
    temperature: float = 1.0
    """tau of the targets pi(a) ~ N(a)^(1/tau) (0: one-hot on the most visited action)."""
    explore_steps: int = 0
    """The expert samples its action from pi for the first N steps of each episode, then plays its most visited
    action (AlphaGo Zero: 30 moves)."""
    search_envs: int = 2
    """Real envs where the search acts (the expert's episodes, ``search/return``)."""
    network_envs: int = 2
    """Real envs where the student acts greedily (the apprentice's episodes, ``train/network_return``); the search
    labels their states too, so the student also learns on the states it visits itself."""
    window: int = 4
    """Iterations of (state, pi, z) the student trains on (AlphaZero's window of recent games)."""
    epochs: int = 4
    """Passes over the window after each iteration."""
    batch_size: int = 128
    """Minibatch size of the gradient steps."""
    lr: float = 1e-3
    """Adam learning rate."""
    value_coef: float = 0.5
    """Weight of the value regression beside the policy cross-entropy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("window", "epochs", "batch_size"):
            check_count(name, getattr(self, name), none_ok=False)
        for name in ("search_envs", "network_envs", "explore_steps"):
            check_count(name, getattr(self, name), minimum=0, none_ok=False)
        check_count("search_envs + network_envs", self.search_envs + self.network_envs, none_ok=False)
        check_positive("lr", self.lr, none_ok=False)
        if self.gamma == 1:
            raise UserError("--gamma must be below 1 (the value is learned in units of 1 / (1 - gamma))")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            check_positive("temperature", self.temperature, none_ok=False)  # 0 is allowed, a negative is not
        if not (self.value_coef >= 0 and math.isfinite(self.value_coef)):
            check_positive("value_coef", self.value_coef, none_ok=False)


def default_steps(env_id: str) -> int:
    return 8_000 if env_id == "CartPole-v1" else 20_000


def check_envs(env_ids: list[str]) -> None:
    """The search needs a simulator it can reset to any state (search.SEARCHABLE_ENVS): any other env is refused
    before the run starts (protocol.EnvCheckHook; ``bench --dry-run`` shows it too)."""
    for env_id in env_ids:
        check_searchable(env_id)


def train(ctx: MethodContext, cfg: Config) -> None:
    env_id = ctx.env_ids[0]
    check_searchable(env_id)
    opt = torch.optim.Adam(ctx.student.parameters(), lr=cfg.lr)
    state = ctx.begin(opt) or {}
    window: deque[dict[str, torch.Tensor]] = deque(state.get("window", []), maxlen=cfg.window)
    iteration = int(state.get("iteration", 0))
    sim = Simulator(env_id)
    sim.steps = int(state.get("sim_steps", 0))
    games = RealEpisodes(env_id, cfg.search_envs + cfg.network_envs)
    ctx.track(games)  # its real steps are the run's env steps (the budget); it never asks the teacher

    def save() -> dict[str, Any]:
        return {"window": list(window), "iteration": iteration, "sim_steps": sim.steps}

    while not ctx.done():
        iteration += 1
        rng = np.random.default_rng([ctx.seed, iteration])  # per iteration: a resumed run draws the same numbers
        data, played = self_play(ctx, games, sim, cfg, rng, trained=iteration > 1)
        window.append(data)
        fitted = distil(ctx, opt, window, cfg)
        # eval/ copies: a bench record keeps a run's eval/ scalars, so the report can draw search against network.
        ctx.log(
            {
                **played,
                **fitted,
                "eval/search_return": played["search/return"],
                "eval/network_return": played["train/network_return"],
                "search/sim_steps": sim.steps,
                "distill/iteration": iteration,
                "distill/dataset_size": sum(len(d["z"]) for d in window),
            }
        )
        ctx.maybe_checkpoint(opt, save)
    ctx.maybe_checkpoint(opt, save, force=True)


def self_play(
    ctx: MethodContext, games: RealEpisodes, sim: Simulator, cfg: Config, rng: np.random.Generator, trained: bool
) -> tuple[dict[str, torch.Tensor], dict[str, float | None]]:
    """One episode in each real env (cut short where the budget ends), the search labelling every state; returns
    the iteration's (obs, target, z) and its search/... scalars."""
    student, device = ctx.student, ctx.device

    @torch.no_grad()
    def policy_value(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = student(torch.as_tensor(obs, device=device), 0)
        value = out["value"].float().cpu().numpy() / (1 - cfg.gamma)  # the head learns z * (1 - gamma)
        # Before its first fit the value head is noise (and a negative one makes a live leaf look worse than a
        # terminal one): the first iteration's search counts only the rewards its rollouts see.
        return torch.softmax(out["logits"].float(), -1).cpu().numpy(), value if trained else np.zeros_like(value)

    n = games.num_envs
    obs = [games.reset(k, int(s)) for k, s in enumerate(rng.integers(2**31, size=n))]
    steps: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(n)]  # (obs, pi, reward) per env
    ends: list[float] = [0.0] * n  # the value after an episode's last step: 0 if it terminated, else bootstrapped
    returns: dict[str, list[float]] = {"search": [], "network": []}
    entropies, agreements = [], []
    active = list(range(n))
    while active and not ctx.done():
        res = mcts(sim, [games.state(k) for k in active], [obs[k] for k in active], policy_value, cfg, rng)
        targets = visit_distribution(res.visits, cfg.temperature)
        entropies += [-(p[p > 0] * np.log(p[p > 0])).sum() for p in targets]
        agreements += list(res.visits.argmax(-1) == res.prior.argmax(-1))
        still = []
        for j, k in enumerate(active):
            expert = k < cfg.search_envs
            # The apprentice plays its greedy action; the expert its most visited one (ties: the higher Q).
            if not expert:
                a = int(np.argmax(res.prior[j]))
            elif len(steps[k]) < cfg.explore_steps:
                a = int(rng.choice(len(targets[j]), p=targets[j]))
            else:
                a = max(range(len(targets[j])), key=lambda b: (res.visits[j, b], res.q[j, b]))
            next_obs, reward, terminated, truncated = games.step(k, a)
            steps[k].append((obs[k], targets[j], reward))
            obs[k] = next_obs
            if terminated or truncated:
                returns["search" if expert else "network"].append(sum(r for _, _, r in steps[k]))
                ends[k] = 0.0 if terminated else float(policy_value(next_obs[None])[1][0])
            else:
                still.append(k)
        active = still
    for k in active:  # episodes the budget cut: their value targets bootstrap from where they stopped
        ends[k] = float(policy_value(obs[k][None])[1][0])
    data = _dataset([s for s in steps if s], [e for s, e in zip(steps, ends) if s], cfg.gamma, device)
    played = {
        "search/return": float(np.mean(returns["search"])) if returns["search"] else None,
        "train/network_return": float(np.mean(returns["network"])) if returns["network"] else None,
        "search/mean_visits_entropy": float(np.mean(entropies)) if entropies else None,
        "search/prior_agreement": float(np.mean(agreements)) if agreements else None,
    }
    return data, played


def discounted_returns(rewards: list[float], end_value: float, gamma: float) -> list[float]:
    """z_t = r_t + gamma * z_{t+1}, with z after the last step = ``end_value``."""
    z, out = end_value, []
    for r in reversed(rewards):
        z = r + gamma * z
        out.append(z)
    return out[::-1]


def _dataset(
    episodes: list[list[tuple[np.ndarray, np.ndarray, float]]], ends: list[float], gamma: float, device: torch.device
) -> dict[str, torch.Tensor]:
    obs = np.stack([o for ep in episodes for o, _, _ in ep])
    pi = np.stack([p for ep in episodes for _, p, _ in ep])
    z = [v for ep, end in zip(episodes, ends) for v in discounted_returns([r for _, _, r in ep], end, gamma)]
    # In units of the return of a reward of 1 forever, 1 / (1 - gamma): targets of order 1 for rewards of order 1,
    # which a freshly initialised value head reaches in a few steps (raw CartPole returns are in the tens).
    z = np.asarray(z) * (1 - gamma)
    return {
        "obs": torch.as_tensor(obs, dtype=torch.float32, device=device),
        "pi": torch.as_tensor(pi, dtype=torch.float32, device=device),
        "z": torch.as_tensor(z, dtype=torch.float32, device=device),
    }


def distil(
    ctx: MethodContext, opt: torch.optim.Optimizer, window: deque[dict[str, torch.Tensor]], cfg: Config
) -> dict[str, float]:
    """``cfg.epochs`` passes of minibatch steps on the window: cross-entropy to pi plus the value regression."""
    data = {k: torch.cat([d[k] for d in window]) for k in ("obs", "pi", "z")}
    # The visit distribution as logits (log pi; an unvisited action at the losses' "minus infinity").
    target_logits = torch.log(data["pi"]).clamp_min(-1e9)
    size = len(data["z"])
    rows = []
    for _ in range(cfg.epochs * math.ceil(size / cfg.batch_size)):
        idx = torch.randint(size, (min(cfg.batch_size, size),), generator=ctx.generator, device=ctx.device)
        z = data["z"][idx]

        def value_term(out: dict[str, torch.Tensor], z: torch.Tensor = z) -> tuple[torch.Tensor, dict[str, float]]:
            value_loss = (out["value"] - z).pow(2).mean()
            return cfg.value_coef * value_loss, {"distill/value_loss": value_loss.item()}

        stats = supervised_step(ctx, opt, data["obs"][idx], target_logits[idx], losses.cross_entropy, extra=value_term)
        stats["distill/policy_loss"] = stats["distill/loss"] - cfg.value_coef * stats["distill/value_loss"]
        rows.append(stats)
    return mean_stats(rows)
