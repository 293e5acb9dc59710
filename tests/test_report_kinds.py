"""Report kinds: each registered by its name, a suite's `[report]` table and top-level keys checked when it loads
(and when its report is drawn), a kind's own files beside the README."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rl_distill.bench import SUITE_KEYS, load_suite
from rl_distill.cli import main
from rl_distill.errors import UserError
from rl_distill.report import KINDS, bench_report, check_report, get_kind

ROOT = Path(__file__).resolve().parents[1]
GRID = "[[grid]]\nmethod = 'bc'\nenv = 'CartPole-v1'\n"


def _suite(tmp_path: Path, head: str) -> str:
    p = tmp_path / "s.toml"
    p.write_text(head + GRID)
    return str(p)


def test_each_kind_module_is_found_by_its_registered_name():
    modules = {p.stem for p in (ROOT / "rl_distill" / "report" / "kinds").glob("*.py")} - {"__init__"}
    assert set(KINDS.values()) == modules  # no kind module left unregistered
    for name in KINDS:
        assert get_kind(name).name == name
    with pytest.raises(UserError, match="unknown report kind 'lineag'; choose one of lineage, efficiency"):
        get_kind("lineag")


@pytest.mark.parametrize(
    "head, msg",
    [
        ("[report]\nkind = 'lineag'\n", "unknown [report] kind 'lineag'; choose one of " + ", ".join(KINDS)),
        (
            "[report]\nkind = 'sweep'\nbaseline = 'ppo'\n",
            "has unknown keys ['baseline']; allowed: kind, threshold, notes, video, x",
        ),
        (
            "[report]\ntreshold = 0.8\n",
            "[report] of kind 'lineage' has unknown keys ['treshold']; allowed: kind, threshold, notes",
        ),
        ("[report]\nkind = 'continual'\na = 'CartPole-v1'\n", "[report] of kind 'continual' needs b"),
        ("[report]\nthreshold = '0.9'\n", "[report] threshold must be a number, not '0.9'"),
        ("[report]\nkind = 'sweep'\nlogx = 'no'\n", "[report] logx must be true or false"),
        ("report = 3\n", "[report] must be a table"),
        ("seed = 3\n", "unknown top-level keys ['seed']; allowed: " + ", ".join(SUITE_KEYS)),
    ],
)
def test_a_suite_with_a_bad_report_table_or_key_is_refused_when_it_loads(tmp_path, capsys, head, msg):
    path = _suite(tmp_path, head)
    with pytest.raises(UserError) as e:
        load_suite(path)
    assert msg in str(e.value) and str(e.value).startswith(path)
    # The CLI: one line, exit 2, before anything runs.
    assert main(["bench", path, "--dry-run", "--out", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rl-distill: error: ") and msg in err[0]
    assert not (tmp_path / "res").exists() and not (tmp_path / "runs").exists()


def test_a_misspelt_kind_in_a_snapshot_is_refused_not_drawn_as_lineage(tmp_path, capsys):
    snap = {"name": "t", "path": "t.toml", "out": str(tmp_path), "cells": [], "report": {"kind": "effciency"}}
    (tmp_path / "suite.json").write_text(json.dumps(snap))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown [report] kind 'effciency'; choose one of" in err[0]
    assert not (tmp_path / "README.md").exists()


def test_shipped_suites_and_committed_snapshots_fit_their_kinds():
    for p in sorted((ROOT / "experiments").rglob("*.toml")):
        load_suite(str(p))  # the [report] table and top-level keys are checked here
    for sj in sorted((ROOT / "results").glob("**/suite.json")):
        check_report(json.loads(sj.read_text()).get("report", {}), sj)


def _switch_kind(folder: Path, kind: str) -> None:
    snap = json.loads((folder / "suite.json").read_text())
    snap["report"]["kind"] = kind
    (folder / "suite.json").write_text(json.dumps(snap))


def test_expert_iteration_kind_writes_search_vs_network_beside_the_lineage_readme(tmp_path):
    """The kind draws what experiments/expert_iteration_report.py drew (the committed page, byte for byte) and leaves
    the README as the lineage kind draws it."""
    src = ROOT / "results" / "expert-iteration"
    out = tmp_path / "expert-iteration"
    shutil.copytree(src / "runs", out / "runs")
    shutil.copy(src / "suite.json", out / "suite.json")
    _switch_kind(out, "lineage")
    lineage = bench_report(out, out).read_text()
    assert not (out / "search-vs-network.md").exists()
    _switch_kind(out, "expert-iteration")
    assert bench_report(out, out).read_text() == lineage
    assert (out / "search-vs-network.md").read_bytes() == (src / "search-vs-network.md").read_bytes()
    assert (out / "search-vs-network.png").stat().st_size > 0


def test_ppo_vs_sb3_kind_writes_a_comparison_row_per_run_and_env(tmp_path):
    src = ROOT / "results" / "ppo-vs-sb3"
    out = tmp_path / "ppo-vs-sb3"
    shutil.copytree(src / "runs", out / "runs")
    shutil.copy(src / "suite.json", out / "suite.json")
    _switch_kind(out, "ppo-vs-sb3")
    bench_report(out, out)
    rows = [line for line in (out / "comparison.md").read_text().splitlines() if line.startswith("| ")]
    envs = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3"]  # the suite's order
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [e for e in envs for _ in range(4)]  # 3 seeds + a total
    assert sum("**within 1.5x**" in r for r in rows) == 3


def test_continual_kind_aggregates_only_the_series_repeated_over_games(tmp_path):
    """minatar-continual's off-then-on series (one game a run, five games) get the aggregate over envs; the stages
    that keep a game untrained (two rows a run) and the one-game stages do not; the control suite has none."""
    import csv

    from rl_distill.metrics import iqm

    src = ROOT / "results" / "minatar-continual"
    out = tmp_path / "minatar-continual"
    shutil.copytree(src / "runs", out / "runs")
    shutil.copy(src / "suite.json", out / "suite.json")
    text = bench_report(out, out).read_text()
    agg = text.split("## Aggregate over envs")[1].split("\n## ")[0]
    rows = {r.split(" | ")[0][2:]: r.split(" | ") for r in agg.splitlines() if r.startswith("| ") and "---" not in r}
    rows.pop("series")
    assert set(rows) == {"bc start", "on-policy from bc", "on-policy from scratch"}
    assert all(r[1] == "5 x 5" for r in rows.values()) and (out / "aggregate.png").stat().st_size > 0
    with open(out / "runs.csv") as f:
        pct = [float(r["percent"]) for r in csv.DictReader(f) if r["label"] == "on-policy from bc"]
    assert len(pct) == 25 and rows["on-policy from bc"][2].startswith(f"{iqm(pct):.1f} [")

    ctl = tmp_path / "continual"
    shutil.copytree(ROOT / "results" / "continual" / "runs", ctl / "runs")
    shutil.copy(ROOT / "results" / "continual" / "suite.json", ctl / "suite.json")
    assert "## Aggregate over envs" not in bench_report(ctl, ctl).read_text()
