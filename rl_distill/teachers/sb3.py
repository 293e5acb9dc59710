"""Stable-Baselines3 ``.zip`` models and rl-zoo3 run folders as teachers, offline and without unpickling.

An SB3 zip holds:

- ``data``: JSON of the algorithm's attributes. Items that are not JSON-serialisable are stored as
  ``{":type:": str(type(x)), ":serialized:": base64(cloudpickle(x)), <first-level attributes>}``
  where the first-level attributes (a dict's items, or an object's ``__dict__``) are copied as JSON
  or as ``str()``.
- ``policy.pth``: the policy's torch state dict.
- ``pytorch_variables.pth``, ``*.optimizer.pth``, ``system_info.txt``, ``_stable_baselines3_version``.

Unpickling ``:serialized:`` would run arbitrary code from the file, so this module never does: it
reads only the readable copies next to it, and loads ``policy.pth`` with ``weights_only=True``.

What SB3 2.9.2 writes (found by saving models and reading their ``data``):

- The algorithm class is not stored at all. ``policy_class`` is stored, with a readable
  ``__module__`` (``stable_baselines3.common.policies`` for PPO and A2C,
  ``stable_baselines3.dqn.policies`` for DQN) and, among the class ``__dict__`` entries, an
  ``__init__`` string like ``"<function ActorCriticCnnPolicy.__init__ at 0x...>"`` that names the
  class. PPO and A2C share their policy classes; PPO's ``data`` has ``clip_range``/``n_epochs``,
  A2C's does not.
- ``observation_space``: readable ``_shape`` (list) and ``dtype`` (str). When SB3 wrapped an image
  env in ``VecTransposeImage`` (channel-last Atari frames), the stored space is already the
  transposed, channel-first one, e.g. (4, 84, 84).
- ``action_space``: a Discrete space has readable ``n`` and ``start`` as strings (numpy ints).
- ``policy_kwargs``: a plain JSON dict, or a serialised dict whose items are readable
  (``activation_fn`` as ``"<class 'torch.nn.modules.activation.ReLU'>"``).
- ``policy.pth`` of an actor-critic policy repeats the shared encoder under ``features_extractor.``,
  ``pi_features_extractor.`` and ``vf_features_extractor.``; a DQN policy holds ``q_net.`` and its
  target copy ``q_net_target.``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from rl_distill.errors import TeacherError
from rl_distill.networks import Arch, build_net
from rl_distill.teachers.base import Teacher

_SERIALIZED = ":serialized:"
_TYPE = ":type:"

# Policy classes we can rebuild, by (module, class name) -> (network kind, encoder).
_POLICIES = {
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): ("actor_critic", "flatten"),
    ("stable_baselines3.common.policies", "ActorCriticCnnPolicy"): ("actor_critic", "cnn"),
    ("stable_baselines3.dqn.policies", "DQNPolicy"): ("q", "flatten"),
    ("stable_baselines3.dqn.policies", "CnnPolicy"): ("q", "cnn"),
}
_MULTI_INPUT = {"MultiInputActorCriticPolicy", "MultiInputPolicy"}

# Policy modules of algorithms we do not load, for a message that names the algorithm.
_UNSUPPORTED_MODULES = {
    "stable_baselines3.sac.policies": "SAC",
    "stable_baselines3.td3.policies": "TD3/DDPG",
    "sb3_contrib.qrdqn.policies": "QR-DQN",
    "sb3_contrib.tqc.policies": "TQC",
    "sb3_contrib.common.recurrent.policies": "RecurrentPPO",
    "sb3_contrib.ppo_recurrent.policies": "RecurrentPPO",
    "sb3_contrib.common.maskable.policies": "MaskablePPO",
    "sb3_contrib.ppo_mask.policies": "MaskablePPO",
    "sb3_contrib.ars.policies": "ARS",
    "sb3_contrib.crossq.policies": "CrossQ",
}
# TRPO (sb3-contrib) uses SB3's ActorCriticPolicy; only its data keys tell it apart from PPO/A2C.
_TRPO_KEYS = {"cg_max_steps", "cg_damping", "line_search_shrinking_factor", "n_critic_updates"}

_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh"}
_DEFAULT_ACTIVATION = {"ppo": "tanh", "a2c": "tanh", "dqn": "relu"}  # SB3's defaults per algorithm
_ALLOWED_EXTRACTORS = {
    "stable_baselines3.common.torch_layers.NatureCNN": "cnn",
    "stable_baselines3.common.torch_layers.FlattenExtractor": "flatten",
    "rl_distill.networks.MinAtarCNN": "minatar",  # the suite's own MinAtar teachers
}
_NATURE_KERNELS = (8, 4, 3)


class _Refused(Exception):
    """Internal: a reason to refuse the file; turned into a TeacherError naming the file."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


