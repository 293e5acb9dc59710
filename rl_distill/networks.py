"""Network architectures shared by teachers and students.

Teacher networks mirror Stable-Baselines3's module names (``features_extractor``,
``mlp_extractor.policy_net``, ``action_net``, ``q_net.q_net`` ...) so that SB3 weights map onto them
key for key, and a suite checkpoint is just this module's state dict plus an :class:`Arch`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class Arch:
    """Everything needed to rebuild a network from its weights."""

    kind: str
    """"actor_critic" (logits + value) or "q" (Q-values)."""
    obs_shape: tuple[int, ...]
    n_actions: int
    encoder: str = "flatten"
    """"flatten" for vector observations, "cnn" for uint8 image stacks (the Nature CNN), "minatar" for MinAtar's
    {0, 1} grids (one 3x3 convolution, the input unscaled)."""
    cnn_channels: tuple[int, ...] = (32, 64, 64)
    """Conv channels of the 8x8/4, 4x4/2, 3x3/1 layers (Nature CNN: 32-64-64), or of the one 3x3/1 layer."""
    cnn_features: int = 512
    """Width of the fully connected layer after the convolutions."""
    pi_layers: tuple[int, ...] = (64, 64)
    """Hidden layers of the policy tower (or of the Q-network)."""
    vf_layers: tuple[int, ...] = (64, 64)
    """Hidden layers of the value tower (actor-critic only)."""
    activation: str = "tanh"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Arch":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def mlp(in_dim: int, layers: tuple[int, ...], activation: str, out_dim: int | None = None) -> nn.Sequential:
    """Linear/activation stack (SB3's create_mlp layout: indices 0, 2, 4 ... are Linear)."""
    mods: list[nn.Module] = []
    d = in_dim
    for width in layers:
        mods += [nn.Linear(d, width), ACTIVATIONS[activation]()]
        d = width
    if out_dim is not None:
        mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 encoder, with configurable widths (Rusu et al.'s compression sizes)."""

    def __init__(self, obs_shape: tuple[int, ...], channels: tuple[int, ...] = (32, 64, 64), features: int = 512):
        super().__init__()
        c1, c2, c3 = channels
        self.cnn = nn.Sequential(
            nn.Conv2d(obs_shape[0], c1, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *obs_shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features), nn.ReLU())
        self.features_dim = features

    channels_last_on_cpu = True
    """Feed the convolutions channels-last input in training passes on the CPU, where oneDNN runs them faster
    (same maths, float rounding aside; measured by benchmarks/cnn_memory_format.py, in results/benchmarks)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _use_channels_last(x):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.linear(self.cnn(x))


def _use_channels_last(x: torch.Tensor) -> bool:
    # Training passes only: acting (a batch-8 forward without gradients) is no faster channels-last
    # (results/benchmarks/cnn_memory_format_cpu2.json).
    return NatureCNN.channels_last_on_cpu and x.device.type == "cpu" and x.dim() == 4 and torch.is_grad_enabled()


def _channels_last_input(module: nn.Module, args: tuple) -> tuple | None:
    return (args[0].contiguous(memory_format=torch.channels_last),) + args[1:] if _use_channels_last(args[0]) else None


def channels_last_convolutions(module: nn.Module) -> int:
    """Give every convolution in ``module`` (e.g. an SB3 policy, whose NatureCNN is not ours) channels-last
    input on the CPU, as :class:`NatureCNN` does; a forward pre-hook, so nothing saved changes. Returns how
    many convolutions it hooked."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    for m in convs:
        m.register_forward_pre_hook(_channels_last_input)
    return len(convs)


class MinAtarCNN(nn.Module):
    """The MinAtar paper's encoder: one 3x3 stride-1 convolution and a fully connected layer, both ReLU, on the
    unscaled {0, 1} grid. Takes an observation shape or a gymnasium space, so that it also serves as an SB3
    features extractor (the teachers' own class, which the SB3 loader accepts by name)."""

    def __init__(self, obs_shape, channels: int | tuple[int, ...] = 16, features: int = 128):
        super().__init__()
        shape = tuple(getattr(obs_shape, "shape", obs_shape))
        (c1,) = (channels,) if isinstance(channels, int) else tuple(channels)
        self.cnn = nn.Sequential(nn.Conv2d(shape[0], c1, 3, stride=1), nn.ReLU(), nn.Flatten())
        n_flat = c1 * (shape[1] - 2) * (shape[2] - 2)
        self.linear = nn.Sequential(nn.Linear(n_flat, features), nn.ReLU())
        self.features_dim = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(x.float()))


class Flatten(nn.Module):
    def __init__(self, obs_shape: tuple[int, ...]):
        super().__init__()
        self.features_dim = int(math.prod(obs_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def make_encoder(arch: Arch) -> nn.Module:
    if arch.encoder == "cnn":
        return NatureCNN(arch.obs_shape, arch.cnn_channels, arch.cnn_features)
    if arch.encoder == "minatar":
        return MinAtarCNN(arch.obs_shape, arch.cnn_channels, arch.cnn_features)
    if arch.encoder == "flatten":
        return Flatten(arch.obs_shape)
    raise ValueError(f"unknown encoder {arch.encoder!r}")


def image_floats(obs: torch.Tensor) -> torch.Tensor:
    """uint8 images -> floats in [0, 1], the same values as ``obs.float() / 255``. In a CPU training pass the
    bytes are put channels-last first (a quarter of the float copy that :class:`NatureCNN` would make) and
    scaled in place, which makes CPU training faster end to end (benchmarks/image_input.py; figures in
    results/benchmarks/README.md)."""
    if _use_channels_last(obs):
        obs = obs.contiguous(memory_format=torch.channels_last)
    return obs.to(torch.float32, copy=True).div_(255.0)  # a copy: float input is never scaled in place


def preprocess(obs: torch.Tensor, arch: Arch) -> torch.Tensor:
    """uint8 images -> floats in [0, 1]; MinAtar's {0, 1} grids and vectors -> float32 as they are."""
    if arch.encoder == "cnn":
        return image_floats(obs)
    return obs.float()


class _MlpExtractor(nn.Module):
    def __init__(self, in_dim: int, arch: Arch):
        super().__init__()
        self.policy_net = mlp(in_dim, arch.pi_layers, arch.activation)
        self.value_net = mlp(in_dim, arch.vf_layers, arch.activation)
        self.latent_dim_pi = arch.pi_layers[-1] if arch.pi_layers else in_dim
        self.latent_dim_vf = arch.vf_layers[-1] if arch.vf_layers else in_dim


class ActorCriticNet(nn.Module):
    """PPO/A2C network: shared encoder, separate policy and value towers (SB3 ActorCriticPolicy)."""

    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        self.features_extractor = make_encoder(arch)
        self.mlp_extractor = _MlpExtractor(self.features_extractor.features_dim, arch)
        self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, arch.n_actions)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        self.features_dim = self.mlp_extractor.latent_dim_pi

    def forward(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features_extractor(preprocess(obs, self.arch))
        latent_pi = self.mlp_extractor.policy_net(h)
        latent_vf = self.mlp_extractor.value_net(h)
        return {
            "logits": self.action_net(latent_pi),
            "features": latent_pi,
            "value": self.value_net(latent_vf).squeeze(-1),
        }


class _QNetwork(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        self.features_extractor = make_encoder(arch)
        self.q_net = mlp(self.features_extractor.features_dim, arch.pi_layers, arch.activation, arch.n_actions)


class QNet(nn.Module):
    """DQN network (SB3 DQNPolicy's online ``q_net``)."""

    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        self.q_net = _QNetwork(arch)
        self.features_dim = arch.pi_layers[-1] if arch.pi_layers else self.q_net.features_extractor.features_dim

    def forward(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.q_net.features_extractor(preprocess(obs, self.arch))
        layers = self.q_net.q_net
        features = layers[:-1](h)
        q = layers[-1](features)
        return {"logits": q, "q_values": q, "features": features}


def build_net(arch: Arch) -> nn.Module:
    """The teacher network for ``arch``."""
    if arch.kind == "actor_critic":
        return ActorCriticNet(arch)
    if arch.kind == "q":
        return QNet(arch)
    raise ValueError(f"unknown network kind {arch.kind!r}")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def dead_first_conv(module: nn.Module, frames: torch.Tensor) -> float | None:
    """The fraction of the first convolution's output channels that are negative at every position of every
    frame in ``frames`` (uint8 images), i.e. silenced by the ReLU after it; None without a convolution.
    When every channel is dead the network's outputs no longer depend on the frame and no gradient reaches
    that layer again: a DQN Pong run whose first convolution died within its first 100k steps scored -21 for
    the 400k steps after (results/benchmarks/README.md). A freshly built Nature CNN has 6-28% dead on Pong."""
    conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or len(frames) == 0:
        return None
    return float((conv(image_floats(frames.to(conv.weight.device))).amax(dim=(0, 2, 3)) <= 0).float().mean())
