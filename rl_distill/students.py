"""Student networks: MLP presets for control, CNN presets for Atari (Rusu et al.'s compression
sizes) and MinAtar, one policy head (and value head) per task for multi-task students.

Spec strings: ``mlp-64-64`` (hidden widths), ``cnn-C1-C2-C3-F`` (the Nature CNN's conv channels and fc width):
``nature`` = cnn-32-64-64-512 (1.69M params with 6 actions), ``rusu-4x`` = cnn-16-32-32-256,
``rusu-15x`` = cnn-16-16-16-128, ``rusu-27x`` = cnn-16-16-16-64; ``mcnn-C-F`` (MinAtar's one 3x3 conv and fc
width): ``minatar`` = mcnn-16-128 (the MinAtar paper's network), ``minatar-4x`` = mcnn-8-64, ``minatar-15x`` =
mcnn-4-32, ``minatar-30x`` = mcnn-4-16 (about 4x, 15x and 30x fewer parameters, as Rusu's sizes).

An image spec may end in ``-tW1-W2...``: separate tanh policy and value towers of those widths on the encoder's
features, the heads on top of them (SB3's ``net_arch=dict(pi=[W1, W2], vf=[W1, W2])``), instead of linear heads on
the features. ``minatar-ppo`` = mcnn-16-128-t64-64 is the network of the shipped MinAtar PPO teachers (SB3's
ActorCriticPolicy on MinAtarCNN with [ppo.minatar]'s towers, 156,884 parameters on Breakout), and a tower student
is initialised as SB3 initialises it (orthogonal: encoder and towers gain sqrt 2, policy head 0.01, value head 1).
MLP students have their separate towers already (their widths), so they take no ``-t``.

An image student spans games whose grids share a height and width but not a channel count (the MinAtar games: 4, 4,
7, 10 and 6 channels): each game's observation is zero-padded up to the largest count inside the student
(:func:`input_shape`), so that every layer but the heads is shared (:class:`Student`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rl_distill.errors import UserError
from rl_distill.networks import MinAtarCNN, NatureCNN, count_params, image_floats

ALIASES = {
    "nature": "cnn-32-64-64-512",
    "rusu-4x": "cnn-16-32-32-256",
    "rusu-15x": "cnn-16-16-16-128",
    "rusu-27x": "cnn-16-16-16-64",
    "minatar": "mcnn-16-128",
    "minatar-4x": "mcnn-8-64",
    "minatar-15x": "mcnn-4-32",
    "minatar-30x": "mcnn-4-16",
    "minatar-ppo": "mcnn-16-128-t64-64",
}
_WIDTHS = {"cnn": 4, "mcnn": 2}  # how many numbers each image kind takes


@dataclass(frozen=True)
class StudentSpec:
    """A parsed student spec string."""

    kind: str
    widths: tuple[int, ...]
    towers: tuple[int, ...] = ()
    """Hidden widths of an image student's separate tanh policy and value towers (``-t64-64``); () for linear
    heads on the encoder's features."""

    @classmethod
    def parse(cls, spec: str) -> "StudentSpec":
        s = ALIASES.get(spec, spec)
        kind, _, rest = s.partition("-")
        parts = rest.split("-") if rest else []
        cut = next((i for i, p in enumerate(parts) if p.startswith("t")), len(parts))
        if cut < len(parts):
            parts[cut] = parts[cut][1:]
        try:
            widths = tuple(int(w) for w in parts[:cut])
            towers = tuple(int(w) for w in parts[cut:])
        except ValueError:
            widths = towers = None
        if kind == "mlp" and cut < len(parts):
            raise UserError(
                f"bad student spec {spec!r}: an mlp student has separate policy and value towers already (its "
                "widths, e.g. mlp-64-64); -t... adds towers to an image student (mcnn-16-128-t64-64)"
            )
        if (
            kind not in ("mlp", "cnn", "mcnn")
            or not widths
            or (kind in _WIDTHS and len(widths) != _WIDTHS[kind])
            or any(w <= 0 for w in widths + towers)
            or (cut < len(parts) and not towers)
        ):
            raise UserError(
                f"bad student spec {spec!r}: use mlp-64-64, cnn-32-64-64-512, mcnn-16-128, mcnn-16-128-t64-64 "
                f"(policy and value towers) or one of {', '.join(ALIASES)}"
            )
        return cls(kind, widths, towers)

    def __str__(self) -> str:
        towers = "-t" + "-".join(map(str, self.towers)) if self.towers else ""
        return f"{self.kind}-" + "-".join(map(str, self.widths)) + towers


