"""Train a teacher with Stable-Baselines3 (rl-zoo3 hyperparameters) and export it to the suite format.

The run lives in ``runs/<env>__<algo>-teacher__<seed>__<time>/``: tensorboard scalars, ``scalars.jsonl``,
``config.json``, periodic ``checkpoint.zip`` (+ the DQN replay buffer) so that a killed run continues
with ``--resume``, ``best.zip`` (best periodic evaluation), and ``summary.json`` at the end. These SB3 zips
are private training state; what ships is the exported safetensors + JSON teacher. SIGINT or SIGTERM writes
a checkpoint at the next env step and stops (``--resume`` goes on from it); ``.lock`` keeps a second process
from training the same run.

``--init-from TEACHER`` continues training from an exported teacher (a shipped id or a path): its weights,
step count (so the learning-rate, clip and exploration schedules go on where they were), learning curve and
training segments carry over. The optimizer state and the DQN replay buffer are not in a teacher, so Adam
starts fresh and DQN refills its buffer (``learning_starts`` steps) before it learns again. This is how a
teacher too long for one working session grows across sessions on fresh machines: ship the best so far,
then continue it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback

from rl_distill.envs import check_env_id, family_of
from rl_distill.errors import UserError
from rl_distill.networks import channels_last_convolutions, dead_first_conv, image_floats
from rl_distill.precision import resolve_precision
from rl_distill.runs import RunLogger, StopOnSignal, atomic_write_json, claim_run_dir, machine
from rl_distill.teachers.config import TrainConfig, check_teacher_out, parse_overrides  # noqa: F401 (public here too)

HYPERPARAMS = Path(__file__).with_name("hyperparams.toml")


def hyperparams(env_id: str, algo: str, game_entry: bool = True) -> dict[str, Any]:
    """The hyperparameters for ``env_id``: rl-zoo3's entry, or the family's (Atari games share one entry, as do
    MinAtar's, where they are the MinAtar paper's), under a game's own entry of the values it changes
    (``game_entry=False``: the family's alone, what a multi-task run over the family's games shares)."""
    table = tomllib.loads(HYPERPARAMS.read_text())
    if algo not in table:
        raise UserError(f"unknown algorithm {algo!r}; choose ppo or dqn")
    key = family_of(env_id).hyperparams_key(env_id)
    if key not in table[algo]:
        raise UserError(f"no {algo} hyperparameters for {env_id!r}; known: {', '.join(sorted(table[algo]))}")
    return dict(table[algo][key]) | (table[algo].get(env_id, {}) if game_entry else {})


def _check_overrides(algo: str, overrides: dict[str, Any]) -> None:
    import inspect

    from stable_baselines3 import DQN, PPO

    known = set(inspect.signature((PPO if algo == "ppo" else DQN).__init__).parameters) - {"self", "policy", "env"}
    known |= {"n_envs", "n_timesteps", "net_arch", "optimizer_kwargs", "optimizer_class"}
    bad = sorted(set(overrides) - known)
    if bad:
        raise UserError(
            f"--hyperparams: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not {algo} hyperparameters"
        )
    params = inspect.signature((PPO if algo == "ppo" else DQN).__init__).parameters
    for k, v in overrides.items():
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        default = params[k].default if k in params else None
        if k in ("learning_rate", "clip_range", "clip_range_vf"):
            ok, want = number or _is_linear(v), "a number or lin_<number>"
        elif isinstance(default, bool):
            ok, want = isinstance(v, bool), "true or false"
        elif isinstance(default, (int, float)):
            ok, want = number, "a number"
        else:
            ok, want = True, ""
        if not ok:
            raise UserError(f"--hyperparams {k}={v!r}: {k} takes {want}")
        if number and not math.isfinite(v):
            raise UserError(f"--hyperparams {k}={v!r}: {k} takes a finite number")
        rate = float(v[4:]) if _is_linear(v) else v
        if k in ("learning_rate", "clip_range") and not (isinstance(rate, (int, float)) and rate > 0):
            raise UserError(f"--hyperparams {k}={v!r}: {k} must be > 0")
        _check_range(k, v)


_COUNTS = {"n_envs": 1, "n_timesteps": 1, "n_steps": 1, "batch_size": 1, "n_epochs": 1, "buffer_size": 1}
_COUNTS |= {"learning_starts": 0, "target_update_interval": 1}
_FRACTIONS = ("gamma", "gae_lambda", "tau", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps")


def _check_range(key: str, value: Any) -> None:
    """An override's range where SB3 would fail on it later (a count of 0, a discount above 1): one line now."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in _COUNTS:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= _COUNTS[key]):
            raise UserError(f"--hyperparams {key}={value!r}: {key} takes a whole number >= {_COUNTS[key]}")
    elif key in _FRACTIONS and number and not 0 <= value <= 1:
        raise UserError(f"--hyperparams {key}={value!r}: {key} must be in [0, 1]")
    elif key in ("ent_coef", "vf_coef", "max_grad_norm") and number and value < 0:
        raise UserError(f"--hyperparams {key}={value!r}: {key} must be >= 0")


def _is_linear(v: Any) -> bool:
    """A ``lin_<number>`` schedule string (rl-zoo3's linear decay to 0)."""
    if not (isinstance(v, str) and v.startswith("lin_")):
        return False
    try:
        float(v[4:])
    except ValueError:
        return False
    return True


