"""One module per method. Each has NAME, MULTI_TASK, Config, default_steps(env_id), train(ctx, cfg)."""

from __future__ import annotations

import importlib
from types import ModuleType

from rl_distill.errors import UserError

METHODS = {
    "policy-distillation": "policy_distillation",
    "actor-mimic": "actor_mimic",
    "dagger": "dagger",
    "kickstarting": "kickstarting",
    "on-policy": "on_policy",
    "bc": "bc",
    "ppo": "ppo",
    "ppd": "ppd",
    "expert-iteration": "expert_iteration",
}


def get_method(name: str) -> ModuleType:
    """The method module for a CLI name, with a one-line error for an unknown one."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return importlib.import_module(f"rl_distill.methods.{METHODS[name]}")