def default_spec(obs_shape: tuple[int, ...]) -> str:
    return "nature" if len(obs_shape) == 3 else "mlp-64-64"


INPUT_CONV = "encoder.cnn.0.weight"
"""The state-dict key of an image student's first convolution, the one layer whose shape depends on the channels."""


def _shape_text(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(map(str, s)) for s in dict.fromkeys(shapes))


def image_shape_error(spec: str, obs_shapes: list[tuple[int, ...]]) -> str | None:
    """Why an image (cnn/mcnn) student ``spec`` cannot take ``obs_shapes`` as one input, in one line; None where it
    can (images of one height and width, channel counts free: :func:`input_shape`). Whether its convolutions fit
    the grid is :func:`param_count`'s question."""
    k = StudentSpec.parse(spec)
    shapes = [tuple(s) for s in obs_shapes]
    if any(len(s) != 3 for s in shapes):
        return f"a {k} student needs image observations (channels x height x width); got {_shape_text(shapes)}"
    if len({s[1:] for s in shapes}) > 1:
        return (
            f"a {k} student needs images of one height and width (it zero-pads channels, never the grid); "
            f"got {_shape_text(shapes)}"
        )
    return None


def input_shape(obs_shapes: list[tuple[int, ...]]) -> tuple[int, int, int] | None:
    """The (channels, height, width) an image student's encoder takes for these observations: their one height
    and width, and the largest channel count (fewer channels are zero-padded up to it in :meth:`Student.forward`);
    None where they are not images of one height and width (:func:`image_shape_error`)."""
    shapes = [tuple(s) for s in obs_shapes]
    if not shapes or any(len(s) != 3 for s in shapes) or len({s[1:] for s in shapes}) != 1:
        return None
    return (max(s[0] for s in shapes), *shapes[0][1:])


def _init(layer: nn.Module, gain: float) -> nn.Module:
    # Orthogonal init as in CleanRL/SB3 PPO: small policy heads start near uniform.
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


