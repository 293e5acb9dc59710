import argparse
import functools
import json

import numpy as np
import pytest
import torch

from rl_distill.runs import read_scalars


def _one_line_error(code, out, err):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("rl-distill: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["teachers", "train", "CartPole-v9"],
        ["teachers", "train", "ALE/NoGame-v5", "--algo", "dqn"],
        ["teachers", "eval", "ppo-CartPole-v1", "--env", "NotAnEnv-v0"],
        ["teachers", "eval", "no-such-teacher"],
        ["teachers", "eval", "/nonexistent/model.zip"],
        ["teachers", "eval", "/nonexistent/teacher.json"],
        ["teachers", "eval", "ppo-CartPole-v1", "--env", "Acrobot-v1"],
        ["teachers", "train", "Acrobot-v1", "--init-from", "ppo-CartPole-v1"],
        ["teachers", "train", "CartPole-v1", "--algo", "dqn", "--init-from", "ppo-CartPole-v1"],
        ["teachers", "train", "CartPole-v1", "--init-from", "ppo-CartPole-v1", "--steps", "1000"],
        ["teachers", "train", "CartPole-v1", "--init-from", "ppo-CartPole-v1", "--resume"],
        ["teachers", "train", "CartPole-v1", "--hyperparams", "no_such_knob=3"],
        ["teachers", "train", "CartPole-v1", "--hyperparams", "learning_rate"],
        ["teachers", "export", "/nonexistent/run"],
    ],
)
def test_bad_inputs_give_one_line(cli, argv):
    _one_line_error(*cli(*argv))


def test_corrupt_checkpoint_one_line(cli, tmp_path):
    from rl_distill.teachers import ZOO_DIR

    for suffix in (".json", ".safetensors"):
        (tmp_path / f"t{suffix}").write_bytes((ZOO_DIR / f"ppo-CartPole-v1{suffix}").read_bytes())
    w = tmp_path / "t.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    _one_line_error(*cli("teachers", "eval", str(tmp_path / "t.json")))
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04garbage")
    _one_line_error(*cli("teachers", "eval", str(tmp_path / "bad.zip"), "--env", "CartPole-v1"))


