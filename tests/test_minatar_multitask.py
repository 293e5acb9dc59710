"""One image student over MinAtar games of different channel counts (experiments/minatar-multitask.toml): each
game's grid is zero-padded inside the student up to the largest count, so the whole encoder is shared; the padding
by hand, parameter counts, save/load, determinism, multi-task Policy Distillation from the shipped PPO teachers
(Breakout 4 channels + SpaceInvaders 6), Actor-Mimic-style transfer to games of fewer and more channels, and the
refusal of grids of another height or width."""

import json
from pathlib import Path

import helpers
import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from rl_distill.distill import _save_student, transfer_weights
from rl_distill.errors import UserError
from rl_distill.networks import MinAtarCNN, count_params
from rl_distill.runs import read_scalars
from rl_distill.students import (
    INPUT_CONV,
    Student,
    check_student_fits,
    fit_error,
    fit_input_conv,
    load_student,
    make_student,
    memory_estimate,
    param_count,
)

GAMES = ["Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"]
ENVS = [f"MinAtar/{g}-v1" for g in GAMES]
SHAPES = [(4, 10, 10), (4, 10, 10), (7, 10, 10), (10, 10, 10), (6, 10, 10)]
ACTIONS = [5, 3, 3, 6, 4]
PAIR = ["ppo-MinAtar-Breakout-v1", "ppo-MinAtar-SpaceInvaders-v1"]  # 4 and 6 channels


def _grid(shape, n=6, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n, *shape), generator=g, dtype=torch.uint8)


def test_padding_is_a_convolution_that_ignores_the_extra_channels():
    torch.manual_seed(0)
    s = Student("minatar", [(4, 10, 10), (10, 10, 10)], [3, 6])
    assert s.in_channels == 10 and s.encoder.cnn[0].weight.shape == (16, 10, 3, 3)
    x = _grid((4, 10, 10))
    conv = s.encoder.cnn[0]
    padded = F.pad(x.float(), (0, 0, 0, 0, 0, 6))
    assert padded.shape == (6, 10, 10, 10) and (padded[:, 4:] == 0).all() and torch.equal(padded[:, :4], x.float())
    by_hand = F.conv2d(x.float(), conv.weight[:, :4], conv.bias)  # a conv whose extra 6 input channels are ignored
    torch.testing.assert_close(conv(padded), by_hand, rtol=0, atol=1e-6)
    # The whole network: the same as a 4-channel MinAtar encoder holding the first 4 channels' weights.
    small = MinAtarCNN((4, 10, 10), 16, 128)
    small.load_state_dict({k: (v[:, :4] if k == "cnn.0.weight" else v) for k, v in s.encoder.state_dict().items()})
    torch.testing.assert_close(s(x, 0)["features"], small(x), rtol=0, atol=1e-6)
    # Only the first 4 input channels' weights learn from a 4-channel game.
    s(x, 0)["logits"].sum().backward()
    grad = s.encoder.cnn[0].weight.grad
    assert (grad[:, 4:] == 0).all() and grad[:, :4].abs().sum() > 0
    # The 10-channel game needs no padding and sees every channel.
    assert s(_grid((10, 10, 10)), 1)["logits"].shape == (6, 6)


@pytest.mark.parametrize(
    "spec, shapes, actions",
    [
        ("minatar", SHAPES, ACTIONS),
        ("minatar-30x", [(4, 10, 10), (6, 10, 10)], [3, 4]),
        ("cnn-4-4-4-8", [(1, 40, 52), (3, 40, 52)], [3, 2]),
    ],
)
def test_param_count_is_the_padded_students(spec, shapes, actions):
    n = param_count(spec, shapes, actions)
    assert n == count_params(Student(spec, shapes, actions))
    widest = max(c for c, *_ in shapes)
    assert n == param_count(spec, [(widest, *s[1:]) for s in shapes], actions)  # as if every game had the most
    assert memory_estimate(spec, shapes, actions)[0] == n


