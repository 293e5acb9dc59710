"""Random and boundary values at every input surface (hypothesis): each method's CLI flags, the common distill and
teachers flags, suite files (TOML), teacher files (JSON and weights) and the Python API. Whatever the value, the
answer is a clean refusal (exit 2 with one ``rl-distill: error:`` line, or a :class:`UserError` from the API) or an
acceptance, never a traceback, a hang or a folder left behind.

A distill command that passes every check is stopped where the run folder would be made (``_claim_run_dir``), so
the test sees that nothing was written before the checks and runs no training."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import rl_distill as rd
import rl_distill.distill as distill_module
from rl_distill.cli import main
from rl_distill.configs import options
from rl_distill.errors import UserError
from rl_distill.methods import METHODS, get_method
from rl_distill.teachers import ZOO_DIR

TEACHER = "ppo-CartPole-v1"
FUZZ = settings(
    max_examples=30,
    deadline=None,
    # capsys is read (and so emptied) after every example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

# --- values -----------------------------------------------------------------------------------------------------

BOUNDARY_NUMBERS = [0, -1, 1, -0.0, 1e-300, -1e-300, 1e300, 2**31, 2**63, -(2**63), 0.5, 2.5, 1e-9]
SPECIAL_FLOATS = ["nan", "inf", "-inf", "NaN", "1e309", "-1e309"]
TEXTS = ["", " ", "abc", "true", "none", "0x10", "1_000", "--", "💥", "1,5", "5e", "1e2.5"]


def _number_text() -> st.SearchStrategy[str]:
    """What a user may type where a number belongs: boundaries, nan/inf, random ints and floats, junk."""
    return st.one_of(
        st.sampled_from([str(x) for x in BOUNDARY_NUMBERS] + SPECIAL_FLOATS + TEXTS),
        st.integers(-(10**12), 10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=6),
    )


def _value_text(opt) -> st.SearchStrategy[str]:
    if opt.type is str:
        return st.one_of(st.sampled_from(TEXTS + [str(opt.default)]), st.text(max_size=8))
    if opt.type is bool:
        return st.sampled_from(["true", "false", "yes", "0", "2", "maybe", "", "nan"])
    return _number_text()


def _one_line_refusal(code: int, err: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("rl-distill: error: "), err
    assert "Traceback" not in err


class Accepted(Exception):
    """Raised where a run that passed every check would make its folder."""


def _stop_at_folder(*args, **kwargs):
    raise Accepted


def _run_cli(capsys, argv: list[str]) -> tuple[int | None, str]:
    """``main(argv)`` -> (exit code, stderr); (None, "") where the command passed every check."""
    with mock.patch.object(distill_module, "_claim_run_dir", _stop_at_folder):
        try:
            code = main(argv)
        except Accepted:
            capsys.readouterr()
            return None, ""
    return code, capsys.readouterr().err


def _flags(method: str) -> list[tuple[str, object]]:
    """(flag, option) for every flag of the method's Config, aliases included."""
    return [(f, o) for o in options(get_method(method).Config) for f in o.flags]


COMMON = ["--steps", "--seed", "--eval-episodes", "--threads"]


@pytest.mark.parametrize("method", list(METHODS))
@FUZZ
@given(data=st.data())
def test_distill_flags_refused_in_one_line_or_accepted(method, data, capsys):
    flag, opt = data.draw(st.sampled_from(_flags(method) + [(f, None) for f in COMMON]), label="flag")
    value = data.draw(_value_text(opt) if opt is not None else _number_text(), label="value")
    with tempfile.TemporaryDirectory() as d:
        argv = ["distill", method, "--teacher", TEACHER, "--runs-dir", d, "--no-progress", "--device", "cpu"]
        code, err = _run_cli(capsys, [*argv, f"{flag}={value}"])
        assert not list(Path(d).iterdir()), "a refused command left a folder"
    if code is not None:
        _one_line_refusal(code, err)