# --- reading the zip ---------------------------------------------------------------------------


def _read_zip(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], str | None]:
    """(data JSON, policy state dict, SB3 version) from an SB3 zip, never unpickling ``data``."""
    if not path.exists():
        raise _Refused("no such file")
    if path.is_dir():
        raise _Refused("is a folder, not an SB3 .zip (use load_rl_zoo_folder for an rl-zoo run folder)")
    if not zipfile.is_zipfile(path):
        raise _Refused("not a zip file, or a truncated one")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for member in ("data", "policy.pth"):
                if member not in names:
                    raise _Refused(f"not a Stable-Baselines3 model: the zip has no {member!r}")
            raw_data = zf.read("data")
            raw_policy = zf.read("policy.pth")
            version = None
            if "_stable_baselines3_version" in names:
                version = zf.read("_stable_baselines3_version").decode("utf-8", "replace").strip() or None
            elif "system_info.txt" in names:  # older zips: "- Stable-Baselines3: 1.6.0 ..."
                m = re.search(r"Stable-Baselines3:\s*(\S+)", zf.read("system_info.txt").decode("utf-8", "replace"))
                version = m.group(1) if m else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as e:
        # CRC errors, cut-off members, unsupported compression: the file is damaged.
        raise _Refused(f"corrupt or truncated zip ({_first_line(e)})") from None
    try:
        data = json.loads(raw_data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _Refused(f"corrupt 'data' member ({_first_line(e)})") from None
    if not isinstance(data, dict):
        raise _Refused("corrupt 'data' member (not a JSON object)")
    try:
        # weights_only=True: torch's restricted unpickler, which only builds tensors and containers.
        state = torch.load(io.BytesIO(raw_policy), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types here (UnpicklingError, RuntimeError, EOFError...)
        raise _Refused(_torch_load_reason(e)) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise _Refused("policy.pth is not a state dict of tensors")
    return data, dict(state), version


def _torch_load_reason(e: BaseException) -> str:
    """A one-line reason for a failed ``torch.load(weights_only=True)`` of policy.pth.

    Torch's own message suggests retrying with ``weights_only=False``, which is exactly what must
    not be done with an untrusted file, so it is reworded here.
    """
    text = str(e)
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if m:
        return f"policy.pth refers to {m.group(1)}, not just tensors; refused (loading it could run code)"
    if type(e).__name__ == "UnpicklingError" or "WeightsUnpickler" in text:
        m = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n|$)", text)
        detail = m.group(1) if m and m.group(1).strip() else "not a plain tensor file"
        return f"policy.pth is corrupt or holds more than tensors ({detail})"
    return f"policy.pth is corrupt or truncated ({_first_line(e).split('. ')[0]})"


def _readable(item: Any) -> Any:
    """A data item without its pickled payload: plain JSON as is, a serialised item's readable fields."""
    if isinstance(item, dict) and _SERIALIZED in item:
        return {k: v for k, v in item.items() if k != _SERIALIZED}
    return item


def _class_path(text: Any) -> str:
    """``"<class 'gymnasium.spaces.box.Box'>"`` -> ``"gymnasium.spaces.box.Box"`` ('' if not a class string)."""
    m = re.search(r"<class '([\w.]+)'>", str(text or ""))
    return m.group(1) if m else ""


def _as_int(value: Any, what: str) -> int:
    # Numpy ints are stored as str() ("6"); old gym versions stored plain ints.
    m = re.fullmatch(r"\s*(?:np\.int\d+\()?(-?\d+)\)?\s*", str(value))
    if m is None:
        raise _Refused(f"unreadable {what} {value!r}")
    return int(m.group(1))


# --- what the data says ------------------------------------------------------------------------


def _policy_identity(data: dict[str, Any]) -> tuple[str, str | None]:
    """(module, class name or None) of the saved policy class, from its readable fields."""
    pc = _readable(data.get("policy_class"))
    if not isinstance(pc, dict) or not isinstance(pc.get("__module__"), str):
        raise _Refused("no readable policy_class in 'data' (not a Stable-Baselines3 model, or a very old one)")
    # The class name is not stored as such; the class's own __init__ is, as "<function Name.__init__ at 0x..>".
    m = re.match(r"<function ([\w.]+)\.__init__ at ", str(pc.get("__init__", "")))
    return pc["__module__"], (m.group(1).split(".")[-1] if m else None)


def _algorithm(data: dict[str, Any], module: str, name: str | None) -> tuple[str, str, str | None]:
    """(algo, network kind, encoder named by the policy class or None)."""
    if module in _UNSUPPORTED_MODULES:
        raise _Refused(
            f"unsupported algorithm {_UNSUPPORTED_MODULES[module]} "
            "(rl-distill loads PPO, A2C and DQN with discrete actions)"
        )
    if module.startswith("sb3_contrib."):
        raise _Refused(f"unsupported sb3-contrib algorithm (policy module {module}); rl-distill loads PPO, A2C and DQN")
    if module not in ("stable_baselines3.common.policies", "stable_baselines3.dqn.policies"):
        m = re.fullmatch(r"stable_baselines3\.(\w+)\.policies", module)
        if m:
            raise _Refused(f"unsupported algorithm {m.group(1).upper()} (rl-distill loads PPO, A2C and DQN)")
        raise _Refused(f"custom policy class {module}.{name or '?'} is not supported (use MlpPolicy or CnnPolicy)")
    if name in _MULTI_INPUT:
        raise _Refused(f"{name} (dict observations) is not supported; use MlpPolicy or CnnPolicy")
    if name is not None and (module, name) not in _POLICIES:
        raise _Refused(f"custom policy class {module}.{name} is not supported (use MlpPolicy or CnnPolicy)")
    encoder = _POLICIES[(module, name)][1] if name is not None else None
    if module == "stable_baselines3.dqn.policies":
        return "dqn", "q", encoder
    if _TRPO_KEYS & set(data):
        raise _Refused("unsupported algorithm TRPO (rl-distill loads PPO, A2C and DQN)")
    if "clip_range" in data or "n_epochs" in data:
        return "ppo", "actor_critic", encoder
    if "vf_coef" in data and "n_steps" in data:
        return "a2c", "actor_critic", encoder
    raise _Refused(
        f"cannot tell which actor-critic algorithm saved this model (policy {module}.{name}); expected PPO or A2C"
    )


def _observation_space(data: dict[str, Any]) -> tuple[tuple[int, ...], str]:
    space = _readable(data.get("observation_space"))
    if not isinstance(space, dict):
        raise _Refused("no readable observation_space in 'data'")
    kind = _class_path(space.get(_TYPE)).split(".")[-1]
    if kind == "Dict":
        raise _Refused("dict observation space (MultiInputPolicy) is not supported")
    if kind != "Box":
        # SB3 one-hot encodes Discrete/MultiDiscrete observations; our Flatten encoder does not.
        raise _Refused(f"{kind or 'unknown'} observation space is not supported (Box observations only)")
    shape = space.get("_shape", space.get("shape"))
    if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape) or not shape:
        raise _Refused(f"unreadable observation shape {shape!r}")
    return tuple(shape), str(space.get("dtype", "float32"))


