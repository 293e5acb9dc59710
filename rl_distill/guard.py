"""What keeps a run honest while it trains: divergence (a non-finite loss or weight stops the run in one line, before
a broken student is checkpointed, evaluated or scored), the torch threads a run uses, and the resume budget.

Core module: the harness (distill.py) and teacher training call it; it imports no method.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import torch

from rl_distill.errors import DivergedError, UserValueError, check_count


def nonfinite_weight(net: torch.nn.Module) -> str | None:
    """The name of the first parameter of ``net`` holding a nan or inf, or None where every weight is finite."""
    with torch.no_grad():
        if all_finite([p for p in net.parameters() if p.is_floating_point()]):
            return None
        for name, p in net.named_parameters():
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                return name
    return None


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True where every element of the floating-point ``tensors`` is finite, from their norms in one call (a nan
    or inf makes its tensor's norm non-finite). False where it cannot tell: a finite tensor whose norm passes
    float range, or tensors on several devices or of several dtypes; then ask one tensor at a time."""
    if not tensors:
        return True
    first = tensors[0]
    if any(t.device != first.device or t.dtype != first.dtype for t in tensors):
        return False
    with torch.no_grad():
        return bool(torch.stack(torch._foreach_norm(tensors, 2.0)).isfinite().all())


def nonfinite_loss(values: dict[str, Any]) -> str | None:
    """The first logged loss (a key with "loss" in it) that is nan or inf, or None."""
    for k, v in values.items():
        if "loss" in k and isinstance(v, (int, float)) and not math.isfinite(v):
            return f"{k} ({v})"
    return None


def _advice(cfg: Any) -> str:
    """What to change: a lower learning rate, and where the method divides by a temperature, a larger one."""
    tips = []
    if isinstance(getattr(cfg, "lr", None), (int, float)):
        tips.append(f"a lower --lr (now {cfg.lr:g})")
    if isinstance(getattr(cfg, "tau", None), (int, float)) and cfg.tau < 0.1:
        tips.append(f"a larger --tau (now {cfg.tau:g})")
    return "try " + " or ".join(tips) if tips else "try smaller steps (a lower learning rate)"


class DivergenceGuard:
    """Wraps a run's ``log`` and ``maybe_checkpoint`` (instance attributes over the Context's methods while the
    method trains): each first checks the logged losses and the student's weights, so a non-finite value stops the
    run with :class:`DivergedError` before it is logged as a score, evaluated on the learning curve, or written
    into the checkpoint, which therefore stays the last good one."""

    def __init__(self, ctx: Any, cfg: Any):
        self.ctx, self.cfg = ctx, cfg
        self.good_step: int | None = None
        """The env step of the last checkpoint this guard saw written, with finite weights only."""
        self._weights: list[torch.Tensor] | None = None
        """The student's floating-point parameters, listed at the first check: a run's student keeps its parameter
        tensors (loading a checkpoint copies into them), and a check comes after every chunk of play (every env
        step for DQN at the MinAtar paper's settings), too often to walk its modules each time."""

    def check(self, values: dict[str, Any] | None = None) -> None:
        what = nonfinite_loss(values or {})
        if what is None:
            if self._weights is None:
                self._weights = [p for p in self.ctx.student.parameters() if p.is_floating_point()]
            if not all_finite(self._weights) and (name := nonfinite_weight(self.ctx.student)) is not None:
                what = f"the student's weight {name}"
        if what is not None:
            raise self.error(what)

    def error(self, what: str) -> DivergedError:
        ctx = self.ctx
        # A resumed run's checkpoint from before this part is good too: it was written before anything diverged.
        resumed = getattr(getattr(ctx, "checkpoints", ctx), "resumed_from", None)
        step = self.good_step if self.good_step is not None else resumed
        kept = (
            f"its last good checkpoint (env step {step}) is kept in {ctx.run_dir}"
            if step is not None and (ctx.run_dir / "checkpoint.pt").exists()
            else "no checkpoint had been written, so no run folder is kept"
        )
        return DivergedError(
            f"training diverged: {what} became non-finite at env step {ctx.env_steps} "
            f"(gradient step {ctx.gradient_steps}); {_advice(self.cfg)}; {kept}"
        )

    @contextlib.contextmanager
    def watching(self):
        ctx = self.ctx
        log, checkpoint = ctx.log, ctx.maybe_checkpoint
        path = ctx.run_dir / "checkpoint.pt"

        def guarded_log(values: dict[str, Any]) -> None:
            self.check(values)
            log(values)

        def guarded_checkpoint(*args: Any, **kw: Any) -> None:
            self.check()
            before = _mtime_ns(path)
            try:
                checkpoint(*args, **kw)
            finally:  # a checkpoint written (also on the way to an interrupt) holds finite weights
                after = _mtime_ns(path)
                if after is not None and after != before:
                    self.good_step = ctx.env_steps

        ctx.log, ctx.maybe_checkpoint = guarded_log, guarded_checkpoint
        try:
            yield self
            self.check()  # the trained student, before the final evaluation scores it
        except DivergedError:
            raise
        except Exception as e:
            # A nan student breaks whatever uses it next (sampling from nan probabilities, a search over nan
            # priors): that error is the divergence, said as such.
            name = nonfinite_weight(ctx.student)
            if name is None:
                raise
            raise self.error(f"the student's weight {name}") from e
        finally:
            del ctx.log, ctx.maybe_checkpoint


def _mtime_ns(path: Path) -> int | None:
    """The file's modification time (ns), None where it does not exist: one stat call."""
    try:
        return os.stat(path).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return None


# --- threads --------------------------------------------------------------------------------------------------


def default_threads(images: bool) -> int | None:
    """The torch threads a run uses unless ``--threads`` says: one for the small networks (MLPs, MinAtar's), whose
    matrix products are too small for intra-op threads to pay (more threads only synchronise, and beside other jobs
    they thrash); torch's own choice (None) for the Nature CNN, whose convolutions do gain from them."""
    return None if images else 1


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """``torch.set_num_threads(threads)`` while the block runs (None: leave torch's setting), then back."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_threads(threads: int | None) -> None:
    """``--threads``: an integer from 1 to the machine's cores (None: the run's default)."""
    check_count("threads", threads)
    cores = os.cpu_count() or 1
    if threads is not None and threads > cores:
        raise UserValueError(f"--threads {threads}: this machine has {cores} cores (give at most {cores})")


# --- resume -----------------------------------------------------------------------------------------------------


def check_resume_steps(checkpoint: Path, budget: int, what: str = "env steps") -> None:
    """Refuse ``--resume --steps`` below the steps the run's checkpoint has already done (it would stop at once
    and report a run longer than asked for)."""
    if not checkpoint.exists():
        return
    try:
        done = int(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["env_steps"])
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is the resume's own one-line error, later
        return
    if budget < done:
        raise UserValueError(
            f"--resume --steps {budget}: {checkpoint.parent} has already done {done} {what}; "
            f"give --steps {done} or more (or drop --resume for a new run)"
        )
