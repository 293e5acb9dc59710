import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rl_distill.envs import env_spec
from rl_distill.errors import SpaceMismatchError, TeacherError
from rl_distill.evaluation import evaluate
from rl_distill.networks import Arch, build_net
from rl_distill.teachers import load_teacher, shipped_ids, shipped_meta
from rl_distill.teachers.checkpoint import load_checkpoint, save_teacher


def _random_teacher(tmp_path: Path, kind="actor_critic", encoder="flatten", obs_shape=(4,), n_actions=2) -> Path:
    torch.manual_seed(0)
    arch = Arch(
        kind=kind,
        obs_shape=obs_shape,
        n_actions=n_actions,
        encoder=encoder,
        cnn_channels=(16, 16, 16),
        cnn_features=32,
        pi_layers=(8,) if encoder == "cnn" else (16, 16),
    )
    net = build_net(arch)
    save_teacher(
        tmp_path / "t",
        arch,
        net.state_dict(),
        {
            "id": "t",
            "env_id": "CartPole-v1" if encoder == "flatten" else "ALE/Pong-v5",
            "algo": "ppo" if kind == "actor_critic" else "dqn",
        },
    )
    return tmp_path / "t"


@pytest.mark.parametrize("kind", ["actor_critic", "q"])
def test_checkpoint_round_trip(tmp_path, kind):
    path = _random_teacher(tmp_path, kind)
    t1 = load_teacher(str(path) + ".json")
    t2 = load_checkpoint(str(path) + ".safetensors")
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    assert torch.equal(t1.logits(obs), t2.logits(obs))
    assert t1.features(obs).shape == (32, 16)
    assert (t1.value(obs) is None) == (kind == "q")
    assert t1.act(obs).shape == (32,)
    meta = json.loads((tmp_path / "t.json").read_text())
    assert meta["format"] == "rl-distill-teacher" and meta["arch"]["kind"] == kind
    assert not list(tmp_path.glob("*.tmp"))


def test_cnn_teacher_takes_uint8_stacks(tmp_path):
    path = _random_teacher(tmp_path, "q", "cnn", (4, 84, 84), 6)
    t = load_teacher(str(path) + ".json")
    obs = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    assert t.q_values(obs).shape == (3, 6)
    assert t.features(obs).shape == (3, 8)


def test_truncated_weights_refused(tmp_path):
    path = _random_teacher(tmp_path)
    w = tmp_path / "t.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(TeacherError, match="corrupt or truncated"):
        load_teacher(str(path) + ".json")


