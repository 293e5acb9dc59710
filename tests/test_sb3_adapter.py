"""SB3 zips and rl-zoo folders as teachers: outputs match SB3's, bad files are refused, no pickle runs.

Models are trained for a few hundred steps (or only constructed) so the whole file stays fast.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch
from stable_baselines3 import A2C, DQN, PPO
from torch import nn

from rl_distill.envs import env_spec
from rl_distill.errors import TeacherError
from rl_distill.teachers.sb3 import load_rl_zoo_folder, load_sb3_zip


class FakeAtari(gym.Env):
    """Channel-last uint8 frames like make_atari_env + VecFrameStack(4), without the emulator."""

    observation_space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    action_space = gym.spaces.Discrete(6)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


# --- fixtures: real SB3 models, saved once per module -------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sb3")


@pytest.fixture(scope="module")
def ppo_mlp(workdir):
    # Non-default net_arch and activation, to exercise the parsing and shape inference.
    model = PPO(
        "MlpPolicy",
        "CartPole-v1",
        n_steps=128,
        batch_size=64,
        n_epochs=2,
        seed=0,
        policy_kwargs=dict(net_arch=dict(pi=[32, 16], vf=[24]), activation_fn=nn.ReLU),
    )
    model.learn(256)
    path = workdir / "ppo_cartpole.zip"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def a2c_mlp(workdir):
    model = A2C("MlpPolicy", "CartPole-v1", n_steps=16, seed=0)
    model.learn(256)
    path = workdir / "a2c_cartpole.zip"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def dqn_mlp(workdir):
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=64,
        buffer_size=1000,
        train_freq=4,
        target_update_interval=64,
        seed=0,
        policy_kwargs=dict(net_arch=[32, 32]),
    )
    model.learn(256)
    path = workdir / "dqn_cartpole.zip"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def ppo_cnn(workdir):
    # Constructed, not trained: random weights are as good as any for checking the mapping.
    model = PPO(
        "CnnPolicy", FakeAtari(), n_steps=16, batch_size=16, seed=0, policy_kwargs=dict(net_arch=dict(pi=[64], vf=[]))
    )
    path = workdir / "ppo_cnn.zip"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def dqn_cnn(workdir):
    model = DQN("CnnPolicy", FakeAtari(), buffer_size=16, seed=0)
    path = workdir / "dqn_cnn.zip"
    model.save(path)
    return model, path


def cartpole_obs(n: int = 100) -> np.ndarray:
    return np.random.default_rng(0).uniform(-2, 2, (n, 4)).astype(np.float32)


def frames(n: int = 16) -> np.ndarray:
    """Random uint8 frames in rl-distill's layout (N, 4, 84, 84)."""
    return np.random.default_rng(0).integers(0, 256, (n, 4, 84, 84), dtype=np.uint8)


def rewrite(src: Path, dst: Path, data_fn=None, state_fn=None, drop=(), extra=None) -> Path:
    """Copy an SB3 zip, editing its data JSON / state dict, dropping or adding members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            raw = zin.read(name)
            if name == "data" and data_fn is not None:
                data = json.loads(raw)
                data_fn(data)
                raw = json.dumps(data).encode()
            if name == "policy.pth" and state_fn is not None:
                state = torch.load(io.BytesIO(raw), weights_only=True)
                state_fn(state)
                buf = io.BytesIO()
                torch.save(state, buf)
                raw = buf.getvalue()
            zout.writestr(name, raw)
        for name, raw in (extra or {}).items():
            zout.writestr(name, raw)
    return dst


def sb3_actor_critic(model, obs):
    """(greedy actions, normalised logits, values) straight from SB3, obs in SB3's env layout."""
    actions, _ = model.predict(obs, deterministic=True)
    t, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        logits = model.policy.get_distribution(t).distribution.logits
        values = model.policy.predict_values(t).squeeze(-1)
    return actions, logits, values


