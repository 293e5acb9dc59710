"""Each shipped Atari teacher loads, acts stably on a fixed observation, and plays full games."""

import numpy as np
import pytest
import torch

from rl_distill.envs import is_atari
from rl_distill.evaluation import evaluate
from rl_distill.teachers import load_teacher, shipped_meta

ATARI = [m["id"] for m in shipped_meta() if is_atari(m["env_id"])]


@pytest.mark.parametrize("tid", ATARI)
def test_atari_teacher_loads_and_acts_stably(tid):
    t = load_teacher(tid)
    obs = np.random.default_rng(0).integers(0, 256, (4, 4, 84, 84), dtype=np.uint8)
    a1, a2 = t.act(obs), load_teacher(tid).act(obs)
    assert torch.equal(a1, a2) and a1.shape == (4,)
    assert t.logits(obs).shape == (4, t.n_actions) and t.features(obs).shape[0] == 4
    m = t.meta
    assert m["score"]["n"] >= 30 and m["protocol"]["sticky_actions"] == 0.25
    assert m["training"]["curve"], "a learning curve is recorded"


@pytest.mark.parametrize("tid", ATARI)
def test_atari_teacher_plays_full_games(tid):
    t = load_teacher(tid)
    r = evaluate(t, t.env_id, episodes=3, seed=5)
    assert min(r.lengths) > 100 and r.protocol["episodic_life"] is False
    # Better than the random policy (human-normalised 0: Pong -20.7, Breakout 1.7, SpaceInvaders 148), as the
    # recorded score says it should be. Three games, because one SpaceInvaders game varies by +-110 points.
    assert r.summary["human_normalized"] > 0
