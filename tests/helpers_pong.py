"""A throwaway Pong teacher for smoke tests: a tiny random-weight CNN actor-critic saved as a suite checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from rl_distill.networks import Arch, build_net
from rl_distill.teachers.checkpoint import save_teacher


def pong_teacher(tmp_path: Path, seed: int = 0) -> str:
    """Path of a random CNN teacher for ALE/Pong-v5 (deterministic weights for ``seed``)."""
    arch = Arch(kind="actor_critic", obs_shape=(4, 84, 84), n_actions=6, encoder="cnn", cnn_channels=(16, 16, 16),
                cnn_features=64, pi_layers=(), vf_layers=())
    torch.manual_seed(seed)
    net = build_net(arch)
    return str(save_teacher(Path(tmp_path) / "pong", arch, net.state_dict(), {"id": "pong-test", "env_id": "ALE/Pong-v5", "algo": "ppo"}))


def run_pong_smoke(method: str, tmp_path: Path, steps: int = 1024, **options):
    """Run ``method`` on Pong with the throwaway teacher and a rusu-27x student; returns (summary, run dir)."""
    from rl_distill.distill import RunSpec, run
    from rl_distill.methods import get_method

    teacher = pong_teacher(tmp_path)
    s = run(get_method(method), RunSpec(method=method, teachers=[teacher], student="rusu-27x", steps=steps, seed=0, progress=False,
                                        tensorboard=False, eval_episodes=1, runs_dir=str(tmp_path / "runs"), options=options))
    return s, Path(s["run_dir"])

