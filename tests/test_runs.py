import time

from rl_distill.runs import new_run_dir, run_name


def test_new_run_dir_never_reuses_a_folder_started_in_the_same_second(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1795934146.7)
    first = new_run_dir(tmp_path / "runs", "ALE/Pong-v5", "policy-distillation", 3)
    (first / "scalars.jsonl").write_text("old\n")
    second = new_run_dir(tmp_path / "runs", "ALE/Pong-v5", "policy-distillation", 3)
    third = new_run_dir(tmp_path / "runs", "ALE/Pong-v5", "policy-distillation", 3)
    assert (
        first.name
        == run_name("ALE/Pong-v5", "policy-distillation", 3)
        == "ALE-Pong-v5__policy-distillation__3__1795934146"
    )
    assert (second.name, third.name) == (first.name + "-1", first.name + "-2")
    assert second.is_dir() and not list(second.iterdir()) and (first / "scalars.jsonl").read_text() == "old\n"


def test_claim_run_dir_is_one_lifecycle(tmp_path, capsys):
    """The run folder of distill, bench cells and teachers train: --resume with nothing unfinished says so in one
    line and starts a new folder; a user error before the first checkpoint removes that folder (and the runs folder
    it made); a finished block drops the lock and the files it names; --resume finds the unfinished run."""
    import pytest

    from rl_distill.errors import UserError
    from rl_distill.runs import claim_run_dir, hold_lock

    runs = tmp_path / "runs"
    kw = dict(resume=True, marker="checkpoint.pt", what="bc run of CartPole-v1 (seed 0)")
    with pytest.raises(UserError, match="wrong"), claim_run_dir(runs, "CartPole-v1", "bc", 0, **kw) as (d, resumed):
        assert not resumed and d.parent == runs and (d / ".lock").exists()
        raise UserError("wrong")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"--resume: no unfinished bc run of CartPole-v1 (seed 0) in {runs}")
    assert not runs.exists()  # the folder and the runs folder it made

    with claim_run_dir(runs, "CartPole-v1", "bc", 0, **kw | {"resume": False}) as (first, resumed):
        (first / "checkpoint.pt").write_text("ck")
    assert capsys.readouterr().err == "" and not resumed and (first / "checkpoint.pt").exists()
    assert not (first / ".lock").exists()
    with claim_run_dir(runs, "CartPole-v1", "bc", 0, **kw, drop_when_done=("checkpoint.pt",)) as (d, resumed):
        assert (d, resumed) == (first, True)
    assert not (first / "checkpoint.pt").exists() and capsys.readouterr().err == ""

    (first / "checkpoint.pt").write_text("ck")
    with hold_lock(first / ".lock"), pytest.raises(UserError, match="being trained by another process"):
        with claim_run_dir(runs, "CartPole-v1", "bc", 0, **kw):
            pass
    with pytest.raises(UserError), claim_run_dir(runs, "CartPole-v1", "bc", 0, **kw) as (d, resumed):
        raise UserError("a resumed run is never removed")
    assert list(runs.iterdir()) == [first] and (first / "checkpoint.pt").exists()
