"""`rl-distill video`: the written clip decodes to the frames, size and panels it should have, for each env family;
bad input is one line and leaves nothing at the output path."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from rl_distill.errors import UserError
from rl_distill.video import GAP, TITLE_H, MinAtarScreen, Panel, Playthrough, write_video


def constant(action: int) -> Panel:
    return Panel(f"always {action}", lambda obs: np.full(len(obs), action))


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of an MP4 (ffmpeg) or a GIF (Pillow; a frame merged with identical neighbours counts for as many
    frames as its duration says)."""
    if path.suffix == ".mp4":
        import imageio_ffmpeg

        frames = imageio_ffmpeg.read_frames(str(path))
        w, h = next(frames)["size"]
        return [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in frames]
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        per = [(np.asarray(f.convert("RGB")), f.info["duration"]) for f in ImageSequence.Iterator(im)]
    step = min(d for _, d in per)
    return [f for f, d in per for _ in range(round(d / step))]


def differing(frame: np.ndarray, width: int) -> float:
    """The fraction of the pixels of the left panel's picture (below its captions) that are clearly not those of the
    right one's, in a two-panel frame whose panels are ``width`` wide (MP4's coding noise stays far below 60)."""
    pictures = frame[TITLE_H:].astype(np.int16)
    left, right = pictures[:, :width], pictures[:, width + GAP : 2 * width + GAP]
    return float((np.abs(left - right).max(-1) > 60).mean())


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_two_panels_start_alike_and_part_where_the_policies_part(tmp_path, suffix):
    out = tmp_path / f"clip{suffix}"
    r = write_video([constant(0), constant(1)], "CartPole-v1", out, seed=3)
    steps = [p["steps"] for p in r["panels"]]
    assert all(len(p["returns"]) == 1 for p in r["panels"]) and 5 < min(steps)
    frames = decode(out)
    assert r["frames"] == len(frames) == 1 + max(steps)  # the start, then one frame per agent step
    assert r["size"] == [2 * 300 + GAP, TITLE_H + 200] and frames[0].shape == (TITLE_H + 200, 2 * 300 + GAP, 3)
    assert list(out.parent.iterdir()) == [out]
    assert differing(frames[0], 300) == 0  # the same seed: the same start
    assert differing(frames[min(steps)], 300) > 0.005  # one cart pushed left, the other right


def test_the_same_policy_twice_gives_two_equal_panels(tmp_path):
    r = write_video([constant(1), constant(1)], "Acrobot-v1", tmp_path / "same.gif", max_steps=20)
    frames = decode(tmp_path / "same.gif")
    assert r["frames"] == len(frames) == 21 and all(p["cut"] and p["steps"] == 20 for p in r["panels"])
    assert all(differing(f, 250) == 0 for f in frames)


def test_atari_screen_is_the_policys_game_in_colour(tmp_path):
    """The twin emulator's colour screen, greyed and shrunk, is the frame the policy saw (sticky actions on)."""
    import cv2

    seen = []

    def fire_then_up(obs):
        seen.append(obs[0, -1].copy())
        return np.array([1 if len(seen) < 3 else 2])

    game = Playthrough(Panel("p", fire_then_up), "ALE/Pong-v5", seed=5, max_steps=60)
    assert game.fps == 15
    shots = list(game.shots())
    assert len(shots) == 61 and shots[0].picture.shape == (210, 160, 3)
    for shot, obs in zip(shots, seen):
        grey = cv2.resize(cv2.cvtColor(shot.picture, cv2.COLOR_RGB2GRAY), (84, 84), interpolation=cv2.INTER_AREA)
        assert np.abs(grey.astype(int) - obs).mean() < 1.5
    assert not (shots[0].picture == shots[-1].picture).all()


def test_atari_two_panels(tmp_path):
    out = tmp_path / "pong.mp4"
    r = write_video([constant(2), constant(3)], "ALE/Pong-v5", out, max_steps=40)
    frames = decode(out)
    assert r["fps"] == 15 and r["frames"] == len(frames) == 41
    assert frames[0].shape == (TITLE_H + 210, 2 * 160 + GAP, 3)
    assert differing(frames[0], 160) == 0
    assert differing(frames[-1], 160) > 0.0005  # the paddles went opposite ways


def test_minatar_grid_cells_take_their_channel_colour():
    """A hand-made grid: each set cell is a 16x16 square of its channel's colour, the last set channel winning."""
    obs = np.zeros((1, 3, 10, 10), np.uint8)
    obs[0, 0, 0, 0] = 1
    obs[0, 1, 5, 7] = 1
    obs[0, 2, 9, 9] = 1
    obs[0, 1, 2, 3] = obs[0, 2, 2, 3] = 1
    pic = MinAtarScreen(None, "MinAtar/Breakout-v1", None).picture(obs)
    assert pic.shape == (160, 160, 3) and pic.dtype == np.uint8
    colour = {(i, j): pic[16 * i : 16 * i + 16, 16 * j : 16 * j + 16] for i, j in np.ndindex(10, 10)}
    assert all((square == square[0, 0]).all() for square in colour.values())
    c0, c1, c2, both = (colour[c][0, 0] for c in [(0, 0), (5, 7), (9, 9), (2, 3)])
    assert len({tuple(c) for c in (c0, c1, c2)}) == 3 and (both == c2).all()
    empty = [c for c in colour if c not in [(0, 0), (5, 7), (9, 9), (2, 3)]]
    assert all((colour[c] == 0).all() for c in empty)


