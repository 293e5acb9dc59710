"""PPO from scratch on MinAtar as the shipped PPO teachers were trained: the tower student (minatar-ppo, SB3's
ActorCriticPolicy on MinAtarCNN with 64-64 tanh towers) and [ppo.minatar]'s settings."""

import json
from pathlib import Path

import pytest
import torch

from rl_distill.errors import UserError
from rl_distill.networks import Arch, build_net, count_params
from rl_distill.students import (
    Student,
    StudentSpec,
    check_compute,
    fit_error,
    load_student,
    make_student,
    param_count,
)
from rl_distill.teachers.checkpoint import save_teacher

BREAKOUT = [(4, 10, 10)], [3]


def _teacher_arch(n_actions=3, channels=4) -> Arch:
    return Arch(
        kind="actor_critic",
        obs_shape=(channels, 10, 10),
        n_actions=n_actions,
        encoder="minatar",
        cnn_channels=(16,),
        cnn_features=128,
        pi_layers=(64, 64),
        vf_layers=(64, 64),
        activation="tanh",
    )


def test_spec_parses_and_prints_back():
    k = StudentSpec.parse("minatar-ppo")
    assert (k.kind, k.widths, k.towers) == ("mcnn", (16, 128), (64, 64))
    assert str(k) == "mcnn-16-128-t64-64" and StudentSpec.parse(str(k)) == k
    assert StudentSpec.parse("mcnn-16-128-t32") == StudentSpec("mcnn", (16, 128), (32,))
    assert StudentSpec.parse("cnn-16-16-16-64-t64-64").towers == (64, 64)
    assert StudentSpec.parse("minatar") == StudentSpec("mcnn", (16, 128))  # no towers: as before
    assert str(StudentSpec.parse("mlp-64-64")) == "mlp-64-64"


def test_param_count_by_hand_is_the_teachers():
    # conv 4 -> 16 3x3: 4*16*9 + 16; fc 16*8*8 -> 128; two towers 128 -> 64 -> 64; policy head 64 -> 3; value 64 -> 1
    encoder = (4 * 16 * 9 + 16) + (16 * 8 * 8 * 128 + 128)
    tower = (128 * 64 + 64) + (64 * 64 + 64)
    hand = encoder + 2 * tower + (64 * 3 + 3) + (64 + 1)
    assert hand == 156_884
    assert param_count("minatar-ppo", *BREAKOUT) == hand
    s = Student("minatar-ppo", *BREAKOUT)
    assert count_params(s) == hand == count_params(build_net(_teacher_arch()))  # the SB3 teacher's network
    assert s.policy_params() == hand - tower - 65  # acting needs neither the value tower nor the value head
    shipped = Path(__file__).parents[1] / "rl_distill/zoo/ppo-MinAtar-Breakout-v1.json"
    if shipped.exists():
        from rl_distill.teachers import load_teacher

        assert load_teacher("ppo-MinAtar-Breakout-v1").num_params == hand


def test_forward_shapes_and_towers():
    s = Student("minatar-ppo", [(4, 10, 10), (7, 10, 10)], [3, 5])  # two games: towers shared, heads per game
    assert s.features_dim == 64
    for task, (c, a) in enumerate([(4, 3), (7, 5)]):
        out = s(torch.randint(0, 2, (6, c, 10, 10), dtype=torch.uint8), task)
        assert out["logits"].shape == (6, a) and out["value"].shape == (6,) and out["features"].shape == (6, 64)
    assert [type(m).__name__ for m in s.policy_tower] == ["Linear", "Tanh", "Linear", "Tanh"]
    assert [type(m).__name__ for m in s.value_tower] == ["Linear", "Tanh", "Linear", "Tanh"]


