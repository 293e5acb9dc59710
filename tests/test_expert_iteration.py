"""Expert iteration: the simulator against gymnasium, the search against hand-computed trees, and the method through
the real harness (counts, scalars, determinism, resume, a one-line error; learning in the slow tier)."""

import math

import gymnasium as gym
import numpy as np
import pytest
from helpers import Crash, crash_when_logged, distill

from rl_distill.distill import Context
from rl_distill.errors import UserError
from rl_distill.methods import get_method
from rl_distill.methods.expert_iteration import discounted_returns
from rl_distill.runs import read_scalars
from rl_distill.search import (
    Bounds,
    Node,
    RealEpisodes,
    SearchConfig,
    Simulator,
    mcts,
    network_rollouts,
    puct_scores,
    rollout,
    visit_distribution,
)

# --- the search, by hand -----------------------------------------------------------------------------------------


def test_puct_scores_hand_computed():
    node = Node(np.zeros(1), np.zeros(1), 2)
    node.prior = np.array([0.6, 0.4])
    node.visits = np.array([2.0, 1.0])
    node.value_sum = np.array([3.0, 2.5])  # Q = [1.5, 2.5]
    bounds = Bounds()
    bounds.update(1.0)
    bounds.update(3.0)  # normalised Q = [0.25, 0.75]
    # U = 1.25 * P * sqrt(1 + 3) / (1 + N) = 1.25 * [0.6 * 2/3, 0.4 * 2/2] = [0.5, 0.5]
    np.testing.assert_allclose(puct_scores(node, bounds, 1.25), [0.75, 1.25])
    fresh = Node(np.zeros(1), np.zeros(1), 2)
    fresh.value, fresh.prior = 7.0, np.array([0.3, 0.7])  # no visits: Q = the node's value for both, the prior decides
    # normalised Q = (7 - 1) / (3 - 1) = 3 for both; U = 1.0 * P * sqrt(1) / 1
    np.testing.assert_allclose(puct_scores(fresh, bounds, 1.0), [3.3, 3.7])
    fresh.visits, fresh.value_sum = np.array([2.0, 0.0]), np.array([3.0, 0.0])
    np.testing.assert_allclose(fresh.q(), [1.5, 1.5])  # the untried edge: the mean of the tried ones, not v(s) = 7


def test_visit_distribution_hand_computed():
    np.testing.assert_allclose(visit_distribution(np.array([[3, 1]]), 1.0), [[0.75, 0.25]])
    np.testing.assert_allclose(visit_distribution(np.array([[3, 1]]), 0.5), [[0.9, 0.1]])  # 9 : 1
    np.testing.assert_allclose(visit_distribution(np.array([[2, 2, 1]]), 0.0), [[0.5, 0.5, 0.0]])
    sharp = visit_distribution(np.array([[1000, 999]]), 0.001)  # 1000^1000 would overflow: scaled first
    assert np.isfinite(sharp).all() and sharp[0, 0] > 0.6


def test_discounted_returns_hand_computed():
    # z2 = 1 + 0.5 * 10 = 6, z1 = 1 + 0.5 * 6 = 4, z0 = 1 + 0.5 * 4 = 3
    assert discounted_returns([1.0, 1.0, 1.0], 10.0, 0.5) == [3.0, 4.0, 6.0]
    assert discounted_returns([1.0], 0.0, 0.99) == [1.0]


class Corridor:
    """A toy deterministic game: action 0 ends it (reward 0), action 1 walks on (reward 1)."""

    def __init__(self):
        self.steps = 0

    def step(self, state, action):
        self.steps += 1
        if action == 0:
            return state, state, 0.0, True
        return state + 1, state + 1, 1.0, False


def _uniform_value_2(obs):
    return np.full((len(obs), 2), 0.5), np.full(len(obs), 2.0)


