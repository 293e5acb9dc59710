"""The method protocol and the run context: every method fits protocol.Method, methods use only the names of
protocol.MethodContext, the context counts gradient steps itself, and the clock's figures say which time they are."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from rl_distill import context
from rl_distill.context import Checkpointer, Context, CurveEvaluator, RunClock
from rl_distill.envs import env_spec
from rl_distill.methods import METHODS, get_method
from rl_distill.protocol import EnvCheckHook, EnvDefaultsHook, Method, MethodContext
from rl_distill.rollout import ReplayMemory
from rl_distill.runs import RunLogger
from rl_distill.students import make_student

ROOT = Path(__file__).resolve().parents[1] / "rl_distill"


def _protocol_names(proto: type) -> set[str]:
    return {n for n in vars(proto) if not n.startswith("_")} | set(proto.__annotations__)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_fits_the_protocol(name):
    m = get_method(name)
    assert isinstance(m, Method) and m.NAME == name and isinstance(m.MULTI_TASK, bool)
    assert dataclasses.is_dataclass(m.Config) and m.default_steps("CartPole-v1") > 0
    # env_defaults is optional; where a module has one, it is the hook the harness calls.
    assert isinstance(m, EnvDefaultsHook) == hasattr(m, "env_defaults")
    assert isinstance(m, EnvCheckHook) == hasattr(m, "check_envs")


def test_methods_use_only_the_method_context():
    """Every ``ctx.<name>`` in a method file or a shared loop is a MethodContext name."""
    allowed = _protocol_names(MethodContext)
    used: dict[str, set[str]] = {}
    for path in [*(ROOT / "methods").glob("*.py"), ROOT / "rl.py", ROOT / "td.py", ROOT / "supervised.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ctx":
                used.setdefault(node.attr, set()).add(path.name)
    assert set(used) <= allowed, {k: v for k, v in used.items() if k not in allowed}


def _context(tmp_path: Path, resume: bool = False) -> Context:
    env_ids = ["CartPole-v1"]
    spec = env_spec("CartPole-v1")
    student = make_student("mlp-8", [spec.obs_shape], [spec.n_actions], seed=0)
    logger = RunLogger(tmp_path, tensorboard=False)
    clock = RunClock()
    device = torch.device("cpu")
    ckpt = Checkpointer(tmp_path, every_s=120.0, resume=resume, device=device)
    curve = CurveEvaluator(student, device, env_ids, logger, clock, None, 1, 0, None)
    return Context([], env_ids, [spec], student, device, 0, 100, tmp_path, logger, clock, ckpt, curve)


def _steps(ctx: Context, opt: torch.optim.Optimizer, n: int) -> None:
    for _ in range(n):
        opt.zero_grad()
        ctx.student(torch.zeros(2, 4), 0)["logits"].sum().backward()
        opt.step()


def test_the_context_counts_the_steps_of_its_optimizer_and_resumes_them(tmp_path, capsys):
    ctx = _context(tmp_path)
    assert all(hasattr(ctx, n) for n in _protocol_names(MethodContext))
    opt = torch.optim.Adam(ctx.student.parameters(), lr=1e-3)
    assert ctx.begin(opt) is None  # a fresh run
    _steps(ctx, opt, 3)
    other = torch.optim.SGD(ctx.student.parameters(), lr=0.0)
    _steps(ctx, other, 2)  # an optimizer not given to begin is not the run's
    assert ctx.gradient_steps == 3
    ctx.maybe_checkpoint(opt, lambda: {"iteration": 7}, force=True)
    ctx.close()

    again = _context(tmp_path, resume=True)
    opt2 = torch.optim.Adam(again.student.parameters(), lr=1e-3)
    assert again.begin(opt2) == {"iteration": 7} and again.gradient_steps == 3
    assert again.checkpoints.resumed_from == 0 and "resuming" in capsys.readouterr().err
    _steps(again, opt2, 2)
    assert again.gradient_steps == 5
    again.close()


class _FakeTime:
    def __init__(self, now: float):
        self.now, self.cpu = now, 0.0

    def time(self) -> float:
        return self.now

    def process_time(self) -> float:
        return self.cpu


def test_the_clock_names_which_time_each_figure_is(monkeypatch):
    t = _FakeTime(1000.0)
    monkeypatch.setattr(context, "time", t)
    clock = RunClock(started_at=990.0)  # 10 s of setup before the method starts: not training
    t.now, t.cpu = 1005.0, 4.0
    assert (clock.elapsed_s, clock.training_s, clock.cpu_s, clock.training_cpu_s) == (15.0, 5.0, 4.0, 4.0)
    with clock.not_training():  # a learning-curve evaluation: neither its wall nor its CPU time is training
        t.now += 3.0
        t.cpu += 2.5
    assert (clock.elapsed_s, clock.training_s, clock.cpu_s, clock.training_cpu_s) == (18.0, 5.0, 6.5, 4.0)
    assert clock.training_times() == {"time/wall_s": 5.0, "time/cpu_s": 4.0}  # what a logged row carries
    saved = clock.state()
    # wall_s: a checkpoint's name for training
    assert saved == {"wall_s": 5.0, "elapsed_s": 18.0, "cpu_s": 6.5, "train_cpu_s": 4.0}

    t.now, t.cpu = 2002.0, 100.0  # a resumed process, started 2 s ago
    resumed = RunClock(started_at=2000.0)
    resumed.load(saved)
    assert (resumed.elapsed_s, resumed.training_s, resumed.cpu_s, resumed.training_cpu_s) == (20.0, 5.0, 6.5, 4.0)
    t.now, t.cpu = 2006.0, 101.0
    assert (resumed.elapsed_s, resumed.training_s, resumed.cpu_s, resumed.training_cpu_s) == (24.0, 9.0, 7.5, 5.0)
    old = RunClock(started_at=2006.0)
    old.load({"wall_s": 5.0, "cpu_s": 6.5})  # a checkpoint from before elapsed_s was kept: elapsed is a lower bound
    assert (old.elapsed_s, old.training_s, old.cpu_s) == (5.0, 5.0, 6.5)
    # ... nor train_cpu_s: the training CPU seconds are not known for the rest of the run, and not logged
    assert old.training_cpu_s is None and old.training_times() == {"time/wall_s": 5.0}
    assert "train_cpu_s" not in old.state()


def test_a_replay_minibatch_names_the_teacher_outputs_as_a_batch_does():
    m = ReplayMemory(4, (3,), torch.float32, 2, feature_dim=5)
    m.add(torch.ones(6, 3), torch.full((6, 2), 2.0), torch.full((6, 5), 3.0))
    mb = m.sample(3, torch.Generator().manual_seed(0))
    assert set(mb) == {"obs", "teacher_logits", "teacher_features"}
    assert (mb["teacher_logits"] == 2.0).all() and (mb["teacher_features"] == 3.0).all()
    saved = m.state_dict()
    assert {"logits", "features"} <= set(saved)  # the keys checkpoints have always had, so those still resume
    back = ReplayMemory(4, (3,), torch.float32, 2, feature_dim=5)
    back.load_state_dict(saved)
    assert len(back) == 4 and torch.equal(back.teacher_logits, m.teacher_logits)


def test_kickstarting_and_ppd_terms_are_their_losses_on_a_minibatch():
    from rl_distill import losses
    from rl_distill.methods import kickstarting, ppd
    from rl_distill.rl import PPOMinibatch

    t, s = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([[0.5, 0.5, 0.0], [1.0, -1.0, 0.0]])
    actions, old = torch.tensor([0, 2]), torch.log(torch.tensor([0.4, 0.3]))
    mb = PPOMinibatch(s, actions, old, t, clip=0.2)
    ce, scalars = kickstarting.distill_term(mb)
    assert ce.item() == pytest.approx(losses.cross_entropy(t, s).mean().item())
    assert scalars["distill/kl"] == pytest.approx(losses.forward_kl(t, s).mean().item())
    term, scalars = ppd.distill_term(mb, divergence=losses.reverse_kl)
    expected, d = ppd.ppd_term(t, s, actions, old, 0.2, losses.reverse_kl)
    assert term.item() == pytest.approx(expected.item()) and scalars["distill/kl"] == pytest.approx(d.item())
