import math

import pytest
import torch

from rl_distill import losses as L

T = torch.tensor([[1.0, 2.0, 0.0]])
S = torch.tensor([[0.0, 0.0, 0.0]])


def p(x):
    e = [math.exp(v) for v in x]
    return [v / sum(e) for v in e]


PT, PS = p([1.0, 2.0, 0.0]), p([0.0, 0.0, 0.0])


def kl(a, b):
    return sum(x * math.log(x / y) for x, y in zip(a, b) if x > 0)


def test_nll():
    assert L.nll(T, S).item() == pytest.approx(math.log(3))
    assert L.nll(T, torch.tensor([[0.0, 1.0, 0.0]])).item() == pytest.approx(-math.log(math.e / (2 + math.e)))


def test_mse_sums_squares():
    assert L.mse(T, S).item() == pytest.approx(5.0)


def test_forward_reverse_kl():
    assert L.forward_kl(T, S).item() == pytest.approx(kl(PT, PS))
    assert L.reverse_kl(T, S).item() == pytest.approx(kl(PS, PT))
    assert L.forward_kl(T, T).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_tau_sharpens_to_argmax():
    # tau -> 0: the teacher becomes one-hot on action 1, so KL -> -log pi_S(1) = NLL
    assert L.kl_tau(T, S, tau=0.01).item() == pytest.approx(L.nll(T, S).item(), abs=1e-6)
    pt2 = p([2.0, 4.0, 0.0])
    assert L.kl_tau(T, S, tau=0.5).item() == pytest.approx(kl(pt2, PS))


def test_jsd_hand_computed_and_limits():
    beta = 0.3
    m = [beta * a + (1 - beta) * b for a, b in zip(PT, PS)]
    expect = beta * kl(PT, m) + (1 - beta) * kl(PS, m)
    assert L.generalized_jsd(T, S, beta).item() == pytest.approx(expect)
    assert L.generalized_jsd(T, S, 0.0).item() == pytest.approx(kl(PT, PS))
    assert L.generalized_jsd(T, S, 1.0).item() == pytest.approx(kl(PS, PT))
    with pytest.raises(ValueError):
        L.generalized_jsd(T, S, 1.5)


def test_skew_kl():
    a = 0.1
    m = [a * x + (1 - a) * y for x, y in zip(PT, PS)]
    assert L.skew_kl(T, S, a).item() == pytest.approx(kl(PT, m))
    assert L.skew_kl(T, S, 0.0).item() == pytest.approx(kl(PT, PS))


def test_cross_entropy_is_kl_plus_entropy():
    h = -sum(x * math.log(x) for x in PT)
    assert L.cross_entropy(T, S).item() == pytest.approx(kl(PT, PS) + h)


def test_mask_removes_actions():
    mask = torch.tensor([[True, True, False]])
    pt, ps = p([1.0, 2.0]), p([0.0, 0.0])
    assert L.forward_kl(T, S, mask).item() == pytest.approx(kl(pt, ps))
    assert L.reverse_kl(T, S, mask).item() == pytest.approx(kl(ps, pt))
    assert L.mse(T, S, mask).item() == pytest.approx(5.0)
    assert L.nll(torch.tensor([[0.0, 1.0, 9.0]]), S, mask).item() == pytest.approx(math.log(2))


def test_shapes_and_stability():
    t = torch.randn(7, 5) * 1000
    s = torch.randn(7, 5) * 1000
    for f in (L.nll, L.mse, L.forward_kl, L.reverse_kl, L.cross_entropy):
        out = f(t, s)
        assert out.shape == (7,) and torch.isfinite(out).all()
    for out in (L.kl_tau(t, s, 0.01), L.generalized_jsd(t, s, 0.5), L.skew_kl(t, s, 0.1)):
        assert out.shape == (7,) and torch.isfinite(out).all() and (out >= -1e-5).all()


def test_gradients_flow_to_student():
    s = torch.zeros(2, 3, requires_grad=True)
    L.reverse_kl(T.expand(2, 3), s).sum().backward()
    assert s.grad.abs().sum() > 0
