"""Train a teacher with Stable-Baselines3 (rl-zoo3 hyperparameters) and export it to the suite format.

The run lives in ``runs/<env>__<algo>-teacher__<seed>__<time>/``: tensorboard scalars, ``scalars.jsonl``,
``config.json``, periodic ``checkpoint.zip`` (+ the DQN replay buffer) so that a killed run continues
with ``--resume``, ``best.zip`` (best periodic evaluation), and ``summary.json`` at the end. These SB3 zips
are private training state; what ships is the exported safetensors + JSON teacher.

``--init-from TEACHER`` continues training from an exported teacher (a shipped id or a path): its weights,
step count (so the learning-rate, clip and exploration schedules go on where they were), learning curve and
training segments carry over. The optimizer state and the DQN replay buffer are not in a teacher, so Adam
starts fresh and DQN refills its buffer (``learning_starts`` steps) before it learns again. This is how a
teacher too long for one working session grows across sessions on fresh machines: ship the best so far,
then continue it.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl_distill.envs import AtariProtocol, check_env_id, is_atari
from rl_distill.errors import UserError
from rl_distill.networks import channels_last_convolutions, dead_first_conv, image_floats
from rl_distill.precision import check_precision, resolve_precision
from rl_distill.runs import RunLogger, atomic_write_json, find_resumable, machine, new_run_dir, run_name

HYPERPARAMS = Path(__file__).with_name("hyperparams.toml")


@dataclass
class TrainConfig:
    """What `rl-distill teachers train` takes."""

    env_id: str
    """Gymnasium or ALE/<Game>-v5 env id."""
    algo: str = "ppo"
    """"ppo" or "dqn"."""
    seed: int = 0
    steps: int | None = None
    """Total env steps (default: the hyperparameter file's n_timesteps)."""
    eval_every: int | None = None
    """Env steps between evaluations (default: 1/20 of the budget)."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation."""
    final_episodes: int | None = None
    """Episodes of the final evaluation (default 100 for control, 30 for Atari)."""
    checkpoint_every: int | None = None
    """Env steps between resumable checkpoints (default: every evaluation)."""
    stop_at: float | None = None
    """Stop early once a periodic evaluation's mean reaches this score."""
    out: str | None = None
    """Where to write the exported teacher (path without suffix); default the run dir."""
    runs_dir: str = "runs"
    resume: bool = False
    """Continue the latest unfinished run of this env/algo/seed from its checkpoint."""
    init_from: str | None = None
    """Continue training from an exported teacher (shipped id or path) in a new run."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Overrides of the hyperparameter file's entry (e.g. ``{"learning_starts": 20000}``)."""
    device: str = "auto"
    precision: str = "auto"
    """auto | fp32 | bf16: bf16 autocast in the networks' encoders (precision.py); auto: bf16 where native."""
    n_envs: int | None = None
    """Override the number of parallel envs."""
    sticky_actions: float = 0.25
    """Atari only: sticky-action probability used in training and evaluation."""
    progress: bool = True
    command: str = field(default_factory=lambda: "rl-distill " + " ".join(shlex.quote(a) for a in sys.argv[1:]))

    def __post_init__(self) -> None:
        """Every value checked before any folder or file is made (one-line errors)."""
        from rl_distill.errors import check_count, check_device, check_seed

        check_seed(self.seed)
        for name in ("steps", "eval_every", "final_episodes", "checkpoint_every", "n_envs"):
            check_count(name, getattr(self, name))
        check_count("eval_episodes", self.eval_episodes, none_ok=False)
        check_device(self.device)
        check_precision(self.precision)
        if not 0.0 <= self.sticky_actions <= 1.0:
            raise UserError(f"--sticky-actions must be a probability in [0, 1], got {self.sticky_actions}")


def hyperparams(env_id: str, algo: str) -> dict[str, Any]:
    """The rl-zoo3 hyperparameters for ``env_id`` (Atari games share one entry)."""
    table = tomllib.loads(HYPERPARAMS.read_text())
    if algo not in table:
        raise UserError(f"unknown algorithm {algo!r}; choose ppo or dqn")
    key = "atari" if is_atari(env_id) else env_id
    if key not in table[algo]:
        raise UserError(f"no {algo} hyperparameters for {env_id!r}; known: {', '.join(sorted(table[algo]))}")
    return dict(table[algo][key])


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (VALUE in TOML: 20000, 1e-4, "lin_2.5e-4", [256, 256], false) to a dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--hyperparams {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # a bare word, e.g. lin_1e-4
    return out


def _check_overrides(algo: str, overrides: dict[str, Any]) -> None:
    import inspect

    from stable_baselines3 import DQN, PPO

    known = set(inspect.signature((PPO if algo == "ppo" else DQN).__init__).parameters) - {"self", "policy", "env"}
    known |= {"n_envs", "n_timesteps", "net_arch", "optimizer_kwargs"}
    bad = sorted(set(overrides) - known)
    if bad:
        raise UserError(
            f"--hyperparams: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not {algo} hyperparameters"
        )


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

    policy_keys = ("net_arch", "optimizer_kwargs")  # SB3 takes these through policy_kwargs
    kw = {k: _schedule(v) for k, v in hp.items() if k not in ("n_envs", "n_timesteps", *policy_keys)}
    policy_kwargs = {k: (list(hp[k]) if k == "net_arch" else dict(hp[k])) for k in policy_keys if k in hp} or None
    policy = "CnnPolicy" if is_atari(env_id) else "MlpPolicy"
    cls = PPO if algo == "ppo" else DQN
    return cls(
        policy,
        env,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        policy_kwargs=policy_kwargs,
        verbose=0,
        **kw,
    )


def fast_sb3_training(model) -> None:
    """Make an SB3 model's CPU training faster without changing its maths or anything it saves: channels-last
    convolutions (:func:`channels_last_convolutions`), uint8 frames to floats by :func:`image_floats` instead of
    SB3's ``obs.float() / 255`` (the same floats), and Adam's fused kernel (one pass over the parameters,
    equal to the per-tensor loop up to float rounding). On top of the channels-last convolutions the SB3 PPO
    update measured 1.14-1.22x faster and DQN's gradient steps 1.11-1.24x (benchmarks/sb3_training_step.py).
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


def bf16_sb3_training(model) -> None:
    """bf16 autocast in an SB3 model's feature extractors (the CNN, where the time goes), in acting and in the
    update; their outputs, the heads, distributions and losses stay fp32, as do parameters and Adam's state.
    Nothing saved changes: a bf16 run's checkpoint loads and resumes in fp32 and the other way round."""
    from rl_distill.precision import bf16_forward

    extractors = {id(m): m for name, m in model.policy.named_modules() if name.endswith("features_extractor")}
    for m in extractors.values():
        bf16_forward(m)


def _image_features(policy, obs, features_extractor=None):
    """SB3's ``BaseModel.extract_features`` for uint8 image observations, with :func:`image_floats`."""
    return (policy.features_extractor if features_extractor is None else features_extractor)(image_floats(obs))


def _protocols(env_id: str, sticky_actions: float) -> tuple[AtariProtocol | None, AtariProtocol | None]:
    """(evaluation, training) protocols: Atari trains on clipped rewards with a lost life ending the learner's
    episode, and is judged on full games with raw scores; other envs have none."""
    if not is_atari(env_id):
        return None, None
    return AtariProtocol(sticky_actions=sticky_actions), AtariProtocol(
        sticky_actions=sticky_actions, reward_clipping=True, episodic_life=True
    )


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
    import json

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


def _find_resumable(cfg: TrainConfig) -> Path | None:
    prefix = run_name(cfg.env_id, f"{cfg.algo}-teacher", cfg.seed, 0).rsplit("__", 1)[0]
    return find_resumable(cfg.runs_dir, prefix, "checkpoint.zip")


def _machine(device: str) -> str:
    m = machine(device)
    return f"{m['cores']} CPU cores, {m['torch_threads']} torch threads" + (f" + {m['gpu']}" if m["gpu"] else "")


def _atomic_save(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(str(tmp))
    os.replace(tmp, path)


def train_teacher(cfg: TrainConfig) -> dict[str, Any]:
    """Train, checkpoint, evaluate and export one teacher; returns the summary."""
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from rl_distill.evaluation import STALL_STEPS, evaluate
    from rl_distill.sb3_vec_env import SB3VecEnv

    check_env_id(cfg.env_id)
    if cfg.algo not in ("ppo", "dqn"):
        raise UserError(f"unknown algorithm {cfg.algo!r}; choose ppo or dqn")
    hp = hyperparams(cfg.env_id, cfg.algo)
    if cfg.hyperparams:
        _check_overrides(cfg.algo, cfg.hyperparams)
        hp |= cfg.hyperparams
    total = int(cfg.steps or hp["n_timesteps"])
    n_envs = int(cfg.n_envs or hp["n_envs"])
    eval_every = int(cfg.eval_every or max(total // 20, 1000))
    ckpt_every = int(cfg.checkpoint_every or eval_every)
    atari = is_atari(cfg.env_id)
    protocol, train_protocol = _protocols(cfg.env_id, cfg.sticky_actions)
    if not atari:
        # 64-256 wide MLPs gain nothing from intra-op threads, and two threaded jobs on 2 cores thrash
        # (measured: DQN MountainCar at ~100 steps/s beside another job, instead of ~1,000).
        torch.set_num_threads(1)

    if cfg.resume and cfg.init_from:
        raise UserError(
            "--resume continues a run from its checkpoint and --init-from starts one from a teacher: give one"
        )
    init_teacher = _load_init_teacher(cfg, total) if cfg.init_from else None
    run_dir = _find_resumable(cfg) if cfg.resume else None
    resumed = run_dir is not None
    if run_dir is None:
        run_dir = new_run_dir(cfg.runs_dir, cfg.env_id, f"{cfg.algo}-teacher", cfg.seed)
    if resumed:
        hp, n_envs = _resumed_settings(run_dir, cfg, hp, n_envs)
    atomic_write_json(
        run_dir / "config.json",
        {
            "config": asdict(cfg),
            "hyperparams": hp,
            "total_steps": total,
            "n_envs": n_envs,
            "protocol": protocol.to_dict() if protocol else None,
        },
    )
    state_path = run_dir / "state.json"
    import json

    if resumed and state_path.exists():
        state = json.loads(state_path.read_text())
    elif init_teacher is not None:
        state = _carried_state(init_teacher, cfg)
    else:
        state = {"evals": [], "best": None, "wall_s": 0.0}

    # A continued run must not replay the episodes it already saw: offset the env seeds by its history.
    env = SB3VecEnv(cfg.env_id, n_envs, seed=cfg.seed + 1000 * len(state["evals"]), protocol=train_protocol)
    if resumed:
        cls = PPO if cfg.algo == "ppo" else DQN
        model = cls.load(
            str(run_dir / "checkpoint.zip"), env=env, device=cfg.device, tensorboard_log=str(run_dir / "tb")
        )
        if cfg.algo == "dqn" and (run_dir / "replay.pkl").exists():
            model.load_replay_buffer(str(run_dir / "replay.pkl"))
        print(f"resuming {run_dir} at {model.num_timesteps} steps", file=sys.stderr)
    else:
        model = sb3_model(cfg.algo, cfg.env_id, env, hp, cfg.seed, cfg.device, str(run_dir / "tb"))
        if init_teacher is not None:
            _load_into(model, init_teacher, cfg, hp)
            if state["best"] is not None:  # the teacher is the best model so far until an evaluation beats it
                _atomic_save(model, run_dir / "best.zip")
            print(f"continuing {cfg.init_from} from {model.num_timesteps} steps in {run_dir}", file=sys.stderr)
    fast_sb3_training(model)  # faster CPU updates, same maths, nothing saved changes
    precision = resolve_precision(cfg.precision, model.device)
    if precision == "bf16":
        bf16_sb3_training(model)
    continued = resumed or bool(cfg.init_from)
    logger = RunLogger(run_dir, tensorboard=False)  # SB3 writes the tensorboard events itself

    seen: list[np.ndarray] = []  # every 25th batch of evaluation frames, for the dead-convolution check
    calls = [0]

    def greedy(obs):
        calls[0] += 1
        if atari and calls[0] % 25 == 0 and len(seen) < 32:
            seen.append(np.asarray(obs))
        return model.predict(obs, deterministic=True)[0]

    t_start = time.time()
    wall_before = float(state["wall_s"])
    # One segment per invocation, so a run resumed on another machine says which did what.
    segment = {
        "command": cfg.command,
        "machine": _machine(str(model.device)),
        "precision": precision,
        "start_step": int(model.num_timesteps),
        "end_step": int(model.num_timesteps),
        "wall_s": 0.0,
    }
    state.setdefault("segments", []).append(segment)

    def close_segment() -> None:
        segment["end_step"] = int(model.num_timesteps)
        segment["wall_s"] = round(time.time() - t_start, 1)

    class Periodic(BaseCallback):
        """Evaluate, keep the best model, checkpoint; stop at the target score."""

        def __init__(self):
            super().__init__()
            self.next_eval = (model.num_timesteps // eval_every + 1) * eval_every
            self.next_ckpt = (model.num_timesteps // ckpt_every + 1) * ckpt_every

        def _on_step(self) -> bool:
            n = self.model.num_timesteps
            keep_going = True
            if n >= self.next_eval:
                self.next_eval += eval_every
                # Greedy, so a frozen game (a DQN that does not serve on Breakout: 16+ min an evaluation) is scored
                # early.
                res = evaluate(
                    greedy,
                    cfg.env_id,
                    episodes=cfg.eval_episodes,
                    seed=10_000 + len(state["evals"]),
                    protocol=protocol,
                    stall_steps=STALL_STEPS,
                )
                mean = res.summary["mean"]
                wall = wall_before + time.time() - t_start
                state["evals"].append({"step": n, "mean": mean, "std": res.summary["std"], "wall_s": wall})
                self.logger.record("eval/mean_reward", mean)
                self.logger.record("eval/std_reward", res.summary["std"])
                ep = [e["r"] for e in self.model.ep_info_buffer]
                dead = dead_first_conv(self.model.policy, torch.as_tensor(np.concatenate(seen))) if seen else None
                seen.clear()
                if dead is not None:
                    self.logger.record("train/dead_first_conv", dead)
                    if dead >= 0.9:
                        print(
                            f"{run_dir.name} at {n} steps: {dead:.0%} of the first convolution's channels are dead "
                            "on the evaluation frames; "
                            "at 100% its outputs no longer depend on the frame and it cannot learn again",
                            file=sys.stderr,
                        )
                logger.scalars(
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
                    _atomic_save(self.model, run_dir / "best.zip")
                if cfg.stop_at is not None and mean >= cfg.stop_at:
                    keep_going = False
            if n >= self.next_ckpt or not keep_going:
                self.next_ckpt += ckpt_every
                self._checkpoint()
            return keep_going

        def _checkpoint(self) -> None:
            _atomic_save(self.model, run_dir / "checkpoint.zip")
            if cfg.algo == "dqn":
                tmp = run_dir / "replay.tmp.pkl"
                self.model.save_replay_buffer(str(tmp))
                os.replace(tmp, run_dir / "replay.pkl")
            state["wall_s"] = wall_before + time.time() - t_start
            close_segment()
            atomic_write_json(state_path, state)

    remaining = total - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=Periodic(),
            reset_num_timesteps=not continued,
            progress_bar=cfg.progress,
            tb_log_name="sb3",
        )
    train_wall = wall_before + time.time() - t_start
    steps_done = int(model.num_timesteps)
    close_segment()
    state["wall_s"] = train_wall
    atomic_write_json(state_path, state)
    _atomic_save(model, run_dir / "final.zip")
    env.close()

    out, meta = export_run(run_dir, cfg.out, cfg.final_episodes)
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


def export_run(
    run_dir: str | Path, out: str | Path | None = None, episodes: int | None = None
) -> tuple[Path, dict[str, Any]]:
    """Measure a training run's best model over the full protocol and export it as a suite teacher.

    The model is ``best.zip`` (the best periodic evaluation), else ``final.zip``, else the last
    ``checkpoint.zip``. The run may still be training in another process: its files are replaced atomically,
    so the export reads a consistent snapshot, and the run goes on (only the end of ``teachers train``
    marks a run finished). This is how a long teacher ships its best so far without stopping.
    """
    import json

    from rl_distill.evaluation import evaluate
    from rl_distill.teachers.checkpoint import save_teacher
    from rl_distill.teachers.sb3 import load_sb3_zip

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise UserError(
            f"{run_dir} is not a teacher training run (no config.json); "
            "give a runs/<env>__<algo>-teacher__<seed>__<time> folder"
        )
    conf = json.loads((run_dir / "config.json").read_text())
    cfg, hp = conf["config"], conf["hyperparams"]
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
    atari = is_atari(env_id)
    protocol, train_protocol = _protocols(env_id, cfg["sticky_actions"])
    episodes = episodes or cfg.get("final_episodes") or (30 if atari else 100)
    segments = state.get("segments") or []
    steps_done = int(segments[-1]["end_step"]) if segments else 0
    out = Path(out or cfg.get("out") or run_dir / "teacher")

    teacher = load_sb3_zip(chosen, env_id=env_id)
    res = evaluate(teacher, env_id, episodes=episodes, seed=1_000_000, protocol=protocol)
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