def test_mcts_on_a_hand_traced_tree():
    """Four simulations, gamma 0.5, uniform prior, value 2 everywhere, no noise, c = 1.25 (traced by hand; an edge not
    tried yet counts the mean of the node's tried ones, or the node's value before any; nQ: Q in the tree's range 0..2):
    1. root ties -> a0: terminal, G = 0.                                          N = [1, 0], W = [0, 0]
    2. Q = [0, 0], U = [.44, .88] -> a1: a new leaf worth 2, G = 1 + .5 * 2 = 2.  N = [1, 1], W = [0, 2]
    3. nQ = [0, 1], U = [.54, .54] -> a1; there ties -> a0: terminal, G = 1.      N = [1, 2], W = [0, 3]
    4. nQ = [0, .75], U = [.63, .42] -> a1; there Q = [0, 0] -> a1: G = 2.        N = [1, 3], W = [0, 5]"""
    model = Corridor()
    root = np.array([0.0])
    res = mcts(model, [root], [root], _uniform_value_2, SearchConfig(4, 1.25, 0.5, 0.5, 0.0), np.random.default_rng(0))
    np.testing.assert_array_equal(res.visits, [[1, 3]])
    np.testing.assert_allclose(res.q, [[0.0, 5 / 3]])
    np.testing.assert_allclose(res.prior, [[0.5, 0.5]])
    np.testing.assert_allclose(res.value, [2.0])
    assert model.steps == 4  # one model step per expanded leaf; the terminal one is not stepped again
    np.testing.assert_allclose(visit_distribution(res.visits, 1.0), [[0.25, 0.75]])


class TwoSteps:
    """Every action pays 1; the game ends after its second step."""

    def step(self, state, action):
        return state + 1, state + 1, 1.0, bool(state[0] + 1 >= 2)


def test_rollout_return_hand_computed():
    rng = np.random.default_rng(0)
    cfg = SearchConfig(1, 1.25, 0.5, 0.5, 0.0, rollout_steps=5)
    assert rollout(TwoSteps(), np.array([0.0]), 2, cfg, rng) == (1.0 + 0.5 * 1.0, 0.0, None)  # ended: no bootstrap
    g, discount, end = rollout(TwoSteps(), np.array([0.0]), 2, SearchConfig(gamma=0.5, rollout_steps=1), rng)
    assert (g, discount, end.tolist()) == (1.0, 0.5, [1.0])  # cut by the cap: bootstrap 0.5 * v(obs [1])


def test_network_rollouts_hand_computed():
    """The network walks on (action 1) below 2 and stops (action 0) from 2, gamma 0.5, in the Corridor: from 0,
    rewards 1, 1, then the end: 1 + 0.5 = 1.5 with nothing to bootstrap; from 5 it stops at once (0); cut after
    2 steps, the walk from 0 is worth 1.5 plus 0.25 * v(obs 2). The rollouts share one network call a step."""
    calls = []

    def walk_below_2(obs):
        calls.append(len(obs))
        p = np.where(obs[:, :1] < 2, [[0.1, 0.9]], [[0.9, 0.1]])
        return p, np.zeros(len(obs))

    states = [np.array([0.0]), np.array([5.0])]
    out = network_rollouts(Corridor(), states, states, walk_below_2, SearchConfig(gamma=0.5, rollout_steps=5))
    assert out == [(1.5, 0.0, None), (0.0, 0.0, None)] and calls == [2, 1, 1]
    (g, discount, end), _ = network_rollouts(
        Corridor(), states, states, walk_below_2, SearchConfig(gamma=0.5, rollout_steps=2)
    )
    assert (g, discount, end.tolist()) == (1.5, 0.25, [2.0])


