"""Greedy play of one or two policies on one env, written as an MP4 or a GIF (``rl-distill video``).

Each panel plays its own copy of the env, built by :func:`~rl_distill.envs.make_env` under the family's evaluation
protocol (Atari: ALE v5, sticky actions 0.25, full games with raw scores, up to 108,000 frames; MinAtar: sticky
actions 0.1) and reset with the same seed, so two panels start from the same state and part where their actions
part. The policies see exactly what they see in evaluation; the picture comes from one small screen per env family
(``SCREENS``): a control env's own ``rgb_array`` rendering at half size, MinAtar's grid with each cell coloured by
its channel (:func:`~rl_distill.envs.minatar.grid_rgb`, 16 pixels a cell) and, for Atari, the 210x160 colour
screen of a twin emulator. ale-py's vector env returns only the 84x84 grey frame stack, so a second
``AtariVectorEnv`` with the same protocol, seed and actions, made to return the colour screen, plays the same game in
lockstep (its rewards and frame numbers are checked at every step).

MP4 (H.264) frames stream to the ffmpeg binary that the imageio-ffmpeg wheel carries, in constant memory. GIF frames
are quantised to 256 colours as they come (one byte a pixel) and written by Pillow at the end, so a GIF is for short
clips. The file is made in a temporary folder and moved into place atomically: a failed or interrupted clip leaves
the output path as it was.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from rl_distill.envs import check_env_id, env_spec, family_of, make_env
from rl_distill.errors import SpaceMismatchError, UserError, check_count, check_dir, check_seed

VIDEO_SUFFIXES = (".mp4", ".gif")
DEFAULT_MAX_STEPS = 4_500
"""Agent steps a panel plays at most: 5 minutes of Atari play (15 steps a second), nine 500-step CartPole games."""
TITLE_H = 30
"""Pixels of the two caption lines above each panel: its name, then the episode and its score so far."""
GAP = 4
"""Pixels between two panels."""

Policy = Callable[[np.ndarray], Any]


@dataclass
class Panel:
    """One policy in a clip: its caption and greedy policy (a batch of one observation -> its action)."""

    name: str
    policy: Policy
    returns: list[float] = field(default_factory=list)
    """The returns of its finished episodes (filled as it plays)."""
    steps: int = 0
    """Agent steps played."""
    cut: bool = False
    """Stopped at ``max_steps`` before its last episode ended."""


@dataclass(frozen=True)
class Shot:
    """One frame of a panel: its picture and its caption's second line."""

    picture: np.ndarray
    caption: str


# --- one screen per env family: the picture of a one-copy env as it is played ------------------
class Screen:
    """What a family's screen does: ``picture`` of the env after ``reset``/``step`` (called with the seed, actions
    and results of the env the policy plays); ``fps``: the clip's frame rate."""

    fps = 15.0

    def reset(self, seed: int) -> None:
        pass

    def step(self, actions: np.ndarray, rewards: np.ndarray, info: dict[str, Any]) -> None:
        pass

    def picture(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ControlScreen(Screen):
    """gymnasium's own ``rgb_array`` rendering of the env the policy plays, at half size (600x400 -> 300x200)."""

    def __init__(self, env, env_id: str, protocol: Any):
        import os

        # The drawing is off screen: without a display SDL's video init only prints an error (a user's choice stays).
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        self.env = env.envs[0]
        # make_env builds its envs without a render mode; classic control and Box2D envs read it when they render.
        self.env.unwrapped.render_mode = "rgb_array"
        self.fps = float(self.env.metadata.get("render_fps") or 30)

    def picture(self, obs: np.ndarray) -> np.ndarray:
        import cv2

        f = self.env.render()
        return cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2), interpolation=cv2.INTER_AREA)


class MinAtarScreen(Screen):
    """The observed grid itself, each cell coloured by its channel (the last set channel wins), 160x160."""

    def __init__(self, env, env_id: str, protocol: Any):
        pass

    def picture(self, obs: np.ndarray) -> np.ndarray:
        from rl_distill.envs.minatar import grid_rgb

        return grid_rgb(obs[0])


class AtariScreen(Screen):
    """The 210x160 colour screen (the last of each step's frames) of a twin emulator that plays the policy's game:
    the same ROM, protocol, seed and actions (sticky actions and no-op starts come from the seed alone)."""

    def __init__(self, env, env_id: str, protocol: Any):
        from rl_distill.envs.atari import atari_vector_env

        self.twin = atari_vector_env(
            env_id, 1, protocol, 1, img_height=210, img_width=160, grayscale=False, stack_num=1, maxpool=False
        )
        self.fps = 60.0 / protocol.frameskip
        self.screen: np.ndarray | None = None

    def reset(self, seed: int) -> None:
        obs, _ = self.twin.reset(seed=seed)
        self.screen = obs[0, -1]

    def step(self, actions: np.ndarray, rewards: np.ndarray, info: dict[str, Any]) -> None:
        obs, twin_rewards, _, _, twin_info = self.twin.step(actions)
        if (twin_rewards != rewards).any() or (twin_info["episode_frame_number"] != info["episode_frame_number"]).any():
            raise RuntimeError("the Atari screen's twin emulator left the policy's game")
        self.screen = obs[0, -1]

    def picture(self, obs: np.ndarray) -> np.ndarray:
        return self.screen

    def close(self) -> None:
        self.twin.close()


