"""The last gaps of issue 44 (every input surface checked before anything runs): what a run refuses at its start
is refused by ``bench --dry-run`` too, with the same message (expert iteration on an env its search cannot reset);
a teacher on an env it was not trained on (its spaces fitting) is refused unless ``--allow-mismatch`` /
``allow_mismatch = true``; a suite file's refusals name its keys, the CLI's the flag typed; ``--num-envs`` above the
most envs built side by side is refused with the options. Each is one ``rl-distill: error:`` line, exit 2, and
nothing left behind."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from helpers import one_line_error

import rl_distill.distill as distill_module
from rl_distill.bench import load_suite
from rl_distill.distill import RunSpec, check_method_envs, check_teacher_env, run
from rl_distill.envs import MAX_ENVS, env_spec
from rl_distill.errors import SpaceMismatchError, UserError, UserValueError
from rl_distill.methods import get_method
from rl_distill.protocol import EnvCheckHook
from rl_distill.teachers import load_teacher

TEACHER = "ppo-CartPole-v1"
ROOT = Path(__file__).resolve().parents[1]
NOT_RESETTABLE = "the search needs a simulator it can reset to any state, and 'MinAtar/Breakout-v1' has none here"


class Accepted(Exception):
    """Raised where a run that passed every check would make its folder."""


def _stop_at_folder(*args, **kwargs):
    raise Accepted


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def _dry_run(cli, tmp_path: Path, suite: Path) -> tuple[int, str, str]:
    return cli("bench", str(suite), "--dry-run", "--runs-dir", str(tmp_path / "r"), "--out", str(tmp_path / "o"))


def _only_the_suite(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


# --- 1. what a run refuses at its start, --dry-run refuses too ------------------------------------------------


def test_expert_iteration_on_an_env_it_cannot_reset_is_refused_before_the_run(cli, tmp_path):
    ei = get_method("expert-iteration")
    assert isinstance(ei, EnvCheckHook) and not isinstance(get_method("bc"), EnvCheckHook)
    with pytest.raises(UserError, match=NOT_RESETTABLE):
        check_method_envs(ei, ["MinAtar/Breakout-v1"])
    check_method_envs(ei, ["CartPole-v1"])
    argv = ["distill", "expert-iteration", "--teacher", "ppo-MinAtar-Breakout-v1", "--no-progress"]
    with mock.patch.object(distill_module, "_claim_run_dir", _stop_at_folder):
        run_line = one_line_error(*cli(*argv, "--runs-dir", str(tmp_path / "runs"))[::2], NOT_RESETTABLE)
    assert not (tmp_path / "runs").exists()
    # The suite's dry run: refused, not listed as "to run", with the run's own message; nothing written.
    suite = _suite(tmp_path, '[[grid]]\nmethod = "expert-iteration"\nenv = "MinAtar/Breakout-v1"\nsteps = 200\n')
    line = one_line_error(*_dry_run(cli, tmp_path, suite)[::2], "grid block 1 (expert-iteration, MinAtar/Breakout-v1)")
    assert line.endswith(run_line.removeprefix("rl-distill: error: "))
    _only_the_suite(tmp_path)


def test_a_single_task_method_on_a_multi_task_cell_is_refused_by_the_dry_run(cli, tmp_path):
    suite = _suite(tmp_path, '[[grid]]\nmethod = "dagger"\nenv = [["CartPole-v1", "Acrobot-v1"]]\n')
    one_line_error(*_dry_run(cli, tmp_path, suite)[::2], "dagger trains a single-task student")
    _only_the_suite(tmp_path)


# --- 2. a teacher on an env it was not trained on ---------------------------------------------------------------


def test_a_teacher_of_another_env_whose_spaces_fit_is_refused_unless_allowed(cli, tmp_path):
    argv = ["distill", "bc", "--teacher", TEACHER, "--env", "CartPole-v0", "--no-progress"]
    runs = ["--runs-dir", str(tmp_path / "runs")]
    one_line_error(*cli(*argv, *runs)[::2], "trained on CartPole-v1, not CartPole-v0", "--allow-mismatch")
    assert not (tmp_path / "runs").exists()
    with mock.patch.object(distill_module, "_claim_run_dir", _stop_at_folder), pytest.raises(Accepted):
        cli(*argv, *runs, "--allow-mismatch")
    one_line_error(*cli("distill", "bc", "--teacher", TEACHER, "--allow-mismatch", *runs)[::2], "goes with --env")
    # A teacher whose spaces do not fit is refused for that, flag or none.
    one_line_error(*cli("distill", "bc", "--teacher", TEACHER, "--env", "Acrobot-v1", "--allow-mismatch", *runs)[::2])
    assert not (tmp_path / "runs").exists()


def test_library_and_hub_teachers_are_checked_against_the_env_they_trained_on():
    t = load_teacher(TEACHER)
    with pytest.raises(SpaceMismatchError, match="trained on CartPole-v1, not CartPole-v0"):
        check_teacher_env(t, env_spec("CartPole-v0"))
    check_teacher_env(t, env_spec("CartPole-v0"), allow_mismatch=True)
    check_teacher_env(t, env_spec("CartPole-v1"))
    # A hub teacher's env_id is the one it was loaded for; its repo says where it trained.
    t.meta = {**t.meta, "env_id": "CartPole-v0", "hub": {"env_id": "CartPole-v1"}}
    assert t.trained_env_id == "CartPole-v1"
    with pytest.raises(SpaceMismatchError, match="trained on CartPole-v1, not CartPole-v0"):
        check_teacher_env(t, env_spec("CartPole-v0"))
    t.meta = {**t.meta, "env_id": None, "hub": None}  # records no env (an SB3 zip alone): nothing to compare
    check_teacher_env(t, env_spec("CartPole-v0"))


def test_a_suite_cell_with_a_teacher_of_another_env_needs_allow_mismatch(cli, tmp_path):
    block = '[[grid]]\nmethod = "bc"\nenv = "CartPole-v0"\nteacher = "ppo-CartPole-v1"\n'
    suite = _suite(tmp_path, block)
    one_line_error(
        *_dry_run(cli, tmp_path, suite)[::2],
        "grid block 1 (bc, CartPole-v0): teacher ppo-CartPole-v1 was trained on CartPole-v1, not CartPole-v0",
        "allow_mismatch = true",
    )
    _only_the_suite(tmp_path)
    before = [c.key for c in load_suite(str(suite)).cells]
    suite.write_text(block + "allow_mismatch = true\n")
    code, out, err = _dry_run(cli, tmp_path, suite)
    assert code == 0 and "3 to run" in out, err
    cells = load_suite(str(suite)).cells
    assert all(c.allow_mismatch for c in cells) and [c.key for c in cells] != before
    suite.write_text(block + "allow_mismatch = 1\n")
    one_line_error(*_dry_run(cli, tmp_path, suite)[::2], "allow_mismatch must be true or false")
    suite.write_text(block.replace("CartPole-v0", "Acrobot-v1") + "allow_mismatch = true\n")  # spaces that differ
    one_line_error(*_dry_run(cli, tmp_path, suite)[::2], "expects observations of shape (4,) but Acrobot-v1 gives (6,)")
    _only_the_suite(tmp_path)


def test_the_continual_suites_cross_env_teachers_stay_valid(cli, tmp_path):
    """continual's stages have a student of another stage as teacher (cell:A, its head for the env) and keep
    reference teachers per kept env: they are no mismatch, and the suite plans as before (its keys unchanged)."""
    code, out, err = cli("bench", "continual", "--dry-run", "--out", str(tmp_path / "o"))
    assert code == 0 and "18 runs" in out, err
    assert not any(c.allow_mismatch for c in load_suite("continual").cells)


# --- 3. a suite file's refusals name its keys; the CLI's the flag typed ----------------------------------------


@pytest.mark.parametrize(
    "block, needle",
    [
        ("options = { lam = -1.0 }\n", "grid block 1 (ks, CartPole-v1): options.lam must be >= 0"),
        ("sweep = { lam = [1.0, -1.0] }\n", "grid block 1 (ks, CartPole-v1): sweep.lam must be >= 0"),
        ("options = { lam = -1.0 }\nsweep = { lam = [-2.0] }\n", "sweep.lam must be >= 0"),
        ("options = { lam = inf }\n", "options.lam must be a finite number"),
        ("options = { n_epochs = 2.5 }\n", "options.n_epochs must be an integer, got 2.5"),
        ("options = { distill_weight = 1.0 }\n", "options.distill_weight: not an option of kickstarting"),
        ("sweep = { nope = [1] }\n", "sweep.nope: not an option of kickstarting"),
    ],
)
def test_suite_refusals_name_the_key_written(cli, tmp_path, block, needle):
    suite = _suite(tmp_path, '[[grid]]\nmethod = "kickstarting"\nenv = "CartPole-v1"\nlabel = "ks"\n' + block)
    line = one_line_error(*_dry_run(cli, tmp_path, suite)[::2], needle)
    assert "--" not in line.split("): ", 1)[1], line  # no command-line flag in what follows the block
    _only_the_suite(tmp_path)


@pytest.mark.parametrize("flag", ["--distill-weight", "--lambda"])
def test_the_cli_keeps_naming_the_flag_typed(cli, tmp_path, flag):
    argv = ["distill", "kickstarting", "--teacher", TEACHER, "--runs-dir", str(tmp_path / "r"), flag, "-1"]
    one_line_error(*cli(*argv)[::2], f"{flag} must be >= 0")
    assert not (tmp_path / "r").exists()


# --- 4. --num-envs above the most envs built side by side -------------------------------------------------------


@pytest.mark.parametrize("method", ["bc", "dagger", "on-policy", "policy-distillation", "kickstarting", "ppo"])
def test_num_envs_above_the_maximum_is_refused_with_the_options(cli, tmp_path, method):
    too_many = str(MAX_ENVS + 1)
    argv = ["distill", method, "--teacher", TEACHER, "--runs-dir", str(tmp_path / "r"), "--no-progress"]
    one_line_error(*cli(*argv, "--num-envs", too_many)[::2], f"--num-envs {too_many}: at most 4,096 envs")
    assert not (tmp_path / "r").exists()
    spec = RunSpec(method=method, teachers=[TEACHER], runs_dir=str(tmp_path / "r"), options={"num_envs": MAX_ENVS + 1})
    with pytest.raises(UserValueError, match="at most 4,096 envs"):
        run(get_method(method), spec)
    assert not (tmp_path / "r").exists()
    with mock.patch.object(distill_module, "_claim_run_dir", _stop_at_folder), pytest.raises(Accepted):
        cli(*argv, "--num-envs", str(MAX_ENVS), "--steps", "100")  # the maximum itself passes the checks


def test_num_envs_above_the_maximum_in_a_suite_file(cli, tmp_path):
    suite = _suite(
        tmp_path, f'[[grid]]\nmethod = "bc"\nenv = "CartPole-v1"\noptions = {{ num_envs = {MAX_ENVS + 1} }}\n'
    )
    one_line_error(
        *_dry_run(cli, tmp_path, suite)[::2], f"grid block 1 (bc, CartPole-v1): options.num_envs {MAX_ENVS + 1}"
    )
    _only_the_suite(tmp_path)
    with pytest.raises(UserError, match="options.num_envs 4097: at most 4,096 envs are built side by side"):
        load_suite(str(suite))
