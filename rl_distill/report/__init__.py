"""Tables and plots from recorded results: the shipped teachers' page, and each benchmark suite's report.

A suite's report is drawn from its run records (``load``) with the statistics of ``stats`` and the figures of
``plots``: the sections every suite has (``sections``, ``transfer``), then those of its ``[report] kind``, one module
per kind in ``kinds/`` (``check_report`` validates a suite's ``[report]`` table against its kind).
"""

from rl_distill.report.kinds import KINDS, check_report, get_kind
from rl_distill.report.load import collect_bench
from rl_distill.report.plots import short_count
from rl_distill.report.stats import steps_to as _steps_to  # noqa: F401  (the name tests/test_bench.py imports)
from rl_distill.report.suite import bench_report
from rl_distill.report.teachers import teacher_report

__all__ = ["KINDS", "bench_report", "check_report", "collect_bench", "get_kind", "short_count", "teacher_report"]
