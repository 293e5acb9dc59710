"""`cell:LABEL` sources in a suite: which run of a series a cell starts from (``init_from``) or has as a teacher
where the series has a run per env, the one-line refusal where a reference cannot tell which, and ``--only``
taking along the runs its cells need. Suite loading and --dry-run only: nothing trains."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from rl_distill.bench import _depths, _resolve, _Schedule, bench, load_suite, same_seed_sources
from rl_distill.cli import main
from rl_distill.errors import UserError

HEAD = """
name = "sources"
seeds = 2
eval_episodes = 2
"""

# Stage A on two envs (one run per env and seed), each env's stage B starting from its own env's stage A; a
# multi-task student whose CartPole teacher is stage A (its CartPole run); a multi-task source "m" (one run per
# seed) that cells on each env start from, and a single-env source "s" a cell on another env has as its teacher.
PER_ENV = (
    HEAD
    + """
[[grid]]
method = "on-policy"
env = ["CartPole-v1", "Acrobot-v1"]
steps = 512
label = "a"
[[grid]]
method = "on-policy"
env = ["CartPole-v1", "Acrobot-v1"]
steps = 512
init_from = "cell:a"
label = "b"
[[grid]]
method = "on-policy"
env = [["CartPole-v1", "Acrobot-v1"]]
teacher = { "CartPole-v1" = "cell:a", default = "ppo-{env}" }
steps = 512
label = "both"
[[grid]]
method = "on-policy"
env = [["CartPole-v1", "Acrobot-v1"]]
steps = 512
label = "m"
[[grid]]
method = "on-policy"
env = ["CartPole-v1", "Acrobot-v1"]
steps = 512
init_from = "cell:m"
label = "from m"
[[grid]]
method = "on-policy"
env = "CartPole-v1"
steps = 512
label = "s"
[[grid]]
method = "on-policy"
env = [["CartPole-v1", "Acrobot-v1"]]
teacher = { "CartPole-v1" = "cell:s", default = "ppo-{env}" }
steps = 512
init_from = "cell:s"
label = "from s"
"""
)


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "sources.toml"
    p.write_text(text)
    return str(p)


def _cell(cells, label: str, envs: str, seed: int):
    (c,) = [c for c in cells if c.label == label and "+".join(c.envs) == envs and c.seed == seed]
    return c


def test_a_series_with_a_run_per_env_is_the_source_of_each_env_s_own_next_stage(tmp_path):
    cells = load_suite(_write(tmp_path, PER_ENV)).cells
    sources = same_seed_sources(cells)
    src = {c.key: [s.key for s in sources[c.key]] for c in cells}
    for seed in (0, 1):
        for env in ("CartPole-v1", "Acrobot-v1"):
            # b on each env starts from a's run on that env (it used to be a's first run, CartPole's, for both)
            assert src[_cell(cells, "b", env, seed).key] == [_cell(cells, "a", env, seed).key]
            # one run per seed (a multi-task student): every env's cell starts from it, as before
            assert src[_cell(cells, "from m", env, seed).key] == [_cell(cells, "m", "CartPole-v1+Acrobot-v1", seed).key]
        both = "CartPole-v1+Acrobot-v1"
        # a teacher for one env of a multi-task cell: the series' run on that env alone
        assert src[_cell(cells, "both", both, seed).key] == [_cell(cells, "a", "CartPole-v1", seed).key]
        # a single-env series used on a multi-task cell (continual's cell:A): its one run per seed, as before
        assert src[_cell(cells, "from s", both, seed).key] == [_cell(cells, "s", "CartPole-v1", seed).key]
    # The order runs are started in follows the same sources: a's Acrobot run before b's Acrobot run.
    depth = _depths(cells)
    assert {c.label: depth[c.key] for c in cells if c.seed == 0 and c.envs == ["Acrobot-v1"]} == {
        "a": 0,
        "b": 1,
        "from m": 1,
    }
    b_acro = _cell(cells, "b", "Acrobot-v1", 0)
    assert _Schedule(cells).waits[b_acro.key] == {_cell(cells, "a", "Acrobot-v1", 0).key}
    # Of a subset (the runs left to do) the sources are still picked among the whole suite's runs.
    todo = [c for c in cells if c.label == "b" or (c.label == "a" and c.envs == ["CartPole-v1"])]
    sub = same_seed_sources(todo, cells)
    assert sub[b_acro.key] == [] and [s.key for s in sub[_cell(cells, "b", "CartPole-v1", 0).key]] == [
        _cell(cells, "a", "CartPole-v1", 0).key
    ]


def test_a_run_resolves_its_cell_references_to_the_same_runs_folders(tmp_path):
    """What a run starts from and has as teachers (bench._resolve, from the runs folder's suite.json)."""
    cells = load_suite(_write(tmp_path, PER_ENV)).cells
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "suite.json").write_text(json.dumps({"cells": [asdict(c) for c in cells]}))
    for c in cells:  # every run finished, its run folder here
        d = runs / c.key / "run"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"run_dir": str(d)}))
    folder = {c.key: str(runs / c.key / "run") for c in cells}
    for env in ("CartPole-v1", "Acrobot-v1"):
        b = _cell(cells, "b", env, 1)
        assert _resolve(runs, "cell:a", b) == folder[_cell(cells, "a", env, 1).key]
    both = _cell(cells, "both", "CartPole-v1+Acrobot-v1", 1)
    assert _resolve(runs, "cell:a", both, "CartPole-v1") == folder[_cell(cells, "a", "CartPole-v1", 1).key]
    assert _resolve(runs, "ppo-Acrobot-v1", both, "Acrobot-v1") == "ppo-Acrobot-v1"


