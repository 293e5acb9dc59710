"""Proximal Policy Distillation: the ratio-weighted term against hand-computed values, a run that reaches its
teacher, determinism."""

import math

import pytest
import torch
from helpers import distill

from rl_distill import losses
from rl_distill.errors import UserError
from rl_distill.methods import get_method
from rl_distill.methods.ppd import ppd_term
from rl_distill.runs import read_scalars


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def _softmax(x):
    e = [math.exp(v) for v in x]
    return [v / sum(e) for v in e]


def test_ppd_term_hand_computed():
    t = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    s = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    actions = torch.tensor([0, 2])
    ps = [_softmax(r) for r in s.tolist()]
    pt = [_softmax(r) for r in t.tolist()]
    # Old log-probs that make the ratios 1.5 (above 1 + eps: not clipped, the term is a max) and 0.5 (below 1 - eps:
    # it counts with weight 1 - eps = 0.8).
    ratios = [1.5, 0.5]
    old = torch.tensor([math.log(ps[i][a] / r) for i, (a, r) in enumerate(zip(actions.tolist(), ratios))])
    kls = [_kl(pt[i], ps[i]) for i in range(2)]
    term, d = ppd_term(t, s, actions, old, clip=0.2)
    assert term.item() == pytest.approx((1.5 * kls[0] + 0.8 * kls[1]) / 2, rel=1e-5)
    assert d.item() == pytest.approx(sum(kls) / 2, rel=1e-5)
    rterm, rd = ppd_term(t, s, actions, old, clip=0.2, divergence=losses.reverse_kl)
    rkls = [_kl(ps[i], pt[i]) for i in range(2)]
    assert rterm.item() == pytest.approx((1.5 * rkls[0] + 0.8 * rkls[1]) / 2, rel=1e-5)


def test_ppd_term_gradient_flows_through_the_ratio():
    """Within the clip the weight is the ratio itself, so the term also moves the taken action's probability."""
    t = torch.tensor([[1.0, 0.0]])
    s = torch.tensor([[0.0, 0.0]], requires_grad=True)
    old = torch.log_softmax(s.detach(), -1)[:, 0]
    term, _ = ppd_term(t, s, torch.tensor([0]), old, clip=0.2)
    term.backward()
    kl_only = torch.tensor([[0.0, 0.0]], requires_grad=True)
    losses.forward_kl(t, kl_only).mean().backward()
    assert not torch.allclose(s.grad, kl_only.grad)  # d(r * KL) = r dKL + KL dr, and KL > 0 here


def test_ppd_cartpole_reaches_teacher(tmp_path):
    s = distill("ppd", tmp_path, "ppo-CartPole-v1", eval_episodes=20)  # the default budget
    assert s["percent_of_teacher"] >= 95, s["percent_of_teacher"]
    assert s["env_steps"] == get_method("ppd").default_steps("CartPole-v1")
    rows = read_scalars(s["run_dir"])
    keys = set().union(*rows)
    assert {"distill/lambda", "distill/loss", "distill/kl", "train/policy_gradient_loss", "train/value_loss"} <= keys
    kl = [r["distill/kl"] for r in rows if "distill/kl" in r]
    assert kl[-1] < 0.2 * kl[0]


def test_ppd_deterministic(tmp_path):
    a = distill("ppd", tmp_path / "a", "ppo-CartPole-v1", 2048, eval_episodes=3, n_steps=64)
    b = distill("ppd", tmp_path / "b", "ppo-CartPole-v1", 2048, eval_episodes=3, n_steps=64)
    assert a["student_score"] == b["student_score"]
    assert [r.get("distill/loss") for r in read_scalars(a["run_dir"])] == [
        r.get("distill/loss") for r in read_scalars(b["run_dir"])
    ]


@pytest.mark.parametrize("options", [{"lam": 0.0}, {"lam": float("nan")}, {"divergence": "jsd"}])
def test_ppd_bad_options_refused(options):
    with pytest.raises(UserError):
        get_method("ppd").Config(**options)
