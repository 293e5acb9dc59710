"""The DQN core (rl_distill/td.py): the TD target and Huber loss, the n-step windows of the replay memory and the
epsilon schedule against hand computations, the optimizer choice, and rl-zoo3's DQN entries read as SB3 runs them."""

import pytest
import torch

from rl_distill.rollout import Batch
from rl_distill.td import (
    CONTINUE,
    CUT,
    TERMINATED,
    DQNConfig,
    TransitionMemory,
    linear_epsilon,
    make_optimizer,
    td_loss,
    td_target,
    zoo_dqn_budget,
    zoo_dqn_settings,
)


def test_td_target_hand_computed():
    rewards = torch.tensor([1.0, 2.71, 0.5])
    discount = torch.tensor([0.99, 0.99**3, 0.0])  # 1 step, 3 steps, terminated
    online = torch.tensor([[1.0, 3.0], [5.0, 4.0], [9.0, 9.5]])
    target = torch.tensor([[10.0, 2.0], [6.0, 8.0], [7.0, 1.0]])
    double = td_target(rewards, discount, online, target, double_q=True)  # online picks 1, 0, 1; target values them
    assert double.tolist() == pytest.approx([1 + 0.99 * 2.0, 2.71 + 0.99**3 * 6.0, 0.5])
    plain = td_target(rewards, discount, online, target, double_q=False)  # max of the target network
    assert plain.tolist() == pytest.approx([1 + 0.99 * 10.0, 2.71 + 0.99**3 * 8.0, 0.5])
    q = torch.tensor([[0.0, 2.5], [1.0, 0.0]])
    # Huber (delta 1): |2.5 - 1| = 1.5 -> 1.0; |1 - 1.2| = 0.2 -> 0.02; the second row is not valid
    assert td_loss(q, torch.tensor([1, 0]), torch.tensor([1.0, 1.2]), torch.tensor([1.0, 1.0])).item() == (
        pytest.approx((1.0 + 0.02) / 2)
    )
    assert td_loss(q, torch.tensor([1, 0]), torch.tensor([1.0, 1.2]), torch.tensor([1.0, 0.0])).item() == (
        pytest.approx(1.0)
    )


def _batch(rewards, codes) -> Batch:
    """One env's steps with rewards r_t and end codes, obs = the step index."""
    T = len(rewards)
    dones = torch.tensor([[float(c != CONTINUE)] for c in codes])
    return Batch(
        obs=torch.arange(T, dtype=torch.float32).reshape(T, 1, 1),
        actions=torch.zeros(T, 1, dtype=torch.long),
        rewards=torch.tensor(rewards).reshape(T, 1),
        dones=dones,
        teacher_logits=torch.zeros(T, 1, 2),
        teacher_features=None,
        logprobs=None,
        values=None,
        student_logits=None,
        last_obs=torch.zeros(1, 1),
        last_done=dones[-1],
        terminated=torch.tensor([[float(c == TERMINATED)] for c in codes]),
    )


def _memory(rewards, codes):
    """Those steps in a ring of 8 slots."""
    m = TransitionMemory(8, 1, (1,), torch.float32, 2, torch.device("cpu"))
    m.add(_batch(rewards, codes), labelled=True)
    return m


def test_n_step_windows_hand_computed():
    # steps 0..7: 2 terminates, 5 is truncated, 7 is the newest (never a window's start)
    g = 0.5
    m = _memory([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0], [0, 0, 1, 0, 0, 2, 0, 0])
    # start -> (reward sum, bootstrap obs, discount, valid), n = 3
    want = {
        0: (1 + g * 2 + g * g * 4, 0, 0.0, 1.0),  # terminated at step 2: no bootstrap
        1: (2 + g * 4, 1, 0.0, 1.0),
        2: (4.0, 3, 0.0, 1.0),
        3: (8 + g * 16, 5, g**2, 1.0),  # stops before the truncated step 5, bootstraps from its state
        4: (16.0, 5, g, 1.0),
        5: (0.0, 5, 1.0, 0.0),  # the step into a truncation: not TD-trained
        6: (64.0, 7, g, 1.0),  # the newest stored step's successor is unknown: a 1-step window
    }
    mb = m.sample(400, 3, g, torch.Generator().manual_seed(0))
    starts = mb["obs"][:, 0].long().tolist()
    assert set(starts) == set(want)
    for i, s in enumerate(starts):
        ret, boot, disc, valid = want[s]
        got = (mb["returns"][i].item(), mb["next_obs"][i, 0].item(), mb["discount"][i].item(), mb["valid"][i].item())
        if disc == 0.0:  # no bootstrap: its state does not matter
            got, want_s = (got[0], got[2], got[3]), (ret, disc, valid)
        else:
            want_s = (ret, boot, disc, valid)
        assert got == pytest.approx(want_s), (s, got)
    m.cut()  # a phase's end: the newest step's window may not run on into the next rollout's steps
    assert m.codes[7, 0].item() == CUT


