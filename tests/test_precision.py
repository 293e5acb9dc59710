"""--precision: bf16 autocast where asked, fp32 parameters, outputs and losses, the same numbers for the same seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import distill

from rl_distill.errors import UserError
from rl_distill.precision import autocast, bf16_forward, bf16_native, resolve_precision
from rl_distill.runs import machine


def test_resolve():
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32")
    # networks without images (the control tasks' MLPs) stay fp32 under auto on every CPU; bf16 when asked
    assert resolve_precision("auto", "cpu", images=False) == "fp32"
    assert resolve_precision("bf16", "cpu", images=False) == "bf16"
    assert bf16_native("cpu") == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    with pytest.raises(UserError, match="unknown --precision 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_student_outputs_stay_fp32_under_bf16():
    from rl_distill.students import make_student

    s = make_student("rusu-27x", [(4, 84, 84)], [6], 0)
    seen = []
    first_conv = next(m for m in s.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    obs = torch.randint(0, 255, (2, 4, 84, 84), dtype=torch.uint8)
    with autocast("bf16", "cpu"):
        out = s(obs)
    assert seen == [torch.bfloat16]  # the convolution computed in bf16 ...
    assert out["logits"].dtype == out["value"].dtype == torch.float32  # ... what losses see is fp32
    assert all(p.dtype == torch.float32 for p in s.parameters())
    with autocast("fp32", "cpu"):
        s(obs)
    assert seen[-1] == torch.float32


def test_bf16_training_loop_in_one_context_sees_each_update():
    """A whole training loop runs inside one autocast context (distill.py): each forward must use the weights as
    the last optimizer step left them, not a bf16 copy cached at the first forward. With autocast's weight cache
    on, the second forward below would equal the first and the loss would not fall."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 1)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    losses = []
    with autocast("bf16", "cpu"):
        for _ in range(20):
            loss = (lin(x).float() - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        after = lin(x).float()
    assert losses[1] != losses[0] and losses[-1] < 0.8 * losses[0]
    assert torch.allclose(after, lin(x), atol=0.05)  # what it computes is the current weights, rounded


def test_bf16_forward_wraps_a_module():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    ref = lin(x)
    bf16_forward(lin)
    out = lin(x)
    assert out.dtype == torch.float32 and not torch.equal(out, ref)  # rounded through bf16 ...
    assert torch.allclose(out, ref, atol=0.05)  # ... to about 3 significant digits
    out.sum().backward()
    assert lin.weight.grad.dtype == torch.float32
    assert set(lin.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("method, options", [("on-policy", {}), ("policy-distillation", {"loss": "kl", "tau": 1.0})])
def test_bf16_distill_is_deterministic_and_recorded(tmp_path, method, options):
    a = distill(method, tmp_path / "a", "ppo-CartPole-v1", 1024, eval_episodes=3, precision="bf16", **options)
    b = distill(method, tmp_path / "b", "ppo-CartPole-v1", 1024, eval_episodes=3, precision="bf16", **options)
    f = distill(method, tmp_path / "f", "ppo-CartPole-v1", 1024, eval_episodes=3, precision="fp32", **options)
    assert a["precision"] == "bf16" and f["precision"] == "fp32"
    assert a["student_score"] == b["student_score"] and a["gradient_steps"] == b["gradient_steps"]
    from safetensors.torch import load_file

    wa = load_file(str(Path(a["run_dir"]) / "student.safetensors"))
    wb = load_file(str(Path(b["run_dir"]) / "student.safetensors"))
    wf = load_file(str(Path(f["run_dir"]) / "student.safetensors"))
    assert all(v.dtype == torch.float32 for v in wa.values())
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wf[k]) for k in wa)  # bf16 did compute differently


def _bf16_ppo(env_id: str, env):
    """A short-rollout SB3 PPO with rl-zoo3's settings for ``env_id``, put on the bf16 path of teachers train."""
    from rl_distill.teachers.train import bf16_sb3_training, hyperparams, sb3_model

    hp = hyperparams(env_id, "ppo") | {"n_steps": 8, "batch_size": 16}
    model = sb3_model("ppo", env_id, env, hp, seed=0, device="cpu")
    bf16_sb3_training(model)
    return model


def test_bf16_sb3_cnn_extractor(tmp_path):
    """teachers train's bf16 path: SB3's CNN runs in bf16, its outputs, heads and parameters stay fp32."""
    from rl_distill.sb3_vec_env import SB3VecEnv

    env = SB3VecEnv("ALE/Pong-v5", 2, seed=0)
    model = _bf16_ppo("ALE/Pong-v5", env)
    seen = []
    conv = next(m for m in model.policy.features_extractor.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model.learn(16)
    env.close()
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.policy.parameters())
    obs = torch.randint(0, 255, (2, 4, 84, 84), dtype=torch.uint8)
    values = model.policy.predict_values(obs)
    assert values.dtype == torch.float32


def test_bf16_sb3_mlp_hidden_layers():
    """On an MLP policy (CartPole) bf16 reaches the hidden layers of actor and critic, in acting and in the
    update, while the heads, their outputs and the parameters stay fp32: bf16 is not a no-op there."""
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = _bf16_ppo("CartPole-v1", env)
    seen = {"policy_net": [], "value_net": [], "action_net": []}
    for name in ("policy_net", "value_net"):
        layer = next(m for m in getattr(model.policy.mlp_extractor, name) if isinstance(m, torch.nn.Linear))
        layer.register_forward_hook(lambda m, i, o, name=name: seen[name].append(o.dtype))
    model.policy.action_net.register_forward_hook(lambda m, i, o: seen["action_net"].append(o.dtype))
    model.learn(16)
    obs = torch.zeros(3, 4)
    assert model.policy.predict_values(obs).dtype == torch.float32
    model.policy.get_distribution(obs)  # forward_actor, the path predict() takes
    env.close()
    assert set(seen["policy_net"]) == {torch.bfloat16} and set(seen["value_net"]) == {torch.bfloat16}
    assert set(seen["action_net"]) == {torch.float32}
    assert all(p.dtype == torch.float32 for p in model.policy.parameters())


def test_teachers_train_bf16_deterministic_with_progress_bar(tmp_path):
    """The command as a user runs it (a fresh process, progress bar on), twice with one seed: same teacher."""
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "rl_distill.cli",
                "teachers",
                "train",
                "CartPole-v1",
                "--steps",
                "1024",
                "--eval-every",
                "512",
                "--eval-episodes",
                "2",
                "--final-episodes",
                "3",
                "--precision",
                "bf16",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(json.loads(out.with_suffix(".json").read_text()))
    a, b = outs
    assert a["training"]["precision"] == ["bf16"] and a["training"]["segments"][-1]["precision"] == "bf16"
    assert machine()["cpu"] in a["training"]["segments"][-1]["machine"]  # the CPU model, beside cores and threads
    assert a["weights_sha256"] == b["weights_sha256"]