def test_list_json(cli):
    code, out, _ = cli("teachers", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and any(r["id"] == "ppo-CartPole-v1" and r["score"]["mean"] >= 475 for r in rows)


def test_list_table(cli):
    code, out, _ = cli("teachers", "list")
    head = out.splitlines()[0].split()
    assert code == 0 and head == [
        "id",
        "env",
        "algo",
        "score",
        "std",
        "iqm",
        "human_norm",
        "episodes",
        "steps",
        "wall_s",
        "steps_per_s",
    ]
    pong = next(line.split() for line in out.splitlines() if line.startswith("ppo-ALE-Pong-v5"))
    from rl_distill.teachers import ZOO_DIR
    from rl_distill.teachers.checkpoint import read_meta

    m = read_meta(ZOO_DIR / "ppo-ALE-Pong-v5")
    assert (
        pong[3] == f"{m['score']['mean']:.1f}"
        and pong[6] == f"{m['score']['human_normalized']:.2f}"
        and pong[8] == str(m["training"]["steps"])
    )


def test_eval_json_deterministic(cli):
    _, a, _ = cli("teachers", "eval", "ppo-CartPole-v1", "--episodes", "5", "--seed", "1", "--json")
    _, b, _ = cli("teachers", "eval", "ppo-CartPole-v1", "--episodes", "5", "--seed", "1", "--json")
    assert json.loads(a) == json.loads(b) and json.loads(a)["n"] == 5


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_train_writes_run_and_resumes(cli, tmp_path, algo):
    runs = tmp_path / "runs"
    out = tmp_path / "teacher"
    argv = [
        "teachers",
        "train",
        "CartPole-v1",
        "--algo",
        algo,
        "--steps",
        "1024",
        "--eval-every",
        "512",
        "--final-episodes",
        "3",
        "--runs-dir",
        str(runs),
        "--out",
        str(out),
        "--no-progress",
        "--json",
        "--hyperparams",
        "gamma=0.97",
        'learning_rate="lin_1e-3"',
    ]
    code, stdout, _ = cli(*argv)
    assert code == 0
    summary = json.loads(stdout)
    run_dir = runs / summary["run_dir"].split("/")[-1]
    for f in ("config.json", "summary.json", "checkpoint.zip", "scalars.jsonl"):
        assert (run_dir / f).exists(), f
    assert list((run_dir / "tb").rglob("events.out.tfevents*"))
    assert [r["step"] for r in read_scalars(run_dir) if "eval/mean_reward" in r][:2] == [512, 1024]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["training"]["steps"] >= 1024 and meta["score"]["n"] == 3
    assert (
        meta["training"]["hyperparams"]["gamma"] == 0.97
        and meta["training"]["hyperparams"]["learning_rate"] == "lin_1e-3"
    )
    from stable_baselines3 import DQN, PPO

    model = (PPO if algo == "ppo" else DQN).load(str(run_dir / "checkpoint.zip"), device="cpu")
    assert (
        model.gamma == 0.97
        and model.lr_schedule(1.0) == pytest.approx(1e-3)
        and model.lr_schedule(0.5) == pytest.approx(5e-4)
    )
    # A killed run has no summary.json: --resume picks it up and trains on to the new budget.
    (run_dir / "summary.json").unlink()
    # Before that, `teachers export` ships its best model so far without finishing it.
    code, stdout, err = cli(
        "teachers", "export", str(run_dir), "--out", str(tmp_path / "early"), "--episodes", "4", "--json"
    )
    assert code == 0, err
    early = json.loads((tmp_path / "early.json").read_text())
    state = json.loads((run_dir / "state.json").read_text())
    assert early["score"]["n"] == 4 and early["training"]["steps"] == state["segments"][-1]["end_step"]
    assert early["training"]["best_step"] == state["best"]["step"] and early["training"]["curve"] == state["evals"]
    from rl_distill.teachers import load_teacher
    from rl_distill.teachers.sb3 import load_sb3_zip

    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert torch.equal(
        load_teacher(str(tmp_path / "early.json")).logits(obs),
        load_sb3_zip(run_dir / "best.zip", env_id="CartPole-v1").logits(obs),
    )
    assert not (run_dir / "summary.json").exists()
    # A resumed run keeps the hyperparameters its checkpoint holds: a changed one is refused, not ignored.
    changed = [a.replace("gamma=0.97", "gamma=0.9") for a in argv[:6] + ["2048"] + argv[7:] + ["--resume"]]
    refused = cli(*changed)
    _one_line_error(*refused)
    assert "gamma=0.9 (the run has 0.97)" in refused[2]
    code, stdout, _ = cli(*(argv[:6] + ["2048"] + argv[7:] + ["--resume"]))
    assert code == 0
    assert json.loads((run_dir / "config.json").read_text())["hyperparams"]["gamma"] == 0.97
    again = json.loads(stdout)
    assert again["run_dir"] == summary["run_dir"] and again["steps"] >= 2048
    assert [r["step"] for r in read_scalars(run_dir) if "eval/mean_reward" in r][-1] >= 2048


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_train_continues_an_exported_teacher(cli, tmp_path, algo):
    """--init-from: a new run starts from the teacher's weights and step count; curve and segments carry over."""
    first = tmp_path / "first"
    common = ["--algo", algo, "--eval-every", "512", "--final-episodes", "3", "--no-progress", "--json"]
    assert (
        cli(
            "teachers",
            "train",
            "CartPole-v1",
            "--steps",
            "1024",
            "--runs-dir",
            str(tmp_path / "a"),
            "--out",
            str(first),
            *common,
        )[0]
        == 0
    )
    m1 = json.loads(first.with_suffix(".json").read_text())
    second = tmp_path / "second"
    code, stdout, err = cli(
        "teachers",
        "train",
        "CartPole-v1",
        "--steps",
        "2048",
        "--init-from",
        str(first.with_suffix(".json")),
        "--runs-dir",
        str(tmp_path / "b"),
        "--out",
        str(second),
        *common,
    )
    assert code == 0, err
    assert f"continuing {first.with_suffix('.json')} from {m1['training']['steps']} steps" in err
    m2 = json.loads(second.with_suffix(".json").read_text())
    t1, t2 = m1["training"], m2["training"]
    assert t2["steps"] >= 2048 and len(t2["segments"]) == 2
    assert t2["segments"][0] == t1["segments"][0] and t2["segments"][1]["start_step"] == t1["steps"]
    assert t2["curve"][: len(t1["curve"])] == t1["curve"] and all(
        e["step"] > t1["steps"] for e in t2["curve"][len(t1["curve"]) :]
    )
    assert t2["wall_s"] > t1["wall_s"] and t2["continued_from"]["steps"] == t1["steps"]


@pytest.mark.parametrize("tid", ["ppo-CartPole-v1", "dqn-CartPole-v1"])
def test_continued_model_holds_the_teacher(tmp_path, tid):
    """The SB3 model a continued run trains is the teacher: same outputs, same step count (so the schedules
    go on), and for DQN a target network equal to the online one and a buffer to refill before learning."""
    import numpy as np
    import torch

    from rl_distill.sb3_vec_env import SB3VecEnv
    from rl_distill.teachers import load_teacher
    from rl_distill.teachers.train import (
        TrainConfig,
        _carried_state,
        _load_init_teacher,
        _load_into,
        hyperparams,
        sb3_model,
    )

    algo = tid.split("-")[0]
    cfg = TrainConfig("CartPole-v1", algo=algo, init_from=tid, progress=False)
    hp = hyperparams("CartPole-v1", algo)
    teacher = _load_init_teacher(cfg, 10**9)
    model = sb3_model(
        cfg.algo, cfg.env_id, SB3VecEnv("CartPole-v1", 2, seed=0), hp, cfg.seed, cfg.device, str(tmp_path)
    )
    _load_into(model, teacher, cfg, hp)
    state = _carried_state(teacher, cfg)
    steps = teacher.meta["training"]["steps"]
    assert model.num_timesteps == steps and state["segments"][-1]["end_step"] == steps
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(16, 4)), dtype=torch.float32)
    ref = load_teacher(tid)
    with torch.no_grad():
        if algo == "dqn":
            assert torch.allclose(model.q_net(obs), ref.q_values(obs), atol=1e-6)
            assert torch.allclose(model.q_net_target(obs), ref.q_values(obs), atol=1e-6)
            assert model.learning_starts == steps + int(hp.get("learning_starts", 0))
        else:
            assert torch.allclose(
                model.policy.get_distribution(obs).distribution.logits,
                torch.log_softmax(ref.logits(obs), -1),
                atol=1e-5,
            )


