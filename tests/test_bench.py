"""`rl-distill bench` / `report`: suite expansion, idempotent and resumable grids, reports, Ray backend."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import signal
import statistics
from pathlib import Path

import numpy as np
import pytest

from rl_distill.bench import bench, load_suite
from rl_distill.cli import main
from rl_distill.errors import UserError
from rl_distill.report import _steps_to

TINY = """
name = "tiny"
description = "two tiny runs"
seeds = 2
eval_episodes = 5
curve_points = 2
curve_episodes = 2
[report]
kind = "efficiency"
baseline = "bc"
[[grid]]
method = "policy-distillation"
env = "CartPole-v1"
steps = 600
"""


def _suite(tmp_path: Path, text: str = TINY) -> str:
    p = tmp_path / "suite.toml"
    p.write_text(text)
    return str(p)


def test_suite_expands_the_grid(tmp_path):
    s = load_suite(
        _suite(
            tmp_path,
            """
name = "g"
seeds = 3
eval_episodes = 7
curve_points = 4
[[grid]]
method = ["dagger", "bc"]
env = ["CartPole-v1", "Acrobot-v1"]
student = ["mlp-8", "mlp-16"]
steps = { "CartPole-v1" = [500, 1000], "Acrobot-v1" = 700 }
sweep = { loss = ["nll", "kl"] }
label = "{method}-{loss}"
[[grid]]
method = "actor-mimic"
env = [["CartPole-v1", "Acrobot-v1"]]
teacher = "dqn-{env}"
curve_points = 8
curve_episodes = 2
""",
        )
    )
    # 2 methods x (CartPole: 2 budgets + Acrobot: 1) x 2 students x 2 losses x 3 seeds, + 3 multi-task seeds
    assert len(s.cells) == 2 * 3 * 2 * 2 * 3 + 3
    assert len({c.key for c in s.cells}) == len(s.cells)
    c = next(
        c
        for c in s.cells
        if c.method == "bc"
        and c.envs == ["Acrobot-v1"]
        and c.student == "mlp-16"
        and c.options == {"loss": "kl"}
        and c.seed == 2
    )
    assert (c.label, c.steps, c.teachers, c.tags) == (
        "bc-kl",
        700,
        ["ppo-Acrobot-v1"],
        {"student": "mlp-16", "steps": 700, "loss": "kl"},
    )
    mt = [c for c in s.cells if c.method == "actor-mimic"]
    assert mt[0].teachers == ["dqn-CartPole-v1", "dqn-Acrobot-v1"] and mt[0].envs == ["CartPole-v1", "Acrobot-v1"]
    # Evaluation settings: the suite's, unless a grid block sets its own.
    assert (c.eval_episodes, c.curve_points, c.curve_episodes) == (7, 4, 10) and (
        mt[0].eval_episodes,
        mt[0].curve_points,
        mt[0].curve_episodes,
    ) == (7, 8, 2)
    assert (
        load_suite(_suite(tmp_path, TINY), seeds=5).seeds == 5
        and len(load_suite(_suite(tmp_path, TINY), seeds=5).cells) == 5
    )


@pytest.mark.parametrize(
    "text, msg",
    [
        ("[[grid]]\nmethod = 'nope'\nenv = 'CartPole-v1'\n", "unknown method 'nope'"),
        ("[[grid]]\nmethod = 'bc'\nenv = 'CartPole-v1'\nsteps_ = 3\n", "unknown keys ['steps_']"),
        ("[[grid]]\nmethod = 'bc'\n", "needs 'method' and 'env'"),
        ("name = \n", "not valid TOML"),
        ("name = 'x'\n", "no [[grid]] runs"),
    ],
)
def test_bad_suites_are_one_line_errors(tmp_path, text, msg):
    with pytest.raises(UserError, match=None) as e:
        load_suite(_suite(tmp_path, text))
    assert msg in str(e.value)


def test_unknown_suite_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "no-such-suite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown suite 'no-such-suite'" in err[0]
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a benchmark results folder nor a runs folder" in capsys.readouterr().err


def test_shipped_suites_parse():
    root = Path(__file__).resolve().parents[1] / "experiments"
    names = sorted(p.stem for p in root.glob("*.toml"))
    assert {"lineage", "compression", "multitask", "dagger-vs-bc", "efficiency", "atari-lineage"} <= set(names)
    for n in names:
        s = load_suite(str(root / f"{n}.toml"))
        assert s.seeds >= 3 and s.cells


def test_committed_results_match_their_suites():
    """Each committed results folder is drawn from the grid its suite file declares now: the snapshot's cells
    (what the report reads) are the file's, and every record is one of them (records moved between suites, as
    compression's KL tau = 1 runs were into compression-tau1, land where their cells are)."""
    root = Path(__file__).resolve().parents[1]
    snapshots = sorted((root / "results").glob("**/suite.json"))
    assert len(snapshots) >= 7
    for sj in snapshots:
        snap = json.loads(sj.read_text())
        keys = [c.key for c in load_suite(str(root / snap["path"]), snap["seeds"]).cells]
        assert [c["key"] for c in snap["cells"]] == keys, sj
        assert snap["out"] == str(sj.parent.relative_to(root)), sj
        strays = {p.stem for p in (sj.parent / "runs").glob("*.json")} - set(keys)
        assert not strays, (sj, sorted(strays)[:3])


