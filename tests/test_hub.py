"""Hub teachers (``hf://ORG/REPO[/FILE]``, teachers/hub.py), without network: every test runs with
``HF_HUB_OFFLINE=1`` against a cache folder laid out as huggingface_hub lays it out, holding SB3 zips made here."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from test_sb3_adapter import FakeAtari

from rl_distill.errors import TeacherError
from rl_distill.teachers import load_teacher
from rl_distill.teachers.hub import parse_uri, protocol_mismatch, training_protocol, warn_protocol

COMMIT = "0123456789abcdef0123456789abcdef01234567"

# rl-zoo3's files as its push to the hub writes them (config.yml: an OrderedDict dumped with its python tag).
PONG_CONFIG = """!!python/object/apply:collections.OrderedDict
- - - batch_size
    - 32
  - - env_wrapper
    - - stable_baselines3.common.atari_wrappers.AtariWrapper
  - - exploration_final_eps
    - 0.01
  - - frame_stack
    - 4
  - - n_timesteps
    - 10000000.0
  - - optimize_memory_usage
    - false
  - - policy
    - CnnPolicy
"""
CARTPOLE_CONFIG = """!!python/object/apply:collections.OrderedDict
- - - n_envs
    - 8
  - - n_timesteps
    - 100000.0
  - - policy
    - MlpPolicy
"""
CARD = """---
library_name: stable-baselines3
tags:
- {env}
- deep-reinforcement-learning
model-index:
- name: {algo}
  results:
  - task:
      type: reinforcement-learning
      name: reinforcement-learning
    dataset:
      name: {env}
      type: {env}
    metrics:
    - type: mean_reward
      value: 21.00 +/- 0.00
      name: mean_reward
      verified: false
---

# **{algo}** Agent playing **{env}**
"""


def hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """Lay ``files`` out as huggingface_hub's cache does; returns the snapshot folder.

    ``<cache>/models--ORG--REPO/blobs/<hash>`` holds each file once (named by its sha256 if it is an LFS file, as
    zips are, else by its git blob sha1), ``snapshots/<commit>/<path>`` is a relative link to the blob, and
    ``refs/main`` holds the commit.
    """
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        lfs = path.endswith((".zip", ".mp4", ".pkl"))
        blob = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        link = snapshot / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * (path.count("/") + 2)) / "blobs" / blob)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def small_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("evaluations.npz", b"not a model")
    return buf.getvalue()


@pytest.fixture(scope="module")
def dqn_pong(tmp_path_factory):
    """A DQN CnnPolicy as rl-zoo3's PongNoFrameskip-v4 agents are (6 actions, 4 stacked 84x84 frames), untrained."""
    model = DQN("CnnPolicy", FakeAtari(), buffer_size=16, seed=0)
    path = tmp_path_factory.mktemp("hub") / "dqn-PongNoFrameskip-v4.zip"
    model.save(path)
    return model, path.read_bytes()


@pytest.fixture(scope="module")
def ppo_cartpole(tmp_path_factory):
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, seed=0)
    path = tmp_path_factory.mktemp("hub") / "ppo-CartPole-v1.zip"
    model.save(path)
    return model, path.read_bytes()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty hub cache, offline: HF_HUB_CACHE and HF_HOME point into tmp_path (nothing reaches ~/.cache)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    (tmp_path / "hub").mkdir()
    return tmp_path / "hub"


def pong_repo(cache: Path, dqn_pong, **extra: bytes) -> Path:
    return hub_cache(
        cache,
        "sb3/dqn-PongNoFrameskip-v4",
        {
            "dqn-PongNoFrameskip-v4.zip": dqn_pong[1],
            "config.yml": PONG_CONFIG.encode(),
            "env_kwargs.yml": b"{}\n",
            "README.md": CARD.format(env="PongNoFrameskip-v4", algo="DQN").encode(),
            "results.json": json.dumps({"mean_reward": 21.0, "std_reward": 0.0, "n_eval_episodes": 10}).encode(),
            "train_eval_metrics.zip": small_zip(),
            **extra,
        },
    )