def test_atari_dqn_run_checks_its_first_convolution_and_takes_optimizer_kwargs(cli, tmp_path):
    """An Atari run logs how much of its first convolution is dead at each evaluation; Adam's settings reach
    SB3 through ``optimizer_kwargs`` and stay in the checkpoint."""
    code, stdout, err = cli(
        "teachers",
        "train",
        "ALE/Pong-v5",
        "--algo",
        "dqn",
        "--n-envs",
        "1",
        "--steps",
        "64",
        "--eval-every",
        "64",
        "--eval-episodes",
        "1",
        "--final-episodes",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "t"),
        "--no-progress",
        "--json",
        "--hyperparams",
        "learning_starts=32",
        "buffer_size=500",
        "optimizer_kwargs={eps=1.5e-4}",
    )
    assert code == 0, err
    run_dir = tmp_path / "runs" / json.loads(stdout)["run_dir"].split("/")[-1]
    dead = [r["train/dead_first_conv"] for r in read_scalars(run_dir) if "train/dead_first_conv" in r]
    assert len(dead) == 1 and 0.0 <= dead[0] < 0.9  # a fresh Nature CNN: 6-28% dead on Pong frames
    from stable_baselines3 import DQN

    model = DQN.load(str(run_dir / "checkpoint.zip"), device="cpu", buffer_size=1)
    assert model.policy.optimizer.param_groups[0]["eps"] == 1.5e-4