def test_mcts_bootstraps_cut_rollouts_with_the_value():
    """One simulation, gamma 0.5, rollouts of 1 step, value 2: the new leaf (state 0 -> 1) is worth
    1 (its rollout's reward) + 0.5 * 2 (the value where the cap cut it) = 2, so the root's edge Q = 1 + 0.5 * 2."""
    root = np.array([0.0])
    cfg = SearchConfig(1, 1.25, 0.5, 0.5, 0.0, rollout_steps=1)
    res = mcts(TwoSteps(), [np.array([-1.0])], [root], _uniform_value_2, cfg, np.random.default_rng(0))
    assert res.visits[0].sum() == 1 and res.q[0, res.visits[0].argmax()] == 1.0 + 0.5 * 2.0


def test_mcts_batches_trees_and_noise_is_seeded():
    calls = []

    def policy_value(obs):
        calls.append(len(obs))
        return _uniform_value_2(obs)

    cfg = SearchConfig(16, 1.25, 0.9, 0.3, 0.25)
    roots = [np.array([0.0]), np.array([5.0]), np.array([9.0])]
    a = mcts(Corridor(), roots, roots, policy_value, cfg, np.random.default_rng(3))
    assert len(calls) <= 17 and calls[0] == 3  # the roots, then at most one batch of new leaves a simulation
    assert (a.visits.sum(1) == 16).all() and (a.visits.argmax(1) == 1).all()  # walking on is worth more
    b = mcts(Corridor(), roots, roots, _uniform_value_2, cfg, np.random.default_rng(3))
    np.testing.assert_array_equal(a.visits, b.visits)
    np.testing.assert_array_equal(a.q, b.q)


# --- the simulator ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
def test_simulator_reproduces_gymnasium_step(env_id):
    real = gym.make(env_id)
    real.reset(seed=3)
    sim = Simulator(env_id)
    rng = np.random.default_rng(0)
    n = 0
    for _ in range(60):
        n += 1
        state = np.array(real.unwrapped.state, dtype=np.float64)
        kept = state.copy()
        a = int(rng.integers(sim.n_actions))
        s_next, s_obs, s_rew, s_term = sim.step(state, a)
        obs, rew, term, trunc, _ = real.step(a)
        np.testing.assert_array_equal(s_obs, obs)
        np.testing.assert_array_equal(s_next, np.array(real.unwrapped.state, dtype=np.float64))
        assert (s_rew, s_term) == (rew, term)
        np.testing.assert_array_equal(state, kept)  # the search's copy of the state is not moved on
        if term or trunc:
            break
    assert sim.steps == n
    real.close()


def test_simulator_pays_cartpoles_last_step_and_never_truncates():
    sim = Simulator("CartPole-v1")
    falling = np.array([0.0, 0.0, 0.2, 2.0])
    for _ in range(2):  # twice from the same state: the same +1, no "already terminated" reward of 0
        _, _, reward, terminated = sim.step(falling, 1)
        assert (reward, terminated) == (1.0, True)
    real, car = gym.make("MountainCar-v0"), Simulator("MountainCar-v0")
    real.reset(seed=0)
    state = np.array(real.unwrapped.state)
    for t in range(300):  # no push: the car never reaches the flag; the real env stops at its 200-step limit
        state, _, _, terminated = car.step(state, 1)
        _, _, _, truncated, _ = real.step(1) if t < 200 else (None, None, None, False, None)
        assert not terminated and truncated == (t == 199)
    real.close()


def test_real_episodes_count_steps_and_returns():
    games = RealEpisodes("CartPole-v1", 2)
    games.reset(0, 1)
    games.reset(1, 2)
    n = 0
    while True:
        _, _, term, trunc = games.step(0, 1)  # always right: the pole falls within a few dozen steps
        n += 1
        if term or trunc:
            break
    games.step(1, 0)
    assert games.env_steps == n + 1 and games.teacher_queries == 0
    assert games.mean_return() == float(n)  # +1 a step, the last one included
    games.close()


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "LunarLander-v3", "Pendulum-v1"])
def test_unsupported_env_is_one_line_user_error(env_id):
    with pytest.raises(UserError) as e:
        Simulator(env_id)
    assert "\n" not in str(e.value) and env_id in str(e.value) and "CartPole-v1" in str(e.value)


