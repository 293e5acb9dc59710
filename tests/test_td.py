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


# --- the lean paths against the plain ones ------------------------------------------------------------------------


def _plain_sample(m: TransitionMemory, batch_size, n_step, gamma, generator):
    """TransitionMemory.sample as first written: the window loop over 2-d (slot, env) indexing, no shortcuts."""
    start = (m.head - m.size) % m.slots
    p = torch.randint(0, m.size - 1, (batch_size,), generator=generator)
    e = torch.randint(0, m.num_envs, (batch_size,), generator=generator)
    ret, m_ = torch.zeros(batch_size), torch.zeros(batch_size, dtype=torch.long)
    alive, terminated = torch.ones(batch_size, dtype=torch.bool), torch.zeros(batch_size, dtype=torch.bool)
    for k in range(n_step):
        pos = p + k
        alive &= pos <= m.size - 2
        at = (start + pos.clamp(max=m.size - 1)) % m.slots
        code, r = m.codes[at, e], m.rewards[at, e]
        alive &= code != CUT
        ret += torch.where(alive, gamma**k * r, torch.zeros_like(r))
        m_ += alive.long()
        ended = alive & (code == TERMINATED)
        terminated |= ended
        alive &= ~ended
    slot, boot = (start + p) % m.slots, (start + p + m_) % m.slots
    discount = torch.where(terminated, torch.zeros_like(ret), gamma ** m_.float())
    return {
        "obs": m.obs[slot, e],
        "actions": m.actions[slot, e],
        "teacher": m.teacher[slot, e],
        "returns": ret,
        "next_obs": m.obs[boot, e],
        "discount": discount,
        "valid": (m_ > 0).float(),
    }


def _random_batch(T, N, g) -> Batch:
    """T steps of N envs with random observations, rewards (some -0.0 and negative), truncations and terminations."""
    dones = (torch.rand(T, N, generator=g) < 0.15).float()
    terminated = dones * (torch.rand(T, N, generator=g) < 0.5).float()
    return Batch(
        obs=torch.rand(T, N, 3, generator=g),
        actions=torch.randint(0, 4, (T, N), generator=g),
        rewards=torch.randn(T, N, generator=g).round(),  # some -0.0
        dones=dones,
        teacher_logits=torch.randn(T, N, 4, generator=g),
        teacher_features=None,
        logprobs=None,
        values=None,
        student_logits=None,
        last_obs=torch.zeros(N, 3),
        last_done=dones[-1],
        terminated=terminated,
    )


