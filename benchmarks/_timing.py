"""The timing loops and measured cases the benchmark scripts share."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any, Callable


def rate(
    fn: Callable[[], object], items_per_call: int, seconds: float, sync: Callable[[], None] = lambda: None
) -> float:
    """Items per second of calling ``fn`` repeatedly for ``seconds`` after one warm-up call.

    ``sync`` waits for queued device work (``torch.cuda.synchronize`` on a GPU) before each clock read.
    """
    fn()
    sync()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        fn()
        n += items_per_call
    sync()
    return n / (time.perf_counter() - t0)


def time_calls(obj: object, name: str) -> dict[str, float]:
    """Wrap ``obj.<name>`` so the seconds spent in it and the number of calls accumulate in the returned dict
    (e.g. an SB3 model's ``train``: the time in updates, apart from acting)."""
    acc = {"s": 0.0, "calls": 0}
    inner = getattr(obj, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            acc["s"] += time.perf_counter() - t0
            acc["calls"] += 1

    setattr(obj, name, timed)
    return acc


def ms_per_call(fn: Callable[[], object], seconds: float) -> float:
    """Milliseconds per call of ``fn`` over about ``seconds`` after one warm-up call (:func:`rate`, inverted)."""
    return 1000.0 / rate(fn, 1, seconds)


def student_gradient_steps(specs=("rusu-27x", "rusu-15x", "rusu-4x", "nature")) -> dict[str, Callable[[], None]]:
    """One gradient step (forward + backward + Adam) of each student size on a fixed uint8 Pong-shaped batch
    of 64, Policy Distillation's minibatch: the cases the CNN input benchmarks time."""
    import torch

    from rl_distill.students import make_student

    gen = torch.Generator().manual_seed(0)
    obs64 = torch.randint(0, 256, (64, 4, 84, 84), dtype=torch.uint8, generator=gen)
    target = torch.randn(64, 6, generator=gen)
    cases = {}
    for spec in specs:
        s = make_student(spec, [(4, 84, 84)], [6], seed=0)
        opt = torch.optim.Adam(s.parameters(), lr=1e-4)

        def step(s=s, opt=opt):
            loss = (s(obs64, 0)["logits"] - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        cases[f"{spec} gradient step, batch 64"] = step
    return cases


def pd_pong_training(steps: int, runs_dir: str) -> dict[str, float]:
    """Policy Distillation (KL) of the shipped PPO Pong teacher into rusu-4x for ``steps`` env steps, seed 0:
    its training speed (evaluation apart; the final evaluation is one game) and that game's score."""
    from rl_distill.distill import RunSpec, run
    from rl_distill.methods import get_method

    s = run(
        get_method("policy-distillation"),
        RunSpec(
            method="policy-distillation",
            teachers=["ppo-ALE-Pong-v5"],
            student="rusu-4x",
            steps=steps,
            seed=0,
            progress=False,
            tensorboard=False,
            eval_episodes=1,
            runs_dir=runs_dir,
        ),
    )
    train_s = s.get("train_time_s", s["train_wall_s"])
    return {
        "env_steps": s["env_steps"],
        "gradient_steps": s["gradient_steps"],
        "train_s": round(train_s, 1),
        "env_steps_per_s": round(s["env_steps"] / train_s, 1),
        "student_score": s["student_score"]["mean"],
    }


def machine() -> dict[str, object]:
    """What a timing ran on: the run records' machine entry (CPU model, vector extensions, torch and its threads)
    plus the versions a timing also depends on."""
    import ale_py

    from rl_distill.runs import machine as run_machine

    return {**run_machine(), "ale_py": ale_py.__version__, "python": platform.python_version()}


def conv_layout(nchw: bool) -> str:
    """The convolution input layout a training benchmark ran with (its ``--nchw`` flag)."""
    return "NCHW" if nchw else "channels-last in training passes (rl_distill.teachers.train.fast_sb3_training)"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def compare(
    variants: dict[str, Callable[[], None]],
    cases: dict[str, Callable[[], None]],
    rounds: int,
    seconds: float,
    pd_steps: int,
    runs_dir: str,
) -> tuple[dict, dict]:
    """Time ``cases`` under each variant (a function that switches the code to it), the variants alternating
    round by round, then (``pd_steps`` > 0) Policy Distillation of Pong end to end under each. Returns the
    micro table (median ms per variant and the first variant's median over the second's, the speedup) and the
    end-to-end one."""
    a, b = variants
    ms: dict[str, dict[str, list[float]]] = {name: {k: [] for k in variants} for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            for k, switch in variants.items():
                switch()
                ms[name][k].append(ms_per_call(fn, seconds))
    micro = {}
    for name, v in ms.items():
        med = {k: statistics.median(v[k]) for k in variants}
        micro[name] = {f"ms_{k}": round(m, 2) for k, m in med.items()} | {"speedup": round(med[a] / med[b], 2)}
        print(name, micro[name], flush=True)
    end_to_end: dict[str, Any] = {}
    if pd_steps:
        for k, switch in variants.items():
            switch()
            end_to_end[k] = pd_pong_training(pd_steps, runs_dir)
            print(k, end_to_end[k], flush=True)
        end_to_end["speedup"] = round(end_to_end[b]["env_steps_per_s"] / end_to_end[a]["env_steps_per_s"], 2)
    return micro, end_to_end


def write_comparison(
    out: str, what: str, args, micro: dict, end_to_end: dict, t_start: float, load_start: list[float]
) -> None:
    """The JSON record of a :func:`compare` run (``args``: the script's parsed rounds, seconds and note)."""
    from rl_distill.runs import atomic_write_json

    atomic_write_json(
        out,
        {
            "what": what,
            "machine": machine(),
            "note": args.note,
            "rounds": args.rounds,
            "seconds_per_measurement": args.seconds,
            "micro": micro,
            "policy_distillation_pong_rusu_4x": end_to_end,
            "total_wall_s": round(time.perf_counter() - t_start, 1),
            "load_average_1_5_15_min": {"start": load_start, "end": load_average()},
        },
    )


def comparison_args(default_out: str):
    """The command line of a :func:`compare` script: --rounds, --seconds, --steps, --note, --out; sets one torch
    thread."""
    import argparse

    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds, the variants alternating")
    ap.add_argument("--seconds", type=float, default=1.5, help="timed seconds per case, variant and round")
    ap.add_argument(
        "--steps", type=int, default=3000, help="env steps of each end-to-end Policy Distillation run (0: skip)"
    )
    ap.add_argument("--note", default="", help="free text kept in the output JSON (e.g. what else ran)")
    ap.add_argument("--out", default=default_out, help="output JSON path")
    torch.set_num_threads(1)
    return ap.parse_args()