def test_cli_refuses_an_env_without_simulator(cli, tmp_path):
    code, out, err = cli(
        "distill", "expert-iteration", "--teacher", "ppo-LunarLander-v3", "--runs-dir", str(tmp_path), "--no-progress"
    )
    assert code == 2 and err.count("\n") == 1 and "reset to any state" in err and "LunarLander-v3" in err
    assert not list(tmp_path.iterdir())  # no half-made run left behind


# --- the method through the harness -------------------------------------------------------------------------------

FAST = {"simulations": 8, "epochs": 1, "rollout_steps": 2}  # a weak search: short episodes, several iterations


def _ei(tmp_path, steps=600, **kw):
    return distill("expert-iteration", tmp_path, "ppo-CartPole-v1", steps, eval_episodes=5, **{**FAST, **kw})


def test_short_run_counts_and_scalars(tmp_path):
    s = _ei(tmp_path)
    assert s["method"] == "expert-iteration" and s["teacher_queries"] == 0  # the teacher is only the reference
    assert 600 <= s["env_steps"] < 600 + 4  # real steps are the budget (4 envs step in lockstep)
    rows = read_scalars(s["run_dir"])
    its = [r for r in rows if "distill/iteration" in r]
    assert [r["distill/iteration"] for r in its] == list(range(1, len(its) + 1)) and len(its) >= 2
    for key in (
        "search/return",
        "train/network_return",
        "search/mean_visits_entropy",
        "search/prior_agreement",
        "distill/loss",
        "distill/policy_loss",
        "distill/value_loss",
        "distill/teacher_agreement",
        "eval/search_return",
        "eval/network_return",
    ):
        assert key in its[0], key
    last = its[-1]
    assert last["search/sim_steps"] > 8 * s["env_steps"] * 0.5  # up to one simulator step per simulation
    assert last["distill/loss"] == pytest.approx(last["distill/policy_loss"] + 0.5 * last["distill/value_loss"])
    assert 0 <= its[0]["search/mean_visits_entropy"] <= math.log(2)


def test_same_seed_same_numbers(tmp_path):
    a, b = _ei(tmp_path / "a", steps=400), _ei(tmp_path / "b", steps=400)
    for k in ("student_score", "env_steps", "gradient_steps", "teacher_queries"):
        assert a[k] == b[k]

    def numbers(s):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_scalars(s["run_dir"])]

    assert numbers(a) == numbers(b)
    c = _ei(tmp_path / "c", steps=400, seed=1)
    assert numbers(c) != numbers(a)


def test_resume_continues_at_the_next_iteration(tmp_path, monkeypatch):
    log = crash_when_logged(monkeypatch, "distill/iteration", 3)
    with pytest.raises(Crash):
        _ei(tmp_path, steps=500)
    monkeypatch.setattr(Context, "log", log)
    s = _ei(tmp_path, steps=500, resume=True)
    assert s["resumed_from_step"] > 0 and 500 <= s["env_steps"] < 504
    its = [r["distill/iteration"] for r in read_scalars(s["run_dir"]) if "distill/iteration" in r]
    assert its == list(range(1, len(its) + 1))  # 1-2 before the crash, 3... after the resume
    assert len(list(tmp_path.iterdir())) == 1


def test_config_refuses_bad_values():
    cfg = get_method("expert-iteration").Config
    for bad in (
        {"simulations": 0},
        {"temperature": -1.0},
        {"search_envs": 0, "network_envs": 0},
        {"gamma": 1.5},
        {"rollout_policy": "greedy"},
    ):
        with pytest.raises(UserError):
            cfg(**bad)


@pytest.mark.slow
def test_learns_cartpole(tmp_path):
    s = distill("expert-iteration", tmp_path, "ppo-CartPole-v1", eval_episodes=20)  # the default budget
    assert s["percent_of_teacher"] >= 90 and s["teacher_queries"] == 0
