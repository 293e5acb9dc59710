"""The contract between the harness (distill.py) and a method (methods/<name>.py), as types a checker sees.

A method is a module that :class:`Method` describes, registered by name in ``rl_distill.methods.METHODS``; the
harness reads those names and nothing else, plus the optional hooks :class:`EnvDefaultsHook` and
:class:`EnvCheckHook` where the module has them. Its ``train(ctx, cfg)`` gets a :class:`MethodContext`: the run's
teachers, envs and student, acting, the counters, logging and checkpoints. The harness does the rest (run folder,
evaluations, summary, files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

import torch
from torch.optim import Optimizer

if TYPE_CHECKING:
    from rl_distill.envs import EnvSpec
    from rl_distill.rollout import Rollout
    from rl_distill.students import Student
    from rl_distill.teachers import Teacher

MethodState = dict[str, Any] | Callable[[], dict[str, Any]] | None
"""A method's own state for a checkpoint (tensors, numbers, lists, dicts), or a function that builds it (called only
when a checkpoint is written: a replay memory is costly to copy)."""


class MethodContext(Protocol):
    """What ``train(ctx, cfg)`` may use of its run (``rl_distill.context.Context`` is the one implementation).

    The run: ``teachers``, ``env_ids``, ``env_specs``, ``num_tasks``, ``action_groups`` (one entry per task, in
    task order), ``student``, ``device``, ``seed``, ``generator``, ``budget``. Acting: ``rollout``, ``track``,
    ``chunk_steps``. Counters: ``env_steps``, ``gradient_steps``, ``done``. Bookkeeping: ``begin`` (first),
    ``log`` and ``maybe_checkpoint`` (after each iteration, chunk or round).
    """

    teachers: list[Teacher]
    """One teacher per task."""
    env_ids: list[str]
    """The env id of each task."""
    env_specs: list[EnvSpec]
    """Each task's observation shape and action count."""
    action_groups: list[torch.Tensor | None]
    """Per task, each action's group where the game's actions repeat one another (envs.action_groups), else None."""
    student: Student
    """The network being trained: one policy (and value) head per task, after them the heads it only keeps."""
    device: torch.device
    """Where the student, the teachers and the rollout tensors live."""
    seed: int
    """The run's seed."""
    generator: torch.Generator
    """The run's random stream on ``device`` (minibatch draws, shuffles), seeded with ``seed``."""
    budget: int
    """Env steps the run takes, over all tasks."""

    @property
    def num_tasks(self) -> int:
        """How many tasks (teachers) the run trains on."""
        ...

    @property
    def env_steps(self) -> int:
        """Real env steps so far: every rollout and tracked source, the earlier parts of a resumed run included."""
        ...

    @property
    def gradient_steps(self) -> int:
        """Steps the optimizer given to :meth:`begin` has taken: counted there, a method never counts them."""
        ...

    def done(self) -> bool:
        """Whether the budget is spent."""
        ...

    def rollout(self, task: int = 0, num_envs: int = 8) -> Rollout:
        """A batched rollout on task ``task``'s env, labelled by its teacher, counted in the run's totals."""
        ...

    def track(self, counter: Any) -> None:
        """Count another source of real env steps (``env_steps``, ``teacher_queries``, ``mean_return()``,
        ``close()``), for a method that plays episodes its own way."""
        ...

    def chunk_steps(self, num_envs: int, collect_steps: int) -> int:
        """Steps of each env in the next chunk of play on every task: ``collect_steps``, fewer at the end."""
        ...

    def begin(self, optimizer: Optimizer) -> dict[str, Any] | None:
        """Train with ``optimizer``: its steps are the run's gradient steps, its state is checkpointed. On a
        resumed run, loads the checkpoint into student and optimizer and returns the method's state (else None)."""
        ...

    def log(self, values: Mapping[str, float | None]) -> None:
        """Scalars at the current env step (a learning-curve point follows when one is due)."""
        ...

    def maybe_checkpoint(self, optimizer: Optimizer, state: MethodState = None, force: bool = False) -> None:
        """A checkpoint with the method's ``state`` when one is due (``force``: now); after SIGINT or SIGTERM it
        writes one and stops the run."""
        ...


@runtime_checkable
class Method(Protocol):
    """A method module: ``rl_distill/methods/<name>.py``, registered in ``rl_distill/methods/__init__.py``."""

    NAME: str
    """Its CLI name (``rl-distill distill NAME``), also in run folder names, records and the families' tables."""
    MULTI_TASK: bool
    """Whether ``train`` takes several teachers at once (one task each, one student head per task); the harness
    refuses a second ``--teacher`` where it is False."""
    Config: type[Any]
    """A dataclass of the method's options, one docstring per field: each field is a CLI flag (configs.py) and a
    key of suite files and run records; ``__post_init__`` refuses a bad value with a one-line UserError."""

    def default_steps(self, env_id: str) -> int:
        """The budget of a run on ``env_id`` that names none, where the env's family sets none for the method
        (``EnvFamily.method_steps``); a multi-task run sums its tasks' budgets."""
        ...

    def train(self, ctx: MethodContext, cfg: Any) -> None:
        """Train ``ctx.student`` until ``ctx.done()``: ``ctx.begin(optimizer)`` first, ``ctx.log`` and
        ``ctx.maybe_checkpoint`` after each iteration, ``ctx.maybe_checkpoint(..., force=True)`` at the end."""
        ...


@runtime_checkable
class EnvDefaultsHook(Protocol):
    """The optional hook of a method module that adjusts its defaults to the run's envs."""

    def env_defaults(
        self, env_ids: list[str], options: dict[str, Any], family_defaults: dict[str, Any]
    ) -> dict[str, Any]:
        """The Config values under the run's options, from the envs, those options and the env family's
        ``method_defaults[NAME]`` (e.g. rl-zoo3's PPO entry for the env); ``distill.method_config`` lays the
        options over what it returns."""
        ...


@runtime_checkable
class EnvCheckHook(Protocol):
    """The optional hook of a method module that refuses envs it cannot train on (expert iteration: an env its
    search cannot reset to a state). The harness calls it before anything is built, and ``bench`` (``--dry-run``
    too) for every cell, so such a run is refused before it starts, never from inside ``train``."""

    def check_envs(self, env_ids: list[str]) -> None:
        """Raise a one-line :class:`~rl_distill.errors.UserError` for an env of ``env_ids`` the method cannot train
        on; return None where it can train on them all."""
        ...
