"""Every input surface checked before anything runs (issue 44): method options named by the flag typed, suite files
(a schema), teacher files, env ids, devices, output paths; divergence stopped in one line; no teacher overwritten;
no hang on 0, a huge network or an unreachable Ray; torch threads; and the smaller things (checkpoint and lock of a
finished run, --resume --steps, --runs-dir "", report of a copied folder, teachers eval on another env)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from helpers import distill, one_line_error
from safetensors.torch import load_file, save_file

import rl_distill.distill as distill_module
from rl_distill.bench import bench, load_suite
from rl_distill.distill import RunSpec, run
from rl_distill.errors import DivergedError, TeacherError, UserError
from rl_distill.guard import default_threads, torch_threads
from rl_distill.methods import get_method
from rl_distill.teachers import ZOO_DIR, load_teacher
from rl_distill.teachers.train import TrainConfig, export_run

TEACHER = "ppo-CartPole-v1"
ROOT = Path(__file__).resolve().parents[1]


def _distill_argv(tmp_path: Path, method: str, *extra: str) -> list[str]:
    return ["distill", method, "--teacher", TEACHER, "--runs-dir", str(tmp_path / "runs"), "--no-progress", *extra]


# --- method options: finite, in range, named by the flag typed ------------------------------------------------


@pytest.mark.parametrize(
    "method, flag, value, needle",
    [
        ("on-policy", "--lr", "nan", "--lr must be a finite number"),
        ("on-policy", "--lr", "-1", "--lr must be a finite number > 0"),
        ("on-policy", "--lr", "0", "--lr must be a finite number > 0"),
        ("kickstarting", "--distill-weight", "-1", "--distill-weight must be >= 0"),
        ("kickstarting", "--lambda", "-1", "--lambda must be >= 0"),
        ("kickstarting", "--lambda", "inf", "--lambda must be a finite number"),
        ("ppd", "--distill-weight", "-1", "--distill-weight must be a finite number > 0"),
        ("on-policy", "--student-fraction", "2", "--student-fraction must be in [0, 1]"),
        ("on-policy", "--lambda", "2", "--lambda must be in [0, 1]"),
        ("dagger", "--expert-schedule", "zigzag", "--expert-schedule 'zigzag': unknown beta schedule"),
        ("dagger", "--expert-p", "2", "--expert-p must be in [0, 1]"),
        ("ppo", "--epochs", "0", "--epochs must be an integer >= 1"),
        ("policy-distillation", "--tau", "inf", "--tau must be a finite number"),
        ("on-policy", "--clip", "-0.2", "--clip must be a finite number > 0"),
    ],
)
def test_method_options_refused_with_the_flag_typed(cli, tmp_path, method, flag, value, needle):
    one_line_error(*cli(*_distill_argv(tmp_path, method, flag, value))[::2], needle)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_library_messages_name_the_main_flag(tmp_path):
    with pytest.raises(UserError, match="--distill-weight must be a finite number > 0"):
        run(get_method("ppd"), RunSpec(method="ppd", teachers=[TEACHER], runs_dir=str(tmp_path), options={"lam": -1}))
    with pytest.raises(TypeError, match="--epochs must be an integer, got 2.0"):
        run(get_method("bc"), RunSpec(method="bc", teachers=[TEACHER], runs_dir=str(tmp_path), options={"epochs": 2.0}))
    for bad in ({"steps": 2.5}, {"seed": True}, {"teachers": "ppo-CartPole-v1"}, {"runs_dir": ""}, {"threads": 0}):
        with pytest.raises(UserError):
            RunSpec(**{"method": "bc", "teachers": [TEACHER], "runs_dir": str(tmp_path), **bad})
    assert not list(tmp_path.iterdir())


# --- envs, devices, output paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--env", "Blackjack-v1"], "MinAtar/<Game>-v1 and ALE/<Game>-v5"),
        (["--env", "Pendulum-v1"], "discrete actions"),
        (["--env", "NoSuchEnv-v0"], "unknown env id 'NoSuchEnv-v0'"),
        (["--device", "mps"], "--device 'mps'"),
        (["--device", "meta"], "--device 'meta'"),
        (["--device", "cuda:99"], "--device cuda:99"),
        (["--runs-dir", ""], "--runs-dir is empty"),
        (["--student", "mlp-" + "-".join(["8"] * 3000)], "3,000 hidden layers"),
        (["--student", "mlp-40000-40000"], "use a smaller student"),  # memory or compute, by the machine
        (["--threads", "0"], "--threads must be an integer >= 1"),
    ],
)
def test_envs_devices_paths_and_huge_students_refused(cli, tmp_path, extra, needle):
    argv = _distill_argv(tmp_path, "bc", *extra)
    if "--runs-dir" in extra:
        argv = ["distill", "bc", "--teacher", TEACHER, "--no-progress", *extra]
    one_line_error(*cli(*argv)[::2], needle)
    assert not (tmp_path / "runs").exists()


def test_a_student_too_slow_to_train_is_refused_with_an_estimate(monkeypatch):
    import rl_distill.students as students

    monkeypatch.setattr(students, "available_memory", lambda device="cpu": 2**50)
    with pytest.raises(UserError) as e:
        students.check_compute("mlp-40000-40000", [(4,)], [2], 20_000)
    text = str(e.value)
    assert "GFLOP a sample" in text and "s an env step on cpu" in text and "20,000 env steps would take ~" in text
    students.check_compute("nature", [(4, 84, 84)], [6], 10_000_000)  # the Nature CNN is never refused
    students.check_compute("mlp-" + "-".join(["64"] * 64), [(4,)], [2], 20_000)


def test_report_out_is_a_file_or_not_a_folder(cli, tmp_path):
    (tmp_path / "file").write_text("x")
    one_line_error(*cli("report", str(tmp_path / "file"))[::2], "not a folder")
    shutil.copytree(ROOT / "results" / "imperfect-teacher", tmp_path / "copy")
    one_line_error(*cli("report", str(tmp_path / "copy"), "--out", str(tmp_path / "file"))[::2], "a file, not a folder")


# --- divergence -------------------------------------------------------------------------------------------------


def test_divergence_stops_in_one_line_without_a_folder(tmp_path):
    with pytest.raises(DivergedError) as e:
        distill("policy-distillation", tmp_path, TEACHER, 2000, eval_episodes=2, loss="kl", tau=1e-300)
    text = str(e.value)
    assert "\n" not in text and "became non-finite at env step" in text and "--tau (now 1e-300)" in text, text
    assert "no checkpoint had been written" in text
    assert not list(tmp_path.iterdir())  # nothing scored, nothing left


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """Weights that turn nan after a checkpoint: the run stops at its next log, names the step, and the checkpoint on
    disk (written before) is the good one, kept with the run folder."""
    from rl_distill.distill import Context

    write = Context.maybe_checkpoint

    def write_then_break(self, optimizer, state=None, force=False):
        write(self, optimizer, state, force)
        if self.env_steps >= 512:
            with torch.no_grad():
                next(self.student.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(Context, "maybe_checkpoint", write_then_break)
    with pytest.raises(DivergedError) as e:
        distill("policy-distillation", tmp_path, TEACHER, 2000, eval_episodes=2, checkpoint_every_s=0)
    text = str(e.value)
    (run_dir,) = tmp_path.iterdir()
    assert "\n" not in text and f"its last good checkpoint (env step 512) is kept in {run_dir}" in text, text
    assert "became non-finite at env step" in text and not (run_dir / "summary.json").exists()
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ck["env_steps"] == 512 and all(torch.isfinite(v).all() for v in ck["student"].values())


def test_nonfinite_weight_from_one_norm_pass_names_what_the_walk_names():
    """The guard's weight check (every chunk of play) answers from one pass over the parameters' norms and walks
    them one by one only where a norm is not finite: the same answer as the walk, also for finite weights whose
    norm passes float range and for parameters of several dtypes."""
    from rl_distill.guard import all_finite, nonfinite_weight

    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    assert nonfinite_weight(net) is None and all_finite(list(net.parameters()))
    with torch.no_grad():
        net[1].weight[0, 0] = float("inf")
        assert nonfinite_weight(net) == "1.weight"
        net[0].bias[1] = float("nan")
        assert nonfinite_weight(net) == "0.bias"  # the first in parameter order
        net[0].bias[1] = net[1].weight[0, 0] = 1e30  # finite, but its square is past float range
        assert not all_finite(list(net.parameters())) and nonfinite_weight(net) is None
    net[1].double()
    assert not all_finite(list(net.parameters())) and nonfinite_weight(net) is None
    net[1].weight.data[0, 1] = float("-inf")
    assert nonfinite_weight(net) == "1.weight"


def test_a_teacher_with_nan_weights_is_refused(tmp_path, cli):
    state = load_file(str(ZOO_DIR / f"{TEACHER}.safetensors"))
    state["action_net.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "t.safetensors"))
    meta = json.loads((ZOO_DIR / f"{TEACHER}.json").read_text())
    meta["weights_sha256"] = hashlib.sha256((tmp_path / "t.safetensors").read_bytes()).hexdigest()
    (tmp_path / "t.json").write_text(json.dumps(meta))
    with pytest.raises(TeacherError, match="action_net.weight holds 1 non-finite value"):
        load_teacher(str(tmp_path / "t.json"))
    one_line_error(*cli("distill", "bc", "--teacher", str(tmp_path / "t.json"), "--runs-dir", str(tmp_path / "r"))[::2])
    assert not (tmp_path / "r").exists()


# --- teacher files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: m.update(format_version=99), "format_version 99 is not one this rl-distill reads"),
        (lambda m: m["arch"].update(activation="bogus"), "arch.activation must be"),
        (lambda m: m.update(env_id=12), "env_id must be an env id"),
        (lambda m: m.update(score="high"), "score must be a table or null"),
        (lambda m: m["score"].update(mean="high"), "score.mean must be a finite number"),
        (lambda m: m["arch"].update(pi_layers=[10**7, 10**7]), "does not fit its architecture"),
        (lambda m: m.update(protocol={"sticky": 1}), "protocol"),
    ],
)
def test_teacher_files_are_checked_field_by_field(cli, tmp_path, edit, needle):
    shutil.copy(ZOO_DIR / f"{TEACHER}.safetensors", tmp_path / "t.safetensors")
    meta = json.loads((ZOO_DIR / f"{TEACHER}.json").read_text())
    edit(meta)
    if needle == "protocol":
        meta["env_id"] = "ALE/Pong-v5"
    (tmp_path / "t.json").write_text(json.dumps(meta))
    one_line_error(*cli("teachers", "eval", str(tmp_path / "t.json"), "--episodes", "1")[::2], needle)


# --- nothing user-owned is overwritten --------------------------------------------------------------------------


def test_train_and_export_never_replace_a_teacher_without_force(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in (str(ZOO_DIR / TEACHER), str(ZOO_DIR / "a-new-one")):
        one_line_error(*cli("teachers", "train", "CartPole-v1", "--steps", "2000", "--out", out)[::2], "shipped zoo")
    shutil.copy(ZOO_DIR / f"{TEACHER}.json", tmp_path / "mine.json")
    one_line_error(*cli("teachers", "train", "CartPole-v1", "--out", "mine")[::2], "a teacher is already there")
    assert TrainConfig("CartPole-v1", out="mine", force=True).force  # --force lets it
    assert list(tmp_path.iterdir()) == [tmp_path / "mine.json"]  # no run folder was made
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(
        json.dumps({"config": {"env_id": "CartPole-v1", "algo": "ppo"}, "hyperparams": {}})
    )
    with pytest.raises(UserError, match="a teacher is already there"):
        export_run(run_dir, "mine")
    one_line_error(*cli("teachers", "export", str(run_dir), "--out", str(ZOO_DIR / TEACHER))[::2], "shipped zoo")
    one_line_error(
        *cli("teachers", "export", str(run_dir), "--episodes", "0")[::2], "--episodes must be an integer >= 1"
    )


# --- no hangs ---------------------------------------------------------------------------------------------------


def test_zero_is_never_the_default(cli, tmp_path):
    one_line_error(*cli("teachers", "eval-all", "--episodes", "0")[::2], "--episodes must be an integer >= 1, got 0")
    one_line_error(*cli(*_distill_argv(tmp_path, "bc", "--steps", "0"))[::2], "--steps must be an integer >= 1")


def test_ray_address_where_nothing_listens_fails_fast(cli, tmp_path):
    pytest.importorskip("ray")
    suite = ROOT / "experiments" / "lineage.toml"
    t = time.monotonic()
    argv = ["bench", str(suite), "--backend", "ray", "--address", "127.0.0.1:1", "--runs-dir", str(tmp_path / "r")]
    one_line_error(*cli(*argv, "--out", str(tmp_path / "o"))[::2], "--address 127.0.0.1:1: nothing answers there")
    assert time.monotonic() - t < 30 and not list(tmp_path.iterdir())


# --- threads ----------------------------------------------------------------------------------------------------


def test_threads_one_for_mlps_and_the_flag_overrides(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(distill_module, "_train_and_evaluate", lambda *a, **k: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for threads in (None, 2):
            spec = RunSpec(method="bc", teachers=[TEACHER], runs_dir=str(tmp_path), steps=100, threads=threads)
            run(get_method("bc"), spec)
        assert seen == [1, 2] and torch.get_num_threads() == 2  # set for the run, then back
    finally:
        torch.set_num_threads(before)
    assert default_threads(images=False) == 1 and default_threads(images=True) is None
    with torch_threads(None):
        assert torch.get_num_threads() == before


# --- suite files ------------------------------------------------------------------------------------------------

_BLOCK = '[[grid]]\nmethod = "bc"\nenv = "CartPole-v1"\n'


@pytest.mark.parametrize(
    "text, needle",
    [
        ("seeds = true\n" + _BLOCK, "seeds must be an integer >= 1, not True"),
        ("seeds = 1.9\n" + _BLOCK, "seeds must be an integer >= 1, not 1.9"),
        ('seeds = "2"\n' + _BLOCK, "seeds must be an integer >= 1, not '2'"),
        ('[grid]\nmethod = "bc"\nenv = "CartPole-v1"\n', "not a [grid] table"),
        ('[[grid]]\nmethod = "bc"\nenv = 5\n', "env must be an env id"),
        (_BLOCK + 'label = "a"\n' + _BLOCK.replace("bc", "dagger") + 'label = "a"\n', "two runs labelled 'a'"),
        (_BLOCK + 'steps = "abc"\n', "steps must be an integer >= 1"),
        ("eval_episodes = -1\n" + _BLOCK, "eval_episodes must be an integer >= 1"),
        (_BLOCK + "options = { lr = -1.0 }\n", "options.lr must be a finite number > 0"),
        (_BLOCK + "options = { epochs = 2.0 }\n", "options.epochs must be an integer, got 2.0"),
        (_BLOCK + 'label = "{nope}"\n', "label '{nope}' cannot be filled in"),
        ('name = "../up"\n' + _BLOCK, "it names folders"),
        (_BLOCK + 'student = "mlp-0"\n', "bad student spec"),
    ],
)
def test_suite_files_are_checked_against_a_schema(cli, tmp_path, text, needle):
    suite = tmp_path / "s.toml"
    suite.write_text(text)
    with pytest.raises(UserError, match=None) as e:
        load_suite(str(suite))
    assert needle in str(e.value) and "\n" not in str(e.value)
    # --dry-run refuses what the run would refuse, and writes nothing.
    one_line_error(*cli("bench", str(suite), "--dry-run", "--out", str(tmp_path / "o"))[::2], needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_one_series_may_span_blocks_on_other_envs(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(_BLOCK + 'label = "a"\n' + _BLOCK.replace("CartPole-v1", "Acrobot-v1") + 'label = "a"\n')
    assert len(load_suite(str(suite)).cells) == 6


# --- smaller things ---------------------------------------------------------------------------------------------


def test_finished_run_drops_checkpoint_and_lock_unless_kept(cli, tmp_path):
    base = _distill_argv(tmp_path, "bc", "--steps", "200", "--eval-episodes", "1", "--seed")
    assert cli(*base, "0")[0] == 0
    assert cli(*base, "1", "--keep-checkpoint")[0] == 0
    dropped, kept = sorted((tmp_path / "runs").iterdir())
    assert (dropped / "summary.json").exists() and not (dropped / "checkpoint.pt").exists()
    assert (kept / "checkpoint.pt").exists() and not (dropped / ".lock").exists() and not (kept / ".lock").exists()


def test_resume_with_fewer_steps_than_done_is_refused(tmp_path):
    first = distill("policy-distillation", tmp_path, TEACHER, 1000, eval_episodes=2)
    run_dir = Path(first["run_dir"])
    (run_dir / "summary.json").unlink()  # as if killed before the end
    with pytest.raises(UserError, match=r"--resume --steps 500: .* has already done 1\d\d\d env steps"):
        distill("policy-distillation", tmp_path, TEACHER, 500, eval_episodes=2, resume=True)
    assert (run_dir / "checkpoint.pt").exists()  # the run is left as it was


def test_report_of_a_copy_reads_and_writes_the_copy(cli, tmp_path):
    original = ROOT / "results" / "imperfect-teacher"
    before = (original / "README.md").stat().st_mtime_ns
    shutil.copytree(original, tmp_path / "copy")
    (tmp_path / "copy" / "README.md").unlink()
    code, out, err = cli("report", str(tmp_path / "copy"))
    assert code == 0, err
    assert (tmp_path / "copy" / "README.md").exists() and str(tmp_path / "copy") in out
    assert (original / "README.md").stat().st_mtime_ns == before


def test_teachers_eval_on_another_env_needs_allow_mismatch(cli):
    one_line_error(
        *cli("teachers", "eval", TEACHER, "--env", "CartPole-v0", "--episodes", "1")[::2], "--allow-mismatch"
    )
    code, out, err = cli("teachers", "eval", TEACHER, "--env", "CartPole-v0", "--allow-mismatch", "--episodes", "1")
    assert code == 0 and "on CartPole-v0" in out, err
    one_line_error(*cli("teachers", "eval", TEACHER, "--allow-mismatch", "--episodes", "1")[::2], "goes with --env")


def test_bench_refuses_before_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "s.toml"
    suite.write_text(_BLOCK + "steps = 200\n")
    for kw, needle in (
        ({"backend": "slurm"}, "unknown --backend"),
        ({"address": "1.2.3.4:6379"}, "goes with --backend ray"),
        ({"out": str(suite)}, "a file, not a folder"),
        ({"only": ","}, "--only"),
    ):
        with pytest.raises(UserError, match=needle):
            bench(str(suite), progress=False, **kw)
    assert [p.name for p in tmp_path.iterdir()] == ["s.toml"]