def _mlp(in_dim: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Linear/tanh layers of ``widths``, orthogonal gain sqrt 2 (SB3's mlp_extractor)."""
    mods: list[nn.Module] = []
    for w in widths:
        mods += [_init(nn.Linear(in_dim, w), math.sqrt(2)), nn.Tanh()]
        in_dim = w
    return nn.Sequential(*mods)


class Student(nn.Module):
    """Policy (and value) network with one head per task.

    MLP students: one input layer per distinct observation size (tasks with different observation
    shapes share everything else), separate policy and value towers (as SB3/CleanRL do for control).
    CNN students: a shared encoder for policy and value (the Atari convention); with towers (``-t64-64``) a
    tanh policy tower and a tanh value tower on it (``policy_tower``, ``value_tower``), shared by every task as the
    encoder is, the heads on top (SB3's ActorCriticPolicy with ``net_arch=dict(pi=..., vf=...)``).

    Image tasks must share the grid's height and width, not its channel count: the encoder takes the largest
    count (``in_channels``), and a task with fewer channels is zero-padded up to it in :meth:`forward` (the envs,
    their replay memories and the teachers keep their own unpadded grids). Rusu's and Parisotto's multi-task
    networks share every layer but the heads; one input convolution per channel count would make the first layer
    per-game (and leave a held-out game of a new count without a trained one). A zero channel adds nothing to a
    convolution, so a game of c channels sees exactly a convolution with the first c input channels of the weights
    (and trains only those), and the padding follows from ``obs_shapes`` alone (a saved student rebuilds it from
    student.json).
    """

    def __init__(self, spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int]):
        super().__init__()
        self.spec = StudentSpec.parse(spec)
        self.obs_shapes = [tuple(s) for s in obs_shapes]
        self.n_actions = list(n_actions)
        k = self.spec
        self.in_channels: int | None = None
        if (why := fit_error(spec, self.obs_shapes)) is not None:
            raise UserError(why)
        if k.kind in _WIDTHS:
            shape = input_shape(self.obs_shapes)
            self.in_channels = shape[0]
            if k.kind == "cnn":
                self.encoder = NatureCNN(shape, k.widths[:3], k.widths[3])
            else:
                self.encoder = MinAtarCNN(shape, k.widths[0], k.widths[1])
            feat = k.widths[-1]
            self.value_encoder = None
            self.policy_tower = self.value_tower = None
            if k.towers:
                for m in self.encoder.modules():  # SB3's ortho_init: the features extractor at gain sqrt 2 too
                    _init(m, math.sqrt(2))
                self.policy_tower = _mlp(feat, k.towers)
                self.value_tower = _mlp(feat, k.towers)
                feat = k.towers[-1]
        else:
            widths = k.widths or (64, 64)
            self.encoder = None
            dims = sorted({s[0] for s in self.obs_shapes})
            self.inputs = nn.ModuleDict({str(d): _mlp(d, widths[:1]) for d in dims})
            self.trunk = _mlp(widths[0], widths[1:])
            self.value_inputs = nn.ModuleDict({str(d): _mlp(d, widths[:1]) for d in dims})
            self.value_trunk = _mlp(widths[0], widths[1:])
            feat = widths[-1]
        self.features_dim = feat
        self.heads = nn.ModuleList(_init(nn.Linear(feat, n), 0.01) for n in self.n_actions)
        self.value_heads = nn.ModuleList(_init(nn.Linear(feat, 1), 1.0) for _ in self.n_actions)

    @property
    def num_tasks(self) -> int:
        return len(self.n_actions)

    def forward(self, obs: torch.Tensor, task: int = 0) -> dict[str, torch.Tensor]:
        """logits (B, A_task), value (B,), features (B, H) for a batch from one task."""
        if self.spec.kind in _WIDTHS:
            x = image_floats(obs) if self.spec.kind == "cnn" else obs.float()
            if x.dim() == 4 and x.shape[1] < self.in_channels:  # a game of fewer channels: zero-padded (see above)
                x = F.pad(x, (0, 0, 0, 0, 0, self.in_channels - x.shape[1]))
            h = self.encoder(x)
            hv = h
            if self.policy_tower is not None:
                h, hv = self.policy_tower(h), self.value_tower(h)
        else:
            x = obs.float().flatten(1)
            key = str(x.shape[1])
            h = self.trunk(self.inputs[key](x))
            hv = self.value_trunk(self.value_inputs[key](x))
        # fp32 outputs (a no-op in fp32): under bf16 autocast, distributions and losses stay in fp32.
        return {
            "logits": self.heads[task](h).float(),
            "value": self.value_heads[task](hv).squeeze(-1).float(),
            "features": h.float(),
        }

    def policy_params(self) -> int:
        """Parameters used to act on one task (what compression ratios compare)."""
        n = count_params(self) - sum(count_params(v) for v in self.value_heads)
        if self.spec.kind == "mlp":
            n -= count_params(self.value_inputs) + count_params(self.value_trunk)
        if self.spec.kind in _WIDTHS and self.value_tower is not None:
            n -= count_params(self.value_tower)
        return n


def _conv_out(n: int, kernel: int, stride: int) -> int:
    return (n - kernel) // stride + 1


def param_count(spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int]) -> int | None:
    """The parameters :class:`Student` would have, from the spec alone (nothing allocated); None where the spec
    does not fit the observations (the Student's own one-line error says why)."""
    k = StudentSpec.parse(spec)
    shapes = [tuple(s) for s in obs_shapes]
    image = input_shape(shapes)  # channels padded to the largest count
    if k.kind in _WIDTHS and image is None:
        return None
    if k.kind == "cnn":
        (c, h, w), (c1, c2, c3, feat) = image, k.widths
        h3, w3 = (_conv_out(_conv_out(_conv_out(n, 8, 4), 4, 2), 3, 1) for n in (h, w))
        if h3 < 1 or w3 < 1:
            return None
        n = c * c1 * 64 + c1 + c1 * c2 * 16 + c2 + c2 * c3 * 9 + c3 + c3 * h3 * w3 * feat + feat
    elif k.kind == "mcnn":
        (c, h, w), (c1, feat) = image, k.widths
        h1, w1 = _conv_out(h, 3, 1), _conv_out(w, 3, 1)
        if h1 < 1 or w1 < 1:
            return None
        n = c * c1 * 9 + c1 + c1 * h1 * w1 * feat + feat
    else:
        if any(len(s) != 1 for s in shapes):
            return None
        widths = k.widths
        feat = widths[-1]
        tower = sum(d * widths[0] + widths[0] for d in {s[0] for s in shapes})
        tower += sum(a * b + b for a, b in zip(widths, widths[1:]))
        n = 2 * tower  # policy and value towers
    if k.towers:  # an image student's policy and value towers on its features
        n += 2 * sum(a * b + b for a, b in zip((feat, *k.towers), k.towers))
        feat = k.towers[-1]
    return n + sum(feat * a + a for a in n_actions) + len(n_actions) * (feat + 1)


