"""One module per method, each what ``rl_distill.protocol.Method`` describes: NAME, MULTI_TASK, Config,
default_steps(env_id), train(ctx, cfg), and optionally env_defaults(env_ids, options, family_defaults)."""

from __future__ import annotations

import importlib
from typing import cast

from rl_distill.errors import UserError
from rl_distill.protocol import Method

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
    "distillm": "distillm",
    "amm": "amm",
    "qdagger": "qdagger",
    "dqn": "dqn",
}
"""CLI name -> module name in this package."""


def get_method(name: str) -> Method:
    """The method module for a CLI name, with a one-line error for an unknown one."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return cast(Method, importlib.import_module(f"rl_distill.methods.{METHODS[name]}"))