def _schedule(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("lin_"):
        start = float(v[4:])
        return lambda progress_remaining: progress_remaining * start
    return v


def sb3_model(
    algo: str,
    env_id: str,
    env,
    hp: dict[str, Any],
    seed: int = 0,
    device: str = "auto",
    tensorboard_log: str | None = None,
):
    """A fresh SB3 PPO or DQN from a hyperparameter entry (``hyperparams()`` plus overrides): ``lin_`` schedules
    resolved, ``net_arch`` and ``optimizer_kwargs`` (e.g. Adam's ``eps``) into the policy kwargs, CnnPolicy on
    Atari. What ``teachers train`` and the teacher-training benchmarks build."""
    from stable_baselines3 import DQN, PPO

    policy_keys = ("net_arch", "optimizer_kwargs", "optimizer_class")  # SB3 takes these through policy_kwargs
    kw = {k: _schedule(v) for k, v in hp.items() if k not in ("n_envs", "n_timesteps", *policy_keys)}
    policy, family_kwargs = family_of(env_id).sb3_policy(env_id)
    policy_kwargs = family_kwargs | {k: _policy_value(k, hp[k]) for k in policy_keys if k in hp}
    cls = PPO if algo == "ppo" else DQN
    return cls(
        policy,
        env,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        policy_kwargs=policy_kwargs or None,
        verbose=0,
        **kw,
    )


def _policy_value(key: str, value: Any) -> Any:
    """A policy kwarg from its TOML form: ``net_arch`` a list, ``optimizer_class`` a torch.optim class name."""
    import torch

    if key == "net_arch":  # [64, 64], or separate towers {pi = [64, 64], vf = [64, 64]}
        return {k: list(v) for k, v in value.items()} if isinstance(value, dict) else list(value)
    if key == "optimizer_class":
        cls = getattr(torch.optim, str(value), None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise UserError(f"--hyperparams optimizer_class={value!r}: not a torch.optim optimizer (Adam, RMSprop ...)")
        return cls
    return dict(value)


def fast_sb3_training(model) -> None:
    """Make an SB3 model's CPU training faster without changing its maths or anything it saves: channels-last
    convolutions (:func:`channels_last_convolutions`), uint8 frames to floats by :func:`image_floats` instead of
    SB3's ``obs.float() / 255`` (the same floats), and Adam's fused kernel (one pass over the parameters,
    equal to the per-tensor loop up to float rounding); benchmarks/sb3_training_step.py measures the gain.
    Apply after creating or loading the model (a loaded optimizer brings back its saved settings)."""
    import types

    import torch
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.preprocessing import is_image_space

    channels_last_convolutions(model.policy)
    for m in model.policy.modules():  # PPO's policy; DQN's q_net and q_net_target
        if (
            isinstance(m, BasePolicy)
            and m.normalize_images
            and is_image_space(m.observation_space)
            and getattr(m, "share_features_extractor", True)
        ):
            m.extract_features = types.MethodType(_image_features, m)
    if isinstance(model.policy.optimizer, torch.optim.Adam):
        for g in model.policy.optimizer.param_groups:
            g.update(fused=True, foreach=False)
    elif isinstance(model.policy.optimizer, torch.optim.RMSprop):  # MinAtar's DQN: one pass per operation
        for g in model.policy.optimizer.param_groups:
            g.update(foreach=True)
    _flag_only_training_mode(model.policy)
    _lean_dqn(model)


def _flag_only_training_mode(policy) -> None:
    """SB3 sets the policy's training mode before every rollout and every update, walking all its modules each
    time: with an update every env step (MinAtar's DQN) the walk is a few % of the run. Where no module behaves
    differently in training (no dropout or batch norm: the suite's policies) the mode changes nothing computed,
    so the call only sets the policy's own flag."""
    import types

    import torch

    mode_dependent = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)
    if not any(isinstance(m, mode_dependent) for m in policy.modules()):
        policy.set_training_mode = types.MethodType(_set_flag, policy)


def _set_flag(self, mode: bool) -> None:
    self.__dict__["training"] = mode  # what nn.Module.__setattr__ ends in for a plain attribute, without its checks


def _lean_dqn(model) -> None:
    """SB3's DQN with an update every env step (MinAtar's) spends much of its time around the arithmetic rather
    than in it. For a plain DQN (its own replay buffer, no VecNormalize) this swaps in the same computations
    without that overhead: the model's class becomes :class:`_LeanDQN` (its ``train``), and its policy's
    ``predict`` becomes :func:`_lean_predict`. Both draw the same random numbers in the same order and do the
    same tensor operations, so the updates and actions are SB3's (tests compare them with a stock model). Nothing
    new is saved: SB3 saves a model's attributes and its networks' state dicts, not its class or its policy's
    methods, so the zip and the replay buffer load in stock SB3."""
    import types

    from stable_baselines3.dqn.policies import DQNPolicy

    if type(model) is not DQN or not isinstance(model.policy, DQNPolicy):
        return
    model.__class__ = _LeanDQN
    model.policy.predict = types.MethodType(_lean_predict, model.policy)


def _lean_predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
    """``DQNPolicy.predict`` for a batch of array observations of the space's shape (what a VecEnv gives, in
    training and in evaluation): the same forward pass and greedy actions, without SB3's per-call checks, copy of
    the observations and walk of the modules to find their device. Anything else goes to SB3's."""
    from gymnasium import spaces

    space = self.observation_space
    if not (
        isinstance(observation, np.ndarray)
        and isinstance(space, spaces.Box)
        and isinstance(self.action_space, spaces.Discrete)
        and observation.shape[1:] == space.shape
        and observation.ndim == len(space.shape) + 1
    ):
        return type(self).predict(self, observation, state, episode_start, deterministic)
    self.set_training_mode(False)
    obs = torch.as_tensor(observation, device=self.optimizer.param_groups[0]["params"][0].device)
    with torch.no_grad():
        actions = self._predict(obs, deterministic=deterministic)
    return actions.cpu().numpy().reshape((-1, *self.action_space.shape)), state


def _lean_samples(rb, batch_size: int) -> tuple[torch.Tensor, ...]:
    """``ReplayBuffer.sample(batch_size)`` of a plain SB3 replay buffer without VecNormalize, as (observations,
    actions, next observations, dones, rewards): SB3's ``np.random`` draws in its order and its numpy indexing,
    whose fresh arrays torch then takes over without the copy SB3's ``to_torch`` makes of each."""
    if not rb.optimize_memory_usage:
        batch_inds = np.random.randint(0, rb.buffer_size if rb.full else rb.pos, size=batch_size)
    elif rb.full:  # the slot at pos holds no valid transition
        batch_inds = (np.random.randint(1, rb.buffer_size, size=batch_size) + rb.pos) % rb.buffer_size
    else:
        batch_inds = np.random.randint(0, rb.pos, size=batch_size)
    env_indices = np.random.randint(0, high=rb.n_envs, size=(len(batch_inds),))
    if rb.optimize_memory_usage:
        next_obs = rb.observations[(batch_inds + 1) % rb.buffer_size, env_indices, :]
    else:
        next_obs = rb.next_observations[batch_inds, env_indices, :]
    dones = rb.dones[batch_inds, env_indices] * (1 - rb.timeouts[batch_inds, env_indices])  # timeouts bootstrap
    data = (
        rb.observations[batch_inds, env_indices, :],
        rb.actions[batch_inds, env_indices, :],
        next_obs,
        dones.reshape(-1, 1),
        rb.rewards[batch_inds, env_indices].reshape(-1, 1),
    )
    return tuple(torch.from_numpy(a).to(rb.device) for a in data)


class _LeanDQN(DQN):
    """SB3's DQN whose ``train`` does SB3's update in the same operations with less around them (see
    :func:`_lean_dqn`): the minibatch without SB3's copies (:func:`_lean_samples`), gradients set to None and
    clipped by :func:`rl_distill.optim.clip_grad_norm` over the policy's parameter list taken once, the loss logged
    without a numpy mean of one value. Other replay buffers (n-step returns), VecNormalize: SB3's ``train``."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        from stable_baselines3.common.buffers import ReplayBuffer

        from rl_distill.optim import clip_grad_norm

        if type(self.replay_buffer) is not ReplayBuffer or self._vec_normalize_env is not None:
            return super().train(gradient_steps, batch_size)
        policy, opt = self.policy, self.policy.optimizer
        params = policy.__dict__.get("_lean_params")
        if params is None:  # the order SB3's clip_grad_norm_(policy.parameters()) sums the norms in
            params = policy.__dict__["_lean_params"] = list(policy.parameters())
        policy.set_training_mode(True)
        self._update_learning_rate(opt)
        losses = []
        for _ in range(gradient_steps):
            obs, actions, next_obs, dones, rewards = _lean_samples(self.replay_buffer, batch_size)
            with torch.no_grad():
                next_q_values, _ = self.q_net_target(next_obs).max(dim=1)
                target_q_values = rewards + (1 - dones) * self.gamma * next_q_values.reshape(-1, 1)
            current_q_values = torch.gather(self.q_net(obs), dim=1, index=actions.long())
            loss = torch.nn.functional.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            for group in opt.param_groups:  # opt.zero_grad() (set_to_none)
                for p in group["params"]:
                    p.grad = None
            loss.backward()
            clip_grad_norm(params, self.max_grad_norm)
            opt.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.float64(losses[0]) if len(losses) == 1 else np.mean(losses))


def bf16_sb3_training(model) -> None:
    """bf16 autocast in an SB3 model's body, in acting and in the update: the feature extractors (the CNN,
    where the time goes on Atari) and the hidden layers of an MLP policy (``mlp_extractor``); their outputs,
    the heads, distributions and losses stay fp32, as do parameters and Adam's state. Nothing saved
    changes: a bf16 run's checkpoint loads and resumes in fp32 and the other way round."""
    from rl_distill.precision import bf16_forward

    # MlpExtractor's two nets, not the extractor itself: its forward_actor / forward_critic bypass forward().
    hidden = ("mlp_extractor.policy_net", "mlp_extractor.value_net")
    extractors = {
        id(m): m for name, m in model.policy.named_modules() if name.endswith("features_extractor") or name in hidden
    }
    for m in extractors.values():
        bf16_forward(m)