def test_garbage_weights_without_checksum_refused(tmp_path):
    path = _random_teacher(tmp_path)
    meta = json.loads((tmp_path / "t.json").read_text())
    del meta["weights_sha256"]
    (tmp_path / "t.json").write_text(json.dumps(meta))
    (tmp_path / "t.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(TeacherError, match="cannot read teacher weights"):
        load_teacher(str(path) + ".json")


def test_corrupt_and_missing_metadata_refused(tmp_path):
    path = _random_teacher(tmp_path)
    (tmp_path / "t.json").write_text("{ not json")
    with pytest.raises(TeacherError, match="corrupt teacher metadata"):
        load_teacher(str(path) + ".json")
    with pytest.raises(TeacherError, match="no teacher"):
        load_teacher(str(tmp_path / "missing.json"))
    with pytest.raises(TeacherError, match="unknown teacher"):
        load_teacher("ppo-NoSuchEnv-v0")


def test_space_mismatch(tmp_path):
    t = load_teacher(str(_random_teacher(tmp_path)) + ".json")
    with pytest.raises(SpaceMismatchError, match="shape"):
        t.check_fits(env_spec("Acrobot-v1"))
    with pytest.raises(SpaceMismatchError):
        evaluate(t, "Acrobot-v1", episodes=1)


def test_evaluate_is_deterministic_and_counts_episodes(tmp_path):
    t = load_teacher(str(_random_teacher(tmp_path)) + ".json")
    a = evaluate(t, "CartPole-v1", episodes=10, seed=3)
    b = evaluate(t, "CartPole-v1", episodes=10, seed=3)
    c = evaluate(t, "CartPole-v1", episodes=10, seed=4)
    assert len(a.returns) == 10 and np.array_equal(a.returns, b.returns) and a.summary == b.summary
    assert not np.array_equal(a.returns, c.returns)
    assert np.array_equal(a.returns, a.lengths.astype(float))  # CartPole: +1 per step


def test_evaluate_reports_percent_and_human_normalized():
    r = evaluate(lambda o: np.zeros(len(o), dtype=int), "CartPole-v1", episodes=4, seed=0, reference=500.0)
    assert r.summary["percent_of_reference"] == pytest.approx(100 * r.summary["mean"] / 500)
    p = evaluate(lambda o: np.zeros(len(o), dtype=int), "ALE/Pong-v5", episodes=1, seed=0)
    assert p.summary["human_normalized"] == pytest.approx((p.summary["mean"] + 20.7) / (14.6 + 20.7))
    assert p.protocol["reward_clipping"] is False and p.protocol["episodic_life"] is False


def test_stalled_game_scored_as_the_full_game():
    """A NOOP policy on Breakout: FIRE on reset serves the first ball, it is lost, and the next is never served, so the
    screen freezes until the frame cap. The stall rule scores that game without playing it out, with the same
    numbers."""
    noop = lambda o: np.zeros(len(o), dtype=int)  # noqa: E731
    full = evaluate(noop, "ALE/Breakout-v5", episodes=2, seed=5)
    cut = evaluate(noop, "ALE/Breakout-v5", episodes=2, seed=5, stall_steps=500)
    assert full.lengths.tolist() == [27_000, 27_000]  # 108,000 frames / frameskip 4
    assert cut.returns.tolist() == full.returns.tolist() and cut.lengths.tolist() == full.lengths.tolist()
    assert cut.summary["stalled_games"] == 2 and "stalled_games" not in full.summary
    # Pong never freezes (the ball keeps moving): nothing is cut.
    pong = evaluate(noop, "ALE/Pong-v5", episodes=2, seed=5, stall_steps=500)
    assert (
        pong.summary["stalled_games"] == 0
        and pong.returns.tolist() == evaluate(noop, "ALE/Pong-v5", episodes=2, seed=5).returns.tolist()
    )


SHIPPED = shipped_ids()


@pytest.mark.parametrize("tid", SHIPPED)
def test_shipped_teacher_meets_its_score(tid):
    """A quick 20-episode check of each shipped teacher against the issue's target."""
    targets = {"CartPole-v1": 475, "Acrobot-v1": -90, "LunarLander-v3": 200, "MountainCar-v0": -120}
    t = load_teacher(tid)
    if t.env_id not in targets:
        pytest.skip("Atari and MinAtar teachers are checked in test_atari_teachers and test_minatar")
    if t.meta.get("imperfect"):  # shipped weak on purpose (an early checkpoint): it must stay clearly below
        res = evaluate(t, t.env_id, episodes=20, seed=123)
        assert res.summary["mean"] < 0.8 * targets[t.env_id] and t.score < 0.8 * targets[t.env_id]
        return
    res = evaluate(t, t.env_id, episodes=20, seed=123)
    # 20 episodes are noisy: allow 2 standard errors below the 100-episode target.
    se = res.summary["std"] / np.sqrt(20)
    assert res.summary["mean"] >= targets[t.env_id] - 2 * se
    assert t.score >= targets[t.env_id], "the recorded 100-episode score must meet the target"


def test_shipped_teachers_listed():
    assert "ppo-CartPole-v1" in SHIPPED
    for m in shipped_meta():
        assert m["score"]["n"] >= 100 or m["env_id"].startswith("ALE/")
        assert m["training"]["command"].startswith("rl-distill teachers train")
