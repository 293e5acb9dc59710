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