AMBIGUOUS = (
    HEAD
    + """
[[grid]]
method = "on-policy"
env = ["CartPole-v1", "Acrobot-v1"]
steps = 512
label = "a"
[[grid]]
method = "on-policy"
env = [["CartPole-v1", "Acrobot-v1"]]
steps = 512
init_from = "cell:a"
label = "multi from a"
"""
)


def test_a_reference_that_cannot_tell_which_run_is_a_one_line_error_at_load(tmp_path, capsys):
    # a has two runs a seed (CartPole, Acrobot), none on CartPole+Acrobot: which one the multi-task cell starts
    # from is not said.
    path = _write(tmp_path, AMBIGUOUS)
    with pytest.raises(UserError) as e:
        load_suite(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: grid block 2 (multi from a, CartPole-v1+Acrobot-v1): ")
    assert "'cell:a' is ambiguous" in msg and "on CartPole-v1; Acrobot-v1" in msg
    assert main(["bench", path, "--dry-run", "--out", str(tmp_path / "o"), "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'cell:a' is ambiguous" in err
    # Two runs of the series on the same env (a sweep under one label): as ambiguous.
    swept = AMBIGUOUS.replace('steps = 512\nlabel = "a"', 'steps = [512, 1024]\nlabel = "a"').replace(
        'env = [["CartPole-v1", "Acrobot-v1"]]', 'env = "Acrobot-v1"'
    )
    with pytest.raises(
        UserError, match=r"grid block 2 \(multi from a, Acrobot-v1\): 'cell:a' is ambiguous: series 'a' has 4"
    ):
        load_suite(_write(tmp_path, swept))
    # A teacher for one env: the series' run on that env alone settles it.
    teacher = AMBIGUOUS.replace('init_from = "cell:a"', 'teacher = { "Acrobot-v1" = "cell:a", default = "ppo-{env}" }')
    cells = load_suite(_write(tmp_path, teacher)).cells
    multi = _cell(cells, "multi from a", "CartPole-v1+Acrobot-v1", 0)
    assert [s.key for s in same_seed_sources(cells)[multi.key]] == [_cell(cells, "a", "Acrobot-v1", 0).key]


CHAIN = (
    HEAD
    + """
[[grid]]
method = "on-policy"
env = ["CartPole-v1", "Acrobot-v1"]
steps = 512
label = "first"
[[grid]]
method = "on-policy"
env = ["CartPole-v1", "Acrobot-v1"]
steps = 512
init_from = "cell:first"
label = "second"
[[grid]]
method = "on-policy"
env = "CartPole-v1"
teacher = "cell:second"
steps = 512
label = "third"
"""
)


def test_only_takes_along_the_runs_its_cells_start_from_or_have_as_teachers(tmp_path, capsys):
    path = _write(tmp_path, CHAIN)
    cells = load_suite(path).cells
    out, runs = tmp_path / "out", tmp_path / "runs"
    kw = dict(out=str(out), runs_dir=str(runs), progress=False, dry_run=True)
    c0, b0, a0 = (_cell(cells, x, "CartPole-v1", 0) for x in ("third", "second", "first"))
    c1, b1, a1 = (_cell(cells, x, "CartPole-v1", 1) for x in ("third", "second", "first"))
    # --only third: its teacher second (that series' CartPole run of the same seed) and the run second starts
    # from, first's CartPole run, come along; none on Acrobot.
    d = bench(path, only="third", **kw)
    assert d["runs"] == 6 and d["finished"] == 0
    assert d["to_run"] == [a0.key, a1.key, b0.key, b1.key, c0.key, c1.key]
    assert d["needed_by"] == {a0.key: [b0.key], a1.key: [b1.key], b0.key: [c0.key], b1.key: [c1.key]}
    assert main(["bench", path, "--only", "third", "--dry-run", "--out", str(out), "--runs-dir", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "4 of the runs not selected by --only but needed by those it selects" in text
    assert f"  to run (needed by {c0.key}): {b0.key}" in text and f"  to run: {c0.key}" in text
    # first's seed-0 run finished (its record in --out, its run folder here): used as it is, not run again.
    (out / "runs").mkdir(parents=True)
    (out / "runs" / f"{a0.key}.json").write_text(json.dumps({"cell": asdict(a0), "summary": {}}))
    d = bench(path, only="third", **kw)
    assert a0.key in d["to_run"] and d["for_weights"] == [a0.key] and d["finished"] == 0  # no student weights here
    (runs / a0.key / "run").mkdir(parents=True)
    (runs / a0.key / "run" / "summary.json").write_text(json.dumps({"run_dir": str(runs / a0.key / "run")}))
    d = bench(path, only="third", **kw)
    assert a0.key not in d["to_run"] and d["for_weights"] == [] and (d["runs"], d["finished"]) == (6, 1)
    assert main(["bench", path, "--only", "third", "--dry-run", "--out", str(out), "--runs-dir", str(runs)]) == 0
    assert f"  finished, used (needed by {b0.key}): {a0.key}" in capsys.readouterr().out
    # Selecting the source itself adds nothing; a selection without cell: references is as before.
    d = bench(path, only="first", **kw)
    assert (d["runs"], d["needed_by"]) == (4, {})
    assert not any(p.name != "runs" for p in out.iterdir()) and sorted(p.name for p in runs.iterdir()) == [a0.key]