def assert_matches_actor_critic(teacher, model, ours, theirs):
    actions, logits, values = sb3_actor_critic(model, theirs)
    np.testing.assert_array_equal(teacher(ours), actions)
    # torch's Categorical normalises its logits to log-probabilities.
    torch.testing.assert_close(torch.log_softmax(teacher.logits(ours), -1), logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(teacher.value(ours), values, atol=1e-5, rtol=1e-5)


# --- faithful loading ---------------------------------------------------------------------------


def test_ppo_mlp_matches_sb3(ppo_mlp):
    model, path = ppo_mlp
    teacher = load_sb3_zip(path, env_id="CartPole-v1")
    assert teacher.arch.kind == "actor_critic" and teacher.arch.encoder == "flatten"
    assert teacher.arch.pi_layers == (32, 16) and teacher.arch.vf_layers == (24,)
    assert teacher.arch.activation == "relu"
    assert teacher.obs_shape == (4,) and teacher.n_actions == 2
    assert teacher.meta["algo"] == "ppo" and teacher.meta["format"] == "sb3-zip"
    assert teacher.meta["source"] == str(path) and teacher.env_id == "CartPole-v1"
    assert teacher.meta["sb3_version"] == stable_baselines3.__version__
    teacher.check_fits(env_spec("CartPole-v1"))
    obs = cartpole_obs()
    assert_matches_actor_critic(teacher, model, obs, obs)


def test_a2c_mlp_matches_sb3(a2c_mlp):
    model, path = a2c_mlp
    teacher = load_sb3_zip(path)
    assert teacher.meta["algo"] == "a2c" and teacher.env_id is None
    # SB3's defaults: 64-64 towers with Tanh.
    assert (
        teacher.arch.pi_layers == (64, 64) and teacher.arch.vf_layers == (64, 64) and teacher.arch.activation == "tanh"
    )
    obs = cartpole_obs()
    assert_matches_actor_critic(teacher, model, obs, obs)


def test_dqn_mlp_matches_sb3(dqn_mlp):
    model, path = dqn_mlp
    teacher = load_sb3_zip(path, env_id="CartPole-v1")
    assert teacher.meta["algo"] == "dqn" and teacher.kind == "q"
    assert teacher.arch.pi_layers == (32, 32) and teacher.arch.activation == "relu"
    obs = cartpole_obs()
    actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(teacher(obs), actions)
    with torch.no_grad():
        q = model.q_net(torch.as_tensor(obs))
    torch.testing.assert_close(teacher.q_values(obs), q, atol=1e-5, rtol=1e-5)


def test_ppo_cnn_matches_sb3_on_channel_first_frames(ppo_cnn):
    model, path = ppo_cnn
    teacher = load_sb3_zip(path, env_id="ALE/Pong-v5")
    assert teacher.arch.encoder == "cnn" and teacher.obs_shape == (4, 84, 84) and teacher.n_actions == 6
    assert teacher.arch.cnn_channels == (32, 64, 64) and teacher.arch.cnn_features == 512
    assert teacher.arch.pi_layers == (64,) and teacher.arch.vf_layers == ()
    obs = frames()
    # SB3 sees the env's channel-last frames and transposes them itself.
    assert_matches_actor_critic(teacher, model, obs, obs.transpose(0, 2, 3, 1))


def test_channel_last_saved_space_is_transposed(ppo_cnn, tmp_path):
    # SB3 2.x saves the already-transposed (4, 84, 84); a zip holding (84, 84, 4) means the same weights.
    model, path = ppo_cnn

    def channel_last(data):
        data["observation_space"]["_shape"] = [84, 84, 4]

    teacher = load_sb3_zip(rewrite(path, tmp_path / "cl.zip", data_fn=channel_last))
    assert teacher.obs_shape == (4, 84, 84)
    assert any("channel-last" in n for n in teacher.meta["notes"])
    obs = frames(8)
    assert_matches_actor_critic(teacher, model, obs, obs.transpose(0, 2, 3, 1))


def test_dqn_cnn_matches_sb3(dqn_cnn):
    model, path = dqn_cnn
    teacher = load_sb3_zip(path)
    assert teacher.kind == "q" and teacher.arch.encoder == "cnn" and teacher.arch.pi_layers == ()
    obs = frames(8)
    actions, _ = model.predict(obs.transpose(0, 2, 3, 1), deterministic=True)
    np.testing.assert_array_equal(teacher(obs), actions)
    with torch.no_grad():
        q = model.q_net(torch.as_tensor(obs))
    torch.testing.assert_close(teacher.q_values(obs), q, atol=1e-5, rtol=1e-5)


# --- refusals: one-line TeacherError naming the file --------------------------------------------


def assert_refused(path, *words, loader=load_sb3_zip):
    with pytest.raises(TeacherError) as info:
        loader(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_refuses_not_a_zip_and_missing_file(tmp_path):
    bad = tmp_path / "model.zip"
    bad.write_text("hello")
    assert_refused(bad, "not a zip")
    assert_refused(tmp_path / "nothing.zip", "no such file")


def test_refuses_truncated_and_corrupt_zip(ppo_mlp, tmp_path):
    raw = ppo_mlp[1].read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(raw[: len(raw) // 2])
    assert_refused(cut)
    # Central directory intact but policy.pth garbage: torch must fail, and we say so in one line.
    garbage = rewrite(ppo_mlp[1], tmp_path / "garbage.zip", drop=("policy.pth",), extra={"policy.pth": b"\x00" * 100})
    assert_refused(garbage, "policy.pth")


@pytest.mark.parametrize("member", ["data", "policy.pth"])
def test_refuses_missing_member(ppo_mlp, tmp_path, member):
    assert_refused(rewrite(ppo_mlp[1], tmp_path / "m.zip", drop=(member,)), member)


@pytest.mark.parametrize(
    "module, cls, word",
    [
        ("stable_baselines3.sac.policies", "SACPolicy", "SAC"),
        ("stable_baselines3.td3.policies", "TD3Policy", "TD3"),
        ("sb3_contrib.qrdqn.policies", "QRDQNPolicy", "QR-DQN"),
        ("sb3_contrib.common.recurrent.policies", "RecurrentActorCriticPolicy", "RecurrentPPO"),
        ("my_project.policies", "FancyPolicy", "custom policy"),
    ],
)
def test_refuses_unsupported_algorithms(ppo_mlp, tmp_path, module, cls, word):
    def swap_policy(data):
        data["policy_class"] = {
            ":type:": "<class 'abc.ABCMeta'>",
            ":serialized:": "",
            "__module__": module,
            "__init__": f"<function {cls}.__init__ at 0x7f0000000000>",
        }

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "algo.zip", data_fn=swap_policy), word)


def test_refuses_trpo_and_multi_input(ppo_mlp, tmp_path):
    assert_refused(rewrite(ppo_mlp[1], tmp_path / "trpo.zip", data_fn=lambda d: d.update(cg_max_steps=15)), "TRPO")

    def multi_input(data):
        data["policy_class"]["__init__"] = "<function MultiInputActorCriticPolicy.__init__ at 0x7f0000000000>"
        data["observation_space"] = {":type:": "<class 'gymnasium.spaces.dict.Dict'>", ":serialized:": ""}

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "dict.zip", data_fn=multi_input), "MultiInputActorCriticPolicy")


