"""The context a method trains in, and the parts of the run's bookkeeping behind it.

:class:`Context` is what ``train(ctx, cfg)`` receives; ``protocol.MethodContext`` lists (and documents) the names a
method uses. The bookkeeping the harness reads lives in three parts of its own:

- :class:`RunClock`: the run's one wall clock and the figures read from it (elapsed, training and CPU seconds);
- :class:`Checkpointer`: ``checkpoint.pt``, written on a timer, when forced or after a signal, read on resume;
- :class:`CurveEvaluator`: the learning curve's points, every ``eval_every`` env steps.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch.optim import Optimizer

from rl_distill.envs import EnvSpec, action_groups
from rl_distill.errors import UserError
from rl_distill.evaluation import STALL_STEPS, evaluate_cached, weights_fingerprint
from rl_distill.protocol import MethodState
from rl_distill.rollout import Rollout
from rl_distill.runs import RunLogger, StopOnSignal, atomic_write_bytes
from rl_distill.students import Student, student_policy
from rl_distill.teachers import Teacher


class RunClock:
    """The run's one wall clock (``time.time()``) and the figures read from it, each named for what it counts:

    - ``elapsed_s``: wall seconds since the run started: setup, training, evaluations and the earlier parts of a
      resumed run (the summary's ``wall_s``, and its ``train_wall_s`` as it stood when training ended);
    - ``training_s``: ``elapsed_s`` less the time spent not training, the setup before the method started and the
      learning-curve evaluations (the scalars' ``time/wall_s``, the summary's ``train_time_s``);
    - ``cpu_s``: CPU seconds of this process, all threads, earlier parts included (the summary's ``cpu_s``): the
      run's cost whatever else shares the cores, so N workers take about the runs' CPU time / N;
    - ``training_cpu_s``: ``cpu_s`` less the CPU seconds of the learning-curve evaluations (the scalars'
      ``time/cpu_s``): training time as ``training_s`` counts it, in CPU seconds, which other jobs on the cores do
      not inflate. Like ``cpu_s`` it counts from the clock's start, so the setup before it is left out as
      ``training_s`` leaves it out. None after resuming from a checkpoint that did not keep it (one written before
      it was kept): the earlier parts' evaluations cannot be told apart there.
    """

    def __init__(self, started_at: float | None = None):
        now = time.time()
        self.started_at = now if started_at is None else started_at
        """When this process's part of the run started."""
        self._before = 0.0  # elapsed seconds of the earlier parts of a resumed run
        self._not_training = now - self.started_at  # the part of elapsed_s that is not training: setup so far
        self._cpu_before, self._cpu_from = 0.0, time.process_time()
        self._train_cpu_before: float | None = 0.0  # training CPU seconds of the earlier parts (None: not known)
        self._cpu_not_training = 0.0  # CPU seconds of this part's not-training blocks

    @property
    def elapsed_s(self) -> float:
        return self._before + time.time() - self.started_at

    @property
    def training_s(self) -> float:
        return self.elapsed_s - self._not_training

    @property
    def cpu_s(self) -> float:
        return self._cpu_before + time.process_time() - self._cpu_from

    @property
    def training_cpu_s(self) -> float | None:
        if self._train_cpu_before is None:
            return None
        return self._train_cpu_before + time.process_time() - self._cpu_from - self._cpu_not_training

    @contextlib.contextmanager
    def not_training(self) -> Iterator[None]:
        """A block whose wall and CPU time are not training time (a learning-curve evaluation)."""
        t, c = time.time(), time.process_time()
        try:
            yield
        finally:
            self._not_training += time.time() - t
            self._cpu_not_training += time.process_time() - c

    def training_times(self) -> dict[str, float]:
        """The scalars a logged row carries: ``time/wall_s`` (training seconds) and ``time/cpu_s`` (training CPU
        seconds, left out where not known)."""
        cpu = self.training_cpu_s
        return {"time/wall_s": self.training_s, **({} if cpu is None else {"time/cpu_s": cpu})}

    def state(self) -> dict[str, float]:
        """The figures a checkpoint keeps; ``wall_s`` there is the training time (the key checkpoints have used),
        ``train_cpu_s`` the training CPU seconds (where known)."""
        train_cpu = self.training_cpu_s
        return {
            "wall_s": self.training_s,
            "elapsed_s": self.elapsed_s,
            "cpu_s": self.cpu_s,
            **({} if train_cpu is None else {"train_cpu_s": train_cpu}),
        }

    def load(self, ck: dict[str, Any]) -> None:
        """Go on from a checkpoint's figures. One from before ``elapsed_s`` was kept holds only the training time:
        the elapsed time is then a lower bound; one from before ``train_cpu_s`` was kept leaves the training CPU
        seconds unknown (None) for the rest of the run. This part's time before the checkpoint was loaded is not
        training."""
        training = float(ck.get("wall_s", 0.0))
        self._before = float(ck.get("elapsed_s", training))
        self._not_training = self._before - training + (time.time() - self.started_at)
        self._cpu_before, self._cpu_from = float(ck.get("cpu_s", 0.0)), time.process_time()
        self._train_cpu_before = float(ck["train_cpu_s"]) if "train_cpu_s" in ck else None
        self._cpu_not_training = 0.0


class Checkpointer:
    """``checkpoint.pt``: what a resumed run needs (student, optimizer, counters, clocks, the method's state).
    Written atomically every ``every_s`` seconds, when forced, and at once after SIGINT or SIGTERM (then the run
    stops with KeyboardInterrupt); loaded weights-only (tensors, numbers, lists, dicts) on a resumed run."""

    def __init__(self, run_dir: Path, every_s: float, resume: bool, device: torch.device):
        self.path = Path(run_dir) / "checkpoint.pt"
        self.every_s = every_s
        self.resume = resume
        self.device = device
        self.stop = StopOnSignal()
        """Catches SIGINT and SIGTERM while the method trains (``stop.catching()``)."""
        self.resumed_from: int | None = None
        """The env step a resumed run went on from (None: a fresh run)."""
        self._last = time.time()

    @property
    def interrupted(self) -> str | None:
        """The signal's name once SIGINT or SIGTERM arrived: the next :meth:`save` (every method checkpoints after
        each iteration, chunk or round) writes the checkpoint and raises KeyboardInterrupt."""
        return self.stop.name

    def save(self, build: Callable[[], dict[str, Any]], step: int, force: bool = False) -> None:
        """Write ``build()`` if a checkpoint is due (``force``: now); after a signal, say how to go on and stop."""
        if not force and not self.interrupted and time.time() - self._last < self.every_s:
            return
        self._last = time.time()
        buf = io.BytesIO()
        torch.save(build(), buf)
        atomic_write_bytes(self.path, buf.getvalue())
        if self.interrupted:
            print(
                f"\n{self.interrupted}: checkpoint at {step} env steps in {self.path.parent}; "
                "the same command with --resume continues it",
                file=sys.stderr,
            )
            raise KeyboardInterrupt

    def load(self) -> dict[str, Any] | None:
        """The checkpoint of a resumed run (None for a fresh run, or a resumed one that never wrote one)."""
        if not (self.resume and self.path.exists()):
            return None
        try:
            ck = torch.load(self.path, map_location=self.device, weights_only=True)
        except Exception as e:  # a truncated file from a crash mid-write cannot happen (atomic), but a foreign one can
            raise UserError(f"cannot resume from {self.path}: {str(e).splitlines()[0]}") from None
        self.resumed_from = int(ck["env_steps"])
        return ck


class CurveEvaluator:
    """The learning curve: every ``every`` env steps (None: none), the greedy student on each head's game,
    ``episodes`` episodes from fixed seeds, logged as ``eval/mean_reward`` (``/<env>`` with several heads) beside the
    sampling student's ``eval/sampled_mean_reward`` (the policy that plays in on-policy training), with
    ``time/wall_s`` = the clock's training time and ``time/cpu_s`` its training CPU seconds (where known). Evaluations
    run in fp32, and their time is not training time."""

    def __init__(
        self,
        student: Student,
        device: torch.device,
        env_ids: list[str],
        logger: RunLogger,
        clock: RunClock,
        every: int | None,
        episodes: int,
        seed: int,
        cache: str | None,
    ):
        self.student, self.device, self.env_ids = student, device, env_ids
        self.logger, self.clock = logger, clock
        self.every, self.episodes, self.seed, self.cache = every, episodes, seed, cache
        self._next = 0
        self.latest: tuple[int, float] | None = None
        """The last point: its env step and the greedy mean return (over the heads), for the progress bar."""
        self.show_progress = False
        """Each evaluation's games on a bar of their own (set by a Context with a progress bar)."""

    def maybe_evaluate(self, step: int, force: bool = False) -> None:
        """A point at env step ``step`` if one is due (``force``: now, where the run has a curve)."""
        if not self.every or (not force and step < self._next):
            return
        self._next = (step // self.every + 1) * self.every
        with self.clock.not_training():
            vals = self._evaluate(step)
        self.logger.scalars(step, {**vals, **self.clock.training_times()})
        self.latest = step, float(np.mean([v for k, v in vals.items() if k.startswith("eval/mean_reward")]))

    def resume_at(self, step: int) -> None:
        """The next point of a run resumed at ``step``."""
        if self.every:
            self._next = (step // self.every + 1) * self.every

    def plot(self, path: Path, teacher_scores: list[float | None], title: str) -> None:
        """The run's learning curve as a PNG (a panel per head: greedy and sampling student, the teacher's score),
        drawn from the run's ``scalars.jsonl``; nothing where the run has no curve."""
        if not self.every:
            return
        from rl_distill.report.plots import plot_run_curve
        from rl_distill.runs import read_scalars

        plot_run_curve(read_scalars(self.logger.dir), self.env_ids, teacher_scores, path, title)

    def _evaluate(self, step: int) -> dict[str, float]:
        # The untrained student (step 0 of a fresh run) is the same for every method of a seed: cached.
        cache = self.cache if step == 0 else None
        fingerprint = weights_fingerprint(self.student) if cache else ""
        was_training = self.student.training
        self.student.eval()
        vals = {}
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):  # in fp32, as the final evaluation
            suffix = len(self.env_ids) > 1
            for i, env_id in enumerate(self.env_ids):
                shown = f"curve point at step {step}, {{}} student on {env_id}" if self.show_progress else None
                res = evaluate_cached(
                    student_policy(self.student, i, self.device),
                    f"{fingerprint}:task{i}:{self.device.type}",
                    env_id,
                    self.episodes,
                    self.seed + 1,
                    cache,
                    label=f"untrained {self.student.spec}",
                    stall_steps=STALL_STEPS,
                    progress=shown and shown.format("greedy"),
                )
                vals["eval/mean_reward" + ("/" + env_id if suffix else "")] = res["mean"]
                sampled = evaluate_cached(
                    student_policy(self.student, i, self.device, sample_seed=self.seed + 2),
                    f"{fingerprint}:task{i}:{self.device.type}:sampled",
                    env_id,
                    self.episodes,
                    self.seed + 1,
                    cache,
                    label=f"untrained {self.student.spec}, sampling",
                    progress=shown and shown.format("sampling"),
                )
                vals["eval/sampled_mean_reward" + ("/" + env_id if suffix else "")] = sampled["mean"]
        self.student.train(was_training)
        return vals


class Context:
    """What a method's ``train(ctx, cfg)`` gets: the names of ``protocol.MethodContext``, documented there. The
    harness keeps its own handles on the same run: ``clock``, ``checkpoints``, ``curve``, ``teacher_queries``,
    ``run_dir`` and ``close()``. The shared training loops are rl.py's (PPO) and supervised.py's."""

    def __init__(
        self,
        teachers: list[Teacher],
        env_ids: list[str],
        env_specs: list[EnvSpec],
        student: Student,
        device: torch.device,
        seed: int,
        budget: int,
        run_dir: Path,
        logger: RunLogger,
        clock: RunClock,
        checkpoints: Checkpointer,
        curve: CurveEvaluator,
        progress: str | None = None,
    ):
        self.teachers = teachers
        self.env_ids = env_ids
        self.env_specs = env_specs
        self.action_groups = [
            None if g is None else torch.tensor(g, device=device) for g in map(action_groups, env_ids)
        ]
        self.student = student
        self.device = device
        self.seed = seed
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.budget = budget
        self.run_dir = run_dir
        self.clock, self.checkpoints, self.curve = clock, checkpoints, curve
        self._logger = logger
        self._counters: list[Any] = []  # the rollouts and tracked sources whose steps are the run's
        self._steps_before = self._queries_before = self._gradient_steps = 0
        self._pbar = None
        if progress is not None:  # the progress bar's label
            from tqdm import tqdm

            curve.show_progress = True

            self._pbar = tqdm(total=budget, unit="step", desc=progress, dynamic_ncols=True, file=sys.stderr)

    @property
    def num_tasks(self) -> int:
        return len(self.env_ids)

    def rollout(self, task: int = 0, num_envs: int = 8) -> Rollout:
        r = Rollout(
            self.env_ids[task],
            num_envs,
            self.teachers[task],
            seed=self.seed * 1000 + len(self._counters) * 97 + self._steps_before % 9973,
            device=self.device,
            task=task,
        )
        self._counters.append(r)
        return r

    def track(self, counter: Any) -> None:
        self._counters.append(counter)

    @property
    def env_steps(self) -> int:
        return self._steps_before + sum(r.env_steps for r in self._counters)

    @property
    def teacher_queries(self) -> int:
        """Teacher forward passes so far, one per state (the harness's figure; methods do not read it)."""
        return self._queries_before + sum(r.teacher_queries for r in self._counters)

    @property
    def gradient_steps(self) -> int:
        return self._gradient_steps

    def chunk_steps(self, num_envs: int, collect_steps: int) -> int:
        left = self.budget - self.env_steps
        return max(1, min(collect_steps, math.ceil(left / (num_envs * self.num_tasks))))

    def done(self) -> bool:
        return self.env_steps >= self.budget

    def begin(self, optimizer: Optimizer) -> dict[str, Any] | None:
        optimizer.register_step_post_hook(self._count_gradient_step)
        ck = self.checkpoints.load()
        if ck is None:
            return None
        self.student.load_state_dict(ck["student"])
        optimizer.load_state_dict(ck["optimizer"])
        self._steps_before = int(ck["env_steps"])
        self._queries_before = int(ck["teacher_queries"])
        self._gradient_steps = int(ck["gradient_steps"])
        self.clock.load(ck)
        self.curve.resume_at(self._steps_before)
        print(f"resuming {self.run_dir} at {self._steps_before} env steps", file=sys.stderr)
        return ck["method"]

    def _count_gradient_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        self._gradient_steps += 1

    def log(self, values: Mapping[str, float | None]) -> None:
        """Scalars at the current env step (tensorboard + scalars.jsonl) with the run's counters and training time (wall
        and CPU seconds), then a learning-curve point if one is due, and the progress bar."""
        vals: dict[str, Any] = dict(values)
        rets = [r.mean_return() for r in self._counters if r.mean_return() is not None]
        if rets and "rollout/ep_rew_mean" not in vals:
            vals["rollout/ep_rew_mean"] = float(np.mean(rets))
        vals["time/teacher_queries"] = self.teacher_queries
        vals["time/gradient_steps"] = self.gradient_steps
        vals.update(self.clock.training_times())
        self._logger.scalars(self.env_steps, vals)
        self.curve.maybe_evaluate(self.env_steps)
        if self._pbar is not None:
            self._pbar.n = min(self.env_steps, self.budget)
            self._pbar.set_postfix_str(self._bar_fields(vals), refresh=False)
            self._pbar.refresh()

    def _bar_fields(self, vals: Mapping[str, Any]) -> str:
        """The progress bar's fields, each named, each shown once it has a value: the mean return of the last 100
        episodes played in training (by whichever policy acts: the teacher, a mixture or the student), the loss
        under its scalar's name, and the learning curve's last greedy evaluation."""
        fields = []
        if vals.get("rollout/ep_rew_mean") is not None:
            fields.append(f"return of played episodes {vals['rollout/ep_rew_mean']:.1f}")
        loss = next((k for k in ("distill/loss", "train/loss") if vals.get(k) is not None), None)
        if loss is not None:
            fields.append(f"{loss} {vals[loss]:.3g}")
        if self.curve.latest is not None:
            step, mean = self.curve.latest
            fields.append(f"greedy eval {mean:.1f} at step {step}")
        return " | ".join(fields)

    def maybe_checkpoint(self, optimizer: Optimizer, state: MethodState = None, force: bool = False) -> None:
        def build() -> dict[str, Any]:
            method_state = state() if callable(state) else state  # a replay memory is copied only when one is due
            return {
                "student": self.student.state_dict(),
                "optimizer": optimizer.state_dict(),
                "env_steps": self.env_steps,
                "teacher_queries": self.teacher_queries,
                "gradient_steps": self.gradient_steps,
                **self.clock.state(),
                "method": method_state or {},
            }

        self.checkpoints.save(build, self.env_steps, force)

    def close(self) -> None:
        """Close the rollouts' envs and the progress bar."""
        for r in self._counters:
            r.close()
        if self._pbar is not None:
            self._pbar.close()