SCREENS: dict[str, type[Screen]] = {"control": ControlScreen, "minatar": MinAtarScreen, "atari": AtariScreen}
"""Env family name -> its screen; a new family adds one class here."""


def _fmt_score(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


class Playthrough:
    """``panel``'s greedy episodes on one copy of ``env_id`` under the family's evaluation protocol, as the shots of
    a clip (:meth:`shots`); ``fps`` is the env's pace. Close it when done (``shots`` closes it when it ends)."""

    def __init__(
        self, panel: Panel, env_id: str, *, episodes: int = 1, seed: int = 0, max_steps: int = DEFAULT_MAX_STEPS
    ):
        family = family_of(env_id)
        protocol = family.protocol()
        protocol = protocol.for_evaluation() if protocol is not None else None
        self.panel, self.episodes, self.seed, self.max_steps = panel, episodes, seed, max_steps
        self.env = make_env(env_id, 1, protocol=protocol)
        try:
            self.screen = SCREENS[family.name](self.env, env_id, protocol)
        except BaseException:
            self.env.close()
            raise
        self.fps = self.screen.fps

    def shots(self) -> Iterator[Shot]:
        """The first observation's, then one per agent step; the step that ends an episode shows the episode's last
        picture with its final score. Fills the panel's ``returns``, ``steps`` and ``cut``."""
        panel, episodes = self.panel, self.episodes
        try:
            obs, _ = self.env.reset(seed=self.seed)
            self.screen.reset(self.seed)
            score = 0.0
            shown = self.screen.picture(obs)
            yield Shot(shown, f"episode 1/{episodes}  score 0")
            while len(panel.returns) < episodes:
                if panel.steps >= self.max_steps:
                    panel.cut = True
                    return
                actions = np.asarray(panel.policy(obs)).reshape(1).astype(np.int64)
                obs, rewards, term, trunc, info = self.env.step(actions)
                self.screen.step(actions, rewards, info)
                panel.steps += 1
                score += float(rewards[0])
                episode = len(panel.returns) + 1
                if term[0] or trunc[0]:  # obs already starts the next episode (SAME_STEP): keep the last picture
                    panel.returns.append(score)
                    yield Shot(shown, f"episode {episode}/{episodes}  final {_fmt_score(score)}")
                    score = 0.0
                    continue
                shown = self.screen.picture(obs)
                yield Shot(shown, f"episode {episode}/{episodes}  score {_fmt_score(score)}")
        finally:
            self.close()

    def close(self) -> None:
        if not self.env.closed:
            self.screen.close()
            self.env.close()


# --- composing and writing -----------------------------------------------------------------------
def compose(names: list[str], shots: list[Shot]) -> np.ndarray:
    """The panels side by side, each under its two caption lines, padded to even sides (H.264's 4:2:0 needs them)."""
    from PIL import Image, ImageDraw, ImageFont

    h = max(s.picture.shape[0] for s in shots)
    widths = [s.picture.shape[1] for s in shots]
    width = sum(widths) + GAP * (len(shots) - 1)
    canvas = Image.new("RGB", (width + width % 2, TITLE_H + h + (TITLE_H + h) % 2), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=11)
    x = 0
    for name, shot, w in zip(names, shots, widths):
        canvas.paste(Image.fromarray(np.ascontiguousarray(shot.picture)), (x, TITLE_H))
        for row, text in enumerate((name, shot.caption)):
            while len(text) > 1 and font.getlength(text) > w - 4:
                text = text[:-2] + "…"
            draw.text((x + 2, 2 + 13 * row), text, fill=(235, 235, 235), font=font)
        x += w + GAP
    return np.asarray(canvas)


class _Mp4:
    """H.264 in an MP4, frames streamed to ffmpeg (imageio-ffmpeg's binary)."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self.writer = path, fps, None

    def add(self, frame: np.ndarray) -> None:
        if self.writer is None:
            import imageio_ffmpeg

            size = (frame.shape[1], frame.shape[0])
            self.writer = imageio_ffmpeg.write_frames(
                str(self.path), size, fps=self.fps, macro_block_size=1, ffmpeg_log_level="error"
            )
            self.writer.send(None)
        self.writer.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # ffmpeg finishes the file and exits
            self.writer = None

    def abort(self) -> None:
        self.close()


class _Gif:
    """An endlessly looping GIF: frames quantised to 256 colours as they come, written by Pillow at the end (which
    merges identical consecutive frames into one of their summed duration)."""

    def __init__(self, path: Path, fps: float):
        self.path, self.frames = path, []
        self.duration_ms = max(20, round(100 / fps) * 10)  # GIF counts in hundredths of a second

    def add(self, frame: np.ndarray) -> None:
        from PIL import Image

        self.frames.append(Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE))

    def close(self) -> None:
        first, *rest = self.frames
        first.save(self.path, format="GIF", save_all=True, append_images=rest, duration=self.duration_ms, loop=0)
        self.frames = []

    def abort(self) -> None:
        self.frames = []


def check_output(out: str | Path) -> Path:
    """``out`` as a path a clip can be written to: a .mp4 or .gif file (not a folder) in a writable folder."""
    p = Path(out)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--out {out}: a video file ends in .mp4 or .gif")
    if p.is_dir():
        raise UserError(f"--out {out}: a folder, not a file")
    check_dir("out", str(p.parent))
    return p


def write_video(
    panels: list[Panel],
    env_id: str,
    out: str | Path,
    *,
    episodes: int = 1,
    seed: int = 0,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> dict[str, Any]:
    """Play each panel's ``episodes`` greedy episodes on ``env_id`` from env seed ``seed`` (at most ``max_steps``
    agent steps each) and write them side by side to ``out`` (.mp4 or .gif), one frame per agent step; a panel
    that has finished shows its last frame until the other has. Returns what was written (frames, fps, size,
    and each panel's returns and steps)."""
    out = check_output(out)
    check_count("episodes", episodes)
    check_count("max_steps", max_steps)
    check_seed(seed)
    if not 1 <= len(panels) <= 2:
        raise UserError(f"a clip shows one or two policies, not {len(panels)}")
    names = [p.name for p in panels]
    games: list[Playthrough] = []
    frames, size = 0, (0, 0)
    try:
        for p in panels:
            games.append(Playthrough(p, env_id, episodes=episodes, seed=seed, max_steps=max_steps))
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d) / f"clip{out.suffix.lower()}"
            writer = (_Mp4 if out.suffix.lower() == ".mp4" else _Gif)(tmp, games[0].fps)
            try:
                shots: list[Shot] = []
                for now in itertools.zip_longest(*(g.shots() for g in games)):
                    shots = [shot or held for shot, held in zip(now, shots)] if shots else list(now)
                    frame = compose(names, shots)
                    writer.add(frame)
                    frames, size = frames + 1, (frame.shape[1], frame.shape[0])
                writer.close()
            finally:
                writer.abort()
            from rl_distill.runs import atomic_write_bytes

            try:
                atomic_write_bytes(out, tmp.read_bytes())
            except OSError as e:
                raise UserError(f"--out {out}: cannot write it ({e.strerror or e})") from None
    finally:
        for g in games:
            g.close()
    fps = games[0].fps
    return {
        "out": str(out),
        "env_id": env_id,
        "seed": seed,
        "frames": frames,
        "fps": fps,
        "seconds": frames / fps,
        "size": list(size),
        "panels": [{"name": p.name, "returns": p.returns, "steps": p.steps, "cut": p.cut} for p in panels],
    }


