"""``lineage`` (the default kind): methods side by side on the same envs. The sections every suite has (final
scores, the aggregate over envs, transfer, learning curves) and nothing of its own."""

from __future__ import annotations

from rl_distill.report.kinds import Kind

KIND = Kind("lineage")