def cartpole_repo(cache: Path, ppo_cartpole) -> Path:
    files = {"ppo-CartPole-v1.zip": ppo_cartpole[1], "config.yml": CARTPOLE_CONFIG.encode(), "env_kwargs.yml": b"{}\n"}
    return hub_cache(cache, "sb3/ppo-CartPole-v1", files)


def frames(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 4, 84, 84), dtype=np.uint8)


# --- the layout is the hub client's ---------------------------------------------------------------


def test_cache_layout_is_the_hub_clients(cache, dqn_pong):
    import huggingface_hub as hf

    snapshot = pong_repo(cache, dqn_pong)
    repo = "sb3/dqn-PongNoFrameskip-v4"
    assert hf.snapshot_download(repo, cache_dir=cache, local_files_only=True) == str(snapshot)
    for name in ("dqn-PongNoFrameskip-v4.zip", "config.yml", "README.md"):
        got = hf.hf_hub_download(repo, name, cache_dir=cache, local_files_only=True)
        assert got == str(snapshot / name) and Path(got).read_bytes() == (snapshot / name).read_bytes()
    # scan_cache_dir checks the layout strictly (refs, snapshots linking into blobs) and reports nothing odd.
    info = hf.scan_cache_dir(cache)
    assert not info.warnings and [r.repo_id for r in info.repos] == [repo]
    ((revision,),) = [r.revisions for r in info.repos]
    assert revision.commit_hash == COMMIT and revision.refs == frozenset({"main"}) and revision.nb_files == 6


# --- loading ----------------------------------------------------------------------------------------


def test_pong_teacher_from_the_hub_cache(cache, dqn_pong):
    snapshot = pong_repo(cache, dqn_pong)
    teacher = load_teacher("hf://sb3/dqn-PongNoFrameskip-v4")
    assert teacher.env_id == "ALE/Pong-v5" and teacher.meta["algo"] == "dqn" and teacher.kind == "q"
    assert teacher.name == "hf://sb3/dqn-PongNoFrameskip-v4" and teacher.meta["format"] == "hf-hub"
    # Same greedy actions as SB3's own model, which takes channel-last frames.
    obs = frames()
    np.testing.assert_array_equal(teacher(obs), dqn_pong[0].predict(obs.transpose(0, 2, 3, 1), deterministic=True)[0])

    # The teacher's own protocol, read from the files: NoFrameskip-v4 (no sticky actions) and AtariWrapper.
    hub = teacher.meta["hub"]
    assert hub["commit"] == COMMIT and hub["file"] == "dqn-PongNoFrameskip-v4.zip"
    assert hub["path"] == str(snapshot / "dqn-PongNoFrameskip-v4.zip")  # not train_eval_metrics.zip
    assert hub["zoo_env_id"] == "PongNoFrameskip-v4" and hub["frame_stack"] == 4
    assert hub["env_wrapper"] == ["stable_baselines3.common.atari_wrappers.AtariWrapper"]
    assert hub["zoo_score"]["mean_reward"] == 21.0
    assert teacher.meta["protocol"] == {
        "sticky_actions": 0.0,
        "frame_cap": 108_000,
        "frameskip": 4,
        "noop_max": 30,
        "reward_clipping": False,
        "episodic_life": False,
        "full_action_space": False,
        "fire_reset": True,
    }
    assert hub["train_protocol"] == {**teacher.meta["protocol"], "reward_clipping": True, "episodic_life": True}


def test_file_in_the_uri_and_env_from_the_model_card(cache, ppo_cartpole):
    files = {
        "agents/model.zip": ppo_cartpole[1],
        "agents/config.yml": CARTPOLE_CONFIG.encode(),
        "other.zip": ppo_cartpole[1],
        "README.md": CARD.format(env="CartPole-v1", algo="PPO").encode(),
    }
    hub_cache(cache, "someone/cartpole-agents", files)
    teacher = load_teacher("hf://someone/cartpole-agents/agents/model.zip")
    assert teacher.env_id == "CartPole-v1" and teacher.meta["algo"] == "ppo"
    assert teacher.meta["hub"]["file"] == "agents/model.zip" and teacher.meta["protocol"] is None
    # Two zips and none named after the repo: the URI must say which.
    with pytest.raises(TeacherError, match=r"2 zips .* name one: hf://someone/cartpole-agents/FILE"):
        load_teacher("hf://someone/cartpole-agents")
    # --env overrides the env the files name.
    assert load_teacher("hf://someone/cartpole-agents/other.zip", env_id="CartPole-v1").env_id == "CartPole-v1"