def _n_actions(data: dict[str, Any]) -> int:
    space = _readable(data.get("action_space"))
    if not isinstance(space, dict):
        raise _Refused("no readable action_space in 'data'")
    kind = _class_path(space.get(_TYPE)).split(".")[-1]
    if kind != "Discrete":
        raise _Refused(f"{kind or 'unknown'} action space is not supported; rl-distill handles Discrete actions")
    if "n" not in space:
        raise _Refused("Discrete action space without a readable 'n'")
    n = _as_int(space["n"], "number of actions")
    # A non-zero start shifts every action SB3 returns; our teachers return indices from 0.
    if _as_int(space.get("start", 0), "action start") != 0:
        raise _Refused(f"Discrete action space with start={space.get('start')} is not supported (start must be 0)")
    if n < 1:
        raise _Refused(f"Discrete action space with n={n}")
    return n


def _policy_kwargs(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(readable policy_kwargs, whether they were fully readable)."""
    pk = data.get("policy_kwargs") or {}
    if not isinstance(pk, dict):
        raise _Refused("unreadable policy_kwargs in 'data'")
    if _SERIALIZED in pk:
        items = {k: v for k, v in pk.items() if k not in (_SERIALIZED, _TYPE)}
        # A serialised dict normally comes with its items readable beside it; without them we cannot
        # see e.g. the activation function.
        return items, bool(items)
    return pk, True


# --- from weights to an Arch -------------------------------------------------------------------


def _layer_widths(state: dict[str, torch.Tensor], prefix: str) -> tuple[int, ...]:
    """Output widths of an SB3 ``create_mlp`` Sequential (Linear at indices 0, 2, 4 ...)."""
    keys = [k[len(prefix) :] for k in state if k.startswith(prefix)]
    indices = sorted({int(k.split(".")[0]) for k in keys if k.split(".")[0].isdigit()})
    if len(keys) != 2 * len(indices) or indices != list(range(0, 2 * len(indices), 2)):
        raise _Refused(f"layers under {prefix.rstrip('.')} are not a plain Linear/activation stack (custom network?)")
    widths = []
    for i in indices:
        w = state.get(f"{prefix}{i}.weight")
        if w is None or w.ndim != 2 or f"{prefix}{i}.bias" not in state:
            raise _Refused(f"layer {prefix}{i} is not a Linear layer with bias")
        widths.append(int(w.shape[0]))
    return tuple(widths)


def _cnn_dims(state: dict[str, torch.Tensor], prefix: str) -> tuple[int, tuple[int, int, int], int]:
    """(input channels, conv widths, features) of a NatureCNN under ``prefix``."""
    convs = []
    for idx, k in zip((0, 2, 4), _NATURE_KERNELS):
        w = state.get(f"{prefix}cnn.{idx}.weight")
        if w is None or w.ndim != 4 or tuple(w.shape[2:]) != (k, k):
            raise _Refused(f"feature extractor under {prefix.rstrip('.')} is not SB3's NatureCNN (custom CNN?)")
        convs.append(w)
    lin = state.get(f"{prefix}linear.0.weight")
    if lin is None or lin.ndim != 2:
        raise _Refused(f"feature extractor under {prefix.rstrip('.')} is not SB3's NatureCNN (no linear layer)")
    return int(convs[0].shape[1]), tuple(int(w.shape[0]) for w in convs), int(lin.shape[0])  # type: ignore[return-value]


def _is_minatar_cnn(state: dict[str, torch.Tensor], prefix: str) -> bool:
    """MinAtarCNN's weights: one 3x3 convolution (``cnn.0``) and the linear layer, nothing else under ``prefix``."""
    conv = state.get(f"{prefix}cnn.0.weight")
    keys = {k[len(prefix) :] for k in state if k.startswith(prefix)}
    return (
        conv is not None
        and conv.ndim == 4
        and tuple(conv.shape[2:]) == (3, 3)
        and keys == {"cnn.0.weight", "cnn.0.bias", "linear.0.weight", "linear.0.bias"}
    )


def _image_obs_shape(obs_shape: tuple[int, ...], in_channels: int, notes: list[str]) -> tuple[int, ...]:
    """Channel-first (C, H, W) for the CNN, transposing a channel-last saved space if needed."""
    if len(obs_shape) != 3:
        raise _Refused(f"CNN policy with a {len(obs_shape)}-d observation space {obs_shape}")
    if obs_shape[0] == in_channels:
        return obs_shape
    if obs_shape[-1] == in_channels:
        # SB3 transposes channel-last images (VecTransposeImage) before the CNN, so the weights
        # already expect channel-first input; our envs give channel-first frames.
        h, w, c = obs_shape
        notes.append(
            f"saved observation space {obs_shape} is channel-last; "
            f"the teacher takes channel-first {(c, h, w)} as SB3's VecTransposeImage did"
        )
        return (c, h, w)
    raise _Refused(f"first conv layer takes {in_channels} channels but the observation space is {obs_shape}")


def _activation(pk: dict[str, Any], readable: bool, algo: str, has_hidden: bool) -> str:
    if "activation_fn" in pk:
        cls = _class_path(pk["activation_fn"]).split(".")[-1]
        if cls not in _ACTIVATIONS:
            raise _Refused(f"activation {pk['activation_fn']!r} is not supported (ReLU or Tanh)")
        return _ACTIVATIONS[cls]
    if not readable and has_hidden:
        raise _Refused("policy_kwargs are pickled without a readable copy, so the activation function is unknown")
    return _DEFAULT_ACTIVATION[algo]


def _check_extractor_kwargs(pk: dict[str, Any], encoder: str) -> None:
    if "features_extractor_class" in pk:
        path = _class_path(pk["features_extractor_class"])
        name = path.split(".")[-1]
        if path not in _ALLOWED_EXTRACTORS:
            raise _Refused(
                f"custom features extractor {path or pk['features_extractor_class']!r} is not supported "
                "(NatureCNN, FlattenExtractor or rl-distill's MinAtarCNN)"
            )
        if _ALLOWED_EXTRACTORS[path] != encoder:
            raise _Refused(f"features_extractor_class {name} does not match the saved weights")


def _split_state(
    state: dict[str, torch.Tensor], kind: str, pk: dict[str, Any], encoder: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict restricted to our network's keys, plus notes on what was dropped."""
    notes: list[str] = []
    if kind == "q":
        kept = {k: v for k, v in state.items() if k.startswith("q_net.")}
        target = [k for k in state if k.startswith("q_net_target.")]
        if target:
            notes.append("dropped the DQN target network (q_net_target.*)")
        extra = sorted(set(state) - set(kept) - set(target))
    else:
        shared = [k for k in state if k.startswith("mlp_extractor.shared_net.")]
        if shared:
            raise _Refused("shared policy/value layers (old-style net_arch, SB3 < 1.8) are not supported")
        dup = [k for k in state if k.startswith(("pi_features_extractor.", "vf_features_extractor."))]
        if encoder == "cnn" and pk.get("share_features_extractor", True) is False:
            raise _Refused(
                "separate policy and value feature extractors (share_features_extractor=False) are not supported"
            )
        for k in dup:
            # With a shared encoder these are the same tensors saved three times; anything else means
            # separate encoders, which our network cannot hold.
            base = "features_extractor." + k.split(".", 1)[1]
            if base not in state or not torch.equal(state[base], state[k]):
                raise _Refused(
                    "separate policy and value feature extractors (share_features_extractor=False) are not supported"
                )
        if dup:
            notes.append("dropped pi_/vf_features_extractor.* (copies of the shared features_extractor)")
        prefixes = (
            "features_extractor.",
            "mlp_extractor.policy_net.",
            "mlp_extractor.value_net.",
            "action_net.",
            "value_net.",
        )
        kept = {k: v for k, v in state.items() if k.startswith(prefixes)}
        extra = sorted(set(state) - set(kept) - set(dup))
    if extra:
        raise _Refused(f"unexpected weights {extra[:3]} (not an MlpPolicy/CnnPolicy with discrete actions)")
    return kept, notes


def _rebuild(
    data: dict[str, Any], state: dict[str, torch.Tensor]
) -> tuple[Arch, dict[str, torch.Tensor], dict[str, Any]]:
    """(Arch, our state dict, meta fields) from what the zip says and its weights' shapes."""
    module, policy_name = _policy_identity(data)
    algo, kind, named_encoder = _algorithm(data, module, policy_name)
    saved_obs_shape, obs_dtype = _observation_space(data)
    n_actions = _n_actions(data)
    pk, pk_readable = _policy_kwargs(data)

    enc_prefix = "q_net.features_extractor." if kind == "q" else "features_extractor."
    enc_keys = [k for k in state if k.startswith(enc_prefix)]
    if not enc_keys:
        encoder = "flatten"  # SB3's FlattenExtractor has no weights
    elif _is_minatar_cnn(state, enc_prefix):
        encoder = "minatar"
    elif any(k.startswith(enc_prefix + "cnn.") for k in enc_keys):
        encoder = "cnn"
    else:
        raise _Refused(f"unknown feature extractor weights {enc_keys[:2]} (custom extractor?)")
    if named_encoder is not None and named_encoder != encoder and "features_extractor_class" not in pk:
        raise _Refused(f"{policy_name} does not match its weights (expected a {named_encoder} encoder)")
    _check_extractor_kwargs(pk, encoder)

    normalize_images = pk.get("normalize_images", True)
    notes: list[str] = []
    cnn: dict[str, Any] = {}
    if encoder == "cnn":
        if normalize_images is False:
            # Our networks always divide uint8 frames by 255; SB3 would feed them raw.
            raise _Refused(
                "CNN policy with normalize_images=False is not supported (rl-distill always scales images by 1/255)"
            )
        if obs_dtype != "uint8":
            raise _Refused(f"CNN policy on {obs_dtype} observations is not supported (uint8 images only)")
        in_channels, channels, features = _cnn_dims(state, enc_prefix)
        obs_shape = _image_obs_shape(saved_obs_shape, in_channels, notes)
        cnn = {"cnn_channels": channels, "cnn_features": features}
    elif encoder == "minatar":
        conv, lin = state[f"{enc_prefix}cnn.0.weight"], state[f"{enc_prefix}linear.0.weight"]
        obs_shape = _image_obs_shape(saved_obs_shape, int(conv.shape[1]), notes)
        cnn = {"cnn_channels": (int(conv.shape[0]),), "cnn_features": int(lin.shape[0])}
    else:
        obs_shape = saved_obs_shape
        if len(obs_shape) == 3 and obs_dtype == "uint8" and normalize_images is not False:
            # SB3 scales such image spaces by 1/255 even for an MLP; our Flatten encoder does not.
            raise _Refused("MLP policy on uint8 images (scaled by SB3 before the MLP) is not supported; use CnnPolicy")

    kept, drop_notes = _split_state(state, kind, pk, encoder)
    notes += drop_notes
    if kind == "q":
        widths = _layer_widths(kept, "q_net.q_net.")
        if not widths or widths[-1] != n_actions:
            raise _Refused(
                f"Q-network output {widths[-1:] or 'missing'} does not match the {n_actions} actions "
                "of the action space"
            )
        layers = {"pi_layers": widths[:-1], "vf_layers": ()}
        has_hidden = bool(widths[:-1])
    else:
        pi, vf = _layer_widths(kept, "mlp_extractor.policy_net."), _layer_widths(kept, "mlp_extractor.value_net.")
        layers = {"pi_layers": pi, "vf_layers": vf}
        has_hidden = bool(pi or vf)
    activation = _activation(pk, pk_readable, algo, has_hidden)

    arch = Arch(
        kind=kind,
        obs_shape=tuple(obs_shape),
        n_actions=n_actions,
        encoder=encoder,
        activation=activation,
        **cnn,
        **layers,
    )
    meta = {
        "algo": algo,
        "policy": f"{module}.{policy_name}" if policy_name else module,
        "saved_obs_shape": list(saved_obs_shape),
        "obs_dtype": obs_dtype,
        "num_timesteps": data.get("num_timesteps") if isinstance(data.get("num_timesteps"), int) else None,
        "notes": notes,
    }
    return arch, kept, meta


def _check_fit(arch: Arch, state: dict[str, torch.Tensor]) -> None:
    """Compare key sets and shapes with our network, for a one-line message instead of torch's."""
    try:
        expected = build_net(arch).state_dict()
    except (RuntimeError, ValueError) as e:  # e.g. images too small for the Nature CNN's convolutions
        raise _Refused(f"cannot build the network for {arch.obs_shape}: {_first_line(e)}") from None
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise _Refused(f"weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in expected.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise _Refused(
                f"weights do not fit: {k} has shape {tuple(state[k].shape)}, "
                f"the observation/action spaces need {tuple(v.shape)}"
            )


# --- public API --------------------------------------------------------------------------------


def load_sb3_zip(path: str | Path, device: str | torch.device = "cpu", env_id: str | None = None) -> Teacher:
    """Load a Stable-Baselines3 PPO, A2C or DQN ``.zip`` (MlpPolicy or CnnPolicy, Discrete actions) as a Teacher.

    Works offline and never unpickles the file's ``:serialized:`` payloads: the architecture comes
    from the readable fields of ``data`` and from the weight shapes in ``policy.pth`` (loaded with
    ``weights_only=True``). A channel-last image observation space is turned channel-first, as SB3's
    VecTransposeImage does. Raises a one-line :class:`TeacherError` naming the file for anything it
    cannot load faithfully.
    """
    p = Path(path)
    try:
        data, state, version = _read_zip(p)
        arch, kept, extra = _rebuild(data, state)
        kept = {k: v.float() if v.is_floating_point() else v for k, v in kept.items()}
        _check_fit(arch, kept)
    except _Refused as e:
        raise TeacherError(f"cannot load SB3 model {p}: {e}") from None
    meta: dict[str, Any] = {
        "source": str(p),
        "format": "sb3-zip",
        "algo": extra.pop("algo"),
        "env_id": env_id,
        "sb3_version": version,
        **extra,
    }
    try:
        return Teacher(arch, kept, meta, device)
    except (TeacherError, RuntimeError) as e:  # _check_fit should have caught these; keep the one-line contract
        raise TeacherError(f"cannot load SB3 model {p}: {_first_line(e)}") from None


def _yaml_value(text: str, key: str) -> str | None:
    """The value of ``key`` in an rl-zoo ``args.yml``/``config.yml``, without a YAML library.

    rl-zoo dumps an OrderedDict, which YAML writes as a python-tagged list of pairs::

        !!python/object/apply:collections.OrderedDict
        - - - algo
            - ppo
          - - env
            - CartPole-v1

    (``yaml.safe_load`` rejects the tag and ``unsafe_load`` would run it), so read the pair by lines.
    A plain ``key: value`` mapping is read too.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"\s*(?:-\s+)+" + re.escape(key) + r"\s*", line)
        if m and i + 1 < len(lines):
            v = re.fullmatch(r"\s*-\s+(.*?)\s*", lines[i + 1])
            if v:
                return v.group(1).strip("'\"")
        m = re.fullmatch(re.escape(key) + r"\s*:\s*(.*?)\s*", line)
        if m and m.group(1):
            return m.group(1).strip("'\"")
    return None


_NOFRAMESKIP = re.compile(r"^([A-Za-z0-9]+)NoFrameskip-v4$")


def suite_env_id(zoo_env_id: str) -> str:
    """The suite's env id for an rl-zoo3 one: ``ALE-<Game>-v5`` (its folder name) and ``<Game>NoFrameskip-v4`` (the
    same game, played without sticky actions) are ``ALE/<Game>-v5``; any other id is its own."""
    if re.fullmatch(r"ALE-[A-Za-z0-9]+-v5", zoo_env_id):
        return "ALE/" + zoo_env_id[4:]
    m = _NOFRAMESKIP.match(zoo_env_id)
    return f"ALE/{m.group(1)}-v5" if m else zoo_env_id


def is_noframeskip(zoo_env_id: str) -> bool:
    """True for ``<Game>NoFrameskip-v4``: no sticky actions, one emulator frame per step (rl-zoo3's AtariWrapper skips
    4)."""
    return _NOFRAMESKIP.match(zoo_env_id) is not None


def load_rl_zoo_folder(path: str | Path, device: str | torch.device = "cpu") -> Teacher:
    """Load an rl-zoo3 run folder (``logs/<algo>/<env>_<n>/`` or ``rl-trained-agents/<algo>/<env>_<n>/``).

    Picks ``best_model.zip``, else ``<env>.zip``, and reads the env id from ``<env>/args.yml`` (by
    lines: rl-zoo's YAML carries python tags) or the folder name. A ``<Game>NoFrameskip-v4`` id is
    mapped to rl-distill's ``ALE/<Game>-v5`` (recorded in meta). Refuses folders with
    ``vecnormalize.pkl`` or ``normalize`` set: their observation statistics are pickled.
    """
    p = Path(path)
    if not p.is_dir():
        raise TeacherError(
            f"cannot load rl-zoo folder {p}: not a folder"
            + (" (use load_sb3_zip for a .zip)" if p.suffix == ".zip" else "")
        )

    # rl-zoo keeps args.yml/config.yml/vecnormalize.pkl in a subfolder named after the env ("/" -> "-").
    env_dirs = sorted(
        d for d in p.iterdir() if d.is_dir() and ((d / "args.yml").exists() or (d / "config.yml").exists())
    )
    for pkl in [p / "vecnormalize.pkl"] + [
        d / "vecnormalize.pkl" for d in sorted(x for x in p.iterdir() if x.is_dir())
    ]:
        if pkl.exists():
            raise TeacherError(
                f"cannot load rl-zoo folder {p}: it uses VecNormalize ({pkl}); "
                "its observation statistics are pickled and rl-distill does not unpickle"
            )
    env_id = zoo_algo = None
    for d in env_dirs:
        args = d / "args.yml"
        if args.exists():
            text = args.read_text(errors="replace")
            env_id = env_id or _yaml_value(text, "env")
            zoo_algo = zoo_algo or _yaml_value(text, "algo")
        config = d / "config.yml"
        if config.exists():
            norm = _yaml_value(config.read_text(errors="replace"), "normalize")
            if norm is not None and norm.lower() not in ("false", "null", "none", "~", ""):
                raise TeacherError(
                    f"cannot load rl-zoo folder {p}: {config} sets normalize={norm} "
                    "(VecNormalize statistics are pickled; rl-distill does not unpickle)"
                )
    if env_id is None and env_dirs:
        env_id = env_dirs[0].name
    if env_id is None:
        env_id = re.sub(r"_\d+$", "", p.name)  # "CartPole-v1_1" -> "CartPole-v1"
    if not is_noframeskip(env_id):
        env_id = suite_env_id(env_id)  # "ALE-Pong-v5", the folder name of ALE/Pong-v5, is ALE/Pong-v5

    candidates = [p / "best_model.zip", p / f"{env_id.replace('/', '-')}.zip"]
    model = next((c for c in candidates if c.is_file()), None)
    if model is None:
        zips = sorted(x.name for x in p.glob("*.zip"))
        raise TeacherError(
            f"cannot load rl-zoo folder {p}: no best_model.zip or {candidates[1].name}"
            + (f" (found {', '.join(zips[:3])})" if zips else "")
        )

    notes: list[str] = []
    used_env_id = suite_env_id(env_id)
    if is_noframeskip(env_id):
        notes.append(
            f"trained on {env_id} (no sticky actions, AtariWrapper); mapped to {used_env_id} "
            "(sticky actions 0.25 by default), so scores may differ from the zoo's"
        )
    teacher = load_sb3_zip(model, device=device, env_id=used_env_id)
    if zoo_algo in ("ppo", "a2c") and teacher.meta["algo"] in ("ppo", "a2c") and zoo_algo != teacher.meta["algo"]:
        # PPO and A2C share policy classes, so the zip's algorithm is inferred from its data keys;
        # args.yml names it outright.
        notes.append(f"args.yml says {zoo_algo}, the zip looked like {teacher.meta['algo']}; using {zoo_algo}")
        teacher.meta["algo"] = zoo_algo
    teacher.meta.update(format="rl-zoo", zoo_folder=str(p), zoo_env_id=env_id)
    teacher.meta["notes"] = list(teacher.meta.get("notes", [])) + notes
    return teacher
