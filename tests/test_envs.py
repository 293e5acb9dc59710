import gymnasium as gym
import numpy as np
import pytest

from rl_distill.envs import AtariProtocol, env_spec, final_observations, make_env
from rl_distill.errors import UnknownEnvError


@pytest.mark.parametrize(
    "env_id,shape,n_actions",
    [
        ("CartPole-v1", (4,), 2),
        ("Acrobot-v1", (6,), 3),
        ("MountainCar-v0", (2,), 3),
        ("LunarLander-v3", (8,), 4),
    ],
)
def test_control_shapes(env_id, shape, n_actions):
    env = make_env(env_id, 3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, *shape)
    assert env.single_action_space.n == n_actions
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    env.close()


def test_atari_shape_and_protocol():
    env = make_env("ALE/Pong-v5", 2)
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert env.single_action_space.n == 6
    assert env.metadata["rl_distill_protocol"] == AtariProtocol().to_dict()
    assert AtariProtocol().sticky_actions == 0.25 and AtariProtocol().frame_cap == 108_000
    env.close()


def test_protocol_for_evaluation_drops_training_options():
    p = AtariProtocol(reward_clipping=True, episodic_life=True, sticky_actions=0.0)
    e = p.for_evaluation()
    assert not e.reward_clipping and not e.episodic_life and e.sticky_actions == 0.0
    assert AtariProtocol.from_dict(p.to_dict()) == p


def test_reward_clipping_option_clips():
    raw = make_env("ALE/Pong-v5", 4, protocol=AtariProtocol(sticky_actions=0.0))
    clipped = make_env("ALE/Pong-v5", 4, protocol=AtariProtocol(sticky_actions=0.0, reward_clipping=True))
    rng = np.random.default_rng(0)
    raw.reset(seed=1)
    clipped.reset(seed=1)
    seen = 0
    for _ in range(400):
        a = rng.integers(0, 6, 4)
        _, r1, *_ = raw.step(a)
        _, r2, *_ = clipped.step(a)
        assert np.array_equal(np.sign(r1), r2)
        seen += int((r1 != 0).sum())
    assert seen > 0
    raw.close()
    clipped.close()


def test_episodic_life_ends_the_episode_but_the_game_goes_on():
    # ale-py's episodic_life would restart the game at each lost life: lives would read 5 after every end.
    env = make_env("ALE/Breakout-v5", 1, protocol=AtariProtocol(episodic_life=True))
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    lives_after_end = []
    for _ in range(2000):
        _, _, term, trunc, info = env.step(rng.integers(0, 4, 1))
        if term[0] or trunc[0]:
            lives_after_end.append(int(info["lives"][0]))
            if len(lives_after_end) == 3:
                break
    env.close()
    assert lives_after_end == [4, 3, 2]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "ALE/Breakout-v5"])
def test_same_seed_same_trajectory(env_id):
    def roll():
        env = make_env(env_id, 2)
        obs, _ = env.reset(seed=7)
        rng = np.random.default_rng(0)
        out = [obs.copy()]
        for _ in range(50):
            obs, r, *_ = env.step(rng.integers(0, env.single_action_space.n, 2))
            out.append(obs.copy())
        env.close()
        return np.stack(out)

    assert np.array_equal(roll(), roll())


def test_final_obs_on_episode_end():
    env = make_env("CartPole-v1", 2)
    env.reset(seed=0)
    for _ in range(200):
        nxt, _, term, trunc, info = env.step(np.zeros(2, dtype=int))
        done = term | trunc
        if done.any():
            final = final_observations(nxt, info, done)
            i = int(np.flatnonzero(done)[0])
            assert not np.array_equal(final[i], nxt[i])  # the last obs, not the reset one
            assert abs(final[i][2]) > 0.2 or abs(final[i][0]) > 2.4  # pole fell or cart left
            break
    else:
        pytest.fail("no episode ended")
    env.close()


@pytest.mark.parametrize("bad", ["CartPole-v9", "ALE/NotAGame-v5", "ALE/Pong-v4", "Pendulum-v1"])
def test_unknown_env_is_a_user_error(bad):
    with pytest.raises(UnknownEnvError):
        make_env(bad, 1)


def test_env_spec():
    s = env_spec("ALE/SpaceInvaders-v5")
    assert s.obs_shape == (4, 84, 84) and s.n_actions == 6 and s.obs_dtype == "uint8"
