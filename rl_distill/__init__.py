"""rl-distill: policy distillation benchmark suite.

Public API: :func:`make_env`, :func:`load_teacher`, :func:`evaluate`.
"""

from rl_distill.envs import AtariProtocol, MinAtarProtocol, make_env
from rl_distill.errors import DivergedError, UserError, UserTypeError, UserValueError
from rl_distill.evaluation import evaluate
from rl_distill.teachers import Teacher, load_teacher

__all__ = [
    "AtariProtocol",
    "DivergedError",
    "MinAtarProtocol",
    "Teacher",
    "UserError",
    "UserTypeError",
    "UserValueError",
    "evaluate",
    "load_teacher",
    "make_env",
]
__version__ = "0.1.0"
