"""Channels-last convolutions on the CPU: same outputs and gradients, training passes only, nothing saved changes."""

import json

import pytest
import torch

from rl_distill.networks import NatureCNN, channels_last_convolutions, image_floats


@pytest.fixture
def layout_switch():
    yield
    NatureCNN.channels_last_on_cpu = True


def _seen_layouts(module):
    """Record, per forward, whether the first convolution got channels-last input."""
    seen = []
    conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(
        lambda m, args, out: seen.append(
            args[0].is_contiguous(memory_format=torch.channels_last) and not args[0].is_contiguous()
        )
    )
    return seen


def test_nature_cnn_same_outputs_and_gradients(layout_switch):
    torch.manual_seed(0)
    net = NatureCNN((4, 84, 84), (16, 32, 32), 256)
    x = torch.rand(5, 4, 84, 84)
    seen = _seen_layouts(net)
    outs, grads = [], []
    for on in (True, False):
        NatureCNN.channels_last_on_cpu = on
        net.zero_grad()
        y = net(x)
        y.square().sum().backward()
        outs.append(y.detach())
        grads.append(net.cnn[0].weight.grad.clone())
    assert seen == [True, False]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # acting: batch-8 forwards measured slower channels-last, so they stay NCHW
        net(x)
    assert seen[-1] is False and all(p.is_contiguous() for p in net.parameters())


def test_image_floats_same_values_channels_last_in_training_only(layout_switch):
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    want = obs.float() / 255.0
    got = image_floats(obs)
    assert torch.equal(got, want) and got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
    with torch.no_grad():
        got = image_floats(obs)
    assert torch.equal(got, want) and got.is_contiguous()
    NatureCNN.channels_last_on_cpu = False
    assert image_floats(obs).is_contiguous()
    floats = torch.full((1, 4, 84, 84), 255.0)  # float input is scaled in a copy, never in place
    assert torch.equal(image_floats(floats), torch.ones_like(floats)) and floats.max().item() == 255.0


def test_sb3_policy_hooks_keep_outputs_and_checkpoints(tmp_path):
    from stable_baselines3 import PPO

    from rl_distill.envs import AtariProtocol
    from rl_distill.sb3_vec_env import SB3VecEnv

    env = SB3VecEnv("ALE/Pong-v5", 2, seed=0, protocol=AtariProtocol(reward_clipping=True, episodic_life=True))
    model = PPO("CnnPolicy", env, n_steps=8, batch_size=16, seed=0, device="cpu")
    obs = torch.as_tensor(env.reset()).float()
    before = model.policy.evaluate_actions(obs, torch.zeros(2))[0].detach()
    assert channels_last_convolutions(model.policy) == 3  # one shared NatureCNN, 3 convolutions
    seen = _seen_layouts(model.policy)
    after = model.policy.evaluate_actions(obs, torch.zeros(2))[0].detach()
    assert seen == [True]
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-5)
    model.learn(16)  # a training update through the hooks
    model.save(tmp_path / "m.zip")
    again = PPO.load(tmp_path / "m.zip", device="cpu")
    torch.testing.assert_close(
        again.policy.evaluate_actions(obs, torch.zeros(2))[0],
        model.policy.evaluate_actions(obs, torch.zeros(2))[0],
        rtol=1e-5,
        atol=1e-5,
    )
    env.close()


def test_fast_sb3_training_same_outputs_fused_adam_and_checkpoints(tmp_path):
    from stable_baselines3 import DQN, PPO

    from rl_distill.envs import AtariProtocol
    from rl_distill.sb3_vec_env import SB3VecEnv
    from rl_distill.teachers.train import fast_sb3_training

    env = SB3VecEnv("ALE/Pong-v5", 2, seed=0, protocol=AtariProtocol(reward_clipping=True, episodic_life=True))
    obs = torch.as_tensor(env.reset())  # uint8, as SB3 passes observations
    assert obs.dtype == torch.uint8
    ppo = PPO("CnnPolicy", env, n_steps=8, batch_size=16, seed=0, device="cpu")
    dqn = DQN("CnnPolicy", env, buffer_size=100, learning_starts=8, batch_size=4, seed=0, device="cpu")
    before = [
        ppo.policy.evaluate_actions(obs, torch.zeros(2))[0].detach(),
        dqn.q_net(obs).detach(),
        dqn.q_net_target(obs).detach(),
    ]
    seen = _seen_layouts(ppo.policy)
    for m in (ppo, dqn):
        fast_sb3_training(m)
        assert all(g["fused"] and not g["foreach"] for g in m.policy.optimizer.param_groups)
    after = [
        ppo.policy.evaluate_actions(obs, torch.zeros(2))[0].detach(),
        dqn.q_net(obs).detach(),
        dqn.q_net_target(obs).detach(),
    ]
    assert seen == [True]  # the image_floats input reaches the convolutions channels-last
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    w0 = dqn.q_net.q_net[0].weight.clone()
    for m in (ppo, dqn):
        m.learn(16)  # training updates through the fused Adam and the new input path
    assert not torch.equal(w0, dqn.q_net.q_net[0].weight)
    ppo.save(tmp_path / "p.zip")
    again = PPO.load(tmp_path / "p.zip", device="cpu")
    torch.testing.assert_close(
        again.policy.evaluate_actions(obs, torch.zeros(2))[0],
        ppo.policy.evaluate_actions(obs, torch.zeros(2))[0],
        rtol=1e-5,
        atol=1e-5,
    )
    env.close()


