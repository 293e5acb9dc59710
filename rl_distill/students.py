"""Student networks: MLP presets for control, CNN presets for Atari (Rusu et al.'s compression
sizes), one policy head (and value head) per task for multi-task students.

Spec strings: ``mlp-64-64`` (hidden widths), ``cnn-C1-C2-C3-F`` (conv channels and fc width):
``nature`` = cnn-32-64-64-512 (1.69M params with 6 actions), ``rusu-4x`` = cnn-16-32-32-256,
``rusu-15x`` = cnn-16-16-16-128, ``rusu-27x`` = cnn-16-16-16-64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rl_distill.errors import UserError
from rl_distill.networks import NatureCNN, count_params, image_floats

ALIASES = {
    "nature": "cnn-32-64-64-512",
    "rusu-4x": "cnn-16-32-32-256",
    "rusu-15x": "cnn-16-16-16-128",
    "rusu-27x": "cnn-16-16-16-64",
}


@dataclass(frozen=True)
class StudentSpec:
    """A parsed student spec string."""

    kind: str
    widths: tuple[int, ...]

    @classmethod
    def parse(cls, spec: str) -> "StudentSpec":
        s = ALIASES.get(spec, spec)
        kind, _, rest = s.partition("-")
        try:
            widths = tuple(int(w) for w in rest.split("-")) if rest else ()
        except ValueError:
            widths = None
        if (
            kind not in ("mlp", "cnn")
            or not widths
            or (kind == "cnn" and len(widths) != 4)
            or any(w <= 0 for w in widths)
        ):
            raise UserError(
                f"bad student spec {spec!r}: use mlp-64-64, cnn-32-64-64-512 or one of {', '.join(ALIASES)}"
            )
        return cls(kind, widths)

    def __str__(self) -> str:
        return f"{self.kind}-" + "-".join(map(str, self.widths))


def default_spec(obs_shape: tuple[int, ...]) -> str:
    return "nature" if len(obs_shape) == 3 else "mlp-64-64"


def _init(layer: nn.Module, gain: float) -> nn.Module:
    # Orthogonal init as in CleanRL/SB3 PPO: small policy heads start near uniform.
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


def _mlp(in_dim: int, widths: tuple[int, ...]) -> nn.Sequential:
    mods: list[nn.Module] = []
    for w in widths:
        mods += [_init(nn.Linear(in_dim, w), math.sqrt(2)), nn.Tanh()]
        in_dim = w
    return nn.Sequential(*mods)


class Student(nn.Module):
    """Policy (and value) network with one head per task.

    MLP students: one input layer per distinct observation size (tasks with different observation
    shapes share everything else), separate policy and value towers (as SB3/CleanRL do for control).
    CNN students: a shared encoder for policy and value (the Atari convention).
    """

    def __init__(self, spec: str, obs_shapes: list[tuple[int, ...]], n_actions: list[int]):
        super().__init__()
        self.spec = StudentSpec.parse(spec)
        self.obs_shapes = [tuple(s) for s in obs_shapes]
        self.n_actions = list(n_actions)
        k = self.spec
        if k.kind == "cnn":
            if len({s for s in self.obs_shapes}) != 1 or len(self.obs_shapes[0]) != 3:
                raise UserError(f"a {k} student needs image observations of one shape; got {self.obs_shapes}")
            self.encoder = NatureCNN(self.obs_shapes[0], k.widths[:3], k.widths[3])
            feat = k.widths[3]
            self.value_encoder = None
        else:
            if any(len(s) != 1 for s in self.obs_shapes):
                raise UserError(f"an {k} student needs vector observations; got {self.obs_shapes} (use a cnn-... spec)")
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
        if self.spec.kind == "cnn":
            h = self.encoder(image_floats(obs))
            hv = h
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
        return n


def make_student(spec: str | None, obs_shapes: list[tuple[int, ...]], n_actions: list[int], seed: int) -> Student:
    """Build a student with deterministic initial weights for ``seed``."""
    torch.manual_seed(seed)
    return Student(spec or default_spec(obs_shapes[0]), obs_shapes, n_actions)


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