def test_bench_local_workers_idempotent_resume_and_report(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "res"
    suite = _suite(tmp_path)
    r = bench(suite, workers=2, runs_dir=str(runs), out=str(out), progress=False)
    assert (r["runs"], r["ran"], r["failed"]) == (2, 2, 0)
    summaries = {p.parent.parent.name: json.loads(p.read_text()) for p in runs.glob("*/*/summary.json")}
    assert len(summaries) == 2
    # Idempotent: nothing left to run.
    assert bench(suite, workers=2, runs_dir=str(runs), out=str(out), progress=False)["ran"] == 0
    # The table is the runs': mean percent over seeds equals the runs' mean.
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert len(rows) == 2
    summ = list(csv.DictReader(open(out / "summary.csv")))
    assert float(summ[0]["percent"]) == pytest.approx(statistics.mean(float(r["percent"]) for r in rows))
    assert {"README.md", "curves.png", "aggregate.png"} <= {p.name for p in out.iterdir()}
    # Each run has a learning curve: step 0 (untrained) and the intermediate point(s) and the final one.
    sc = [json.loads(line) for p in runs.glob("*/*/scalars.jsonl") for line in p.read_text().splitlines()]
    steps = sorted({x["step"] for x in sc if "eval/mean_reward" in x})
    assert steps[0] == 0 and 300 <= steps[1] < 600 and steps[-1] == 600
    # A finished cell keeps its student and record but not its checkpoint: it is skipped, never resumed.
    assert not list(runs.glob("*/*/checkpoint.pt")) and len(list(runs.glob("*/*/student.safetensors"))) == 2
    # A cell that dies after a checkpoint (no summary, no record) continues from it with --resume.
    from rl_distill.distill import Context

    key, s0 = sorted(summaries.items())[0]
    shutil.rmtree(runs / key)
    (out / "runs" / f"{key}.json").unlink()
    write = Context.maybe_checkpoint

    def write_then_die(self, optimizer, state=None, force=False):
        write(self, optimizer, state, force=True)
        if self.env_steps >= 300:
            raise RuntimeError("killed")

    with (
        pytest.MonkeyPatch.context() as mp,
        pytest.raises(UserError, match="1 of 1 runs failed .*RuntimeError: killed"),
    ):
        mp.setattr(Context, "maybe_checkpoint", write_then_die)
        bench(suite, workers=1, runs_dir=str(runs), out=str(out), progress=False, resume=True)
    (ck,) = (runs / key).glob("*/checkpoint.pt")
    run_dir = ck.parent
    assert not (run_dir / "summary.json").exists() and not (out / "runs" / f"{key}.json").exists()
    capsys.readouterr()
    r = bench(suite, workers=1, runs_dir=str(runs), out=str(out), progress=False, resume=True)
    assert (r["ran"], r["failed"]) == (1, 0) and f"resuming {run_dir}" in capsys.readouterr().err
    s1 = json.loads((run_dir / "summary.json").read_text())
    assert s1["env_steps"] == s0["env_steps"] and 300 <= s1["resumed_from_step"] < 600 and not ck.exists()
    # Without --resume an interrupted cell starts over in a fresh folder.
    (run_dir / "summary.json").unlink()
    (out / "runs" / f"{key}.json").unlink()
    r = bench(suite, workers=1, runs_dir=str(runs), out=str(out), progress=False)
    (s2_path,) = (runs / key).glob("*/summary.json")  # the interrupted folder is gone, one fresh run in its place
    # (the fresh folder may have the old one's name: both named by the same second on a fast machine)
    s2 = json.loads(s2_path.read_text())
    assert r["ran"] == 1 and s2["resumed_from_step"] is None
    assert len([p for p in (runs / key).iterdir() if p.is_dir()]) == 1
    assert s2["student_score"] == s0["student_score"]  # same seed, same numbers
    # `rl-distill report` regenerates the same tables from the folders.
    before = (out / "summary.csv").read_text()
    (out / "summary.csv").unlink()
    assert main(["report", str(runs), "--out", str(out)]) == 0
    assert (out / "summary.csv").read_text() == before
    # The run folders are scratch: on a fresh clone (records only) nothing runs again and the report is the same.
    shutil.rmtree(runs)
    (out / "summary.csv").unlink()
    assert bench(suite, workers=1, runs_dir=str(runs), out=str(out), progress=False)["ran"] == 0
    assert (out / "summary.csv").read_text() == before
    (out / "summary.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "summary.csv").read_text() == before
    # A results folder drawn elsewhere (--out) brings its records along: the same tables, not an empty report.
    copy = tmp_path / "copy"
    assert main(["report", str(out), "--out", str(copy)]) == 0
    assert (copy / "summary.csv").read_text() == before
    assert sorted(p.read_bytes() for p in (copy / "runs").glob("*.json")) == sorted(
        p.read_bytes() for p in (out / "runs").glob("*.json")
    )
    rec = json.loads((out / "runs" / f"{key}.json").read_text())
    assert sorted({r["step"] for r in rec["curve"]}) == steps and rec["cell"]["key"] == key


def test_failed_run_is_reported_and_the_grid_goes_on(tmp_path, capsys, monkeypatch):
    import rl_distill.methods.expert_iteration as expert_iteration

    def broken(ctx, cfg):  # a failure inside training, which no check before the run foresees
        raise RuntimeError("the search broke")

    monkeypatch.setattr(expert_iteration, "train", broken)
    suite = _suite(
        tmp_path,
        TINY.replace('method = "policy-distillation"', 'method = ["policy-distillation", "dagger"]').replace(
            "[report]", "[[grid]]\nmethod = 'expert-iteration'\nenv = 'CartPole-v1'\n[report]"
        ),
    )
    runs = tmp_path / "runs"
    with pytest.raises(UserError, match=r"2 of 6 runs failed"):
        bench(suite, workers=1, runs_dir=str(runs), out=str(tmp_path / "res"), progress=False)
    assert len(list(runs.glob("*/error.txt"))) == 2
    assert len(list(runs.glob("*/*/summary.json"))) == 4
    assert len(list(csv.DictReader(open(tmp_path / "res" / "runs.csv")))) == 4


def test_missing_teacher_stops_the_grid_before_it_starts(tmp_path):
    suite = _suite(tmp_path, TINY.replace("steps = 600", 'steps = 600\nteacher = "no-such-teacher"'))
    with pytest.raises(UserError, match="teachers that are not here: no-such-teacher"):
        bench(suite, workers=1, runs_dir=str(tmp_path / "runs"), out=str(tmp_path / "res"), progress=False)
    assert not list((tmp_path / "runs").glob("*/*"))


def test_steps_to_threshold_from_the_curve():
    row = {
        "env": "Acrobot-v1",
        "teacher_score": -80.0,
        "curve": [(0, -500.0, 0.0), (1000, -130.0, 2.0), (2000, -110.0, 4.5), (3000, -90.0, 7.0)],
    }
    # 90% of the way from -500 to -80 is -122: first reached at step 2000.
    assert _steps_to(row, 0.9) == (2000, 4.5)
    assert _steps_to(row, 0.99) == (None, None)


def test_teacher_evaluation_cache(tmp_path, monkeypatch):
    import rl_distill.evaluation as ev
    from rl_distill.teachers import load_teacher

    t = load_teacher("ppo-CartPole-v1")
    a = ev.evaluate_teacher(t, "CartPole-v1", 3, 7, tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1

    def boom(*a, **k):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(ev, "evaluate", boom)
    b = ev.evaluate_teacher(t, "CartPole-v1", 3, 7, tmp_path)
    assert b == a and isinstance(a, dict)
    with pytest.raises(AssertionError):  # another seed is another evaluation
        ev.evaluate_teacher(t, "CartPole-v1", 3, 8, tmp_path)


def test_ray_backend_two_tiny_runs(tmp_path):
    ray = pytest.importorskip("ray")
    runs, out = tmp_path / "runs", tmp_path / "res"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        r = bench(_suite(tmp_path), workers=2, runs_dir=str(runs), out=str(out), progress=False, backend="ray")
    finally:
        ray.shutdown()
    # ray.init's own SIGTERM handler does not outlive the bench (tests in this process count on the defaults).
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert (r["ran"], r["failed"]) == (2, 0)
    # Same layout as the local backend: cell.json + run folder with summary, scalars, student.
    for cell in runs.iterdir():
        if cell.name.startswith("_") or cell.is_file():
            continue
        (run_dir,) = [p for p in cell.iterdir() if p.is_dir()]
        assert {"summary.json", "scalars.jsonl", "student.safetensors", "config.json"} <= {
            p.name for p in run_dir.iterdir()
        }
        assert (cell / "cell.json").exists()
    pct = [float(x["percent"]) for x in csv.DictReader(open(out / "runs.csv"))]
    assert len(pct) == 2 and np.isfinite(pct).all()


def test_transfer_from_another_cell(tmp_path, capsys):
    """A cell with init_from runs after its source and starts from its student: the shared layers, and the heads
    where the source played the same envs."""
    import torch
    from safetensors.torch import load_file

    from rl_distill.distill import transfer_weights
    from rl_distill.students import make_student

    suite = _suite(
        tmp_path,
        """
name = "t"
seeds = 1
eval_episodes = 3
[[grid]]
method = "ppo"
env = "CartPole-v1"
steps = 512
options = { num_envs = 4, n_steps = 128 }
init_from = "cell:src"
label = "from-src"
[[grid]]
method = "policy-distillation"
env = "CartPole-v1"
steps = 500
label = "src"
""",
    )
    runs = tmp_path / "runs"
    assert bench(suite, workers=2, runs_dir=str(runs), out=str(tmp_path / "res"), progress=False)["failed"] == 0
    (src,) = runs.glob("src__*/*/summary.json")
    (dst,) = runs.glob("from-src__*/*/summary.json")
    # The record keeps the training games' returns too, as the run logged them.
    logged = [
        (r["step"], r["rollout/ep_rew_mean"])
        for r in map(json.loads, (dst.parent / "scalars.jsonl").read_text().splitlines())
        if "rollout/ep_rew_mean" in r
    ]
    rec = json.loads(next((tmp_path / "res" / "runs").glob("from-src__*.json")).read_text())
    assert logged and [(r["step"], r["rollout/ep_rew_mean"]) for r in rec["train_curve"]] == logged
    init = json.loads(dst.read_text())["init"]
    # Same env as the source: a continuation, so the heads come too (the trunks' 4 layers and 2 heads, weights and
    # biases).
    assert init["from"] == str(src.parent) and init["tensors"] == 12 and init["heads"] == ["CartPole-v1"]
    # What transfer copies, exactly: every shared tensor; the heads only where the source played the same envs.
    w = load_file(str(src.parent / "student.safetensors"))
    for envs, heads in ((["CartPole-v1"], True), (["Other-v0"], False), (None, False)):
        s = make_student("mlp-64-64", [(4,)], [2], seed=123)
        before = {k: v.clone() for k, v in s.state_dict().items()}
        info = transfer_weights(s, src.parent, envs)
        assert info["heads"] == (["CartPole-v1"] if heads else []) and info["tensors"] == (12 if heads else 8)
        for k, v in s.state_dict().items():
            expect = before[k] if k.startswith(("heads.", "value_heads.")) and not heads else w[k]
            assert torch.equal(v, expect), (envs, k)
        assert not torch.equal(before["heads.0.weight"], w["heads.0.weight"])  # so the check above can fail
    with pytest.raises(UserError, match="no student.safetensors"):
        transfer_weights(s, tmp_path)
    # On a fresh clone the source's record is there but not its weights: a transfer run still to do runs it again.
    shutil.rmtree(runs)
    next((tmp_path / "res" / "runs").glob("from-src__*.json")).unlink()
    capsys.readouterr()
    r = bench(suite, workers=1, runs_dir=str(runs), out=str(tmp_path / "res"), progress=False)
    assert (r["ran"], r["failed"]) == (2, 0)
    assert "2 runs, 1 already finished, 2 to run, 1 of them finished elsewhere and run again" in capsys.readouterr().err


def test_sweep_report(tmp_path):
    """A sweep suite: one table row per swept value, a plot against the measured x (labels here)."""
    suite = _suite(
        tmp_path,
        """
name = "sw"
seeds = 1
eval_episodes = 3
[report]
kind = "sweep"
x = "teacher_queries"
y = "score"
[[grid]]
method = ["bc", "dagger"]
env = "CartPole-v1"
student = "mlp-8"
steps = [300, 600]
""",
    )
    out = tmp_path / "res"
    bench(suite, workers=1, runs_dir=str(tmp_path / "runs"), out=str(out), progress=False)
    summ = list(csv.DictReader(open(out / "summary.csv")))
    assert sorted((r["label"], r["tag_steps"]) for r in summ) == [
        ("bc", "300"),
        ("bc", "600"),
        ("dagger", "300"),
        ("dagger", "600"),
    ]
    assert all(abs(int(r["teacher_queries"]) - int(r["tag_steps"])) < 16 for r in summ)  # every visited state labelled
    assert (out / "sweep.png").exists() and not (out / "aggregate.png").exists()


def test_runs_made_with_other_teacher_weights_run_again(tmp_path, capsys):
    import shutil

    from rl_distill import bench as bench_mod
    from rl_distill.teachers import ZOO_DIR

    def use(tid):
        for ext in (".json", ".safetensors"):
            shutil.copy(ZOO_DIR / f"{tid}{ext}", tmp_path / f"teacher{ext}")
        bench_mod._FINGERPRINTS.clear()  # a new process would see the new weights

    use("ppo-CartPole-v1")
    suite = _suite(tmp_path, TINY.replace("steps = 600", f"steps = 600\nteacher = '{tmp_path / 'teacher.json'}'"))
    runs = tmp_path / "runs"
    assert bench(suite, workers=1, runs_dir=str(runs), out=str(tmp_path / "res"), progress=False)["ran"] == 2
    assert bench(suite, workers=1, runs_dir=str(runs), out=str(tmp_path / "res"), progress=False)["ran"] == 0
    use("dqn-CartPole-v1")  # the "same" teacher, retrained
    capsys.readouterr()
    assert bench(suite, workers=1, runs_dir=str(runs), out=str(tmp_path / "res"), progress=False)["ran"] == 2
    assert "2 finished runs were made with other teacher weights" in capsys.readouterr().err
    assert len(list(runs.glob("_stale_*"))) == 2


def test_two_bench_processes_share_a_runs_folder(tmp_path, capsys):
    """A cell another process is running is left to it (no record, not a failure); a cell that process has
    finished meanwhile is taken from its folder, not trained again."""
    from rl_distill import bench as bench_mod

    suite, runs, out = _suite(tmp_path), tmp_path / "runs", tmp_path / "res"
    keys = sorted(c.key for c in load_suite(suite).cells)
    with bench_mod._cell_lock(runs, keys[0]):  # "the other process" holds the first cell
        r = bench(suite, workers=1, runs_dir=str(runs), out=str(out), progress=False)
    assert (r["ran"], r["busy"], r["failed"]) == (1, 1, 0)
    assert "running in another bench process" in capsys.readouterr().err
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == [keys[1]]
    assert not list((runs / keys[0]).glob("*/summary.json"))
    # The other process finishes the cell after this grid listed it as to do: run_cell returns that run.
    cell = next(c for c in load_suite(suite).cells if c.key == keys[1])
    done = next((runs / keys[1]).glob("*/summary.json"))
    before = (done.stat().st_mtime_ns, sorted(p.name for p in (runs / keys[1]).iterdir()))
    s = bench_mod.run_cell(dataclasses.asdict(cell), str(runs), resume=True)
    assert s == json.loads(done.read_text())
    assert (done.stat().st_mtime_ns, sorted(p.name for p in (runs / keys[1]).iterdir())) == before
    # Once the lock is free the cell runs; the lock does not outlive its holder.
    assert bench(suite, workers=1, runs_dir=str(runs), out=str(out), progress=False)["ran"] == 1
    assert len(list((out / "runs").glob("*.json"))) == 2


def test_records_are_not_git_ignored():
    """The records are what outlives a machine: they must be committable (a `runs/` ignore rule once hid them).
    Only the default suite's are ignored, so that `make bench` on a fresh clone runs it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    probe = [
        "results/efficiency/runs/x.json",
        "results/compression/suite.json",
        "results/lineage/runs/x.json",
        "runs/bench/lineage/x/summary.json",
    ]
    r = subprocess.run(["git", "check-ignore", *probe], cwd=root, capture_output=True, text=True)
    assert r.stdout.split() == ["results/lineage/runs/x.json", "runs/bench/lineage/x/summary.json"]


def test_workers_end_with_their_bench_process(tmp_path):
    """A bench process killed outright (SIGKILL: no cleanup of its own) takes its worker processes with it; an
    orphaned worker would go on training its cell unseen."""
    import subprocess
    import sys
    import textwrap
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
        import multiprocessing as mp, os, sys, time
        from concurrent.futures import ProcessPoolExecutor
        from rl_distill.bench import _worker_init

        def work(path):
            open(path + ".tmp", "w").write(str(os.getpid()))
            os.replace(path + ".tmp", path)
            time.sleep(300)

        if __name__ == "__main__":
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_worker_init, """
            """initargs=(os.getpid(),)) as pool:
                pool.submit(work, sys.argv[1])
                time.sleep(300)
    """
        )
    )
    pidfile = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, str(script), str(pidfile)])

    def alive(pid):
        try:
            return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()  # a zombie has ended
        except FileNotFoundError:
            return False

    try:
        for _ in range(600):
            if pidfile.exists():
                break
            time.sleep(0.1)
        worker = int(pidfile.read_text())
        assert alive(worker)
    finally:
        parent.kill()
        parent.wait()
    for _ in range(200):
        if not alive(worker):
            break
        time.sleep(0.1)
    assert not alive(worker), "the worker outlived its bench process"