def test_refuses_continuous_actions(tmp_path):
    path = tmp_path / "pendulum.zip"
    PPO("MlpPolicy", "Pendulum-v1", n_steps=16, batch_size=16).save(path)
    assert_refused(path, "Box action space")


def test_refuses_unsupported_policy_kwargs(ppo_mlp, ppo_cnn, tmp_path):
    def custom_extractor(data):
        data["policy_kwargs"]["features_extractor_class"] = "<class 'my_project.nets.MyCNN'>"

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "ext.zip", data_fn=custom_extractor), "custom features extractor")

    def elu(data):
        data["policy_kwargs"]["activation_fn"] = "<class 'torch.nn.modules.activation.ELU'>"

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "elu.zip", data_fn=elu), "ELU")

    def raw_pixels(data):
        data["policy_kwargs"] = {"normalize_images": False}

    assert_refused(rewrite(ppo_cnn[1], tmp_path / "raw.zip", data_fn=raw_pixels), "normalize_images=False")

    def separate_vf_encoder(state):
        state["vf_features_extractor.cnn.0.weight"] = state["vf_features_extractor.cnn.0.weight"] + 1.0

    assert_refused(rewrite(ppo_cnn[1], tmp_path / "sep.zip", state_fn=separate_vf_encoder), "share_features_extractor")