def test_five_games_one_encoder():
    s = make_student("minatar", SHAPES, ACTIONS, seed=0)
    assert s.in_channels == 10 and s.num_tasks == 5
    # mcnn-16-128 on 10 channels: conv 10*16*9 + 16, fc 16*8*8*128 + 128, then a policy and a value head per game.
    assert count_params(s) == 10 * 16 * 9 + 16 + 16 * 64 * 128 + 128 + sum(129 * a for a in ACTIONS) + 5 * 129
    for task, shape in enumerate(SHAPES):
        out = s(_grid(shape), task)
        assert out["logits"].shape == (6, ACTIONS[task]) and out["features"].shape == (6, 128)
    check_student_fits("minatar", ENVS)
    check_student_fits(None, ENVS)  # the family default, mcnn-16-128


def test_other_height_or_width_refused_in_one_line():
    shapes = [(4, 10, 10), (4, 12, 10)]
    with pytest.raises(UserError) as e:
        Student("minatar", shapes, [3, 3])
    text = str(e.value)
    assert "\n" not in text and "4x10x10" in text and "4x12x10" in text and "height and width" in text, text
    assert param_count("minatar", shapes, [3, 3]) is None and memory_estimate("minatar", shapes, [3, 3]) is None
    assert fit_error("minatar", shapes) == text
    # What a --dry-run can ask: a spec that does not fit the envs, before anything is built.
    with pytest.raises(UserError) as e:
        check_student_fits("nature", ENVS[:2])
    assert "\n" not in str(e.value) and "10x10 images" in str(e.value) and "MinAtar/Asterix-v1" in str(e.value)


def test_determinism():
    a, b = (make_student("minatar", SHAPES, ACTIONS, seed=3) for _ in range(2))
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    x = _grid((7, 10, 10))
    assert torch.equal(a(x, 2)["logits"], b(x, 2)["logits"])


def test_save_load_round_trip(tmp_path):
    s = make_student("minatar", SHAPES, ACTIONS, seed=1)
    _save_student(tmp_path, s, ENVS)
    meta = json.loads((tmp_path / "student.json").read_text())
    assert meta["input_channels"] == 10 and [tuple(x) for x in meta["obs_shapes"]] == SHAPES
    back = load_student(tmp_path)
    assert back.in_channels == 10
    for task, shape in enumerate(SHAPES):
        x = _grid(shape, seed=task)
        assert torch.equal(s(x, task)["logits"], back(x, task)["logits"])
    # A student.json whose padding disagrees with its shapes is refused in one line, not loaded wrong.
    (tmp_path / "student.json").write_text(json.dumps({**meta, "input_channels": 7}))
    with pytest.raises(UserError) as e:
        load_student(tmp_path)
    assert "\n" not in str(e.value) and "input_channels 7" in str(e.value)


@pytest.mark.parametrize("channels", [4, 6, 9])
def test_fit_input_conv(channels):
    w = torch.randn(16, 6, 3, 3)
    out = fit_input_conv(w, channels)
    assert out.shape == (16, channels, 3, 3)
    assert torch.equal(out[:, : min(6, channels)], w[:, :channels]) and (out[:, 6:] == 0).all()


@pytest.fixture(scope="module")
def pd_run(tmp_path_factory):
    """Multi-task Policy Distillation of Breakout (4 channels) + SpaceInvaders (6) from the shipped PPO teachers."""
    return helpers.distill(
        "policy-distillation", tmp_path_factory.mktemp("pd"), PAIR, 400, student="minatar", eval_episodes=2
    )


def test_multitask_policy_distillation_reports_both_games(pd_run):
    s = pd_run
    assert s["envs"] == ["MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1"] and s["student"] == "mcnn-16-128"
    assert s["env_steps"] >= 400 and s["gradient_steps"] > 0
    assert [t["env"] for t in s["tasks"]] == s["envs"] and [t["teacher"] for t in s["tasks"]] == PAIR
    assert len(s["percent_of_teacher"]) == 2 and all(isinstance(p, float) for p in s["percent_of_teacher"])
    assert s["student_params"] == param_count("minatar", [(6, 10, 10)] * 2, [3, 4]) - 2 * 129  # less value heads
    rows = read_scalars(s["run_dir"])
    assert any("distill/loss" in r for r in rows)
    student = load_student(s["run_dir"])
    assert student.in_channels == 6 and student.obs_shapes == [(4, 10, 10), (6, 10, 10)]
    assert json.loads((Path(s["run_dir"]) / "student.json").read_text())["input_channels"] == 6