@FUZZ
@given(
    student=st.one_of(
        st.sampled_from(["mlp-0", "mlp--1", "mlp-64-", "cnn-1-1-1", "nature", "rusu-4x", "mcnn-16-128", "mlp-1e9"]),
        st.lists(st.integers(-5, 10**6), min_size=1, max_size=80).map(lambda w: "mlp-" + "-".join(map(str, w))),
        st.text(max_size=10),
    ),
    device=st.sampled_from(["auto", "cpu", "cuda", "cuda:7", "mps", "meta", "xla", "cpu:0", "", "CPU", "cuda:-1"]),
    runs_dir=st.sampled_from(["", " ", "FILE", "FILE/sub", "ok"]),
)
def test_distill_common_flags(student, device, runs_dir, capsys):
    """Student specs (deep, wide, malformed), devices and run folders: refused in one line, nothing made. An accepted
    command stops before its student is built (a wide one that passes the checks still takes seconds to build)."""
    with tempfile.TemporaryDirectory() as d, mock.patch.object(distill_module, "make_student", _stop_at_folder):
        (Path(d) / "FILE").write_text("a file")
        where = runs_dir.replace("FILE", f"{d}/FILE").replace("ok", f"{d}/runs")
        argv = ["distill", "bc", "--teacher", TEACHER, "--no-progress", "--student", student, "--device", device]
        code, err = _run_cli(capsys, [*argv, "--runs-dir", where])
        assert sorted(p.name for p in Path(d).iterdir()) == ["FILE"]
    if code is not None:
        _one_line_refusal(code, err)


# --- suite files ------------------------------------------------------------------------------------------------


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + " }"


_SCALARS = st.one_of(
    st.sampled_from([True, False, 0, -1, 1, 2, 1.9, 1e300, math.nan, math.inf, "", "2", "abc", "CartPole-v1"]),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=6),
)
_VALUES = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), _SCALARS, max_size=2)
)
_GOOD = {
    "method": "bc",
    "env": "CartPole-v1",
    "teacher": "ppo-{env}",
    "student": "mlp-8",
    "steps": 300,
    "options": {"epochs": 1},
    "sweep": {"loss": ["nll", "kl"]},
    "label": "{method}-{loss}",
    "eval_episodes": 2,
    "curve_points": 2,
    "curve_episodes": 2,
}
_OPTION_VALUES = st.sampled_from(
    [{"lr": -1.0}, {"lr": math.nan}, {"epochs": 2.0}, {"epochs": True}, {"loss": 3}, {"tau": 1.0}, {"lr": "0.1"}]
)


@FUZZ
@given(
    top=st.dictionaries(st.sampled_from(["seeds", "eval_episodes", "curve_points", "curve_episodes", "name"]), _VALUES),
    key=st.sampled_from(sorted(_GOOD)),
    value=st.one_of(_VALUES, _OPTION_VALUES),
    table=st.booleans(),
)
def test_suite_files_refused_in_one_line_or_planned(top, key, value, table, capsys):
    """A suite with random top-level values and one grid value replaced: ``bench --dry-run`` either plans it or
    refuses it in one line, and writes nothing either way."""
    block = {**_GOOD, key: value}
    lines = [f"{k} = {_toml(v)}" for k, v in top.items()]
    lines += ["[grid]" if table else "[[grid]]"] + [f"{k} = {_toml(v)}" for k, v in block.items()]
    with tempfile.TemporaryDirectory() as d:
        suite = Path(d) / "s.toml"
        suite.write_text("\n".join(lines) + "\n")
        code = main(["bench", str(suite), "--dry-run", "--runs-dir", f"{d}/runs", "--out", f"{d}/out"])
        err = capsys.readouterr().err
        assert sorted(p.name for p in Path(d).iterdir()) == ["s.toml"]
    if code != 0:
        _one_line_refusal(code, err)


# --- teacher files ----------------------------------------------------------------------------------------------

_META = json.loads((ZOO_DIR / f"{TEACHER}.json").read_text())
_STATE = load_file(str(ZOO_DIR / f"{TEACHER}.safetensors"))
_PATHS = [
    ("format_version",),
    ("env_id",),
    ("id",),
    ("algo",),
    ("score",),
    ("score", "mean"),
    ("score", "n"),
    ("protocol",),
    ("training",),
    ("training", "steps"),
    ("arch",),
    ("arch", "kind"),
    ("arch", "activation"),
    ("arch", "obs_shape"),
    ("arch", "n_actions"),
    ("arch", "encoder"),
    ("arch", "pi_layers"),
    ("arch", "vf_layers"),
    ("arch", "cnn_channels"),
]


def _write_teacher(d: Path, meta: dict, state: dict) -> Path:
    save_file(state, str(d / "t.safetensors"))
    meta = {**meta, "weights_sha256": hashlib.sha256((d / "t.safetensors").read_bytes()).hexdigest()}
    (d / "t.json").write_text(json.dumps(meta, allow_nan=True))
    return d / "t.json"