def test_teacher_weights_give_the_teachers_outputs():
    """Layer for layer SB3's ActorCriticPolicy: a teacher's weights in the student give the teacher's logits and
    value (shared encoder, tanh towers, heads on the towers)."""
    torch.manual_seed(1)
    net = build_net(_teacher_arch())
    t = net.state_dict()
    names = {
        "features_extractor.cnn.0": "encoder.cnn.0",
        "features_extractor.linear.0": "encoder.linear.0",
        "mlp_extractor.policy_net.0": "policy_tower.0",
        "mlp_extractor.policy_net.2": "policy_tower.2",
        "mlp_extractor.value_net.0": "value_tower.0",
        "mlp_extractor.value_net.2": "value_tower.2",
        "action_net": "heads.0",
        "value_net": "value_heads.0",
    }
    s = Student("minatar-ppo", *BREAKOUT)
    s.load_state_dict({f"{names[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v for k, v in t.items()})
    obs = torch.randint(0, 2, (8, 4, 10, 10), dtype=torch.uint8)
    a, b = net(obs), s(obs)
    assert torch.allclose(a["logits"], b["logits"]) and torch.allclose(a["value"], b["value"])


def test_sb3_initialisation():
    s = make_student("minatar-ppo", *BREAKOUT, seed=0)
    for layer in (s.encoder.cnn[0], s.encoder.linear[0], s.policy_tower[0], s.value_tower[2]):
        w = layer.weight.flatten(1)
        rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # orthogonal at gain sqrt 2
        assert torch.allclose(rows, 2 * torch.eye(rows.shape[0]), atol=1e-4)
        assert (layer.bias == 0).all()
    assert s.heads[0].weight.norm(dim=1).max() < 0.011  # policy head gain 0.01: near-uniform start
    a, b = make_student("minatar-ppo", *BREAKOUT, seed=3), make_student("minatar-ppo", *BREAKOUT, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_save_load_round_trip(tmp_path):
    from rl_distill.distill import _save_student

    s = make_student("minatar-ppo", *BREAKOUT, seed=0)
    _save_student(tmp_path, s, ["MinAtar/Breakout-v1"])
    assert json.loads((tmp_path / "student.json").read_text())["spec"] == "mcnn-16-128-t64-64"
    back = load_student(tmp_path)
    assert str(back.spec) == "mcnn-16-128-t64-64" and back.policy_tower is not None
    obs = torch.randint(0, 2, (5, 4, 10, 10), dtype=torch.uint8)
    a, b = s(obs), back(obs)
    assert all(torch.equal(a[k], b[k]) for k in ("logits", "value", "features"))
    meta = json.loads((tmp_path / "student.json").read_text())
    (tmp_path / "student.json").write_text(json.dumps(meta | {"spec": "minatar"}))  # other layers: refused
    with pytest.raises(UserError, match="no trained student"):
        load_student(tmp_path)


@pytest.mark.parametrize(
    "spec, says",
    [
        ("mlp-64-t64", "an mlp student has separate policy and value towers already"),
        ("mcnn-16-128-t", "bad student spec"),
        ("mcnn-16-128-t0", "bad student spec"),
        ("mcnn-16-t64", "bad student spec"),
        ("mcnn-16-128-t64-t64", "bad student spec"),
        ("mcnn-16-128-tx", "bad student spec"),
    ],
)
def test_bad_tower_spec_is_one_line(spec, says):
    with pytest.raises(UserError) as e:
        StudentSpec.parse(spec)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_tower_student_that_does_not_fit_is_refused():
    why = fit_error("minatar-ppo", [(8,)])
    assert why is not None and "needs image observations" in why and "\n" not in why
    with pytest.raises(UserError):
        Student("minatar-ppo", [(8,)], [2])
    assert param_count("cnn-32-64-64-512-t64-64", *BREAKOUT) is None  # the Nature CNN leaves nothing of 10x10
    with pytest.raises(UserError, match="hidden layers"):
        check_compute("mcnn-4-4-t" + "-".join(["4"] * 70), *BREAKOUT, steps=1000)


def test_ppo_minatar_defaults_are_the_teachers():
    """ppo on MinAtar resolves to [ppo.minatar] (the shipped PPO teachers' SB3 settings), SB3's value loss too;
    the other families keep theirs; kickstarting and PPD, PPO plus a teacher term, take the same value loss."""
    from rl_distill.distill import method_config
    from rl_distill.methods import get_method
    from rl_distill.teachers.train import hyperparams

    ppo = get_method("ppo")
    hp = hyperparams("MinAtar/Breakout-v1", "ppo")
    for env in ("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1"):
        c = method_config(ppo, {}, [env])
        assert c.num_envs == hp["n_envs"] == 64 and c.n_steps == hp["n_steps"] == 128
        assert c.num_envs * c.n_steps // c.minibatches == hp["batch_size"] == 2048
        assert c.n_epochs == hp["n_epochs"] == 4
        assert (c.lr, c.anneal_lr, c.clip, c.anneal_clip) == (hp["learning_rate"], False, hp["clip_range"], False)
        assert (c.gamma, c.gae_lambda) == (hp["gamma"], hp["gae_lambda"]) == (0.999, 0.95)
        assert (c.ent_coef, c.vf_coef, c.max_grad_norm) == (hp["ent_coef"], hp["vf_coef"], hp["max_grad_norm"])
        assert c.sb3_value_loss is True and c.clip_rewards is False
    assert method_config(ppo, {"sb3_value_loss": False}, ["MinAtar/Breakout-v1"]).sb3_value_loss is False
    assert method_config(ppo, {}, ["CartPole-v1"]).sb3_value_loss is False
    assert method_config(ppo, {}, ["ALE/Pong-v5"]).sb3_value_loss is False
    for m in ("kickstarting", "ppd"):
        assert method_config(get_method(m), {}, ["MinAtar/Breakout-v1"]).sb3_value_loss is True
        assert method_config(get_method(m), {}, ["CartPole-v1"]).sb3_value_loss is False


def test_sb3_value_loss_is_twice_cleanrls():
    from rl_distill.rl import PPOConfig, ppo_update
    from rl_distill.rollout import Batch

    T, N = 8, 2
    obs = torch.randint(0, 2, (T, N, 4, 10, 10), dtype=torch.uint8)
    actions = torch.randint(0, 3, (T, N))
    batch = Batch(
        obs=obs,
        actions=actions,
        rewards=torch.zeros(T, N),
        dones=torch.zeros(T, N),
        teacher_logits=None,
        teacher_features=None,
        logprobs=torch.full((T, N), -1.0986),
        values=torch.zeros(T, N),
        student_logits=None,
        last_obs=obs[-1],
        last_done=torch.zeros(N),
    )
    adv, ret = torch.randn(T, N), torch.randn(T, N) * 3
    losses = []
    for sb3 in (False, True):
        s = make_student("minatar-ppo", *BREAKOUT, seed=0)
        opt = torch.optim.Adam(s.parameters(), lr=1e-3)
        cfg = PPOConfig(n_epochs=1, minibatches=1, sb3_value_loss=sb3)
        gen = torch.Generator().manual_seed(0)
        losses.append(ppo_update(s, opt, batch, adv, ret, cfg, gen)["train/value_loss"])
    assert losses[1] == pytest.approx(2 * losses[0])


def test_ppo_runs_with_the_tower_student(tmp_path):
    from tests.helpers import distill

    torch.manual_seed(0)
    arch = _teacher_arch()
    meta = {"id": "t", "env_id": "MinAtar/Breakout-v1"}
    teacher = str(save_teacher(tmp_path / "t", arch, build_net(arch).state_dict(), meta))
    s = distill("ppo", tmp_path / "runs", teacher, 640, eval_episodes=1, student="minatar-ppo", num_envs=8, n_steps=16)
    assert s["student"] == "mcnn-16-128-t64-64" and s["env_steps"] == 640 and s["teacher_queries"] == 0
    assert s["student_params"] == Student("minatar-ppo", *BREAKOUT).policy_params()
    assert s["method_config"]["sb3_value_loss"] is True and s["method_config"]["gamma"] == 0.999
    back = load_student(s["run_dir"])
    assert str(back.spec) == "mcnn-16-128-t64-64"


def test_a_game_entry_changes_only_its_values_over_the_family_entry():
    from rl_distill.methods.ppo import env_defaults
    from rl_distill.teachers.train import hyperparams

    family = hyperparams("MinAtar/Breakout-v1", "ppo")
    seaquest = hyperparams("MinAtar/Seaquest-v1", "ppo")
    assert family["gamma"] == 0.999 and seaquest["gamma"] == 0.99  # [ppo."MinAtar/Seaquest-v1"]
    assert {k: v for k, v in seaquest.items() if k != "gamma"} == {k: v for k, v in family.items() if k != "gamma"}
    assert hyperparams("MinAtar/Seaquest-v1", "dqn") == hyperparams("MinAtar/Breakout-v1", "dqn")  # no DQN change
    # the PPO baseline on Seaquest learns with the shipped Seaquest teacher's discount, the others with the family's
    assert env_defaults(["MinAtar/Seaquest-v1"], {}, {})["gamma"] == 0.99
    assert env_defaults(["MinAtar/Asterix-v1"], {}, {})["gamma"] == 0.999
    assert hyperparams("CartPole-v1", "ppo")["gamma"] == 0.98  # a control env's own rl-zoo3 entry, unchanged


def test_a_multi_task_run_over_one_family_shares_the_family_entry():
    from rl_distill.rl import zoo_ppo_settings
    from rl_distill.td import zoo_dqn_settings

    games = ["MinAtar/Breakout-v1", "MinAtar/Seaquest-v1"]
    # Seaquest's own discount (0.99) would make the two entries differ: the run takes the family's (0.999), not {}
    assert zoo_ppo_settings(games)["gamma"] == 0.999
    assert zoo_ppo_settings(["MinAtar/Seaquest-v1"])["gamma"] == 0.99  # alone, its own entry
    assert zoo_ppo_settings(games) == zoo_ppo_settings(["MinAtar/Breakout-v1", "MinAtar/Asterix-v1"])
    assert zoo_dqn_settings(games) == zoo_dqn_settings(["MinAtar/Breakout-v1"])
    # envs of two families, or two control envs with their own rl-zoo3 entries, share nothing
    assert zoo_ppo_settings(["MinAtar/Breakout-v1", "CartPole-v1"]) == {}
    assert zoo_ppo_settings(["CartPole-v1", "Acrobot-v1"]) == {}