def test_multitask_policy_distillation_deterministic(pd_run, tmp_path):
    again = helpers.distill("policy-distillation", tmp_path, PAIR, 400, student="minatar", eval_episodes=2)
    assert again["student_score"] == pd_run["student_score"]
    a = load_file(str(Path(pd_run["run_dir"]) / "student.safetensors"))
    b = load_file(str(Path(again["run_dir"]) / "student.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("game, channels", [("Asterix", 4), ("SpaceInvaders", 6), ("Freeway", 7), ("Seaquest", 10)])
def test_transfer_to_a_held_out_game_of_any_channel_count(pd_run, game, channels):
    """A single-task student on a held-out game takes the multi-task student's whole encoder: on fewer (or as many)
    channels it computes exactly what the source computes on the game's grid zero-padded to 6; on more, exactly
    what the source computes on its first 6 channels (the extra ones start with zero weights)."""
    src = load_student(pd_run["run_dir"])
    env = f"MinAtar/{game}-v1"
    s = make_student("minatar", [(channels, 10, 10)], [ACTIONS[GAMES.index(game)]], seed=5)
    info = transfer_weights(s, pd_run["run_dir"], [env])
    w = src.state_dict()[INPUT_CONV]
    if channels == 6:
        assert "input_channels" not in info
    else:
        assert info["input_channels"] == {"source": 6, "here": channels}
    assert info["heads"] == ([env] if game == "SpaceInvaders" else [])
    trunk = sum(v.numel() for k, v in src.state_dict().items() if k.startswith("encoder."))
    heads = 128 * ACTIONS[-1] + ACTIONS[-1] + 129 if game == "SpaceInvaders" else 0  # its policy and value heads
    assert info["params"] == trunk - 16 * 9 * max(0, 6 - channels) + heads  # what came from the source
    mine = s.state_dict()[INPUT_CONV]
    assert torch.equal(mine[:, : min(channels, 6)], w[:, :channels]) and (mine[:, 6:] == 0).all()
    x = _grid((channels, 10, 10), seed=channels)
    with torch.no_grad():
        theirs = src(x[:, :6], 1)["features"]
        torch.testing.assert_close(s(x)["features"], theirs, rtol=0, atol=1e-5)


def test_ppo_from_the_multitask_student_on_a_game_of_more_channels(pd_run, tmp_path):
    """The transfer path of the suite through the harness: PPO on Freeway (7 channels, held out) from the
    Breakout + SpaceInvaders student (6)."""
    from rl_distill.distill import RunSpec, run
    from rl_distill.methods import get_method

    t = run(
        get_method("ppo"),
        RunSpec(
            method="ppo",
            teachers=["ppo-MinAtar-Freeway-v1"],
            student="minatar",
            steps=256,
            progress=False,
            tensorboard=False,
            eval_episodes=1,
            runs_dir=str(tmp_path / "from"),
            init_from=pd_run["run_dir"],
            options={"num_envs": 4, "n_steps": 32},
        ),
    )
    assert t["init"]["input_channels"] == {"source": 6, "here": 7} and t["init"]["heads"] == []
    assert load_student(t["run_dir"]).in_channels == 7


def test_dry_run_refuses_a_student_that_cannot_take_the_games(tmp_path, capsys):
    # The Nature CNN's 8x8 stride-4 convolutions leave nothing of a 10x10 grid: --dry-run refuses it in one line
    # naming the block, as the run would at its start; the paper-size student over the same games passes.
    from rl_distill.cli import main

    suite = tmp_path / "s.toml"
    text = """name = "s"
seeds = 1
[[grid]]
method = "policy-distillation"
env = [["MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1"]]
teacher = "ppo-{env}"
student = "STUDENT"
steps = 512
"""
    args = ["bench", str(suite), "--dry-run", "--out", str(tmp_path / "o"), "--runs-dir", str(tmp_path / "r")]
    suite.write_text(text.replace("STUDENT", "nature"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "grid block 1" in err and "does not fit 10x10 images" in err
    suite.write_text(text.replace("STUDENT", "minatar"))
    assert main(args) == 0