def _image_features(policy, obs, features_extractor=None):
    """SB3's ``BaseModel.extract_features`` for uint8 image observations, with :func:`image_floats`."""
    return (policy.features_extractor if features_extractor is None else features_extractor)(image_floats(obs))


def _protocols(env_id: str, sticky_actions: float | None) -> tuple[Any, Any]:
    """(evaluation, training) protocols of the env's family: Atari trains on clipped rewards with a lost life ending
    the learner's episode, and is judged on full games with raw scores; MinAtar plays one protocol; control none."""
    family = family_of(env_id)
    protocol = family.protocol(sticky_actions=sticky_actions) if family.protocol() is not None else None
    return protocol, family.training_protocol(protocol) if protocol is not None else None


def _load_init_teacher(cfg: TrainConfig, total: int):
    """The teacher ``--init-from`` names, checked to be a trained teacher of this env and algorithm."""
    from rl_distill.teachers import load_teacher

    teacher = load_teacher(cfg.init_from)
    meta = teacher.meta
    if meta.get("env_id") != cfg.env_id or meta.get("algo") != cfg.algo:
        raise UserError(
            f"--init-from {cfg.init_from}: a {meta.get('algo')} teacher for {meta.get('env_id')}, "
            f"not {cfg.algo} for {cfg.env_id}"
        )
    if "steps" not in (meta.get("training") or {}):
        raise UserError(f"--init-from {cfg.init_from}: its metadata has no training record to continue")
    if meta["training"]["steps"] >= total:
        raise UserError(
            f"--init-from {cfg.init_from} has already trained {meta['training']['steps']} steps; "
            "give --steps above that"
        )
    return teacher