def fit_error(spec: str, obs_shapes: list[tuple[int, ...]]) -> str | None:
    """Why a :class:`Student` of ``spec`` cannot take these observations (one per head), in one line; None where it
    can. Image students: images of one height and width (channel counts may differ: they are zero-padded) that
    leave something after the convolutions; MLP students: vectors (of any sizes)."""
    k = StudentSpec.parse(spec)
    shapes = [tuple(s) for s in obs_shapes]
    if k.kind not in _WIDTHS:
        if any(len(s) != 1 for s in shapes):
            return f"an {k} student needs vector observations; got {_shape_text(shapes)} (use a cnn-... spec)"
        return None
    if (why := image_shape_error(spec, shapes)) is not None:
        return why
    if param_count(spec, shapes, [1] * len(shapes)) is None:
        return (
            f"a {k} student does not fit {'x'.join(map(str, shapes[0][1:]))} images: its convolutions leave nothing "
            "(use " + ("mcnn-16-128 or minatar-4x/15x/30x" if k.kind == "cnn" else "a cnn-... spec") + ")"
        )
    return None


def check_student_fits(spec: str | None, env_ids: list[str]) -> None:
    """Refuse, in one line, a student ``spec`` (None: the envs' family default) that cannot take the observations
    of ``env_ids`` (every env it has a head for: the trained envs, then any kept ones) as one network, as
    :class:`Student` would at the start of the run: image grids of different heights or widths (channel counts may
    differ: they are zero-padded), images to an MLP or vectors to a CNN, a grid too small for the convolutions.
    Reads each env's observation space (:func:`rl_distill.envs.env_spec`, cached) and builds nothing else: what a
    ``--dry-run`` can call for each cell."""
    from rl_distill.envs import env_spec, one_family

    spec = spec or one_family(list(env_ids)).default_student
    if (why := fit_error(spec, [env_spec(e).obs_shape for e in env_ids])) is not None:
        raise UserError(f"{why} ({', '.join(env_ids)})")


def fit_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first convolution's weight (out, in, kh, kw) for ``channels`` input channels: the first ``channels`` of
    its inputs where it has more (exactly what it computes on a grid of ``channels`` zero-padded to its own count),
    zeros appended where it has fewer (the extra channels start ignored, and learn from there)."""
    c = weight.shape[1]
    if channels <= c:
        return weight[:, :channels].clone()
    return torch.cat([weight, weight.new_zeros(weight.shape[0], channels - c, *weight.shape[2:])], 1)


def _activation_floats(spec: StudentSpec, obs_shape: tuple[int, ...]) -> int:
    """Floats one sample keeps for the backward pass (rough: each layer's output, before and after its activation)."""
    if spec.kind == "cnn":
        c, h, w = obs_shape
        (c1, c2, c3, feat), outs = spec.widths, []
        for ch, kernel, stride in ((c1, 8, 4), (c2, 4, 2), (c3, 3, 1)):
            h, w = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride)
            outs.append(ch * max(h, 0) * max(w, 0))
        towers = 2 * 2 * sum(spec.towers)  # policy and value towers, before and after their tanh
        return 2 * (sum(outs) + feat) + 2 * c * obs_shape[1] * obs_shape[2] + towers  # + the frames' float copy
    if spec.kind == "mcnn":
        c, h, w = obs_shape
        c1, feat = spec.widths
        return 2 * (c1 * max(h - 2, 0) * max(w - 2, 0) + feat) + c * h * w + 2 * 2 * sum(spec.towers)
    return 2 * 2 * sum(spec.widths) + obs_shape[0]  # two towers


def memory_estimate(
    spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int], batch: int = 256
) -> tuple[int, int] | None:
    """(parameters, bytes to train): fp32 weights, gradients and Adam's two moments (4 x params x 4 bytes) plus a
    rough activation term for a batch of ``batch``; None where :func:`param_count` is."""
    n = param_count(spec, obs_shapes, n_actions)
    if n is None:
        return None
    k = StudentSpec.parse(spec)
    shapes = [input_shape(obs_shapes)] if k.kind in _WIDTHS else [tuple(s) for s in obs_shapes]  # padded images
    acts = batch * max(_activation_floats(k, s) for s in shapes)
    return n, 4 * (4 * n + acts)


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes free for a new student on ``device``: MemAvailable (else physical memory) on the CPU, the free memory
    torch.cuda reports on a GPU; None where unknown (nothing is then refused)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    if device.type != "cpu":
        return None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _gib(n: int) -> str:
    g = n / 2**30
    return f"{g:.1f}" if g >= 0.1 else f"{g:.3f}"