@FUZZ
@given(path=st.sampled_from(_PATHS), value=st.one_of(_VALUES, st.sampled_from([None, 99, [4], [1000000, 1000000]])))
def test_teacher_files_refused_in_one_line_or_loaded(path, value, capsys):
    meta = json.loads(json.dumps(_META))
    table = meta
    for k in path[:-1]:
        table = table[k]
    table[path[-1]] = value
    with tempfile.TemporaryDirectory() as d:
        t = _write_teacher(Path(d), meta, _STATE)
        code = main(["teachers", "eval", str(t), "--episodes", "1"])
        err = capsys.readouterr().err
    if code != 0:
        _one_line_refusal(code, err)


@FUZZ
@given(
    tensor=st.sampled_from(sorted(_STATE)),
    fill=st.sampled_from([math.nan, math.inf, -math.inf]),
    dtype=st.sampled_from([None, torch.int32, torch.int8, torch.bool]),
)
def test_teacher_weights_non_finite_or_not_float_refused(tensor, fill, dtype, capsys):
    state = dict(_STATE)
    bad = state[tensor].clone()
    if dtype is None:
        bad.view(-1)[0] = fill
    else:
        bad = bad.to(dtype)
    state[tensor] = bad
    with tempfile.TemporaryDirectory() as d:
        t = _write_teacher(Path(d), _META, state)
        _one_line_refusal(main(["teachers", "eval", str(t), "--episodes", "1"]), capsys.readouterr().err)
        with pytest.raises(UserError):
            rd.load_teacher(str(t))


# --- the Python API ---------------------------------------------------------------------------------------------


def _api_value(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A small valid value, or a boundary or wrong-typed one."""
    return st.one_of(valid, st.sampled_from([0, -1, 2.5, True, None, "3", math.nan, math.inf, [1], 10**20]))


@FUZZ
@given(
    episodes=_api_value(st.integers(1, 3)),
    seed=_api_value(st.integers(0, 2**32 - 1)),
    num_envs=_api_value(st.integers(1, 3)),
    reference=_api_value(st.floats(-10, 10)),
    env_id=st.sampled_from(["CartPole-v1", "Nope-v0", "Blackjack-v1", 5, None, "ALE/NoGame-v5", "MinAtar/Nope-v1"]),
)
def test_api_evaluate_raises_user_errors(episodes, seed, num_envs, reference, env_id):
    def policy(obs):  # short episodes: the test is about the arguments
        return np.zeros(len(obs), dtype=np.int64)

    with contextlib.suppress(UserError):
        res = rd.evaluate(policy, env_id, episodes=episodes, seed=seed, num_envs=num_envs, reference=reference)
        assert len(res.returns) == episodes


@FUZZ
@given(
    num_envs=_api_value(st.integers(1, 4)),
    env_id=st.sampled_from(["CartPole-v1", "Nope-v0", "Blackjack-v1", 5, "Pendulum-v1", "MinAtar/Breakout-v1"]),
)
def test_api_make_env_raises_user_errors(num_envs, env_id):
    try:
        env = rd.make_env(env_id, num_envs=num_envs)
    except UserError as e:
        assert "\n" not in str(e)
        assert isinstance(e, (ValueError, TypeError)) or "env" in str(e)
        return
    env.close()


@FUZZ
@given(
    source=st.one_of(
        st.sampled_from([TEACHER, "", 5, None, "nope", "x.zip", "a/b.json", "hf://"]), st.text(max_size=8)
    ),
    device=st.sampled_from(["cpu", "mps", "meta", "cuda:9", 3]),
)
def test_api_load_teacher_raises_user_errors(source, device):
    with contextlib.suppress(UserError):
        rd.load_teacher(source, device=device)


def test_api_errors_are_python_errors_too():
    """The convention: a wrong type is a TypeError, a value out of range a ValueError (and both UserErrors)."""
    policy = rd.load_teacher(TEACHER)
    with pytest.raises(TypeError, match="--episodes must be an integer"):
        rd.evaluate(policy, "CartPole-v1", episodes=2.5)
    with pytest.raises(TypeError, match="rd.load_teacher"):
        rd.evaluate(TEACHER, "CartPole-v1", episodes=2)
    with pytest.raises(ValueError, match="--num-envs must be an integer >= 1, got -3"):
        rd.make_env("CartPole-v1", num_envs=-3)
    with pytest.raises(ValueError, match="expected 2 integer actions"):
        rd.evaluate(lambda obs: np.zeros(3, dtype=int), "CartPole-v1", episodes=2)