def test_training_protocol_follows_the_files():
    wrapper = "stable_baselines3.common.atari_wrappers.AtariWrapper"
    p, notes = training_protocol(
        "BreakoutNoFrameskip-v4", {"env_wrapper": [{wrapper: {"terminal_on_life_loss": False}}], "frame_stack": 4}, {}
    )
    assert (p.sticky_actions, p.frameskip, p.episodic_life, p.reward_clipping) == (0.0, 4, False, True) and not notes
    # A v5 teacher: the env's own sticky actions, the env skipping 1 frame and the wrapper 4.
    p, _ = training_protocol("ALE/Pong-v5", {"env_wrapper": wrapper}, {"frameskip": 1})
    assert (p.sticky_actions, p.frameskip, p.noop_max) == (0.25, 4, 30)
    p, notes = training_protocol("PongNoFrameskip-v4", {"frame_stack": 2}, {})
    assert (p.frameskip, p.noop_max, p.fire_reset) == (1, 0, False)
    assert any("no AtariWrapper" in n for n in notes) and any("frame_stack 2" in n for n in notes)
    assert training_protocol("CartPole-v1", {}, {}) == (None, [])


def test_distilling_on_another_protocol_warns_once(cache, dqn_pong, capsys):
    pong_repo(cache, dqn_pong)
    teacher = load_teacher("hf://sb3/dqn-PongNoFrameskip-v4")
    mismatch = warn_protocol(teacher, "ALE/Pong-v5")
    assert mismatch["teacher"]["sticky_actions"] == 0.0 and mismatch["played"]["sticky_actions"] == 0.25
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: teacher hf://sb3/dqn-PongNoFrameskip-v4")
    assert "sticky_actions 0.0 (run: 0.25)" in err[0] and "frameskip" not in err[0]
    # The suite's own teachers play the suite's protocol; control envs have none.
    assert protocol_mismatch(load_teacher("ppo-ALE-Pong-v5"), "ALE/Pong-v5") is None
    assert protocol_mismatch(load_teacher("ppo-CartPole-v1"), "CartPole-v1") is None


# --- the CLI ----------------------------------------------------------------------------------------


def test_cli_fetch_and_eval_plays_the_teachers_protocol(cache, dqn_pong, ppo_cartpole, cli, monkeypatch):
    pong_repo(cache, dqn_pong)
    code, out, err = cli("teachers", "fetch", "hf://sb3/dqn-PongNoFrameskip-v4")
    assert code == 0 and len(out.strip().splitlines()) == 1, err
    assert "dqn teacher for ALE/Pong-v5 (trained on PongNoFrameskip-v4: AtariWrapper, frame stack 4" in out
    assert "sticky actions 0," in out and COMMIT[:12] in out

    cartpole_repo(cache, ppo_cartpole)
    code, out, _ = cli("teachers", "fetch", "hf://sb3/ppo-CartPole-v1", "--json")
    record = json.loads(out)
    assert code == 0 and record["env_id"] == "CartPole-v1" and record["protocol"] is None

    played = []

    def fake_evaluate(teacher, env_id, episodes, seed, protocol=None, **kw):
        played.append(protocol.to_dict() if protocol else None)
        return SimpleNamespace(summary={"mean": 0.0, "n": episodes}, protocol=played[-1])

    monkeypatch.setattr("rl_distill.evaluation.evaluate", fake_evaluate)
    code, out, err = cli("teachers", "eval", "hf://sb3/dqn-PongNoFrameskip-v4", "--episodes", "1", "--json")
    assert code == 0, err
    assert played[-1]["sticky_actions"] == 0.0 and json.loads(out)["protocol"]["sticky_actions"] == 0.0
    code, out, err = cli("teachers", "eval", "hf://sb3/dqn-PongNoFrameskip-v4", "--protocol", "suite", "--json")
    assert code == 0 and played[-1] is None, err  # the env family's default: ALE v5's sticky actions


def snapshot_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))