def check_memory(
    spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int], device: torch.device | str | None = None
) -> None:
    """Refuse, in one line, a student that cannot be trained in the memory free on ``device`` (default the CPU),
    before anything is allocated (the OS would otherwise kill the process without a message). The student is
    built on the CPU: for another device the CPU must also hold its weights."""
    est = memory_estimate(spec, obs_shapes, n_actions)
    if est is None:
        return
    n, need = est
    device = torch.device(device or "cpu")
    checks = [(device, need, "to train")]
    if device.type != "cpu":
        checks.append((torch.device("cpu"), 2 * 4 * n, "to build (weights and their initialisation)"))
    for dev, b, what in checks:
        free = available_memory(dev)
        if free is not None and b > free:
            raise UserError(
                f"--student {spec} needs ~{_gib(b)} GiB {what} ({n:,} parameters; weights, gradients and Adam state "
                f"in fp32, plus activations for a batch of 256), but {_gib(free)} GiB is available on {dev}: "
                "use a smaller student"
            )


MAX_LAYERS = 64
"""The most hidden layers a student may have: every layer costs each forward and backward pass its own kernel
launches whatever its width, and a tanh MLP far deeper than this neither trains nor finishes in reasonable time."""
MAX_STEP_S = 0.5
"""A student whose rough compute estimate exceeds this many seconds an env step is refused (as one too large for the
memory is): a typo'd width should not start a run of days. The Nature CNN is ~0.03 s, mlp-64-64 ~0.1 ms."""
_FLOPS_PER_S = {"cpu": 2e10, "cuda": 5e12}
"""Rough fp32 matrix-product throughput (one CPU core, one GPU): the estimate is an order of magnitude, no more."""
_LAYER_S = 2e-5
"""Rough seconds of one layer's kernel launches in one pass (forward or backward), whatever its width."""
_SAMPLES_PER_STEP = 8
"""Rough samples trained on per env step (replay ratios, epochs and batches vary by method around this)."""


def forward_flops(spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int]) -> tuple[int, int] | None:
    """(floating-point operations of one sample's forward pass, layers) of the student ``spec`` would build, from
    the spec alone; None where it does not fit the observations."""
    k = StudentSpec.parse(spec)
    n = param_count(spec, obs_shapes, n_actions)
    if n is None:
        return None
    shape = input_shape(obs_shapes) if k.kind in _WIDTHS else tuple(obs_shapes[0])  # images: channels padded
    if k.kind == "cnn":
        (c, h, w), (c1, c2, c3, feat) = shape, k.widths
        flops, ch = 0, c
        for out, kernel, stride in ((c1, 8, 4), (c2, 4, 2), (c3, 3, 1)):
            h, w = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride)
            flops += 2 * ch * out * kernel * kernel * h * w
            ch = out
        if k.towers:  # every weight after the convolutions one multiply-add, as for mcnn
            convs = sum(a * b * kernel * kernel + b for a, b, kernel in zip((c, c1, c2), (c1, c2, c3), (8, 4, 3)))
            return flops + 2 * (n - convs), 6 + 2 * len(k.towers)
        return flops + 2 * (c3 * h * w * feat + feat * (sum(n_actions) + len(n_actions))), 6
    if k.kind == "mcnn":
        (c, h, w), (c1, feat) = shape, k.widths
        conv = 2 * c * c1 * 9 * _conv_out(h, 3, 1) * _conv_out(w, 3, 1)
        return conv + 2 * (n - c * c1 * 9), 4 + 2 * len(k.towers)
    return 2 * n, 2 * len(k.widths) + 2  # two towers and the heads: every weight one multiply-add


