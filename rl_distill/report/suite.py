"""A benchmark suite's report, results/<suite>/: README.md, runs.csv, summary.csv and the plots, drawn from its run
records. The sections every suite has come from :mod:`rl_distill.report.sections` and
:mod:`rl_distill.report.transfer`; its ``[report] kind`` adds its own (:mod:`rl_distill.report.kinds`)."""

from __future__ import annotations

from pathlib import Path

from rl_distill.report.clip import clip_lines
from rl_distill.report.kinds import Report, check_report
from rl_distill.report.load import collect_bench
from rl_distill.report.sections import (
    aggregate_lines,
    changed_lines,
    curve_lines,
    final_score_lines,
    header_lines,
    known_columns,
    run_columns,
    stale_lines,
    time_lines,
)
from rl_distill.report.stats import cpu_to, steps_to, summary_rows
from rl_distill.report.tables import write_csv
from rl_distill.report.transfer import transfer_lines
from rl_distill.runs import atomic_write_text


def bench_report(
    source: str | Path,
    out_dir: str | Path | None = None,
    changed: dict[str, str] | None = None,
    stale: list[str] | None = None,
) -> Path:
    """results/<suite>/: README.md (tables), runs.csv (one row per run and task), summary.csv and PNG plots,
    from the run records (see :func:`collect_bench`). ``changed``: the runs made with older method defaults
    (bench.changed_defaults), and ``stale``: those made with other teacher weights, each listed in a section."""
    suite, out, rows = collect_bench(source, out_dir)
    rep = suite.get("report", {})
    kind = check_report(rep, Path(source) / "suite.json")
    out.mkdir(parents=True, exist_ok=True)
    tag_cols = sorted({k for r in rows for k in r if k.startswith("tag_")})
    threshold = float(rep.get("threshold", 0.9))
    for r in rows:
        r["steps_to_threshold"], r["wall_to_threshold"] = steps_to(r, threshold)
        r["cpu_to_threshold"] = cpu_to(r, threshold)
    write_csv(out / "runs.csv", rows, known_columns(run_columns(tag_cols), rows))

    lines = header_lines(suite, out, rows) + time_lines(rows)
    varying = [c for c in tag_cols if len({str(r.get(c)) for r in rows}) > 1]
    group_keys = ["label", "env", *varying]
    summaries = summary_rows(rows, group_keys)
    write_csv(out / "summary.csv", summaries, known_columns(list(summaries[0]), summaries) if summaries else group_keys)
    if summaries:
        lines += final_score_lines(summaries, rows, group_keys, threshold)
    if rows and kind.aggregate:
        lines += aggregate_lines(rows, out, suite["name"])
    lines += kind.section(Report(suite, out, rows, summaries, threshold))
    lines += clip_lines(suite, out, rows)
    lines += transfer_lines(rows, suite["cells"])
    lines += curve_lines(rows, out, suite["name"])
    lines += changed_lines(rows, changed or {})
    lines += stale_lines(rows, stale or [])
    if rep.get("notes"):
        lines += ["## Against the papers", "", rep["notes"].strip(), ""]
    lines += ["## Runs", "", "One row per run and task: [runs.csv](runs.csv); grouped: [summary.csv](summary.csv)."]
    path = out / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