@pytest.mark.parametrize(
    "argv, words",
    [
        (
            ("teachers", "fetch", "hf://sb3/dqn-BreakoutNoFrameskip-v4"),
            ["not in the Hugging Face cache", "HF_HUB_OFFLINE"],
        ),
        (
            ("teachers", "eval", "hf://sb3/dqn-PongNoFrameskip-v4@v2.0"),
            ["at revision v2.0 is not in the Hugging Face cache"],
        ),
        (("teachers", "fetch", "hf://sb3/dqn-PongNoFrameskip-v4/best_model.zip"), ["has no best_model.zip"]),
        (("teachers", "fetch", "hf://sb3"), ["expected hf://ORG/REPO"]),
        (("teachers", "fetch", "hf://datasets/sb3/x"), ["a dataset repo"]),
        (("teachers", "fetch", "hf://sb3/x/model.pt"), ["not an SB3 .zip"]),
        (
            ("distill", "bc", "--teacher", "hf://sb3/nope", "--steps", "64"),
            ["sb3/nope is not in the Hugging Face cache"],
        ),
    ],
)
def test_cli_offline_errors_are_one_line_and_write_nothing(cache, dqn_pong, cli, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)  # distill's runs/ would go here
    pong_repo(cache, dqn_pong)
    before = snapshot_files(cache)
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("rl-distill: error: ") and all(w in err for w in words), err
    assert snapshot_files(cache) == before and not (tmp_path / "runs").exists()


def test_cached_snapshot_without_the_zip(cache, cli):
    hub_cache(cache, "sb3/ppo-CartPole-v1", {"config.yml": CARTPOLE_CONFIG.encode()})
    code, _, err = cli("teachers", "fetch", "hf://sb3/ppo-CartPole-v1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"cached snapshot {COMMIT[:12]} of sb3/ppo-CartPole-v1 has no ppo-CartPole-v1.zip" in err
    assert "holds config.yml" in err and "HF_HUB_OFFLINE" in err


def test_refusals_without_running_anything(cache, ppo_cartpole, tmp_path):
    pwned = tmp_path / "pwned"
    evil = f"!!python/object/apply:os.system\n- touch {pwned}\n"
    hub_cache(cache, "evil/ppo-CartPole-v1", {"ppo-CartPole-v1.zip": ppo_cartpole[1], "config.yml": evil.encode()})
    with pytest.raises(TeacherError, match="cannot read config.yml"):
        load_teacher("hf://evil/ppo-CartPole-v1")
    assert not pwned.exists()

    files = {"ppo-CartPole-v1.zip": ppo_cartpole[1], "vec_normalize.pkl": b"\x80\x04 pickled statistics"}
    hub_cache(cache, "norm/ppo-CartPole-v1", files)
    with pytest.raises(TeacherError, match="VecNormalize"):
        load_teacher("hf://norm/ppo-CartPole-v1")
    config = CARTPOLE_CONFIG + "  - - normalize\n    - true\n"
    hub_cache(cache, "norm2/ppo-CartPole-v1", {"ppo-CartPole-v1.zip": ppo_cartpole[1], "config.yml": config.encode()})
    with pytest.raises(TeacherError, match="VecNormalize"):
        load_teacher("hf://norm2/ppo-CartPole-v1")


def test_without_huggingface_hub_one_line_says_how_to_install(cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    code, _, err = cli("teachers", "fetch", "hf://sb3/ppo-CartPole-v1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pip install 'rl-distill[hub]'" in err
    with pytest.raises(TeacherError, match="huggingface_hub"):
        parse_uri("hf://sb3/ppo-CartPole-v1")


def test_unreachable_hub_falls_back_to_the_cache(cache, ppo_cartpole, cli, monkeypatch):
    from huggingface_hub import constants

    # Online, but the hub is a closed port on this machine: the cache answers, or one line says what is missing.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    cartpole_repo(cache, ppo_cartpole)
    assert load_teacher("hf://sb3/ppo-CartPole-v1").env_id == "CartPole-v1"
    code, _, err = cli("teachers", "fetch", "hf://sb3/ppo-Acrobot-v1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the Hugging Face Hub cannot be reached and sb3/ppo-Acrobot-v1 is not in the cache" in err
