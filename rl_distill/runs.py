"""Run directories, atomic writes, tensorboard + JSONL scalars, checkpoints.

A run lives in ``runs/<env>__<method>__<seed>__<unix_time>/`` with ``config.json`` (the resolved
config), ``scalars.jsonl`` (every scalar also sent to tensorboard, same keys), ``tb/`` (tensorboard
events) and ``summary.json`` (written last, atomically: it exists only for a finished run).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default, sort_keys=False)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode open() would give it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, to_json(obj) + "\n")


def cli_command() -> str | None:
    """The ``rl-distill ...`` command line when this process is the CLI (a bench worker inherits it), else None:
    a library caller's sys.argv is its own script's, not a command that reproduces the run."""
    if Path(sys.argv[0]).name not in ("rl-distill", "cli.py"):
        return None
    return "rl-distill " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run_name(env_id: str, method: str, seed: int, when: float | None = None) -> str:
    """CleanRL-style ``{env}__{method}__{seed}__{unix_time}``; '/' in ALE ids becomes '-'."""
    return f"{env_id.replace('/', '-')}__{method}__{seed}__{int(when if when is not None else time.time())}"


def new_run_dir(runs_dir: str | Path, env_id: str, method: str, seed: int) -> Path:
    """Create and return a fresh run folder named by :func:`run_name`. A second run of the same env, method and
    seed started within the same second (a fast machine, a restart) gets ``-1``, ``-2``, ... rather than writing
    into the first one's folder; ``mkdir`` without ``exist_ok`` makes the claim atomic between processes."""
    base = Path(runs_dir) / run_name(env_id, method, seed)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name after {base}")


class StopOnSignal:
    """SIGINT and SIGTERM as a request to stop at the training loop's next checkpoint: while :meth:`catching` runs,
    the first one sets :attr:`name` (the loop checks it, writes its checkpoint and stops); a second raises
    KeyboardInterrupt at once. The previous handlers come back afterwards. Only in the main thread (signal
    handlers cannot be set elsewhere): elsewhere nothing is caught."""

    def __init__(self, when: str = "at the next checkpoint"):
        self.name: str | None = None
        """The first signal's name (``SIGINT``, ``SIGTERM``), or None."""
        self._when = when

    def _handle(self, signum: int, frame) -> None:
        if self.name:  # a second signal: stop now, from the last checkpoint
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name
        print(f"\n{self.name}: stopping {self._when} (send it again to stop at once)", file=sys.stderr)

    @contextlib.contextmanager
    def catching(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


class LockHeld(Exception):
    """Another process holds the lock (its path is the message)."""


@contextlib.contextmanager
def hold_lock(path: str | Path):
    """An exclusive lock on ``path`` (flock) while the block runs, or :class:`LockHeld` at once if another
    process has it. The OS drops the lock when its process dies, so a killed run leaves nothing to clean up.
    Where there is no flock (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(str(path)) from None
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


class RunLogger:
    """Scalars to tensorboard and to ``scalars.jsonl`` under the same keys (SB3 names)."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.dir / "scalars.jsonl", "a")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.dir / "tb"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        row = {"step": int(step)}
        for k, v in values.items():
            if v is None:
                continue
            row[k] = float(v)
            if self._tb is not None:
                self._tb.add_scalar(k, float(v), int(step))
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()

    def text(self, tag: str, text: str) -> None:
        if self._tb is not None:
            self._tb.add_text(tag, text)

    def hparams(self, config: dict[str, Any]) -> None:
        """The config once, as a markdown table (CleanRL's convention)."""
        rows = "\n".join(f"|{k}|{v}|" for k, v in config.items())
        self.text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def read_scalars(run_dir: str | Path) -> list[dict[str, float]]:
    p = Path(run_dir) / "scalars.jsonl"
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a crash: everything before it is good
    return rows


def find_resumable(runs_dir: str | Path, prefix: str, marker: str) -> Path | None:
    """The newest run dir named ``prefix__<time>`` that has ``marker`` but no summary.json."""
    root = Path(runs_dir)
    cands = [p for p in root.glob(prefix + "__*") if (p / marker).exists() and not (p / "summary.json").exists()]
    return max(cands, key=lambda p: p.stat().st_mtime) if cands else None


@contextlib.contextmanager
def claim_run_dir(
    runs_dir: str | Path,
    tag: str,
    name: str,
    seed: int,
    *,
    resume: bool,
    marker: str,
    what: str,
    hint: str = "",
    drop_when_done: tuple[str, ...] = (),
):
    """The one run-folder lifecycle (``distill`` runs, bench cells and ``teachers train`` runs): yields
    ``(run_dir, resumed)``, the folder locked (``.lock``) for this process while the block runs.

    With ``resume`` it is the newest unfinished run ``runs_dir/<tag>__<name>__<seed>__<time>`` (its ``marker``
    checkpoint there, no summary.json), refused in one line if another process holds it; where there is none, one
    line on stderr says so (``what``: the run looked for; ``hint``: how a finished one goes on) and a new folder
    starts, as it does without ``resume``. The block checks a resumed run against its command and writes its
    config.json. A new folder that a :class:`~rl_distill.errors.UserError` stops before its first checkpoint is
    removed (with ``runs_dir`` if this made it and it is left empty), so a later ``--resume`` finds no half-made
    run; a block that ends normally removes ``.lock`` and the ``drop_when_done`` files."""
    from rl_distill.errors import UserError

    prefix = run_name(tag, name, seed, 0).rsplit("__", 1)[0]
    found = find_resumable(runs_dir, prefix, marker) if resume else None
    made_root = not Path(runs_dir).exists()
    run_dir = found or new_run_dir(runs_dir, tag, name, seed)
    if resume and found is None:
        print(f"--resume: no unfinished {what} in {runs_dir}, so a new one starts in {run_dir}{hint}", file=sys.stderr)
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(hold_lock(run_dir / ".lock"))
            except LockHeld:
                raise UserError(
                    f"--resume: {run_dir} is being trained by another process (its lock: {run_dir / '.lock'}); "
                    "wait for it to finish, or stop it and resume again"
                ) from None
            yield run_dir, found is not None
        for f in (*drop_when_done, ".lock"):
            (run_dir / f).unlink(missing_ok=True)
    except UserError:
        if found is None and not (run_dir / marker).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
            if made_root:
                with contextlib.suppress(OSError):
                    Path(runs_dir).rmdir()  # only if empty: nothing else was there
        raise


def machine(device: str = "cpu") -> dict[str, Any]:
    """What a run ran on: CPU model, its vector extensions and cores, torch version and threads, the GPU if any.
    Float results of the same seed differ between CPU models (oneDNN and MKL pick their kernels by CPU; results/reruns),
    so records keep it."""
    import platform

    import torch

    cpu, isa = platform.processor() or platform.machine(), None
    try:
        info = dict(
            ln.split(":", 1) for ln in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines() if ":" in ln
        )
        info = {k.strip(): v.strip() for k, v in info.items()}
        cpu = f"{info['model name']} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
        isa = " ".join(
            f for f in info.get("flags", "").split() if f.startswith(("avx", "amx", "fma"))
        )  # what the kernels use
    except (OSError, KeyError, ValueError):
        pass
    return {
        "cpu": cpu,
        "isa": isa,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if str(device).startswith("cuda") else None,
    }
