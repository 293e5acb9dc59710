"""Mixed precision: bf16 autocast for the matrix products, fp32 everywhere else.

``--precision auto|fp32|bf16`` of teacher training, distillation and bench. ``bf16`` runs convolutions and
linear layers under ``torch.autocast(dtype=torch.bfloat16)``; parameters, optimizer state, network outputs
(logits, values, Q-values) and every loss stay in fp32. ``auto`` is bf16 for image (CNN) networks where the
device computes bf16 natively (a CPU with AVX512-BF16 or AMX, a CUDA device that supports it) and fp32
elsewhere: on a CPU without it bf16 is emulated and slower, and on the small MLPs of the control tasks autocast
costs more than it saves (results/precision), so those stay fp32 and their figures the same on every CPU.
``bf16`` asked for explicitly is used everywhere; the same seed gives the same numbers either way.
"""

from __future__ import annotations

import contextlib

import torch

from rl_distill.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_native(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 in hardware (what ``auto`` picks bf16 for)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def check_precision(precision: str) -> None:
    """A ``--precision`` value this module knows, else a one-line error."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown --precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def resolve_precision(precision: str, device: torch.device | str, images: bool = True) -> str:
    """``fp32`` or ``bf16`` for a ``--precision`` value on ``device``, for networks that take images or not."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if images and bf16_native(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str):
    """The context a resolved precision computes in: bf16 autocast, or nothing for fp32.

    Its weight cache is off: autocast keeps the bf16 copy of each parameter until the outermost context exits,
    and a whole training loop runs inside this one, so with the cache every forward after the first optimizer
    step would use the initial weights (the student then never learns; tests/test_precision.py)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=False)


def bf16_forward(module: torch.nn.Module) -> None:
    """Run ``module``'s forward under bf16 autocast and hand back fp32 outputs (backward then follows the
    forward's dtypes outside the context, as torch recommends). For networks built elsewhere (SB3's feature
    extractors), whose callers cannot be wrapped; the instance attribute leaves the state dict unchanged."""
    inner = module.forward

    def forward(*args, **kwargs):
        device = next((a.device for a in args if torch.is_tensor(a)), torch.device("cpu"))
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = inner(*args, **kwargs)
        return out.float() if torch.is_tensor(out) else out

    module.forward = forward