# --- sources -------------------------------------------------------------------------------------
def panels_from_sources(sources: list[str], env_id: str | None = None) -> tuple[list[Panel], str]:
    """A panel per SOURCE (whatever ``--teacher`` takes: a shipped id, a teacher file or folder, a finished run
    whose student plays) and the env they play: ``env_id``, or the one the first source records. A source made for
    another env is a one-line :class:`SpaceMismatchError`."""
    from rl_distill.teachers import load_teacher

    if env_id is not None:
        check_env_id(env_id)
    panels = []
    for source in sources:
        t = load_teacher(source, env_id=env_id)
        env_id = env_id or t.env_id
        if env_id is None:
            raise UserError(f"{source} does not record its env; pass --env")
        check_env_id(env_id)
        if t.env_id and t.env_id != env_id:
            raise SpaceMismatchError(f"{source} was trained on {t.env_id}, not {env_id}")
        t.check_fits(env_spec(env_id))
        run = t.meta.get("from_run")
        name = f"{run.get('method') or 'run'} student {Path(source).name}" if run else str(t.meta.get("id") or source)
        panels.append(Panel(name, t))
    return panels, env_id


def video(
    sources: list[str],
    env_id: str | None = None,
    out: str | Path | None = None,
    *,
    episodes: int = 1,
    seed: int = 0,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> dict[str, Any]:
    """``rl-distill video``: load the sources (one or two), check the output path first, play and write the clip
    (default ``video-<env>.mp4``)."""
    if not 1 <= len(sources) <= 2:
        raise UserError(f"a clip shows one or two policies, not {len(sources)}")
    if out is not None:
        check_output(out)
    panels, env_id = panels_from_sources(sources, env_id)
    out = out or f"video-{env_id.replace('/', '-')}.mp4"
    return write_video(panels, env_id, out, episodes=episodes, seed=seed, max_steps=max_steps)