def test_suite_found_from_another_working_directory(tmp_path, monkeypatch):
    from rl_distill.records import CHECKOUT_SUITES, suite_path

    assert suite_path("lineage") == Path("experiments/lineage.toml")  # from the checkout: the path records keep
    monkeypatch.chdir(tmp_path)
    assert suite_path("lineage") == CHECKOUT_SUITES / "lineage.toml"
    with pytest.raises(UserError, match="unknown suite 'nope'; known: .*lineage"):
        suite_path("nope")


def test_records_made_with_older_defaults_are_listed_and_rerun_on_request(tmp_path, capsys):
    """A record whose method config differs from what its cell resolves to today (a default changed since) is kept
    and listed in the report with what changed; --rerun-changed runs it again. A setting the record lacks counts only
    where today's env defaults set it away from the Config's default (ppo's rl-zoo3 settings on CartPole)."""
    from rl_distill.bench import changed_defaults

    suite = _suite(
        tmp_path,
        """
name = "old"
seeds = 1
eval_episodes = 2
[[grid]]
method = "ppo"
env = "CartPole-v1"
steps = 512
""",
    )
    runs, out = str(tmp_path / "runs"), tmp_path / "res"
    assert bench(suite, workers=1, runs_dir=runs, out=str(out), progress=False)["ran"] == 1
    (rec_path,) = (out / "runs").glob("*.json")
    rec = json.loads(rec_path.read_text())
    cfg = rec["summary"]["method_config"]
    assert cfg["n_steps"] == 32 and cfg["ent_coef"] == 0.0  # rl-zoo3's CartPole entry, not the Config's defaults
    assert changed_defaults(load_suite(suite).cells, out) == {}
    cfg["gamma"] = 0.5  # as if gamma's default had changed since the run
    del cfg["n_steps"], cfg["anneal_lr"]  # as if these settings had been added since
    rec_path.write_text(json.dumps(rec))
    (key,) = changed_defaults(load_suite(suite).cells, out)
    # n_steps: today's 32 is not the Config's default 128, so the run did not have it; anneal_lr is at its default.
    assert changed_defaults(load_suite(suite).cells, out)[key] == "gamma 0.5 -> 0.98, n_steps (none) -> 32"
    capsys.readouterr()
    assert bench(suite, workers=1, runs_dir=runs, out=str(out), progress=False)["ran"] == 0
    assert "1 finished runs were made with other method defaults" in capsys.readouterr().err
    text = (out / "README.md").read_text()
    assert "## Runs made with older defaults" in text and "gamma 0.5 -> 0.98, n_steps (none) -> 32" in text
    assert bench(suite, workers=1, runs_dir=runs, out=str(out), progress=False, rerun_changed=True)["ran"] == 1
    assert json.loads(rec_path.read_text())["summary"]["method_config"]["gamma"] == 0.98
    assert "older defaults" not in (out / "README.md").read_text()