def test_dead_first_conv_counts_silenced_channels():
    from rl_distill.networks import dead_first_conv

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 2), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    with torch.no_grad():
        net[0].weight.fill_(-1.0)
        net[0].bias.zero_()
        net[0].weight[1].fill_(1.0)  # positive on any non-black frame
        net[0].bias[2] = 0.5  # positive where the 2x2 patch sums below 0.5 (a black corner)
    frames = torch.full((3, 1, 4, 4), 200, dtype=torch.uint8)
    assert dead_first_conv(net, frames) == 0.75  # only channel 1 is positive anywhere
    frames[1, 0, :2, :2] = 0  # a black patch: channel 2 gives 0.5 there
    assert dead_first_conv(net, frames) == 0.5
    frames[2] = 0  # an all-black frame alone: channels 0, 1 and 3 give 0 (not positive), channel 2 gives 0.5
    assert dead_first_conv(net, frames[2:]) == 0.75
    assert dead_first_conv(torch.nn.Linear(3, 2), frames) is None


def test_fast_sb3_training_minatar_dqn_same_updates():
    """MinAtar's DQN (centered RMSprop, an update every step): fast_sb3_training's RMSprop foreach and flag-only
    training mode leave every update as it was, up to float rounding."""
    from rl_distill.sb3_vec_env import SB3VecEnv
    from rl_distill.teachers.train import fast_sb3_training, hyperparams, sb3_model

    env_id = "MinAtar/Breakout-v1"
    hp = hyperparams(env_id, "dqn") | {"learning_starts": 100, "buffer_size": 1000}
    models = []
    for fast in (False, True):  # one after the other: each model seeds the global generators it then draws from
        m = sb3_model("dqn", env_id, SB3VecEnv(env_id, 1, seed=0), hp, seed=0, device="cpu")
        if fast:
            fast_sb3_training(m)
            assert all(g["foreach"] for g in m.policy.optimizer.param_groups)
            m.policy.set_training_mode(False)
            assert not m.policy.training and m.q_net.training  # the flag only: nothing it computes changes
        m.learn(100)  # random play before learning starts
        m.train(gradient_steps=50, batch_size=32)
        models.append(m)
    w = [dict(m.policy.named_parameters()) for m in models]
    assert not torch.equal(w[0]["q_net.q_net.0.weight"], models[0].q_net_target.state_dict()["q_net.0.weight"])
    for name, p in w[0].items():
        torch.testing.assert_close(w[1][name], p, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "env_id, n_envs, extra",
    [
        ("MinAtar/Breakout-v1", 1, {}),  # the MinAtar paper's DQN: centered RMSprop, an update every step
        (
            "CartPole-v1",
            2,
            {"optimize_memory_usage": True, "replay_buffer_kwargs": {"handle_timeout_termination": False}},
        ),
    ],
)
def test_lean_dqn_same_updates_actions_and_stock_files(tmp_path, monkeypatch, env_id, n_envs, extra):
    """fast_sb3_training's lean DQN (its train, sampling and predict) against the same model without it: the same
    weights, replay buffer, logged loss and greedy actions bit for bit, the same np.random draws; what it saves is
    what a stock model saves (the same keys, no trace of the lean class) and loads in stock SB3."""
    import zipfile

    import numpy as np
    from stable_baselines3 import DQN

    import rl_distill.teachers.train as train_module
    from rl_distill.sb3_vec_env import SB3VecEnv

    hp = train_module.hyperparams(env_id, "dqn") | {"learning_starts": 300, "buffer_size": 1000} | extra
    runs = {}
    for lean in (False, True):
        with monkeypatch.context() as mp:
            if not lean:
                mp.setattr(train_module, "_lean_dqn", lambda model: None)
            m = train_module.sb3_model("dqn", env_id, SB3VecEnv(env_id, n_envs, seed=0), hp, seed=0, device="cpu")
            train_module.fast_sb3_training(m)
        assert (type(m).__name__ == "_LeanDQN") == lean and isinstance(m, DQN)
        m.learn(1200)
        obs = m.replay_buffer.observations[:64, 0]
        m.save(tmp_path / f"{lean}.zip")
        m.save_replay_buffer(tmp_path / f"{lean}.pkl")
        runs[lean] = (m, m.predict(obs, deterministic=True)[0], m.logger.name_to_value["train/loss"], np.random.rand())
    (plain, plain_acts, plain_loss, plain_draw), (lean, lean_acts, lean_loss, lean_draw) = runs[False], runs[True]
    assert lean._n_updates == plain._n_updates > 0 and lean_loss == plain_loss and lean_draw == plain_draw
    assert np.array_equal(lean_acts, plain_acts)
    for k, v in plain.policy.state_dict().items():
        assert torch.equal(lean.policy.state_dict()[k], v), k
    for k in ("observations", "actions", "rewards", "dones"):
        assert np.array_equal(getattr(lean.replay_buffer, k), getattr(plain.replay_buffer, k)), k

    def data(lean):
        with zipfile.ZipFile(tmp_path / f"{lean}.zip") as z:
            return json.loads(z.read("data"))

    assert data(True).keys() == data(False).keys() and "Lean" not in json.dumps(data(True))
    again = DQN.load(tmp_path / "True.zip", device="cpu")
    again.load_replay_buffer(tmp_path / "True.pkl")
    assert type(again) is DQN and np.array_equal(again.replay_buffer.actions, lean.replay_buffer.actions)
    for k, v in lean.policy.state_dict().items():
        assert torch.equal(again.policy.state_dict()[k], v), k
