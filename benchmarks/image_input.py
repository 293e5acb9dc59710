"""uint8 frames into a student's CNN on the CPU: ``image_floats`` (bytes put channels-last, then one float
copy scaled in place) against the earlier ``obs.float() / 255`` (a float copy, a division into another,
then the channels-last copy NatureCNN makes), side by side in one run. Both give the same floats.

1. Gradient steps (forward + backward + Adam, batch 64 as Policy Distillation's minibatch) of each student
   size; the two inputs alternate round by round; milliseconds are medians over rounds.
2. End to end: Policy Distillation (KL) of the shipped PPO Pong teacher into a rusu-4x student for
   ``--steps`` env steps, once per input (training time only; the final evaluation is one game).

    .venv/bin/python benchmarks/image_input.py [--rounds 5] [--seconds 1.5] [--steps 3000] [--out ...]
"""

from __future__ import annotations

import time

import torch
from _timing import compare, comparison_args, load_average, student_gradient_steps, write_comparison

import rl_distill.students as students
from rl_distill.networks import image_floats

INPUTS = {"float_div": lambda obs: obs.float() / 255.0, "image_floats": image_floats}


def main() -> None:
    a = comparison_args("results/benchmarks/image_input_cpu2.json")
    t_start = time.perf_counter()
    load_start = load_average()
    obs = torch.randint(0, 256, (64, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(INPUTS["float_div"](obs), INPUTS["image_floats"](obs))
    cases = student_gradient_steps()

    def use(name: str):
        return lambda: setattr(students, "image_floats", INPUTS[name])

    micro, end_to_end = compare(
        {k: use(k) for k in INPUTS}, cases, a.rounds, a.seconds, a.steps, "runs/bench_image_input"
    )
    students.image_floats = image_floats

    write_comparison(
        a.out,
        "uint8 frames to floats for a student's CNN on the CPU: image_floats against obs.float() / 255, "
        "one torch thread",
        a,
        micro,
        end_to_end,
        t_start,
        load_start,
    )


if __name__ == "__main__":
    main()
