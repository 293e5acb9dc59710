"""DAgger's beta and Kickstarting's lambda schedules: hand-computed values."""

import pytest

from rl_distill.errors import UserError
from rl_distill.schedules import (
    ConstantLambda,
    ExponentialBeta,
    ExponentialLambda,
    IndicatorBeta,
    LinearBeta,
    LinearLambda,
    beta_schedule,
    lambda_schedule,
)


def test_exponential_beta_is_p_to_the_round_minus_one():
    assert [ExponentialBeta(0.5)(i) for i in range(1, 6)] == [1.0, 0.5, 0.25, 0.125, 0.0625]
    assert [ExponentialBeta(0.9)(i) for i in range(1, 4)] == pytest.approx([1.0, 0.9, 0.81])
    assert [ExponentialBeta(0.0)(i) for i in range(1, 4)] == [1.0, 0.0, 0.0]


def test_indicator_beta_is_one_then_zero():
    assert [IndicatorBeta()(i) for i in range(1, 6)] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_linear_beta_ramps_down_over_the_rounds():
    assert [LinearBeta(4)(i) for i in range(1, 7)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert LinearBeta(1)(1) == 1.0 and LinearBeta(1)(2) == 0.0


def test_beta_schedule_by_name():
    assert beta_schedule("exponential", 0.3) == ExponentialBeta(0.3)
    assert beta_schedule("indicator") == IndicatorBeta()
    assert beta_schedule("linear", rounds=7) == LinearBeta(7)
    with pytest.raises(UserError, match="unknown beta schedule"):
        beta_schedule("cosine")
    with pytest.raises(UserError):
        beta_schedule("exponential", 1.5)


def test_lambda_schedules_at_start_middle_end():
    assert [ConstantLambda(2.0)(t) for t in (0.0, 0.5, 1.0)] == [2.0, 2.0, 2.0]
    assert [LinearLambda(2.0)(t) for t in (0.0, 0.5, 1.0)] == [2.0, 1.0, 0.0]
    assert [LinearLambda(2.0)(t) for t in (-0.1, 1.3)] == [2.0, 0.0]  # clipped to the budget
    assert [ExponentialLambda(2.0, 0.01)(t) for t in (0.0, 0.5, 1.0)] == pytest.approx([2.0, 0.2, 0.02])
    assert ExponentialLambda(1.0, 0.25)(0.5) == pytest.approx(0.5)


def test_lambda_schedule_by_name():
    assert lambda_schedule("constant", 1.5) == ConstantLambda(1.5)
    assert lambda_schedule("linear", 1.5) == LinearLambda(1.5)
    assert lambda_schedule("exponential", 1.5, 0.1) == ExponentialLambda(1.5, 0.1)
    for bad in (
        lambda: lambda_schedule("step", 1.0),
        lambda: lambda_schedule("linear", -1.0),
        lambda: lambda_schedule("exponential", 1.0, 0.0),
    ):
        with pytest.raises(UserError):
            bad()


def test_ramp_lambda():
    from rl_distill.schedules import RampLambda

    r = lambda_schedule("ramp", 1.0, ramp=0.5)
    assert r == RampLambda(1.0, 0.5)
    assert [r(t) for t in (0.0, 0.25, 0.5, 0.75, 1.0)] == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert lambda_schedule("ramp", 0.8, ramp=1.0)(0.5) == pytest.approx(0.4)
    with pytest.raises(UserError, match="ramp fraction"):
        lambda_schedule("ramp", 1.0, ramp=0.0)