def _one_segment(training: dict[str, Any]) -> dict[str, Any]:
    """The training record of a teacher exported before runs kept segments: one invocation."""
    return {
        "command": training.get("command"),
        "machine": training.get("machine"),
        "start_step": 0,
        "end_step": int(training["steps"]),
        "wall_s": training.get("wall_s"),
    }


def _carried_state(teacher, cfg: TrainConfig) -> dict[str, Any]:
    """The training state an exported teacher carries into a continued run: curve, best, wall time, segments."""
    training = teacher.meta["training"]
    curve = list(training.get("curve") or [])
    best = max(curve, key=lambda e: e["mean"]) if curve else None
    return {
        "evals": curve,
        "best": {"step": training.get("best_step", best["step"]), "mean": best["mean"]} if best else None,
        "wall_s": float(training.get("wall_s", 0.0)),
        "segments": list(training.get("segments") or [_one_segment(training)]),
        "init_from": {
            "teacher": str(cfg.init_from),
            "steps": int(training["steps"]),
            "weights_sha256": teacher.meta.get("weights_sha256"),
        },
    }


def _load_into(model, teacher, cfg: TrainConfig, hp: dict[str, Any]) -> None:
    """Put a teacher's weights and step count into a fresh SB3 model (DQN: target = online net, buffer to refill)."""
    weights = teacher.net.state_dict()
    if cfg.algo == "dqn":  # the online network and its target start equal, as after a target update
        weights = weights | {"q_net_target." + k[len("q_net.") :]: v for k, v in weights.items()}
    missing, unexpected = model.policy.load_state_dict(weights, strict=False)
    # pi_/vf_features_extractor are the same module as features_extractor (shared encoder): loaded with it.
    missing = [k for k in missing if not k.startswith(("pi_features_extractor.", "vf_features_extractor."))]
    if missing or unexpected:
        raise UserError(
            f"--init-from {cfg.init_from}: its network does not match {cfg.algo}'s for {cfg.env_id} "
            f"(missing {missing[:2]}, unexpected {unexpected[:2]})"
        )
    model.num_timesteps = int(teacher.meta["training"]["steps"])
    if cfg.algo == "dqn":
        model.learning_starts = model.num_timesteps + int(hp.get("learning_starts", 0))


def _resumed_settings(run_dir: Path, cfg: TrainConfig, hp: dict[str, Any], n_envs: int) -> tuple[dict[str, Any], int]:
    """The hyperparameters and env count a resumed run keeps (its checkpoint holds them, and a DQN replay
    buffer is shaped by its env count); a different ``--hyperparams`` value or ``--n-envs`` is refused rather
    than silently ignored. Only the budget (``--steps``) may change."""
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        saved_hp, saved_envs = dict(saved["hyperparams"]), int(saved["n_envs"])
    except (OSError, ValueError, KeyError, TypeError):
        return hp, n_envs  # a run from before config.json kept these: trust the command
    changed = [
        f"{k}={v!r} (the run has {saved_hp.get(k)!r})"
        for k, v in cfg.hyperparams.items()
        if k != "n_timesteps" and saved_hp.get(k) != v
    ]
    if cfg.n_envs is not None and cfg.n_envs != saved_envs:
        changed.append(f"--n-envs {cfg.n_envs} (the run has {saved_envs})")
    if changed:
        raise UserError(
            f"--resume {run_dir}: a resumed run keeps its settings, but this command changes {'; '.join(changed)}; "
            "drop them, or export the run and continue it with --init-from"
        )
    return saved_hp, saved_envs


