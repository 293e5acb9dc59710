"""Schedules of the mixing coefficients: DAgger's beta per round, lambda over the budget (Kickstarting's
distillation weight, on-policy distillation's share of student-played data).

Each schedule is a tiny frozen dataclass that is called with the round (beta, 1-based as in Ross et
al.) or the fraction of the budget spent (lambda, in [0, 1]); :func:`beta_schedule` and
:func:`lambda_schedule` build one from its CLI name. Core code: no method imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from rl_distill.errors import UserError

# --- DAgger's beta_i: probability that the teacher acts in round i (i = 1, 2, ...) ----------------


@dataclass(frozen=True)
class ExponentialBeta:
    """beta_i = p^(i-1): 1, p, p^2, ... (Ross et al.'s "beta_i = p^(i-1)")."""

    p: float = 0.5

    def __call__(self, i: int) -> float:
        return float(self.p ** (i - 1))


@dataclass(frozen=True)
class IndicatorBeta:
    """beta_1 = 1, beta_i = 0 after: the teacher acts in round 1 only (Ross et al.'s indicator)."""

    def __call__(self, i: int) -> float:
        return 1.0 if i <= 1 else 0.0


@dataclass(frozen=True)
class LinearBeta:
    """beta_i = 1 - (i-1)/rounds, clipped at 0: from 1 in round 1 down by 1/rounds per round
    (imitation's ``LinearBetaSchedule`` with ``rampdown_rounds = rounds``)."""

    rounds: int

    def __call__(self, i: int) -> float:
        return float(min(1.0, max(0.0, 1.0 - (i - 1) / max(1, self.rounds))))


BETA_SCHEDULES = ("exponential", "indicator", "linear")


def beta_schedule(name: str, p: float = 0.5, rounds: int = 10):
    """The beta schedule called ``name``; ``p`` is the exponential base, ``rounds`` the linear ramp."""
    if name == "exponential":
        if not 0.0 <= p <= 1.0:
            raise UserError(f"--beta must be in [0, 1] for the exponential schedule (got {p})")
        return ExponentialBeta(p)
    if name == "indicator":
        return IndicatorBeta()
    if name == "linear":
        return LinearBeta(rounds)
    raise UserError(f"--beta-schedule {name!r}: unknown beta schedule; choose one of {', '.join(BETA_SCHEDULES)}")


# --- Kickstarting's lambda(t): weight of the distillation term, t = fraction of the budget spent ---


@dataclass(frozen=True)
class ConstantLambda:
    """lambda(t) = lam."""

    lam: float

    def __call__(self, t: float) -> float:
        return float(self.lam)


@dataclass(frozen=True)
class LinearLambda:
    """lambda(t) = lam * (1 - t): from lam at the start to 0 at the end of the budget."""

    lam: float

    def __call__(self, t: float) -> float:
        return float(self.lam * (1.0 - min(1.0, max(0.0, t))))


@dataclass(frozen=True)
class ExponentialLambda:
    """lambda(t) = lam * final_ratio^t: from lam down to lam * final_ratio at the end of the budget."""

    lam: float
    final_ratio: float = 0.01

    def __call__(self, t: float) -> float:
        return float(self.lam * self.final_ratio ** min(1.0, max(0.0, t)))


@dataclass(frozen=True)
class RampLambda:
    """lambda(t) = lam * min(1, t / ramp): from 0 up to lam over the first ``ramp`` of the budget, then lam
    (GKD's data mix as a schedule: the teacher plays early, the student more and more)."""

    lam: float
    ramp: float = 0.5

    def __call__(self, t: float) -> float:
        return float(self.lam * min(1.0, max(0.0, t) / self.ramp))


LAMBDA_SCHEDULES = ("constant", "linear", "exponential", "ramp")


def lambda_schedule(name: str, lam: float, final_ratio: float = 0.01, ramp: float = 0.5):
    """The lambda schedule called ``name`` with scale ``lam`` (``final_ratio``: exponential's end; ``ramp``:
    the fraction of the budget over which ``ramp`` rises to ``lam``)."""
    if lam < 0:
        raise UserError(f"--lambda must be >= 0 (got {lam})")
    if name == "ramp":
        if not 0.0 < ramp <= 1.0:
            raise UserError(f"--lambda-ramp {ramp}: the ramp schedule needs a ramp fraction in (0, 1]")
        return RampLambda(lam, ramp)
    if name == "constant":
        return ConstantLambda(lam)
    if name == "linear":
        return LinearLambda(lam)
    if name == "exponential":
        if not 0.0 < final_ratio <= 1.0:
            raise UserError(f"--lam-final-ratio {final_ratio}: the exponential schedule needs a final ratio in (0, 1]")
        return ExponentialLambda(lam, final_ratio)
    raise UserError(f"--lambda-schedule {name!r}: unknown lambda schedule; choose one of {', '.join(LAMBDA_SCHEDULES)}")
