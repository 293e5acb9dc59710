"""The machinery of the continual suite: a finished run's student as a teacher, heads a student keeps without
training them (scored on the curve and at the end), heads carried over by game, on-policy distillation with a
teacher per task, and bench stages chained through ``cell:LABEL``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rl_distill import bench as bench_module
from rl_distill.bench import _depths, _Schedule, bench, load_suite
from rl_distill.distill import RunSpec, load_student, run
from rl_distill.errors import TeacherError, UserError
from rl_distill.evaluation import teacher_fingerprint
from rl_distill.methods import get_method
from rl_distill.teachers import load_teacher


def _run(tmp_path: Path, method: str, teachers: list[str], steps: int, **kw) -> dict:
    spec = RunSpec(
        method=method,
        teachers=teachers,
        steps=steps,
        progress=False,
        tensorboard=False,
        eval_episodes=3,
        runs_dir=str(tmp_path / "runs"),
        **kw,
    )
    return run(get_method(method), spec)


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Stage 1: on-policy distillation of CartPole into a student that keeps an Acrobot head; stage 2: Acrobot
    from stage 1's student, keeping CartPole."""
    tmp = tmp_path_factory.mktemp("continual")
    s1 = _run(tmp, "on-policy", ["ppo-CartPole-v1"], 1024, keep=["Acrobot-v1"])
    s2 = _run(
        tmp,
        "on-policy",
        ["ppo-Acrobot-v1"],
        1024,
        keep=["CartPole-v1"],
        init_from=s1["run_dir"],
        eval_every=512,
        curve_episodes=2,
    )
    return tmp, s1, s2


def test_a_finished_run_is_a_teacher_with_one_head_per_game(stages):
    _, s1, _ = stages
    student = load_student(s1["run_dir"])
    obs = torch.randn(5, 4)
    t = load_teacher(s1["run_dir"])  # default: the run's first game
    assert t.env_id == "CartPole-v1" and t.obs_shape == (4,) and t.n_actions == 2 and t.kind == "actor_critic"
    assert torch.equal(t.logits(obs), student(obs, 0)["logits"])
    assert torch.equal(t.value(obs), student(obs, 0)["value"])
    acro = load_teacher(s1["run_dir"], env_id="Acrobot-v1")
    obs6 = torch.randn(5, 6)
    assert acro.n_actions == 3 and torch.equal(acro.logits(obs6), student(obs6, 1)["logits"])
    # The evaluation cache tells the two heads apart.
    assert teacher_fingerprint(t) != teacher_fingerprint(acro)
    with pytest.raises(TeacherError) as e:
        load_teacher(s1["run_dir"], env_id="MountainCar-v0")
    assert "\n" not in str(e.value) and "no head for MountainCar-v0" in str(e.value)


def test_kept_heads_are_scored_but_not_trained(stages):
    _, s1, s2 = stages
    assert s1["kept_envs"] == ["Acrobot-v1"] and s2["kept_envs"] == ["CartPole-v1"]
    assert [t["env"] for t in s2["tasks"]] == ["Acrobot-v1", "CartPole-v1"]
    assert s2["tasks"][1]["trained"] is False and "trained" not in s2["tasks"][0]
    assert s2["tasks"][1]["teacher"] == "ppo-CartPole-v1"
    # The heads came by game, in the new order (stage 1: CartPole, Acrobot; stage 2: Acrobot, CartPole).
    assert s2["init"]["heads"] == ["Acrobot-v1", "CartPole-v1"]
    w1 = load_file(str(Path(s1["run_dir"]) / "student.safetensors"))
    w2 = load_file(str(Path(s2["run_dir"]) / "student.safetensors"))
    # CartPole's head and input layer get no gradient in stage 2: unchanged; the shared trunk and Acrobot's head
    # trained.
    for k in ("heads.0.weight", "value_heads.0.bias", "inputs.4.0.weight"):
        k2 = k.replace(".0.", ".1.") if k.startswith(("heads", "value_heads")) else k
        assert torch.equal(w1[k], w2[k2]), k
    assert not torch.equal(w1["trunk.0.weight"], w2["trunk.0.weight"])
    assert not torch.equal(w1["heads.1.weight"], w2["heads.0.weight"])
    # The learning curve follows the kept game too (the last row: the final evaluation).
    rows = [json.loads(x) for x in (Path(s2["run_dir"]) / "scalars.jsonl").read_text().splitlines()]
    curve = [r for r in rows if "eval/mean_reward/CartPole-v1" in r]
    assert [r["step"] for r in curve] == [0, 512, 1024, 1024]
    assert all("eval/mean_reward/Acrobot-v1" in r for r in curve[:3])
    assert json.loads((Path(s2["run_dir"]) / "student.json").read_text())["envs"] == ["Acrobot-v1", "CartPole-v1"]