def test_refuses_weights_that_do_not_fit(ppo_mlp, tmp_path):
    def wider_obs(data):
        data["observation_space"]["_shape"] = [5]

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "obs.zip", data_fn=wider_obs), "do not fit")

    def more_actions(data):
        data["action_space"]["n"] = "3"

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "act.zip", data_fn=more_actions), "do not fit")

    def extra_weight(state):
        state["log_std"] = torch.zeros(2)

    assert_refused(rewrite(ppo_mlp[1], tmp_path / "extra.zip", state_fn=extra_weight), "log_std")


# --- security: pickled payloads never run -------------------------------------------------------


class _CreatesFile:
    """Unpickling this calls ``open(target, "w")``: a file appearing means the payload ran."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _payload(target: Path) -> str:
    return base64.b64encode(pickle.dumps(_CreatesFile(target))).decode()


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail loudly if anything calls the standard (un)pickling entry points during the load."""
    import cloudpickle

    def boom(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for mod in (pickle, cloudpickle):
        monkeypatch.setattr(mod, "loads", boom)
        monkeypatch.setattr(mod, "load", boom)


def test_payload_is_live(tmp_path):
    # Make sure the test payload really would create its file when unpickled.
    canary = tmp_path / "canary"
    pickle.loads(base64.b64decode(_payload(canary))).close()
    assert canary.exists()


def test_malicious_serialized_fields_are_never_unpickled(ppo_mlp, tmp_path, no_unpickling):
    model, path = ppo_mlp
    pwned = tmp_path / "pwned"

    def poison(data):
        for item in data.values():
            if isinstance(item, dict) and ":serialized:" in item:
                item[":serialized:"] = _payload(pwned)

    teacher = load_sb3_zip(rewrite(path, tmp_path / "evil.zip", data_fn=poison))
    assert not pwned.exists()
    obs = cartpole_obs(20)
    assert_matches_actor_critic(teacher, model, obs, obs)  # readable fields alone were enough

    def opaque(data):
        # Payload only, no readable copies: refused, still not executed.
        for key, item in list(data.items()):
            if isinstance(item, dict) and ":serialized:" in item:
                data[key] = {":type:": item[":type:"], ":serialized:": _payload(pwned)}

    assert_refused(rewrite(path, tmp_path / "opaque.zip", data_fn=opaque), "policy_class")
    assert not pwned.exists()


def test_malicious_policy_pth_is_refused(ppo_mlp, tmp_path):
    pwned = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"action_net.weight": _CreatesFile(pwned)}, buf)
    evil = rewrite(ppo_mlp[1], tmp_path / "evil_pth.zip", drop=("policy.pth",), extra={"policy.pth": buf.getvalue()})
    msg = assert_refused(evil, "policy.pth", "open", "refused")
    assert "weights_only" not in msg  # torch's advice to retry unsafely is not passed on
    assert not pwned.exists()


# --- rl-zoo folders -----------------------------------------------------------------------------

ARGS_YML = """!!python/object/apply:collections.OrderedDict
- - - algo
    - {algo}
  - - env
    - {env}
  - - env_kwargs
    - null
  - - seed
    - 1648070233
"""

CONFIG_YML = """!!python/object/apply:collections.OrderedDict
- - - n_envs
    - 8
  - - normalize
    - {normalize}
  - - policy
    - MlpPolicy
"""