def test_minatar_clip(tmp_path):
    from rl_distill.envs import env_spec

    out = tmp_path / "minatar.gif"
    r = write_video([constant(1), constant(2)], "MinAtar/SpaceInvaders-v1", out, max_steps=30)
    frames = decode(out)
    assert r["frames"] == len(frames) and frames[0].shape == (TITLE_H + 160, 2 * 160 + GAP, 3)
    assert env_spec("MinAtar/SpaceInvaders-v1").obs_shape[1:] == (10, 10)
    assert differing(frames[0], 160) == 0
    assert differing(frames[10], 160) > 0.01  # the cannons went opposite ways


def _finished_run(tmp_path: Path, env_id: str = "CartPole-v1") -> Path:
    """A finished run's folder, as distill writes it (student.safetensors + student.json), with a random student."""
    from rl_distill.distill import _save_student
    from rl_distill.students import make_student

    d = tmp_path / "runs" / "CartPole-v1__bc__0__1"
    d.mkdir(parents=True)
    _save_student(d, make_student("mlp-64-64", [(4,)], [2], seed=0), [env_id])
    return d


def test_cli_teacher_beside_a_runs_student(cli, tmp_path):
    run = _finished_run(tmp_path)
    out = tmp_path / "clips" / "cartpole.mp4"
    code, stdout, err = cli("video", "ppo-CartPole-v1", str(run), "--out", str(out), "--max-steps", "40", "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert [p["name"] for p in r["panels"]] == ["ppo-CartPole-v1", f"run student {run.name}"]
    assert r["env_id"] == "CartPole-v1" and r["frames"] == len(decode(out)) == 1 + max(p["steps"] for p in r["panels"])
    code, stdout, err = cli("video", str(run), "--env", "CartPole-v1", "--out", str(out), "--max-steps", "5")
    assert code == 0 and f"-> {out}" in stdout and "stopped at --max-steps 5" in stdout
    assert len(decode(out)) == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ppo-CartPole-v1", "--env", "Acrobot-v1"], "ppo-CartPole-v1 was trained on CartPole-v1, not Acrobot-v1"),
        (["ppo-ALE-Pong-v5", "--env", "ALE/Breakout-v5"], "was trained on ALE/Pong-v5, not ALE/Breakout-v5"),
        (["ppo-CartPole-v1", "ppo-Acrobot-v1"], "ppo-Acrobot-v1 was trained on Acrobot-v1, not CartPole-v1"),
        (["RUN", "--env", "Acrobot-v1"], "has no head for Acrobot-v1"),
        (["ppo-CartPole-v1", "--out", "OUT/clip.avi"], "a video file ends in .mp4 or .gif"),
        (["ppo-CartPole-v1", "--out", "OUT/folder.mp4"], "a folder, not a file"),
        (["ppo-CartPole-v1", "--out", "OUT/file.txt/clip.mp4"], "file.txt: a file, not a folder"),
        (["OUT/missing.json"], "no teacher"),
        (["ppo-CartPole-v1", "--episodes", "0"], "--episodes must be an integer >= 1"),
        (["ppo-CartPole-v1", "--max-steps", "0"], "--max-steps must be an integer >= 1"),
        (["ppo-CartPole-v1", "--env", "Nope-v0"], "unknown env id"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, argv, message):
    run = _finished_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "folder.mp4").mkdir()
    (out / "file.txt").write_text("x")
    argv = [a.replace("RUN", str(run)).replace("OUT", str(out)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(out / "clip.mp4")]
    code, stdout, err = cli("video", *argv)
    assert code == 2 and stdout == ""
    assert err.startswith("rl-distill: error: ") and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in out.iterdir()) == ["file.txt", "folder.mp4"]


def test_a_failed_clip_leaves_the_old_file_and_no_temporary_one(tmp_path):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"the clip before")

    calls = []

    def breaks(obs):
        calls.append(obs)
        if len(calls) > 10:
            raise UserError("the policy broke")
        return np.zeros(len(obs), np.int64)

    with pytest.raises(UserError, match="the policy broke"):
        write_video([Panel("b", breaks)], "CartPole-v1", out)
    assert out.read_bytes() == b"the clip before" and list(tmp_path.iterdir()) == [out]


def test_version(capsys):
    from rl_distill.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"rl-distill {version('rl-distill')}\n"