def compute_estimate(
    spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int], steps: int, device: torch.device | str = "cpu"
) -> float | None:
    """Rough seconds to train ``spec`` for ``steps`` env steps on ``device``: each env step one forward pass to act
    (in batches of 8 envs) and ~8 samples trained (forward and backward, ~3 forward passes, in batches of 256);
    None where the spec does not fit the observations."""
    est = forward_flops(spec, obs_shapes, n_actions)
    if est is None:
        return None
    flops, layers = est
    rate = _FLOPS_PER_S.get(torch.device(device).type, _FLOPS_PER_S["cpu"])
    k = _SAMPLES_PER_STEP
    per_step = flops * (1 + 3 * k) / rate + layers * _LAYER_S * (1 / 8 + 3 * k / 256)
    return steps * per_step


def check_compute(
    spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int], steps: int, device: torch.device | str = "cpu"
) -> None:
    """Refuse, in one line with the estimate, a student deeper than :data:`MAX_LAYERS` or one slower than
    :data:`MAX_STEP_S` an env step on ``device`` (:func:`compute_estimate`; the message says what the run of ``steps``
    would take), before it is built."""
    check_memory(spec, obs_shapes, n_actions, device)  # too large for the memory: said first, as it always was
    k = StudentSpec.parse(spec)
    layers = len(k.widths) + len(k.towers)
    if layers > MAX_LAYERS:
        per = compute_estimate(spec, obs_shapes, n_actions, 1, device)
        cost = f"; ~{per * 1e3:.0f} ms an env step here" if per else ""
        raise UserError(
            f"--student {_short(spec)}: {layers:,} hidden layers, at most {MAX_LAYERS} are taken (each layer "
            f"costs every pass its own kernels{cost}): use a shallower student, e.g. mlp-64-64"
        )
    per = compute_estimate(spec, obs_shapes, n_actions, 1, device)
    if per is not None and per > MAX_STEP_S:
        flops = forward_flops(spec, obs_shapes, n_actions)[0]
        raise UserError(
            f"--student {_short(spec)}: ~{flops / 1e9:,.1f} GFLOP a sample, ~{per:,.1f} s an env step on "
            f"{torch.device(device).type}, so {steps:,} env steps would take ~{per * steps / 3600:,.0f} h (a rough "
            f"estimate; at most {MAX_STEP_S:g} s a step is taken): use a smaller student"
        )


def _short(spec: str, n: int = 40) -> str:
    return spec if len(spec) <= n else f"{spec[:n]}..."


def make_student(
    spec: str | None,
    obs_shapes: list[tuple[int, ...]],
    n_actions: list[int],
    seed: int,
    device: torch.device | str | None = None,
) -> Student:
    """Build a student with deterministic initial weights for ``seed``, after :func:`check_memory` has found room
    to train it on ``device`` (default the CPU, where it is built)."""
    spec = spec or default_spec(obs_shapes[0])
    check_memory(spec, obs_shapes, n_actions, device)
    torch.manual_seed(seed)
    return Student(spec, obs_shapes, n_actions)


@torch.no_grad()
def student_policy(student: Student, task: int = 0, device: torch.device | str = "cpu", sample_seed: int | None = None):
    """The student as an evaluation policy: numpy observations -> greedy numpy actions, or actions sampled from
    its softmax with a generator seeded by ``sample_seed`` (the policy that plays in on-policy training)."""
    gen = None if sample_seed is None else torch.Generator(device=device).manual_seed(sample_seed)

    def act(obs: np.ndarray) -> np.ndarray:
        logits = student(torch.as_tensor(obs, device=device), task)["logits"]
        if gen is None:
            return logits.argmax(-1).cpu().numpy()
        return torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=gen).squeeze(-1).cpu().numpy()

    return act


def load_student(run_dir: str | Path, device: str | torch.device = "cpu") -> Student:
    """The trained student of a finished run (``student.safetensors`` + ``student.json``), with a one-line
    :class:`UserError` for a folder that holds none."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(run_dir)
    try:
        meta = json.loads((p / "student.json").read_text())
        s = Student(meta["spec"], [tuple(x) for x in meta["obs_shapes"]], meta["n_actions"])
        if meta.get("input_channels", s.in_channels) != s.in_channels:  # written since channels are padded
            raise ValueError(f"input_channels {meta['input_channels']}, but its obs_shapes give {s.in_channels}")
        s.load_state_dict(load_file(str(p / "student.safetensors")))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as e:
        raise UserError(f"no trained student in {p} ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    from rl_distill.guard import nonfinite_weight

    if (name := nonfinite_weight(s)) is not None:
        raise UserError(f"the student in {p} has non-finite weights ({name}): its training diverged")
    return s.to(device)