def _recorded_out(run_dir: Path) -> str | None:
    """The ``--out`` a run was started with (its config.json), or None."""
    try:
        out = json.loads((run_dir / "config.json").read_text())["config"]["out"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if out is None else str(out)


def _check_resume_steps(run_dir: Path, total: int) -> None:
    """Refuse ``--resume --steps`` below the steps the run's last checkpoint has done (``state.json``)."""
    try:
        done = int(json.loads((run_dir / "state.json").read_text())["segments"][-1]["end_step"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return
    if total < done:
        raise UserError(
            f"--resume --steps {total}: {run_dir} has already trained {done} steps; give --steps {done} or more "
            "(its best model so far: rl-distill teachers export)"
        )


def _machine(device: str) -> str:
    """A training segment's machine in a few words: the CPU model (speeds differ between models), cores, threads."""
    m = machine(device)
    return f"{m['cpu']}, {m['cores']} CPU cores, {m['torch_threads']} torch threads" + (
        f" + {m['gpu']}" if m["gpu"] else ""
    )


def _atomic_save(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(str(tmp))
    os.replace(tmp, path)


@dataclass
class _Plan:
    """What a run trains, resolved from its config and the hyperparameter file before any folder is made."""

    hp: dict[str, Any]
    total: int
    """The budget in env steps."""
    n_envs: int
    eval_every: int
    ckpt_every: int
    protocol: Any
    """How the teacher is judged (Atari: full games, raw scores); None for control envs."""
    train_protocol: Any
    """How it learns (Atari: clipped rewards, a lost life ends the learner's episode); None for control envs."""


def _plan(cfg: TrainConfig) -> _Plan:
    """The checked env and algorithm, the hyperparameters (the file's entry plus ``--hyperparams``), budget,
    evaluation and checkpoint intervals and protocols; ``--resume`` with ``--init-from`` is refused."""
    check_env_id(cfg.env_id)
    if cfg.algo not in ("ppo", "dqn"):
        raise UserError(f"unknown algorithm {cfg.algo!r}; choose ppo or dqn")
    hp = hyperparams(cfg.env_id, cfg.algo)
    if cfg.hyperparams:
        _check_overrides(cfg.algo, cfg.hyperparams)
        hp |= cfg.hyperparams
    total = int(cfg.steps or hp["n_timesteps"])
    eval_every = int(cfg.eval_every or max(total // 20, 1000))
    protocol, train_protocol = _protocols(cfg.env_id, cfg.sticky_actions)
    if cfg.resume and cfg.init_from:
        raise UserError(
            "--resume continues a run from its checkpoint and --init-from starts one from a teacher: give one"
        )
    return _Plan(
        hp=hp,
        total=total,
        n_envs=int(cfg.n_envs or hp["n_envs"]),
        eval_every=eval_every,
        ckpt_every=int(cfg.checkpoint_every or eval_every),
        protocol=protocol,
        train_protocol=train_protocol,
    )


@contextlib.contextmanager
def _claim_run_dir(cfg: TrainConfig, plan: _Plan):
    """The run folder (runs.claim_run_dir: locked while the block runs, removed if a user error stops a new one
    before its first checkpoint), with its ``config.json``; yields (run_dir, resumed, plan). With ``--resume`` it
    is the newest unfinished run of this env, algorithm and seed, refused if the command changes its
    hyperparameters (the plan then takes the run's own); else a new folder."""
    with claim_run_dir(
        cfg.runs_dir,
        cfg.env_id,
        f"{cfg.algo}-teacher",
        cfg.seed,
        resume=cfg.resume,
        marker="checkpoint.zip",
        what=f"{cfg.algo} run of {cfg.env_id} (seed {cfg.seed})",
        hint=" (a finished run goes on with --init-from its export)",
    ) as (run_dir, resumed):
        if cfg.out is not None and not cfg.force and not (resumed and _recorded_out(run_dir) == str(cfg.out)):
            check_teacher_out(cfg.out, cfg.force)  # a resumed run may refresh its own --out, nothing else
        if resumed:
            _check_resume_steps(run_dir, plan.total)
            hp, n_envs = _resumed_settings(run_dir, cfg, plan.hp, plan.n_envs)
            plan = replace(plan, hp=hp, n_envs=n_envs)
        atomic_write_json(
            run_dir / "config.json",
            {
                "config": asdict(cfg),
                "hyperparams": plan.hp,
                "total_steps": plan.total,
                "n_envs": plan.n_envs,
                "protocol": plan.protocol.to_dict() if plan.protocol else None,
            },
        )
        yield run_dir, resumed, plan


def _initial_state(run_dir: Path, resumed: bool, init_teacher, cfg: TrainConfig) -> dict[str, Any]:
    """The run's ``state.json`` content to go on from: a resumed run's own, what an ``--init-from`` teacher
    carries, else an empty one."""
    state_path = run_dir / "state.json"
    if resumed and state_path.exists():
        return json.loads(state_path.read_text())
    if init_teacher is not None:
        return _carried_state(init_teacher, cfg)
    return {"evals": [], "best": None, "wall_s": 0.0}


def _build_model(cfg: TrainConfig, plan: _Plan, run_dir: Path, resumed: bool, init_teacher, state: dict[str, Any]):
    """The SB3 model on its training envs: a resumed run's checkpoint (DQN with its replay buffer), else a fresh
    model, holding an ``--init-from`` teacher's weights and step count. Then the faster CPU update and, where
    chosen, bf16; returns (model, env, precision)."""
    from stable_baselines3 import DQN, PPO

    from rl_distill.sb3_vec_env import SB3VecEnv

    # A continued run must not replay the episodes it already saw: offset the env seeds by its history.
    env = SB3VecEnv(cfg.env_id, plan.n_envs, seed=cfg.seed + 1000 * len(state["evals"]), protocol=plan.train_protocol)
    if resumed:
        cls = PPO if cfg.algo == "ppo" else DQN
        model = cls.load(
            str(run_dir / "checkpoint.zip"), env=env, device=cfg.device, tensorboard_log=str(run_dir / "tb")
        )
        if cfg.algo == "dqn" and (run_dir / "replay.pkl").exists():
            model.load_replay_buffer(str(run_dir / "replay.pkl"))
        print(f"resuming {run_dir} at {model.num_timesteps} steps", file=sys.stderr)
    else:
        model = sb3_model(cfg.algo, cfg.env_id, env, plan.hp, cfg.seed, cfg.device, str(run_dir / "tb"))
        if init_teacher is not None:
            _load_into(model, init_teacher, cfg, plan.hp)
            if state["best"] is not None:  # the teacher is the best model so far until an evaluation beats it
                _atomic_save(model, run_dir / "best.zip")
            print(f"continuing {cfg.init_from} from {model.num_timesteps} steps in {run_dir}", file=sys.stderr)
    fast_sb3_training(model)  # faster CPU updates, same maths, nothing saved changes
    precision = resolve_precision(cfg.precision, model.device, images=family_of(cfg.env_id).bf16)
    if precision == "bf16":
        bf16_sb3_training(model)
    return model, env, precision


class TrainState:
    """``state.json`` (the evaluations, the best one, the run's total wall time, one segment per invocation, so
    that a run resumed on another machine says which did what) and this invocation's clock. A checkpoint and
    the end of the run save it; ``teachers export`` reads it."""

    def __init__(self, path: Path, data: dict[str, Any], command: str | None, machine: str, precision: str, step: int):
        self.path, self.data = path, data
        self.wall_before = float(data["wall_s"])
        """Wall seconds of the run's earlier invocations."""
        self.t_start = time.time()
        self.segment = {
            "command": command,
            "machine": machine,
            "precision": precision,
            "start_step": int(step),
            "end_step": int(step),
            "wall_s": 0.0,
        }
        data.setdefault("segments", []).append(self.segment)

    def wall(self) -> float:
        """The run's wall seconds so far, earlier invocations included."""
        return self.wall_before + time.time() - self.t_start

    def save(self, step: int) -> float:
        """Close this invocation's segment at ``step`` and write ``state.json``; returns the run's wall seconds."""
        wall = self.wall()
        self.segment["end_step"] = int(step)
        self.segment["wall_s"] = round(time.time() - self.t_start, 1)
        self.data["wall_s"] = wall
        atomic_write_json(self.path, self.data)
        return wall


class GreedyPolicy:
    """The model's greedy actions for evaluation (batched obs -> actions); with ``keep_frames`` (Atari) every
    25th batch of frames, up to 32, is kept in :attr:`seen` for the dead-convolution check."""

    def __init__(self, model, keep_frames: bool):
        self.model, self.keep_frames = model, keep_frames
        self.calls = 0
        self.seen: list[np.ndarray] = []

    def __call__(self, obs):
        self.calls += 1
        if self.keep_frames and self.calls % 25 == 0 and len(self.seen) < 32:
            self.seen.append(np.asarray(obs))
        return self.model.predict(obs, deterministic=True)[0]


class Periodic(BaseCallback):
    """Evaluate every ``eval_every`` env steps (learning curve, scalars, ``best.zip``, the dead-convolution
    check), checkpoint every ``ckpt_every``, stop at ``cfg.stop_at``. After SIGINT or SIGTERM (while
    :attr:`stop` is catching) the next step writes the checkpoint and stops ``learn``."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        *,
        train_state: TrainState,
        greedy: GreedyPolicy,
        run_logger: RunLogger,
        eval_every: int,
        ckpt_every: int,
        protocol: Any,
        start_step: int,
    ):
        super().__init__()
        self.cfg, self.run_dir = cfg, run_dir
        self.train_state, self.greedy, self.run_logger = train_state, greedy, run_logger
        self.eval_every, self.ckpt_every, self.protocol = eval_every, ckpt_every, protocol
        self.next_eval = (start_step // eval_every + 1) * eval_every
        self.next_ckpt = (start_step // ckpt_every + 1) * ckpt_every
        self.stop = StopOnSignal("with a checkpoint at the next step")
        self.checkpointed_at: int | None = None
        """The step of this invocation's last checkpoint."""

    def _on_step(self) -> bool:
        n = self.model.num_timesteps
        keep_going = True
        if n >= self.next_eval and not self.interrupted:
            self.next_eval += self.eval_every
            keep_going = self._evaluate(n)
        if n >= self.next_ckpt or not keep_going or self.interrupted:
            self.next_ckpt += self.ckpt_every
            self._checkpoint()
        return keep_going and not self.interrupted

    def _evaluate(self, n: int) -> bool:
        """One periodic evaluation at step ``n``; False once it reaches ``cfg.stop_at``."""
        from rl_distill.evaluation import STALL_STEPS, evaluate
        from rl_distill.guard import nonfinite_weight

        if nonfinite_weight(self.model.policy) is not None:  # a broken policy is not scored
            raise FloatingPointError("non-finite weights")  # said in one line by _raise_if_diverged
        state, cfg = self.train_state.data, self.cfg
        # Greedy, so a frozen game (a DQN that never serves on Breakout) is scored early, not played to the cap.
        res = evaluate(
            self.greedy,
            cfg.env_id,
            episodes=cfg.eval_episodes,
            seed=10_000 + len(state["evals"]),
            protocol=self.protocol,
            stall_steps=STALL_STEPS,
        )
        mean = res.summary["mean"]
        wall = self.train_state.wall()
        state["evals"].append({"step": n, "mean": mean, "std": res.summary["std"], "wall_s": wall})
        self.logger.record("eval/mean_reward", mean)
        self.logger.record("eval/std_reward", res.summary["std"])
        ep = [e["r"] for e in self.model.ep_info_buffer]
        seen = self.greedy.seen
        dead = dead_first_conv(self.model.policy, torch.as_tensor(np.concatenate(seen))) if seen else None
        seen.clear()
        if dead is not None:
            self.logger.record("train/dead_first_conv", dead)
            if dead >= 0.9:
                print(
                    f"{self.run_dir.name} at {n} steps: {dead:.0%} of the first convolution's channels are dead "
                    "on the evaluation frames; "
                    "at 100% its outputs no longer depend on the frame and it cannot learn again",
                    file=sys.stderr,
                )
        self.run_logger.scalars(
            n,
            {
                "eval/mean_reward": mean,
                "rollout/ep_rew_mean": float(np.mean(ep)) if ep else None,
                "time/wall_s": wall,
                "train/dead_first_conv": dead,
            },
        )
        if state["best"] is None or mean > state["best"]["mean"]:
            state["best"] = {"step": n, "mean": mean}
            _atomic_save(self.model, self.run_dir / "best.zip")
        return not (cfg.stop_at is not None and mean >= cfg.stop_at)

    def _checkpoint(self) -> None:
        """``checkpoint.zip`` (+ DQN's ``replay.pkl``) and ``state.json``: what ``--resume`` continues from; never
        of non-finite weights (the run stops instead: :func:`_raise_if_diverged`)."""
        from rl_distill.guard import nonfinite_weight

        if nonfinite_weight(self.model.policy) is not None:
            raise FloatingPointError("non-finite weights")  # said in one line by _raise_if_diverged
        _atomic_save(self.model, self.run_dir / "checkpoint.zip")
        if self.cfg.algo == "dqn":
            tmp = self.run_dir / "replay.tmp.pkl"
            self.model.save_replay_buffer(str(tmp))
            os.replace(tmp, self.run_dir / "replay.pkl")
        self.train_state.save(self.model.num_timesteps)
        self.checkpointed_at = int(self.model.num_timesteps)

    @property
    def interrupted(self) -> str | None:
        """The signal's name once SIGINT or SIGTERM arrived during ``learn`` (``stop.catching()``)."""
        return self.stop.name


def _learn(model, periodic: Periodic, cfg: TrainConfig, total: int, continued: bool) -> None:
    """SB3's ``learn`` on to ``total`` env steps (nothing when the run is there), SIGINT and SIGTERM turned
    into a checkpoint and a stop by ``periodic``. A continued run keeps its step count (the schedules go on)."""
    remaining = total - model.num_timesteps
    if remaining <= 0:
        return
    with periodic.stop.catching():
        model.learn(
            remaining,
            callback=periodic,
            reset_num_timesteps=not continued,
            progress_bar=cfg.progress,
            tb_log_name="sb3",
        )


def _raise_if_diverged(error: BaseException, model, periodic: Periodic) -> None:
    """After ``learn`` failed: where the policy's weights have become nan or inf, that is the cause (SB3 then fails
    on a distribution of nan logits), said in one line with the last good checkpoint (none is written of broken
    weights: ``Periodic._checkpoint``)."""
    from rl_distill.errors import DivergedError
    from rl_distill.guard import nonfinite_weight

    if not isinstance(error, Exception) or isinstance(error, DivergedError):
        return
    name = nonfinite_weight(model.policy)
    if name is None:
        return
    kept = (
        f"its last checkpoint (step {periodic.checkpointed_at}) is kept"
        if periodic.checkpointed_at
        else "no checkpoint"
    )
    raise DivergedError(
        f"training diverged: the policy's weight {name} became non-finite by step {model.num_timesteps}; "
        f"try a lower learning rate (--hyperparams learning_rate=...); {kept}"
    ) from error


def _stop_interrupted(periodic: Periodic, model, run_dir: Path) -> NoReturn:
    """After a signal: the checkpoint at the step training stopped (written by ``periodic`` unless the signal came
    after its last step), one line saying how to continue, and KeyboardInterrupt (no export, no summary.json)."""
    if periodic.checkpointed_at != model.num_timesteps:
        periodic._checkpoint()
    print(
        f"{periodic.interrupted}: checkpoint at {model.num_timesteps} steps in {run_dir}; "
        "the same command with --resume continues it",
        file=sys.stderr,
    )
    raise KeyboardInterrupt


def _finish(
    cfg: TrainConfig, run_dir: Path, model, env, train_state: TrainState, logger: RunLogger, resumed: bool = False
) -> dict[str, Any]:
    """The end of a run that reached its budget or target: ``state.json`` and ``final.zip``, the export (its
    best model measured over the full protocol) and ``summary.json``, written last: it marks the run finished."""
    steps_done = int(model.num_timesteps)
    train_wall = train_state.save(steps_done)
    _atomic_save(model, run_dir / "final.zip")
    env.close()

    # A resumed run may replace its own earlier export (its --out was checked when it was claimed).
    out, meta = export_run(run_dir, cfg.out, cfg.final_episodes, force=cfg.force, replace_ok=resumed)
    summary = {
        "run_dir": str(run_dir),
        "teacher": str(out),
        "steps": steps_done,
        "wall_s": round(train_wall, 1),
        "score": meta["score"],
    }
    logger.close()
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


def train_teacher(cfg: TrainConfig) -> dict[str, Any]:
    """Train, checkpoint, evaluate and export one teacher; returns the summary.

    The run folder is locked for the whole run, so a ``--resume`` from another process is refused rather than
    training the same run twice. SIGINT or SIGTERM while it learns writes a checkpoint at the next env step and
    raises KeyboardInterrupt (no export, no summary.json), which ``--resume`` continues; a second signal stops
    at once, from the last checkpoint."""
    plan = _plan(cfg)
    from rl_distill.guard import default_threads

    # Small networks gain nothing from intra-op threads, and threaded jobs sharing a few cores thrash.
    threads = cfg.threads or default_threads(family_of(cfg.env_id).bf16)
    if threads:
        torch.set_num_threads(threads)
    init_teacher = _load_init_teacher(cfg, plan.total) if cfg.init_from else None
    with _claim_run_dir(cfg, plan) as (run_dir, resumed, plan):
        state = _initial_state(run_dir, resumed, init_teacher, cfg)
        model, env, precision = _build_model(cfg, plan, run_dir, resumed, init_teacher, state)
        logger = RunLogger(run_dir, tensorboard=False)  # SB3 writes the tensorboard events itself
        # The dead-convolution check reads uint8 frames as SB3's CnnPolicy does (scaled by 1/255).
        greedy = GreedyPolicy(model, keep_frames=family_of(cfg.env_id).sb3_policy(cfg.env_id)[0] == "CnnPolicy")
        train_state = TrainState(
            run_dir / "state.json", state, cfg.command, _machine(str(model.device)), precision, model.num_timesteps
        )
        periodic = Periodic(
            cfg,
            run_dir,
            train_state=train_state,
            greedy=greedy,
            run_logger=logger,
            eval_every=plan.eval_every,
            ckpt_every=plan.ckpt_every,
            protocol=plan.protocol,
            start_step=model.num_timesteps,
        )
        try:
            _learn(model, periodic, cfg, plan.total, continued=resumed or bool(cfg.init_from))
            if periodic.interrupted:
                _stop_interrupted(periodic, model, run_dir)
        except BaseException as e:
            env.close()
            logger.close()
            _raise_if_diverged(e, model, periodic)
            raise
        return _finish(cfg, run_dir, model, env, train_state, logger, resumed)


def export_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    episodes: int | None = None,
    force: bool = False,
    replace_ok: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Measure a training run's best model over the full protocol and export it as a suite teacher.

    The model is ``best.zip`` (the best periodic evaluation), else ``final.zip``, else the last
    ``checkpoint.zip``. The run may still be training in another process: its files are replaced atomically,
    so the export reads a consistent snapshot, and the run goes on (only the end of ``teachers train``
    marks a run finished). This is how a long teacher ships its best so far without stopping.
    """
    from rl_distill.errors import check_count
    from rl_distill.evaluation import evaluate
    from rl_distill.teachers.checkpoint import save_teacher
    from rl_distill.teachers.sb3 import load_sb3_zip

    check_count("episodes", episodes)
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(
            f"{run_dir} is not a teacher training run (no config.json); "
            "give a runs/<env>__<algo>-teacher__<seed>__<time> folder"
        )
    try:
        conf = json.loads((run_dir / "config.json").read_text())
        cfg, hp = conf["config"], conf["hyperparams"]
        cfg["env_id"], cfg["algo"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{run_dir}/config.json is not a teacher training run's config") from None
    if out is not None or cfg.get("out"):  # a path the user named (now or when training began), not the run's own
        check_teacher_out(out if out is not None else cfg["out"], force, replace_ok=replace_ok)
    state = (
        json.loads((run_dir / "state.json").read_text())
        if (run_dir / "state.json").exists()
        else {"evals": [], "best": None, "wall_s": 0.0}
    )
    chosen = next((run_dir / f for f in ("best.zip", "final.zip", "checkpoint.zip") if (run_dir / f).exists()), None)
    if chosen is None:
        raise UserError(
            f"{run_dir} has no model yet (no best.zip, final.zip or checkpoint.zip): "
            "wait for its first evaluation or checkpoint"
        )
    env_id = cfg["env_id"]
    protocol, train_protocol = _protocols(env_id, cfg["sticky_actions"])
    episodes = episodes or cfg.get("final_episodes") or family_of(env_id).teacher_eval_episodes
    segments = state.get("segments") or []
    steps_done = int(segments[-1]["end_step"]) if segments else 0
    out = Path(out or cfg.get("out") or run_dir / "teacher")

    teacher = load_sb3_zip(chosen, env_id=env_id)
    shown = f"final evaluation of {out.name} on {env_id}"  # a bar on stderr: a full Atari game takes minutes
    res = evaluate(teacher, env_id, episodes=episodes, seed=1_000_000, protocol=protocol, progress=shown)
    train_wall = float(state["wall_s"])
    meta = {
        "id": out.name,
        "env_id": env_id,
        "algo": cfg["algo"],
        "library": "stable-baselines3",
        "protocol": protocol.to_dict() if protocol else None,
        "training": {
            "steps": steps_done,
            "best_step": (state["best"] or {}).get("step"),
            "wall_s": round(train_wall, 1),
            "steps_per_s": round(steps_done / max(train_wall, 1e-9), 1),
            "seed": cfg["seed"],
            "n_envs": conf["n_envs"],
            "hyperparams": hp,
            "train_protocol": train_protocol.to_dict() if train_protocol else None,
            "command": cfg["command"],
            "machine": segments[-1]["machine"] if segments else None,
            # Segments before the precision flag computed in fp32.
            "precision": sorted({seg.get("precision", "fp32") for seg in segments}) if segments else ["fp32"],
            "curve": state["evals"],
            "segments": segments,
        }
        | ({"continued_from": state["init_from"]} if state.get("init_from") else {}),
        "score": {k: res.summary[k] for k in ("mean", "std", "median", "iqm", "iqm_ci", "n")}
        | {"eval_seed": 1_000_000, "human_normalized": res.summary.get("human_normalized")},
    }
    save_teacher(out, teacher.arch, teacher.net.state_dict(), meta)
    return out, meta
