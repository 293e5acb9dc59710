"""The MinAtar family: envs, protocol, students, teachers trained through SB3 and loaded back, family defaults."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rl_distill.envs import MinAtarProtocol, env_spec, family_of, make_env, one_family
from rl_distill.envs.minatar import grid_rgb
from rl_distill.errors import UnknownEnvError, UserError
from rl_distill.networks import Arch, build_net
from rl_distill.students import Student, param_count
from rl_distill.teachers.checkpoint import save_teacher

GAMES = {"Asterix": (4, 5), "Breakout": (4, 3), "Freeway": (7, 3), "Seaquest": (10, 6), "SpaceInvaders": (6, 4)}


@pytest.mark.parametrize("game", GAMES)
def test_shapes_channels_first_and_action_sets(game):
    channels, minimal = GAMES[game]
    env = make_env(f"MinAtar/{game}-v1", 3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, channels, 10, 10) and obs.dtype == np.uint8 and set(np.unique(obs)) <= {0, 1}
    assert env.single_action_space.n == minimal
    assert env.metadata["rl_distill_protocol"] == MinAtarProtocol().to_dict()
    assert MinAtarProtocol() == MinAtarProtocol(sticky_actions=0.1, difficulty_ramping=True, max_steps=10_000)
    env.close()
    assert env_spec(f"MinAtar/{game}-v0").n_actions == 6  # the paper's full action set


def _play(env_id, seed, steps=300, **protocol):
    env = make_env(env_id, 2, protocol=MinAtarProtocol(**protocol) if protocol else None)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace = [obs.copy()]
    rewards = []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(rng.integers(0, env.single_action_space.n, 2))
        trace.append(obs.copy())
        rewards.append(r.copy())
    env.close()
    return np.stack(trace), np.stack(rewards)


def test_same_seed_same_game_other_seed_other_game():
    a, ra = _play("MinAtar/Asterix-v1", 3)
    b, rb = _play("MinAtar/Asterix-v1", 3)
    c, _ = _play("MinAtar/Asterix-v1", 4)
    assert np.array_equal(a, b) and np.array_equal(ra, rb)
    assert not np.array_equal(a, c)


def test_episode_cap_truncates():
    env = make_env("MinAtar/Freeway-v1", 1, protocol=MinAtarProtocol(max_steps=7))
    env.reset(seed=0)
    ends = []
    for t in range(1, 15):
        _, _, term, trunc, _ = env.step(np.array([0]))
        if term[0] or trunc[0]:
            ends.append((t, bool(trunc[0])))
    env.close()
    assert ends == [(7, True), (14, True)]


@pytest.mark.parametrize("bad", ["MinAtar/Pong-v1", "MinAtar/Breakout-v2", "MinAtar/breakout-v1", "MinAtar/"])
def test_unknown_game_is_one_line(bad, cli):
    with pytest.raises(UnknownEnvError, match="unknown MinAtar env id"):
        make_env(bad)
    code, _, err = cli("teachers", "train", bad, "--algo", "dqn")
    assert code == 2 and err.strip().count("\n") == 0 and err.startswith("rl-distill: error: unknown MinAtar env id")


def test_families_do_not_mix():
    assert family_of("MinAtar/Breakout-v1").name == "minatar" and family_of("ALE/Pong-v5").name == "atari"
    assert family_of("CartPole-v1").name == "control"
    with pytest.raises(UnknownEnvError, match="mix the atari and minatar families"):
        one_family(["ALE/Pong-v5", "MinAtar/Breakout-v1"])


def test_grid_colours_each_channel_and_scales_cells():
    grid = np.zeros((3, 10, 10), np.uint8)
    grid[0, 0, 0] = grid[1, 5, 5] = grid[2, 9, 9] = 1
    img = grid_rgb(grid, cell=4)
    assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    assert (img[8:12, 8:12] == 0).all()  # an empty cell is black
    colours = {tuple(img[0, 0]), tuple(img[20, 20]), tuple(img[36, 36])}
    assert len(colours) == 3 and (0, 0, 0) not in colours


def test_student_presets_are_rusu_sized():
    shapes, actions = [(4, 10, 10)], [3]
    full = param_count("minatar", shapes, actions)
    ratios = [full / param_count(s, shapes, actions) for s in ("minatar-4x", "minatar-15x", "minatar-30x")]
    assert 3.5 < ratios[0] < 4.5 and 13 < ratios[1] < 17 and 26 < ratios[2] < 34
    s = Student("minatar", shapes, actions)
    assert sum(p.numel() for p in s.parameters()) == full
    out = s(torch.zeros(5, 4, 10, 10, dtype=torch.uint8))
    assert out["logits"].shape == (5, 3) and out["features"].shape == (5, 128)


@pytest.mark.parametrize("spec", ["nature", "rusu-27x", "mlp-64-64"])
def test_student_that_does_not_fit_a_grid_is_refused(spec):
    with pytest.raises(UserError):
        Student(spec, [(4, 10, 10)], [3])


def _minatar_teacher(tmp_path: Path, env_id="MinAtar/Breakout-v1", n_actions=3, channels=4) -> str:
    arch = Arch(
        kind="q",
        obs_shape=(channels, 10, 10),
        n_actions=n_actions,
        encoder="minatar",
        cnn_channels=(16,),
        cnn_features=128,
        pi_layers=(),
        activation="relu",
    )
    torch.manual_seed(0)
    net = build_net(arch)
    return str(save_teacher(tmp_path / "minatar-teacher", arch, net.state_dict(), {"id": "t", "env_id": env_id}))


def test_minatar_teacher_on_an_atari_env_is_refused(tmp_path, cli):
    teacher = _minatar_teacher(tmp_path)
    code, _, err = cli("distill", "policy-distillation", "--teacher", teacher, "--env", "ALE/Breakout-v5")
    assert code == 2 and err.startswith("rl-distill: error: ") and "Traceback" not in err
    assert not (Path("runs").exists() and any("Breakout-v5__policy" in p.name for p in Path("runs").iterdir()))


def test_family_defaults_reach_the_config():
    from rl_distill.distill import default_budget, method_config
    from rl_distill.methods import get_method

    on_policy, dagger = get_method("on-policy"), get_method("dagger")
    assert method_config(on_policy, {}, ["ALE/Pong-v5"]).memory == 20_000
    assert method_config(on_policy, {}, ["MinAtar/Breakout-v1"]).memory == method_config(on_policy, {}).memory
    assert method_config(on_policy, {"reward_form": "dense"}, ["ALE/Pong-v5"]).memory == 0
    assert method_config(dagger, {}, ["ALE/Pong-v5"]).loss == "kl"
    assert default_budget(dagger, ["ALE/Pong-v5", "CartPole-v1"]) == 100_000 + dagger.default_steps("CartPole-v1")


def test_distill_on_minatar_runs_with_the_family_student(tmp_path):
    from tests.helpers import distill

    teacher = _minatar_teacher(tmp_path)
    s = distill("policy-distillation", tmp_path / "runs", teacher, 600, eval_episodes=2)
    assert s["student"] == "mcnn-16-128"
    conf = json.loads((Path(s["run_dir"]) / "config.json").read_text())
    assert conf["run"]["precision"] in ("auto", "fp32")


def test_sb3_dqn_teacher_round_trip(tmp_path, cli):
    """A MinAtar DQN trained by `teachers train` exports and loads as the suite's own network, Q for Q."""
    from stable_baselines3 import DQN

    from rl_distill.teachers import load_teacher

    out = tmp_path / "t"
    code, _, err = cli(
        "teachers", "train", "MinAtar/Breakout-v1", "--algo", "dqn", "--steps", "1200", "--eval-every", "600",
        "--eval-episodes", "1", "--final-episodes", "2", "--runs-dir", str(tmp_path / "runs"), "--out", str(out),
        "--no-progress", "--hyperparams", "learning_starts=200", "buffer_size=1000",
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["protocol"] == {"sticky_actions": 0.1, "difficulty_ramping": True, "max_steps": 10_000}
    assert meta["training"]["hyperparams"]["optimizer_class"] == "RMSprop"
    teacher = load_teacher(str(out))
    assert teacher.arch.encoder == "minatar" and teacher.arch.cnn_channels == (16,)
    run = next((tmp_path / "runs").iterdir())
    model = DQN.load(str(run / "best.zip"), device="cpu")  # what the export ships: the best evaluation's model
    obs = torch.as_tensor(make_env("MinAtar/Breakout-v1", 4).reset(seed=1)[0])
    with torch.no_grad():
        assert torch.allclose(teacher.net(obs)["q_values"], model.q_net(obs.float()), atol=1e-5)


def test_random_scores_are_the_floor():
    from rl_distill.envs import score_floor
    from rl_distill.envs.minatar import RANDOM_SCORES_FILE

    shipped = json.loads(RANDOM_SCORES_FILE.read_text())
    assert shipped["protocol"] == MinAtarProtocol().to_dict()
    for game in GAMES:
        for version in ("v0", "v1"):
            env_id = f"MinAtar/{game}-{version}"
            assert score_floor(env_id) == shipped["scores"][env_id]["mean"]
            assert shipped["scores"][env_id]["episodes"] >= 1000


def _shipped_minatar(early: bool = False):
    """The shipped MinAtar teachers; ``early``: the deliberately imperfect ones (an early checkpoint of a teacher's
    own run, ``<id>-early``, for kickstarting's claim of a student passing its teacher)."""
    from rl_distill.teachers import shipped_meta

    return [
        m["id"] for m in shipped_meta() if m["env_id"].startswith("MinAtar/") and m["id"].endswith("-early") == early
    ]


@pytest.mark.parametrize("tid", _shipped_minatar())
def test_shipped_minatar_teacher_meets_published_strength(tid):
    """The recorded 100-episode score at or above the MinAtar paper's DQN, and a 20-episode check within 2 standard
    errors of it; the protocol and the minimal action set as the family plays them."""
    from rl_distill.envs.minatar import PUBLISHED
    from rl_distill.evaluation import evaluate
    from rl_distill.teachers import load_teacher

    t = load_teacher(tid)
    target = PUBLISHED[t.env_id.split("/")[1].split("-")[0]][0]
    assert t.meta["protocol"] == MinAtarProtocol().to_dict() and t.env_id.endswith("-v1")
    assert t.score >= target and t.meta["score"]["n"] >= 100
    res = evaluate(t, t.env_id, episodes=20, seed=123)
    assert res.summary["mean"] >= target - 2 * res.summary["std"] / np.sqrt(20)


@pytest.mark.parametrize("tid", _shipped_minatar(early=True))
def test_shipped_early_minatar_teacher_is_imperfect(tid):
    """An early teacher is well above random play and well below the teacher its run went on to ship (20-80% of the
    way from the random policy's score), and its run is that teacher's: same game, algorithm and settings."""
    from rl_distill.envs import score_floor
    from rl_distill.teachers import load_teacher

    early, full = load_teacher(tid), load_teacher(tid.removesuffix("-early"))
    assert early.env_id == full.env_id and early.meta["algo"] == full.meta["algo"]
    floor = score_floor(early.env_id)
    assert 0.2 <= (early.score - floor) / (full.score - floor) <= 0.8