def zoo_folder(
    root: Path, algo: str, env: str, model: Path, *, best: Path | None = None, normalize: str = "false"
) -> Path:
    """An rl-zoo3 run folder: <algo>/<env>_1/{<env>.zip, best_model.zip?, <env>/args.yml, config.yml}."""
    name = env.replace("/", "-")
    run = root / algo / f"{name}_1"
    (run / name).mkdir(parents=True)
    shutil.copy(model, run / f"{name}.zip")
    if best is not None:
        shutil.copy(best, run / "best_model.zip")
    (run / name / "args.yml").write_text(ARGS_YML.format(algo=algo, env=env))
    (run / name / "config.yml").write_text(CONFIG_YML.format(normalize=normalize))
    return run


def test_rl_zoo_folder(ppo_mlp, a2c_mlp, tmp_path):
    run = zoo_folder(tmp_path / "logs", "ppo", "CartPole-v1", ppo_mlp[1])
    teacher = load_rl_zoo_folder(run)
    assert teacher.env_id == "CartPole-v1" and teacher.meta["algo"] == "ppo"
    assert teacher.meta["format"] == "rl-zoo" and teacher.meta["zoo_folder"] == str(run)
    assert teacher.meta["source"] == str(run / "CartPole-v1.zip")
    obs = cartpole_obs(20)
    np.testing.assert_array_equal(teacher(obs), ppo_mlp[0].predict(obs, deterministic=True)[0])

    # best_model.zip wins over the final model; args.yml names the algorithm.
    run = zoo_folder(tmp_path / "agents", "a2c", "CartPole-v1", ppo_mlp[1], best=a2c_mlp[1])
    teacher = load_rl_zoo_folder(run)
    assert teacher.meta["source"] == str(run / "best_model.zip") and teacher.meta["algo"] == "a2c"


def test_rl_zoo_folder_atari_ids(ppo_cnn, tmp_path):
    run = zoo_folder(tmp_path / "v5", "ppo", "ALE/Pong-v5", ppo_cnn[1])
    assert run.name == "ALE-Pong-v5_1"
    assert load_rl_zoo_folder(run).env_id == "ALE/Pong-v5"

    run = zoo_folder(tmp_path / "v4", "ppo", "PongNoFrameskip-v4", ppo_cnn[1])
    teacher = load_rl_zoo_folder(run)
    assert teacher.env_id == "ALE/Pong-v5" and teacher.meta["zoo_env_id"] == "PongNoFrameskip-v4"


def test_rl_zoo_folder_env_from_folder_name(ppo_mlp, tmp_path):
    run = tmp_path / "ppo" / "CartPole-v1_3"
    run.mkdir(parents=True)
    shutil.copy(ppo_mlp[1], run / "CartPole-v1.zip")
    assert load_rl_zoo_folder(run).env_id == "CartPole-v1"


def test_rl_zoo_folder_refusals(ppo_mlp, tmp_path, no_unpickling):
    pwned = tmp_path / "pwned"
    run = zoo_folder(tmp_path / "norm", "ppo", "CartPole-v1", ppo_mlp[1])
    pkl = run / "CartPole-v1" / "vecnormalize.pkl"
    pkl.write_bytes(pickle.dumps(_CreatesFile(pwned)))
    msg = assert_refused(run, "VecNormalize", loader=load_rl_zoo_folder)
    assert str(pkl) in msg and not pwned.exists()

    run = zoo_folder(tmp_path / "norm_cfg", "ppo", "CartPole-v1", ppo_mlp[1], normalize="true")
    assert_refused(run, "normalize", loader=load_rl_zoo_folder)

    empty = tmp_path / "ppo" / "CartPole-v1_9"
    empty.mkdir(parents=True)
    assert_refused(empty, "best_model.zip", loader=load_rl_zoo_folder)
    assert_refused(ppo_mlp[1], "not a folder", loader=load_rl_zoo_folder)