@pytest.mark.parametrize("n_step", [1, 3])
def test_memory_sample_matches_the_plain_window_loop(n_step):
    """The flat-index sampler (first step without bounds checks) draws the same windows as the plain loop, bit for
    bit, in a ring that has wrapped (chunks written across its end), while filling, and after a cut."""
    g = torch.Generator().manual_seed(0)
    m = TransitionMemory(13, 3, (3,), torch.float32, 4, torch.device("cpu"))
    for T in (5, 1, 4, 7, 1, 9, 2):  # 29 steps into 13 slots: chunks that wrap around the end of the ring
        m.add(_random_batch(T, 3, g), labelled=True)
        if m.size >= 2:
            a = m.sample(256, n_step, 0.9, torch.Generator().manual_seed(T))
            b = _plain_sample(m, 256, n_step, 0.9, torch.Generator().manual_seed(T))
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
                if a[k].is_floating_point():  # torch.equal takes -0.0 for 0.0
                    assert torch.equal(a[k].signbit(), b[k].signbit()), k
    m.cut()
    a, b = (
        m.sample(64, n_step, 0.9, torch.Generator().manual_seed(9)),
        _plain_sample(m, 64, n_step, 0.9, torch.Generator().manual_seed(9)),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_memory_add_matches_indexed_writes():
    """A chunk written into a slice of the ring (and one that wraps, by index) stores what per-index writes do."""
    g = torch.Generator().manual_seed(1)
    m = TransitionMemory(6, 2, (3,), torch.float32, 4, torch.device("cpu"))
    want = {k: getattr(m, k).clone() for k in ("obs", "actions", "rewards", "codes", "teacher")}
    head = size = 0
    for T, labelled in ((4, True), (3, False), (5, True)):  # the second and third chunks wrap
        b = _random_batch(T, 2, g)
        m.add(b, labelled=labelled, clip_rewards=True)
        idx = (head + torch.arange(T)) % 6
        codes = torch.full(b.dones.shape, CONTINUE, dtype=torch.uint8)
        codes[b.dones > 0] = CUT
        codes[b.terminated > 0] = TERMINATED
        want["obs"][idx], want["actions"][idx], want["codes"][idx] = b.obs, b.actions, codes
        want["rewards"][idx] = b.rewards.sign()
        want["teacher"][idx] = b.teacher_logits if labelled else 0.0
        head, size = (head + T) % 6, min(6, size + T)
        assert (m.head, m.size) == (head, size)
        for k, v in want.items():
            assert torch.equal(getattr(m, k), v), k


def test_clip_grad_norm_matches_torch():
    """optim.clip_grad_norm leaves the gradients torch's clip_grad_norm_ does, bit for bit, clipping or not; grads of
    several dtypes go to torch's own."""
    from rl_distill.optim import clip_grad_norm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 6))
    frozen = torch.nn.Linear(3, 3)  # no gradient: skipped by both
    for max_norm in (0.05, 1e6):
        net.zero_grad(set_to_none=True)
        (net(torch.randn(16, 4, 10, 10)) ** 2).mean().backward()
        params = list(net.parameters()) + list(frozen.parameters())
        twin = [p.grad.clone() for p in net.parameters()]
        clip_grad_norm(params, max_norm)
        lean = [p.grad.clone() for p in net.parameters()]
        for p, g in zip(net.parameters(), twin):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        assert all(torch.equal(a, p.grad) for a, p in zip(lean, net.parameters()))
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    a.grad, b.grad = torch.full((3,), 4.0), torch.full((2,), 3.0, dtype=torch.float64)
    clip_grad_norm([a, b], 1.0)  # torch's path: one norm over both
    assert a.grad.norm().item() ** 2 + b.grad.norm().item() ** 2 == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_learner_step_matches_the_plain_step(optimizer):
    """DQNLearner.step (the multi-tensor optimizer, gradients set to None, optim.clip_grad_norm, the flat sampler)
    leaves the same weights, optimizer state and scalars as the plain step written with torch's defaults
    (zero_grad, clip_grad_norm_, the per-tensor optimizer), over steps that cross a target-network refresh; a
    resumed optimizer gets the multi-tensor form back."""
    import copy
    from types import SimpleNamespace

    from rl_distill.students import Student
    from rl_distill.td import DQNLearner, td_loss, td_target

    torch.manual_seed(0)
    student = Student("mlp-32-32", [(3,)], [4])
    cfg = DQNConfig(optimizer=optimizer, target_update=7, double_q=optimizer == "adam", n_step=2, max_grad_norm=0.5)

    class Ctx(SimpleNamespace):
        def begin(self, opt):
            opt.register_step_post_hook(lambda *a: setattr(self, "gradient_steps", self.gradient_steps + 1))

    spec = SimpleNamespace(obs_shape=(3,), n_actions=4)
    ctx = Ctx(env_specs=[spec], student=student, budget=1000, device=torch.device("cpu"), gradient_steps=0)
    ctx.generator = torch.Generator().manual_seed(0)
    dqn = DQNLearner(ctx, cfg)
    assert all(g["foreach"] for g in dqn.opt.param_groups)
    dqn.remember(_random_batch(200, 1, torch.Generator().manual_seed(2)))
    plain, plain_target = copy.deepcopy(student), copy.deepcopy(student).requires_grad_(False)
    eps = {} if cfg.optimizer_eps is None else {"eps": cfg.optimizer_eps}
    if optimizer == "rmsprop":
        opt = torch.optim.RMSprop(plain.parameters(), lr=cfg.lr, alpha=cfg.rmsprop_alpha, centered=True, **eps)
    else:
        opt = torch.optim.Adam(plain.parameters(), lr=cfg.lr, **eps)
    g = torch.Generator().manual_seed(0)
    for i in range(1, 16):
        got = dqn.step()
        mb = dqn.memory.sample(cfg.batch_size, cfg.n_step, cfg.gamma, g)
        with torch.no_grad():
            q_t = plain_target(mb["next_obs"], 0)["logits"]
            q_o = plain(mb["next_obs"], 0)["logits"] if cfg.double_q else q_t
            y = td_target(mb["returns"], mb["discount"], q_o, q_t, cfg.double_q)
        q = plain(mb["obs"], 0)["logits"]
        loss = td_loss(q, mb["actions"], y, mb["valid"])
        want = {"train/td_loss": loss.item(), "train/q_mean": q.detach().mean().item(), "train/loss": loss.item()}
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), cfg.max_grad_norm)
        opt.step()
        if i % cfg.target_update == 0:
            plain_target.load_state_dict(plain.state_dict())
        assert got == want
        for a, b in zip(student.parameters(), plain.parameters()):
            assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(dqn.target.parameters(), plain_target.parameters()))
    for k in ("square_avg", "grad_avg", "exp_avg", "exp_avg_sq"):
        for a, b in zip(dqn.opt.param_groups[0]["params"], opt.param_groups[0]["params"]):
            if k in opt.state[b]:
                assert torch.equal(dqn.opt.state[a][k], opt.state[b][k])
    saved = opt.state_dict()  # a checkpoint of the plain optimizer: foreach None
    ctx.begin = lambda o: (o.load_state_dict(saved), {})[1]
    resumed = DQNLearner(ctx, cfg)
    assert all(g["foreach"] for g in resumed.opt.param_groups)
