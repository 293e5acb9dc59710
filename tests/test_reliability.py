"""Refusals in one line, before anything breaks: a teacher whose tensors do not fit its architecture, an
``--init-from`` student of another width, a student too large for the memory there is."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import rl_distill.students as students
from rl_distill.distill import transfer_weights
from rl_distill.errors import SpaceMismatchError, TeacherError, UserError
from rl_distill.networks import count_params
from rl_distill.students import Student, make_student, memory_estimate, param_count
from rl_distill.teachers import ZOO_DIR, load_teacher

TEACHER = "ppo-CartPole-v1"


def _one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("rl-distill: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _edited_teacher(tmp_path: Path, edit) -> Path:
    """A copy of the shipped CartPole teacher whose tensors ``edit`` changed, its JSON's sha256 updated to match
    (so only the shape check can catch it); returns the weights path."""
    state = load_file(str(ZOO_DIR / f"{TEACHER}.safetensors"))
    edit(state)
    weights = tmp_path / "t.safetensors"
    save_file(state, str(weights))
    meta = json.loads((ZOO_DIR / f"{TEACHER}.json").read_text())
    meta["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (tmp_path / "t.json").write_text(json.dumps(meta))
    return weights


def _reshape(state):
    state["action_net.weight"] = torch.zeros(3, 64)


def _drop(state):
    del state["mlp_extractor.value_net.2.bias"]


def _extra(state):
    state["action_net.extra"] = torch.zeros(5)


CASES = [
    (_reshape, "tensor action_net.weight has shape (3, 64), expected (2, 64)"),
    (_drop, "tensor mlp_extractor.value_net.2.bias is missing (expected shape (64,)"),
    (_extra, "unexpected tensor action_net.extra of shape (5,)"),
]


@pytest.mark.parametrize("edit, message", CASES)
def test_teacher_tensors_checked_against_architecture(tmp_path, edit, message):
    weights = _edited_teacher(tmp_path, edit)
    with pytest.raises(TeacherError) as e:
        load_teacher(str(tmp_path / "t.json"))
    text = str(e.value)
    assert "\n" not in text and message in text and str(weights) in text, text


@pytest.mark.parametrize("edit, message", CASES)
def test_teacher_misfit_cli_one_line(cli, tmp_path, edit, message):
    weights = _edited_teacher(tmp_path, edit)
    code, _, err = cli("teachers", "eval", str(tmp_path / "t.json"), "--episodes", "1")
    _one_line_error(code, err, message, str(weights))


def test_shipped_teacher_still_loads():
    t = load_teacher(TEACHER)
    assert t.num_params == sum(v.numel() for v in load_file(str(ZOO_DIR / f"{TEACHER}.safetensors")).values())


def _finished_run(tmp_path: Path, spec="mlp-64-64", envs=("CartPole-v1",)) -> Path:
    """What a finished run leaves for --init-from: student.safetensors + student.json."""
    d = tmp_path / "src-run"
    d.mkdir()
    s = make_student(spec, [(4,)], [2], seed=7)
    save_file({k: v.contiguous() for k, v in s.state_dict().items()}, str(d / "student.safetensors"))
    (d / "student.json").write_text(
        json.dumps({"spec": str(s.spec), "obs_shapes": s.obs_shapes, "n_actions": s.n_actions, "envs": list(envs)})
    )
    return d


def test_init_from_another_width_refused(tmp_path):
    src = _finished_run(tmp_path)
    s = make_student("mlp-32", [(4,)], [2], seed=0)
    before = {k: v.clone() for k, v in s.state_dict().items()}
    for envs in (["CartPole-v1"], ["Other-v0"]):
        with pytest.raises(SpaceMismatchError) as e:
            transfer_weights(s, src, envs)
        text = str(e.value)
        assert "\n" not in text
        assert "mlp-64-64" in text and "mlp-32" in text and str(src) in text
        assert "shared layer inputs.4.0: weight (64, 4) there, (32, 4) here" in text, text
    # Nothing copied, not even the biases whose shapes happen to agree.
    assert all(torch.equal(v, before[k]) for k, v in s.state_dict().items())


def test_init_from_same_spec_copies_every_shared_layer(tmp_path):
    src = _finished_run(tmp_path)
    w = load_file(str(src / "student.safetensors"))
    for envs, heads in ((["CartPole-v1"], True), (["Other-v0"], False)):
        s = make_student("mlp-64-64", [(4,)], [2], seed=123)
        before = {k: v.clone() for k, v in s.state_dict().items()}
        info = transfer_weights(s, src, envs)
        trunk = [k for k in w if not k.startswith(("heads.", "value_heads."))]
        assert len(trunk) == 8
        assert set(info) == {"from", "tensors", "params", "heads"}
        assert info["heads"] == (["CartPole-v1"] if heads else []) and info["tensors"] == (12 if heads else 8)
        assert info["params"] == sum(w[k].numel() for k in (w if heads else trunk))
        for k, v in s.state_dict().items():
            fresh = k.startswith(("heads.", "value_heads.")) and not heads
            assert torch.equal(v, before[k] if fresh else w[k]), k


def test_init_from_deeper_student_copies_the_shared_layers(tmp_path):
    """Layers only one student has stay fresh; the shared ones, all of the same shape, are copied."""
    src = _finished_run(tmp_path)
    s = make_student("mlp-64-64-64", [(4,)], [2], seed=0)
    info = transfer_weights(s, src, ["Other-v0"])
    assert info["tensors"] == 8 and not info["heads"]


def test_init_from_other_width_cli_one_line(cli, tmp_path):
    src = _finished_run(tmp_path)
    code, _, err = cli(
        "distill",
        "bc",
        "--teacher",
        TEACHER,
        "--student",
        "mlp-32",
        "--init-from",
        str(src),
        "--steps",
        "200",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-progress",
    )
    _one_line_error(code, err, "shared layer inputs.4.0", "mlp-64-64", "mlp-32")
    assert not list((tmp_path / "runs").glob("*/*/summary.json"))


@pytest.mark.parametrize(
    "spec, obs, actions",
    [
        ("mlp-64-64", [(4,)], [2]),
        ("mlp-8", [(4,)], [2]),
        ("mlp-16-32-8", [(4,), (6,), (4,)], [2, 3, 2]),
        ("rusu-27x", [(4, 84, 84)], [6, 4]),
        ("cnn-4-4-4-8", [(1, 40, 52)], [3]),
    ],
)
def test_param_count_without_allocating(spec, obs, actions):
    assert param_count(spec, obs, actions) == count_params(Student(spec, obs, actions))


def test_huge_student_refused_before_allocation(monkeypatch):
    monkeypatch.setattr(students, "available_memory", lambda device="cpu": 8 * 2**30)

    def no_allocation(*a, **k):
        raise AssertionError("the student was built")

    monkeypatch.setattr(students, "Student", no_allocation)
    n, need = memory_estimate("mlp-100000-100000", [(4,)], [2])
    assert n == 20_001_500_003 and need >= 16 * n
    with pytest.raises(UserError) as e:
        make_student("mlp-100000-100000", [(4,)], [2], seed=0)
    text = str(e.value)
    assert "\n" not in text, text
    assert f"--student mlp-100000-100000 needs ~{need / 2**30:.1f} GiB" in text and "8.0 GiB is available" in text
    assert "20,001,500,003 parameters" in text
    # A student that fits is built as before.
    monkeypatch.undo()
    assert isinstance(make_student("mlp-64-64", [(4,)], [2], seed=0), Student)


def test_huge_student_cli_one_line(cli, monkeypatch, tmp_path):
    monkeypatch.setattr(students, "available_memory", lambda device="cpu": 8 * 2**30)
    code, _, err = cli(
        "distill",
        "bc",
        "--teacher",
        TEACHER,
        "--student",
        "mlp-100000-100000",
        "--steps",
        "200",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-progress",
    )
    _one_line_error(code, err, "--student mlp-100000-100000 needs ~", "GiB", "8.0 GiB is available on cpu")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["teachers", "train", "CartPole-v1", "--algo", "ppo", "--hyperparams", "learning_rate=abc"], "learning_rate"),
        (["teachers", "train", "CartPole-v1", "--algo", "ppo", "--hyperparams", "clip_range=lin_x"], "clip_range"),
        (["teachers", "train", "CartPole-v1", "--algo", "ppo", "--hyperparams", "n_steps=true"], "n_steps"),
        (["teachers", "train", "CartPole-v1", "--algo", "dqn", "--hyperparams", "optimize_memory_usage=3"], "true"),
        (["bench", "lineage", "--workers", "-1"], "--workers"),
        (["bench", "lineage", "--workers", "0"], "--workers"),
        (["bench", "lineage", "--seeds", "0"], "--seeds"),
    ],
)
def test_wrong_values_refused_before_anything_runs(cli, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)  # nothing may be written: the folder stays empty
    _one_line_error(*cli(*argv)[::2], needle)
    assert list(tmp_path.iterdir()) == []