def test_only_selects_by_key_or_label_and_dry_run_says_what_would_run_writing_nothing(tmp_path):
    """A typo in --only (or a label's spaces where the key has dashes) used to run 0 runs and rewrite the report."""
    suite = _suite(tmp_path, TINY.replace("steps = 600", 'steps = 600\nlabel = "pd short"'))
    out = tmp_path / "out"
    with pytest.raises(UserError, match="matches no cell of tiny"):
        bench(suite, out=str(out), runs_dir=str(tmp_path / "runs"), progress=False, only="pd-long")
    assert not out.exists()
    # the label as written in the suite selects its cells too, though no key holds "pd short"
    assert all("pd short" not in c.key for c in load_suite(suite, 2).cells)
    r = bench(suite, out=str(out), runs_dir=str(tmp_path / "runs"), progress=False, only="pd short")
    assert (r["runs"], r["ran"]) == (2, 2)
    # --dry-run reads the records and says what a run would do, writing nothing.
    keys = sorted(c.key for c in load_suite(suite, 2).cells)
    shutil.copy(out / "runs" / f"{keys[0]}.json", out / "runs" / "gone__CartPole-v1__0__s0.json")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    d = bench(suite, seeds=3, out=str(out), progress=False, dry_run=True)
    assert (d["runs"], d["finished"], d["orphans"]) == (3, 2, ["gone__CartPole-v1__0__s0"])
    assert d["to_run"] == [c.key for c in load_suite(suite, 3).cells if c.seed == 2] and not d["other_teachers"]
    with pytest.MonkeyPatch.context() as mp:  # a retrained teacher: both finished runs would run again
        mp.setattr("rl_distill.bench.teacher_fingerprints", lambda teachers, envs=None: ["new"] * len(teachers))
        d = bench(suite, out=str(out), progress=False, dry_run=True)
    assert (d["finished"], sorted(d["other_teachers"]), sorted(d["to_run"])) == (0, keys, keys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["bench", suite, "--out", str(out), "--dry-run"]) == 0
    # The report lists the records made with other teacher weights (cells an --only left out keep them).
    assert "other teacher weights" not in (out / "README.md").read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rl_distill.bench.teacher_fingerprints", lambda teachers, envs=None: ["new"] * len(teachers))
        assert main(["report", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert "## Runs made with other teacher weights" in text and "| pd short | CartPole-v1 (seeds 0, 1) |" in text