@pytest.mark.parametrize(
    "argv",
    [
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--steps", "-5"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--steps", "0"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--seed", "-1"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--device", "tpu"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--eval-episodes", "0"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--loss", "bogus"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--num-envs", "0"],
        ["distill", "bc", "--teacher", "ppo-CartPole-v1", "--student", "mlp-"],
        ["distill", "kickstarting", "--teacher", "ppo-CartPole-v1", "--lr", "nan"],
        ["distill", "ppo", "--teacher", "ppo-CartPole-v1", "--n-steps", "0"],
        ["distill", "policy-distillation", "--teacher", "ppo-CartPole-v1", "--tau", "0"],
        ["distill", "dagger", "--teacher", "ppo-CartPole-v1", "--rounds", "0"],
        ["distill", "dagger", "--teacher", "ppo-CartPole-v1", "--greedy", "perhaps"],
        ["distill", "actor-mimic", "--teacher", "ppo-CartPole-v1", "--epsilon", "2"],
        ["teachers", "train", "CartPole-v1", "--steps", "-5"],
        ["teachers", "train", "CartPole-v1", "--eval-episodes", "0"],
        ["teachers", "train", "CartPole-v1", "--precision", "fp16"],
        ["no-such-command"],
    ],
)
def test_wrong_values_refused_before_any_folder(cli, tmp_path, argv):
    extra = ["--runs-dir", str(tmp_path / "runs")] if argv[0] in ("distill", "teachers") else []
    try:
        code, out, err = cli(*argv, *extra)
    except SystemExit as e:  # argparse's own errors exit from inside main()
        code, err = e.code, ""
    assert code == 2
    if err:
        _one_line_error(code, out, err)
    assert not (tmp_path / "runs").exists()


def test_usage_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "rl_distill.cli", "distill", "bc", "--no-such-flag"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("rl-distill: error: ") and "--help)" in r.stderr


