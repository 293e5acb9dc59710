"""The Teacher interface every method uses, whatever the teacher was loaded from."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rl_distill.envs import EnvSpec
from rl_distill.errors import SpaceMismatchError
from rl_distill.networks import Arch, build_net, count_params


def as_tensor(obs: Any, device: torch.device | str) -> torch.Tensor:
    """Observations (numpy or torch, batched) as a tensor on ``device``, dtype kept (uint8 stays uint8)."""
    if isinstance(obs, torch.Tensor):
        return obs.to(device)
    return torch.as_tensor(np.asarray(obs), device=device)


def check_weights_fit(arch: Arch, state_dict: dict[str, torch.Tensor], where: str) -> nn.Module:
    """Build the network for ``arch`` and check every tensor of ``state_dict`` against it by name and shape,
    before anything is loaded; returns the (still unloaded) network. A missing, unexpected or mis-shaped tensor
    is a one-line :class:`TeacherError` naming ``where`` (the teacher file), the tensor and both shapes."""
    from rl_distill.errors import TeacherError

    try:
        with torch.device("meta"):  # shapes only, nothing allocated: a file may claim a network of any size
            expected = build_net(arch).state_dict()
    except (RuntimeError, TypeError, ValueError, IndexError, KeyError) as e:  # e.g. images too small for the CNN
        raise TeacherError(
            f"teacher {where}: cannot build its {arch.kind} architecture: {str(e).splitlines()[0]}"
        ) from None
    for k, v in expected.items():
        if k not in state_dict:
            raise TeacherError(
                f"teacher {where} does not fit its architecture: tensor {k} is missing "
                f"(expected shape {tuple(v.shape)}; {len(state_dict)} tensors in the file, {len(expected)} expected)"
            )
        found = tuple(getattr(state_dict[k], "shape", ()))
        if found != tuple(v.shape):
            raise TeacherError(
                f"teacher {where} does not fit its architecture: "
                f"tensor {k} has shape {found}, expected {tuple(v.shape)}"
            )
    unexpected = sorted(set(state_dict) - set(expected))
    if unexpected:
        k = unexpected[0]
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise TeacherError(
            f"teacher {where} does not fit its architecture: unexpected tensor {k} "
            f"of shape {tuple(getattr(state_dict[k], 'shape', ()))}{more}"
        )
    check_weights_finite(state_dict, where)
    return build_net(arch)


def check_weights_finite(state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Every tensor a float tensor of finite values: a teacher with a nan or inf weight plays nonsense (argmax of nan
    logits is action 0) that would be scored and distilled as if it were a policy, so it is refused in one line."""
    from rl_distill.errors import TeacherError

    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            raise TeacherError(
                f"teacher {where}: tensor {k} is {getattr(v, 'dtype', type(v).__name__)}, not floating point"
            )
        if not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise TeacherError(
                f"teacher {where}: tensor {k} holds {bad} non-finite value{'s' if bad > 1 else ''} (nan or inf); "
                "its training diverged or the file is damaged"
            )


class Teacher:
    """A frozen, batched policy: ``logits``/``q_values``, ``act``, hidden ``features``, ``value``.

    Observations come in the layout :mod:`rl_distill.envs` produces (Atari: uint8 (N, 4, 84, 84)).
    For a DQN teacher (``kind == "q"``) the logits are its Q-values.
    """

    def __init__(
        self,
        arch: Arch,
        state_dict: dict[str, torch.Tensor],
        meta: dict[str, Any],
        device: str | torch.device = "cpu",
        where: str | None = None,
    ):
        """``where`` (the weights file) names the teacher in the one-line error for weights that do not fit."""
        self.arch = arch
        self.meta = meta
        where = where or str(meta.get("source") or meta.get("id") or "weights")
        self.net: nn.Module = check_weights_fit(arch, state_dict, where)
        self.net.load_state_dict(state_dict)
        self.net.eval().requires_grad_(False)
        self.device = torch.device(device)
        self.net.to(self.device)

    # --- description -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.arch.kind

    @property
    def env_id(self) -> str | None:
        return self.meta.get("env_id")

    @property
    def trained_env_id(self) -> str | None:
        """The env it was trained on, as its files record it: a hub teacher's from its repo (its ``env_id`` is the
        one it was loaded for), else ``env_id``; None where nothing records it (an SB3 zip on its own)."""
        hub = self.meta.get("hub")
        return (hub.get("env_id") if isinstance(hub, dict) else None) or self.env_id

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.arch.obs_shape

    @property
    def n_actions(self) -> int:
        return self.arch.n_actions

    @property
    def num_params(self) -> int:
        return count_params(self.net)

    @property
    def features_dim(self) -> int:
        return int(self.net.features_dim)

    @property
    def score(self) -> float | None:
        s = self.meta.get("score") or {}
        return s.get("mean")

    @property
    def name(self) -> str:
        return self.meta.get("id") or self.meta.get("source") or "teacher"

    def to(self, device: str | torch.device) -> "Teacher":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    # --- batched outputs ----------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, obs: Any) -> dict[str, torch.Tensor]:
        """All outputs for a batch in one pass: logits, features, and value or q_values."""
        return self.net(as_tensor(obs, self.device))

    def logits(self, obs: Any) -> torch.Tensor:
        """Action logits (B, A); Q-values for a DQN teacher."""
        return self.forward(obs)["logits"]

    def q_values(self, obs: Any) -> torch.Tensor:
        if self.kind != "q":
            raise TypeError("q_values: this teacher is an actor-critic policy, use logits()")
        return self.forward(obs)["q_values"]

    def features(self, obs: Any) -> torch.Tensor:
        """Last hidden layer (B, H), the target of Actor-Mimic's feature regression."""
        return self.forward(obs)["features"]

    def value(self, obs: Any) -> torch.Tensor | None:
        """State value (B,), or None for a teacher without a value head."""
        out = self.forward(obs)
        return out.get("value")

    @torch.no_grad()
    def act(self, obs: Any, deterministic: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Greedy (or sampled, for a policy teacher) actions (B,)."""
        logits = self.logits(obs)
        if deterministic or self.kind == "q":
            return logits.argmax(-1)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)

    def __call__(self, obs: Any) -> np.ndarray:
        """Numpy in, greedy numpy actions out: any teacher is an evaluation policy."""
        return self.act(obs).cpu().numpy()

    # --- checks -------------------------------------------------------------------------------
    def check_fits(self, spec: EnvSpec) -> None:
        """Raise a one-line :class:`SpaceMismatchError` unless this teacher can act in ``spec``'s env."""
        if tuple(spec.obs_shape) != tuple(self.obs_shape):
            raise SpaceMismatchError(
                f"teacher {self.name} expects observations of shape {tuple(self.obs_shape)} "
                f"but {spec.env_id} gives {tuple(spec.obs_shape)}"
            )
        if spec.n_actions != self.n_actions:
            raise SpaceMismatchError(
                f"teacher {self.name} has {self.n_actions} actions but {spec.env_id} has {spec.n_actions}"
            )