def test_epsilon_schedule():
    assert [linear_epsilon(0.1, 0.01, 100, s) for s in (0, 50, 100, 500)] == pytest.approx([0.1, 0.055, 0.01, 0.01])
    assert linear_epsilon(1.0, 0.1, 0, 0) == 0.1  # no decay: the end value from the first step


def test_memory_without_labels_keeps_no_teacher_outputs():
    m = TransitionMemory(8, 1, (1,), torch.float32, 2, torch.device("cpu"), labels=False)
    m.add(_batch([-3.0, 2.0, 0.0, 4.0], [0, 0, 0, 0]), clip_rewards=True)
    assert m.rewards[:4, 0].tolist() == [-1.0, 1.0, 0.0, 1.0]  # clipped to their sign
    mb = m.sample(64, 1, 0.5, torch.Generator().manual_seed(0))
    assert "teacher" not in mb and "teacher" not in m.state_dict()
    assert set(mb["returns"].tolist()) == {-1.0, 1.0, 0.0}  # 1-step windows of steps 0..2 (3 is the newest)
    twin = TransitionMemory(8, 1, (1,), torch.float32, 2, torch.device("cpu"), labels=False)
    twin.load_state_dict(m.state_dict())
    assert torch.equal(twin.rewards, m.rewards) and (twin.size, twin.head) == (4, 4)


def test_optimizer_choice():
    p = [torch.nn.Parameter(torch.zeros(2))]
    rms = make_optimizer(p, DQNConfig())  # Mnih et al.'s: centered RMSprop, alpha 0.95, eps 0.01
    assert isinstance(rms, torch.optim.RMSprop)
    assert {k: rms.defaults[k] for k in ("lr", "alpha", "eps", "centered")} == {
        "lr": 2.5e-4,
        "alpha": 0.95,
        "eps": 0.01,
        "centered": True,
    }
    adam = make_optimizer(p, DQNConfig(optimizer="adam", optimizer_eps=None, lr=1e-3))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["eps"] == 1e-8  # torch's (and SB3's DQN's) default


def test_zoo_entries_as_sb3_runs_them():
    cart = zoo_dqn_settings(["CartPole-v1"])
    # train_freq 256, gradient_steps 128: chunks of 256 steps, 0.5 gradient steps per env step; the target network
    # (every 10 env steps in SB3) is copied between chunks only, i.e. every 128 gradient steps
    assert (cart["collect_steps"], cart["replay_ratio"], cart["target_update"]) == (256, 0.5, 128)
    assert cart["epsilon_decay_steps"] == round(0.16 * 50_000) and cart["optimizer"] == "adam"
    acro = zoo_dqn_settings(["Acrobot-v1"])  # gradient_steps -1: one per env step; target every 250 env steps
    assert (acro["collect_steps"], acro["replay_ratio"], acro["target_update"]) == (4, 1.0, 250)
    minatar = zoo_dqn_settings(["MinAtar/Breakout-v1"])  # the MinAtar paper's DQN
    assert {k: minatar[k] for k in ("batch_size", "capacity", "learning_starts", "target_update", "replay_ratio")} == {
        "batch_size": 32,
        "capacity": 100_000,
        "learning_starts": 5_000,
        "target_update": 1_000,
        "replay_ratio": 1.0,
    }
    # epsilon 1.0 -> 0.1 over 105k steps from the first (the paper's 5k random steps, then 100k)
    assert (minatar["epsilon_start"], minatar["epsilon_end"], minatar["epsilon_decay_steps"]) == (1.0, 0.1, 105_000)
    assert (minatar["optimizer"], minatar["lr"], minatar["optimizer_eps"]) == ("rmsprop", 2.5e-4, 0.01)
    assert (minatar["rmsprop_alpha"], minatar["rmsprop_centered"], minatar["clip_rewards"]) == (0.95, True, False)
    pong = zoo_dqn_settings(["ALE/Pong-v5"])  # train_freq 4, 1 gradient step; target every 1k env steps
    assert (pong["replay_ratio"], pong["target_update"], pong["clip_rewards"]) == (0.25, 250, True)
    assert zoo_dqn_settings(["CartPole-v1", "Acrobot-v1"]) == {}  # two entries: no one setting
    assert zoo_dqn_budget("CartPole-v1") == 50_000 and zoo_dqn_budget("MinAtar/Breakout-v1") == 5_000_000
    for cfg in (cart, acro, minatar, pong):
        DQNConfig(**cfg)  # every value one the Config takes