def test_on_policy_distils_several_teachers_one_head_each(stages):
    """The recovery stage: the stage-1 student teaches CartPole, the shipped teacher Acrobot, the tasks in turn."""
    tmp, s1, s2 = stages
    s3 = _run(tmp, "on-policy", [s1["run_dir"], "ppo-Acrobot-v1"], 1024, init_from=s2["run_dir"])
    assert s3["envs"] == ["CartPole-v1", "Acrobot-v1"] and s3["env_steps"] == 1024
    assert s3["init"]["heads"] == ["CartPole-v1", "Acrobot-v1"]
    assert s3["tasks"][0]["teacher"] == f"run:{s1['run_dir']}"
    w2 = load_file(str(Path(s2["run_dir"]) / "student.safetensors"))
    w3 = load_file(str(Path(s3["run_dir"]) / "student.safetensors"))
    # Both heads trained (stage 2 had Acrobot at 0 and CartPole at 1).
    assert not torch.equal(w2["heads.1.weight"], w3["heads.0.weight"])
    assert not torch.equal(w2["heads.0.weight"], w3["heads.1.weight"])
    assert all(np.isfinite(t["student_score"]["mean"]) for t in s3["tasks"])


def test_kept_envs_wrong_inputs_are_one_line(tmp_path, cli):
    for kw, match in (
        ({"envs": ["CartPole-v1"], "keep": ["CartPole-v1"]}, "trained on too"),
        ({"keep": ["Acrobot-v1"], "keep_teachers": ["a", "b"]}, "one --keep-teacher per --keep"),
        ({"keep": ["NoSuchEnv-v0"]}, "unknown env id"),
    ):
        with pytest.raises(UserError, match=match):
            RunSpec(method="bc", teachers=["ppo-CartPole-v1"], runs_dir=str(tmp_path), **kw)
    with pytest.raises(UserError, match="no shipped teacher ppo-MountainCar-v0"):
        _run(tmp_path, "bc", ["ppo-CartPole-v1"], 100, keep=["MountainCar-v0"])
    code, _, err = cli(
        "distill", "bc", "--teacher", "ppo-CartPole-v1", "--keep", "CartPole-v1", "--runs-dir", str(tmp_path)
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "trained on too" in err


CHAIN = """
name = "chain"
seeds = 1
eval_episodes = 2
[[grid]]
method = "on-policy"
env = [["CartPole-v1", "Acrobot-v1"]]
teacher = { "CartPole-v1" = "cell:a", default = "ppo-{env}" }
steps = 512
init_from = "cell:b"
label = "recover"
[[grid]]
method = "on-policy"
env = "Acrobot-v1"
keep = ["CartPole-v1"]
steps = 512
init_from = "cell:a"
label = "b"
[[grid]]
method = "on-policy"
env = "CartPole-v1"
keep = ["Acrobot-v1"]
steps = 512
label = "a"
"""


def test_bench_runs_chained_stages_in_order(tmp_path):
    suite_file = tmp_path / "chain.toml"
    suite_file.write_text(CHAIN)
    suite = load_suite(str(suite_file))
    depth = {c.label: d for c in suite.cells for k, d in _depths(suite.cells).items() if k == c.key}
    assert depth == {"a": 0, "b": 1, "recover": 2}
    (rec,) = [c for c in suite.cells if c.label == "recover"]
    assert rec.teachers == ["cell:a", "ppo-Acrobot-v1"]
    (b,) = [c for c in suite.cells if c.label == "b"]
    assert b.keep == ["CartPole-v1"] and b.keep_teachers == ["ppo-CartPole-v1"]
    runs, out = tmp_path / "runs", tmp_path / "res"
    assert bench(str(suite_file), workers=1, runs_dir=str(runs), out=str(out), progress=False)["failed"] == 0
    recs = {r["cell"]["label"]: r for r in map(json.loads, map(Path.read_text, (out / "runs").glob("*.json")))}
    a_dir, b_dir = recs["a"]["summary"]["run_dir"], recs["b"]["summary"]["run_dir"]
    assert recs["b"]["summary"]["init"]["from"] == a_dir
    s3 = recs["recover"]["summary"]
    assert s3["init"]["from"] == b_dir and s3["tasks"][0]["teacher"] == f"run:{a_dir}"
    # The stage-1 student's CartPole head is the teacher the record names.
    assert recs["recover"]["cell"]["teacher_fingerprints"][0] == teacher_fingerprint(
        load_teacher(a_dir, env_id="CartPole-v1")
    )


def test_bench_refuses_a_cycle_and_an_unknown_cell_teacher(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(CHAIN.replace('init_from = "cell:a"', 'init_from = "cell:recover"'))
    with pytest.raises(UserError, match="starts from itself"):
        load_suite(str(p))
    p.write_text(CHAIN.replace('"cell:a", default', '"cell:nope", default'))
    with pytest.raises(UserError, match="'cell:nope' names no series"):
        load_suite(str(p))


CHAIN2 = """
name = "chain2"
seeds = 2
eval_episodes = 2
[[grid]]
method = "on-policy"
env = "CartPole-v1"
steps = 512
label = "a"
[[grid]]
method = "on-policy"
env = "CartPole-v1"
steps = 512
init_from = "cell:a"
label = "b"
[[grid]]
method = "ppo"
env = "CartPole-v1"
steps = 512
init_from = "cell:b"
label = "c"
[[grid]]
method = "on-policy"
env = "CartPole-v1"
teacher = "cell:b"
steps = 512
label = "d"
"""


def test_local_schedule_ends_a_seed_s_chain_first_and_starts_a_cell_once_its_sources_end(tmp_path, monkeypatch):
    suite_file = tmp_path / "chain2.toml"
    suite_file.write_text(CHAIN2)
    cells = load_suite(str(suite_file)).cells
    name = {c.key: f"{c.label}{c.seed}" for c in cells}
    # Two workers: a0 and a1 start; b0 goes before c/d of any seed, and the moment a0 ends (not after a1 too).
    s = _Schedule(cells)
    assert [name[s.take().key], name[s.take().key]] == ["a0", "a1"] and s.take() is None
    s.ended(next(k for k in name if name[k] == "a0"))
    assert name[s.take().key] == "b0" and s.take() is None
    s.ended(next(k for k in name if name[k] == "b0"))
    assert [name[s.take().key], name[s.take().key]] == ["c0", "d0"] and s.take() is None
    # One worker runs in process, in the same order: each seed's chain whole, then the next seed.
    order = []

    def fake_run(cell, runs_root, resume, precision="auto"):
        order.append(f"{cell['label']}{cell['seed']}")
        return {"key": cell["key"], "ok": True}

    monkeypatch.setattr(bench_module, "_run_cell_safe", fake_run)
    assert [r["ok"] for r in bench_module._local(cells, tmp_path, 1, False)] == [True] * 8
    assert order == ["a0", "b0", "c0", "d0", "a1", "b1", "c1", "d1"]