def test_output_into_a_closed_pipe_is_no_traceback():
    """`rl-distill ... | head`: the reader is gone before the output is written; the command ends quietly."""
    import subprocess
    import sys

    p = subprocess.Popen(
        [sys.executable, "-m", "rl_distill.cli", "teachers", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait() == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err


# --- distill's method options: generated from each method's Config ------------------------------------------
@functools.cache
def _parser():
    """The real CLI parser, built once (argparse parsers can parse many command lines)."""
    from rl_distill.cli import build_parser

    return build_parser()


def _method_parser(name):
    """The `distill NAME` subparser of the real CLI parser."""

    def sub(parser, key):
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return action.choices[key]

    return sub(sub(_parser(), "distill"), name)


def _parse(*argv):
    return _parser().parse_args(["distill", *argv])


def _sample(opt):
    """A valid command-line text for an option and the value it must parse to (other than the default)."""
    if opt.type is bool:
        return ("false" if opt.default else "true"), not opt.default
    if opt.type is int:
        return "7", 7
    if opt.type is float:
        return "0.375", 0.375
    return str(opt.default), str(opt.default)  # str options are checked by the Config, so keep a valid one


def test_every_config_field_is_a_flag_with_help():
    import dataclasses

    from rl_distill.cli import method_options, run_spec
    from rl_distill.configs import options
    from rl_distill.methods import METHODS, get_method

    for name in METHODS:
        cfg = get_method(name).Config
        opts = options(cfg)
        assert [o.name for o in opts] == [f.name for f in dataclasses.fields(cfg)]
        by_dest = {a.dest: a for a in _method_parser(name)._actions}
        for o in opts:
            action = by_dest[f"option:{o.name}"]
            assert o.help and o.help in action.help.replace("%%", "%"), (name, o.name)
            assert set(o.flags) == set(action.option_strings) and o.flags[0].startswith("--")
            text, value = _sample(o)
            for flag in o.flags:  # the main flag and every alias reach the same field, parsed to its type
                ns = _parse(name, "--teacher", "t", flag, text)
                assert method_options(ns) == {o.name: value}, (name, flag)
                assert type(run_spec(ns).options[o.name]) is type(value)
        # Those options build the method's Config (one at a time, so no two of them clash).
        for o in opts:
            cfg(**{o.name: _sample(o)[1]})


def test_only_given_flags_reach_the_options_and_env_defaults_apply_under_them():
    from rl_distill.cli import run_spec
    from rl_distill.distill import method_config
    from rl_distill.methods import get_method

    spec = run_spec(_parse("on-policy", "--teacher", "ppo-ALE-Pong-v5", "--steps", "100", "--seed", "3"))
    assert spec.options == {} and (spec.method, spec.teachers, spec.steps, spec.seed) == (
        "on-policy",
        ["ppo-ALE-Pong-v5"],
        100,
        3,
    )
    spec = run_spec(_parse("on-policy", "--teacher", "t", "--lr", "1e-3"))
    cfg = method_config(get_method("on-policy"), spec.options, ["ALE/Pong-v5"])
    assert cfg.lr == 1e-3 and cfg.memory == 20_000  # the flag over the Atari default, the other defaults kept
    spec = run_spec(_parse("ppo", "--teacher", "t", "--epochs", "3"))
    cfg = method_config(get_method("ppo"), spec.options, ["CartPole-v1"])
    assert spec.options == {"n_epochs": 3} and cfg.n_epochs == 3  # over rl-zoo3's 20 for CartPole


@pytest.mark.parametrize(
    "argv, options",
    [
        (["on-policy", "--lambda", "0.5"], {"lam": 0.5}),
        (["on-policy", "--student-fraction", "0.5"], {"lam": 0.5}),
        (["kickstarting", "--lambda", "2"], {"lam": 2.0}),
        (["kickstarting", "--distill-weight", "2"], {"lam": 2.0}),
        (["kickstarting", "--lambda-schedule", "constant"], {"lambda_schedule": "constant"}),
        (
            ["on-policy", "--lambda-schedule", "ramp", "--lambda-ramp", "0.25"],
            {"lambda_schedule": "ramp", "lambda_ramp": 0.25},
        ),
        (["on-policy", "--beta", "0.2"], {"beta": 0.2}),
        (["on-policy", "--jsd-beta", "0.2", "--alpha", "0.3"], {"beta": 0.2, "alpha": 0.3}),
        (["dagger", "--beta", "0.7", "--beta-schedule", "linear"], {"beta": 0.7, "beta_schedule": "linear"}),
        (["dagger", "--expert-p", "0.7", "--expert-schedule", "linear"], {"beta": 0.7, "beta_schedule": "linear"}),
        (["dagger", "--greedy", "false", "--epochs", "2"], {"greedy": False, "epochs": 2}),
        (["ppo", "--epochs", "3"], {"n_epochs": 3}),
        (
            ["ppo", "--n-epochs", "3", "--gamma", "0.9", "--ent-coef", "0", "--clip", "0.1"],
            {"n_epochs": 3, "gamma": 0.9, "ent_coef": 0.0, "clip": 0.1},
        ),
        (["kickstarting", "--epochs", "3"], {"n_epochs": 3}),
        (["policy-distillation", "--capacity", "5000"], {"capacity": 5000}),
        (["policy-distillation", "--capacity", "none"], {"capacity": None}),
    ],
)
def test_flag_names_map_to_config_fields(argv, options):
    from rl_distill.cli import method_options

    assert method_options(_parse(argv[0], "--teacher", "t", *argv[1:])) == options


def test_field_names_stay_the_option_keys():
    """The flags are a CLI mapping: Config fields, asdict (run records, suite keys) keep their names."""
    import dataclasses

    from rl_distill.methods import get_method

    assert {"lam", "beta", "alpha", "lambda_schedule", "lambda_ramp"} <= dataclasses.asdict(
        get_method("on-policy").Config()
    ).keys()
    assert {"lam", "lambda_schedule", "lam_final_ratio", "n_epochs"} <= dataclasses.asdict(
        get_method("kickstarting").Config()
    ).keys()
    assert dataclasses.asdict(get_method("dagger").Config())["beta"] == 0.5


@pytest.mark.parametrize(
    "argv",
    [
        ["ppo", "--epochs", "x"],
        ["on-policy", "--lr", "fast"],
        ["dagger", "--greedy", "perhaps"],
        ["policy-distillation", "--capacity", "many"],
        ["bc", "--tau", "0.1"],  # not a bc option
        ["kickstarting", "--lam", "3"],  # no abbreviations: --lam is not --lam-final-ratio
        ["ppo", "--lambda", "1"],
        ["no-such-method"],
    ],
)
def test_bad_method_flags_are_one_line_errors(cli, tmp_path, argv):
    _one_line_error(*cli("distill", argv[0], "--teacher", "ppo-CartPole-v1", *argv[1:], "--runs-dir", str(tmp_path)))
    assert not list(tmp_path.iterdir())


def test_a_new_config_field_is_a_new_flag():
    import dataclasses
    import types

    from rl_distill.cli import _Parser, add_method_options, method_options

    @dataclasses.dataclass
    class Base:
        knob: int = 1
        """A knob."""

    @dataclasses.dataclass
    class Config(Base):
        new_knob: float | None = None
        """A new knob (none: off)."""
        sizes: list[int] = dataclasses.field(default_factory=lambda: [64, 64])
        """Layer widths."""
        switch: bool = dataclasses.field(default=False, metadata={"flags": ("--switch", "--toggle")})
        """On or off."""

    parser = _Parser(prog="rl-distill distill fake")
    add_method_options(parser, types.SimpleNamespace(NAME="fake", Config=Config))
    ns = parser.parse_args(["--new-knob", "0.5", "--sizes", "8", "16", "--toggle", "yes", "--knob", "2"])
    assert method_options(ns) == {"new_knob": 0.5, "sizes": [8, 16], "switch": True, "knob": 2}
    assert method_options(parser.parse_args(["--new-knob", "none"])) == {"new_knob": None}
    assert method_options(parser.parse_args([])) == {}
    helps = parser.format_help()
    assert "A knob. (default: 1)" in helps and "Layer widths. (default: 64 64)" in helps and "--toggle" in helps


def _train_parser():
    """The `teachers train` subparser of the real CLI parser."""
    (teachers,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (sub,) = [a for a in teachers.choices["teachers"]._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["train"]


@pytest.mark.parametrize("cls_name", ["RunSpec", "TrainConfig"])
def test_run_settings_are_flags_from_their_fields(cls_name):
    """RunSpec's and TrainConfig's flags come from their fields as the methods' do: each field with a flag is one,
    its docstring the help; the others (library and bench settings) are none."""
    import dataclasses

    from rl_distill.configs import options
    from rl_distill.distill import RunSpec
    from rl_distill.teachers.config import TrainConfig

    cls = {"RunSpec": RunSpec, "TrainConfig": TrainConfig}[cls_name]
    parser = _method_parser("bc") if cls is RunSpec else _train_parser()
    by_dest = {a.dest: a for a in parser._actions}
    opts = options(cls)
    for o in opts:
        action = by_dest[o.name]
        assert o.help and o.help in action.help.replace("%%", "%"), o.name
        assert set(o.flags) == set(action.option_strings or [action.dest]), o.name
    off = {f.name: f for f in dataclasses.fields(cls)}.keys() - {o.name for o in opts}
    assert {"command"} | ({"method", "options", "eval_cache", "tensorboard"} if cls is RunSpec else set()) <= off
    assert all(f.metadata.get("cli") is False for f in dataclasses.fields(cls) if f.name in off)


def test_run_settings_not_given_take_their_fields_defaults():
    """A flag not given leaves its field's default (written once, in the dataclass): the parsed command builds the
    same RunSpec and TrainConfig as the library's defaults, and the help states those defaults."""
    from rl_distill.cli import config_values, run_spec
    from rl_distill.distill import RunSpec
    from rl_distill.teachers.config import TrainConfig

    assert run_spec(_parse("bc")) == RunSpec(method="bc")
    assert config_values(_parse("bc"), RunSpec) == {}
    ns = _parser().parse_args(["teachers", "train", "CartPole-v1"])
    assert config_values(ns, TrainConfig) == {"env_id": "CartPole-v1"}
    assert TrainConfig(**config_values(ns, TrainConfig)) == TrainConfig("CartPole-v1")
    helps = " ".join(_train_parser().format_help().split())
    assert "Episodes per periodic evaluation. (default: 20)" in helps
    assert "(default: 0.25 on Atari, 0.1 on MinAtar)" in helps  # the protocols' own values
    assert "(default: 100 on control and MinAtar, 30 on Atari)" in helps
    helps = " ".join(_method_parser("bc").format_help().split())
    assert "(default: 100 on control and MinAtar, 10 on Atari)" in helps and "--no-progress" in helps


@pytest.mark.parametrize(
    "argv, values",
    [
        (["--teacher", "a", "--teacher", "b", "--env", "X-v1", "--env", "Y-v1"], {"teachers": ["a", "b"]}),
        (["--keep", "Acrobot-v1", "--keep-teacher", "t", "--no-progress", "--resume"], {"keep": ["Acrobot-v1"]}),
        (["--steps", "100", "--precision", "bf16", "--threads", "2"], {"steps": 100, "precision": "bf16"}),
    ],
)
def test_distill_flags_reach_the_run_spec(argv, values):
    from rl_distill.cli import run_spec

    spec = run_spec(_parse("bc", *argv))
    assert {k: getattr(spec, k) for k in values} == values
    if "--env" in argv:
        assert spec.envs == ["X-v1", "Y-v1"]
    if "--no-progress" in argv:
        assert (spec.progress, spec.resume, spec.keep_teachers) == (False, True, ["t"])


def test_train_flags_reach_the_train_config():
    from rl_distill.cli import config_values
    from rl_distill.teachers.config import TrainConfig

    argv = ["teachers", "train", "MinAtar/Breakout-v1", "--algo", "dqn", "--sticky-actions", "0.2", "--no-progress"]
    ns = _parser().parse_args([*argv, "--hyperparams", "learning_starts=20000", "gamma=0.9", "--eval-episodes", "5"])
    cfg = TrainConfig(**config_values(ns, TrainConfig))
    assert (cfg.env_id, cfg.algo, cfg.sticky_actions, cfg.progress, cfg.eval_episodes) == (
        "MinAtar/Breakout-v1",
        "dqn",
        0.2,
        False,
        5,
    )
    assert cfg.hyperparams == {"learning_starts": 20000, "gamma": 0.9}


def test_a_new_run_setting_is_a_new_flag():
    """A field added to a run's settings is a flag with its docstring as help, its default in one place."""
    import dataclasses

    from rl_distill.cli import _Parser, add_config_flags, config_values
    from rl_distill.configs import NO_FLAG, flag

    @dataclasses.dataclass
    class Settings:
        target: str = dataclasses.field(metadata=flag("target"))
        """What to train."""
        rounds: int = 3
        """Rounds to play."""
        quiet: bool = False
        """Say less."""
        shown: bool = dataclasses.field(default=True, metadata=flag("--hidden"))
        """Show it (--hidden: not)."""
        tags: list[str] = dataclasses.field(default_factory=list, metadata=flag("--tag", action="append"))
        """A tag; repeatable."""
        secret: int = dataclasses.field(default=7, metadata=NO_FLAG)

    parser = _Parser(prog="rl-distill fake")
    add_config_flags(parser, Settings)
    ns = parser.parse_args(["x", "--rounds", "4", "--quiet", "--hidden", "--tag", "a", "--tag", "b"])
    assert config_values(ns, Settings) == {
        "target": "x",
        "rounds": 4,
        "quiet": True,
        "shown": False,
        "tags": ["a", "b"],
    }
    assert Settings(**config_values(parser.parse_args(["y"]), Settings)) == Settings("y")
    helps = " ".join(parser.format_help().split())
    assert "Rounds to play. (default: 3)" in helps and "Say less." in helps and "--secret" not in helps


# --- --json: one document on stdout ------------------------------------------------------------------------
def test_json_commands_keep_stdout_for_the_document(cli, monkeypatch):
    import rl_distill.cli as cli_module

    def noisy(a):
        print("a library's chatter")
        cli_module._print_json({"ok": True})
        return 0

    monkeypatch.setattr(cli_module, "cmd_teachers_list", noisy)
    code, out, err = cli("teachers", "list", "--json")
    assert code == 0 and json.loads(out) == {"ok": True} and "a library's chatter" in err
    code, out, _ = cli("teachers", "list")
    assert "a library's chatter" in out  # without --json nothing moves


def test_bench_json_is_one_document(cli, tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(
        'name = "tiny-json"\nseeds = 1\neval_episodes = 2\ncurve_points = 1\ncurve_episodes = 1\n'
        '[[grid]]\nmethod = "policy-distillation"\nenv = "CartPole-v1"\nsteps = 300\n'
    )
    argv = ["bench", str(suite), "--workers", "1", "--out", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs")]
    code, out, err = cli(*argv, "--json")  # with the progress bar: its per-run lines go to stderr
    assert code == 0, err
    r = json.loads(out)
    assert (r["suite"], r["runs"], r["ran"], r["failed"]) == ("tiny-json", 1, 1, 0)
    assert "of teacher" in err


def test_every_flag_of_every_command_has_help():
    """`--help` explains every flag and positional of every (sub)command, the generated method flags included."""
    import argparse

    from rl_distill.cli import build_parser

    missing = []

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, [*path, name])
            elif a.dest != "help" and not a.help:
                missing.append(f"{' '.join(path)} {a.option_strings or a.dest}")

    walk(build_parser(), [])
    assert not missing, missing
