import json

import pytest

from rl_distill.runs import read_scalars


def _one_line_error(code, out, err):
    assert code == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("rl-distill: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["teachers", "train", "CartPole-v9"],
    ["teachers", "train", "ALE/NoGame-v5", "--algo", "dqn"],
    ["teachers", "eval", "ppo-CartPole-v1", "--env", "NotAnEnv-v0"],
    ["teachers", "eval", "no-such-teacher"],
    ["teachers", "eval", "/nonexistent/model.zip"],
    ["teachers", "eval", "/nonexistent/teacher.json"],
    ["teachers", "eval", "ppo-CartPole-v1", "--env", "Acrobot-v1"],
])
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
    assert code == 0 and head == ["id", "env", "algo", "score", "std", "iqm", "human_norm", "episodes", "steps", "wall_s", "steps_per_s"]
    pong = next(line.split() for line in out.splitlines() if line.startswith("ppo-ALE-Pong-v5"))
    from rl_distill.teachers import ZOO_DIR
    from rl_distill.teachers.checkpoint import read_meta

    m = read_meta(ZOO_DIR / "ppo-ALE-Pong-v5")
    assert pong[3] == f"{m['score']['mean']:.1f}" and pong[6] == f"{m['score']['human_normalized']:.2f}" and pong[8] == str(m["training"]["steps"])


def test_eval_json_deterministic(cli):
    _, a, _ = cli("teachers", "eval", "ppo-CartPole-v1", "--episodes", "5", "--seed", "1", "--json")
    _, b, _ = cli("teachers", "eval", "ppo-CartPole-v1", "--episodes", "5", "--seed", "1", "--json")
    assert json.loads(a) == json.loads(b) and json.loads(a)["n"] == 5


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_train_writes_run_and_resumes(cli, tmp_path, algo):
    runs = tmp_path / "runs"
    out = tmp_path / "teacher"
    argv = ["teachers", "train", "CartPole-v1", "--algo", algo, "--steps", "1024", "--eval-every", "512",
            "--final-episodes", "3", "--runs-dir", str(runs), "--out", str(out), "--no-progress", "--json"]
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
    # A killed run has no summary.json: --resume picks it up and trains on to the new budget.
    (run_dir / "summary.json").unlink()
    code, stdout, _ = cli(*(argv[:6] + ["2048"] + argv[7:] + ["--resume"]))
    assert code == 0
    again = json.loads(stdout)
    assert again["run_dir"] == summary["run_dir"] and again["steps"] >= 2048
    assert [r["step"] for r in read_scalars(run_dir) if "eval/mean_reward" in r][-1] >= 2048
