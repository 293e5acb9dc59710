"""Rollout engine and training-step overhead, measured side by side in one run (issue: methods).

1. Acting: agent steps/s on Pong of (a) the raw vector env with random actions, (b) a bare loop in which
   the teacher (Nature CNN, one batched forward per step) acts, (c) the rollout engine with the teacher
   acting and labelling every state (stored on the device), (d) the rollout engine with a student acting
   and the teacher labelling. Ratios: engine / raw env, and engine / bare teacher loop (the overhead).
2. Training: samples/s of the suite's distillation step (replay-memory sample -> student forward ->
   losses.kl_tau -> Adam, via supervised.supervised_step's code path) against a bare torch loop on the
   same network and batch size with tensors already in memory. Ratio = suite / bare.

    .venv/bin/python benchmarks/rollout_throughput.py [--device cpu|cuda] [--seconds 10] [--num-envs 8]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from _timing import rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", help="torch device of teacher, student and memory")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per case")
    ap.add_argument("--num-envs", type=int, default=8, help="parallel Pong envs of the rollout")
    ap.add_argument("--batch-size", type=int, default=256, help="minibatch of the timed gradient steps")
    ap.add_argument("--student", default="rusu-4x", help="student architecture name")
    a = ap.parse_args()

    from rl_distill import losses
    from rl_distill.envs import make_env
    from rl_distill.networks import Arch, build_net
    from rl_distill.rollout import ReplayMemory, Rollout
    from rl_distill.students import make_student
    from rl_distill.teachers.base import Teacher

    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    arch = Arch(kind="q", obs_shape=(4, 84, 84), n_actions=6, encoder="cnn", pi_layers=())
    teacher = Teacher(arch, build_net(arch).state_dict(), {"id": "bench", "env_id": "ALE/Pong-v5"}, dev)
    student = make_student(a.student, [(4, 84, 84)], [6], 0).to(dev)
    N = a.num_envs
    out: dict[str, object] = {
        "device": str(dev),
        "num_envs": N,
        "torch_threads": torch.get_num_threads(),
        "student": a.student,
    }

    env = make_env("ALE/Pong-v5", N)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    raw = rate(lambda: env.step(rng.integers(0, 6, N)), N, a.seconds, sync)
    state = {"obs": env.reset(seed=0)[0]}

    @torch.no_grad()
    def bare_label_step():  # a hand-written loop: teacher forward on the batch, env step, nothing else
        q = teacher.net(torch.as_tensor(state["obs"], device=dev))["q_values"]
        state["obs"] = env.step(q.argmax(-1).cpu().numpy())[0]

    bare_label = rate(bare_label_step, N, a.seconds, sync)
    env.close()
    ro = Rollout("ALE/Pong-v5", N, teacher, seed=0, device=dev)
    t_act = rate(lambda: ro.collect(16, actor="teacher"), 16 * N, a.seconds, sync)
    s_act = rate(lambda: ro.collect(16, actor="student", student=student), 16 * N, a.seconds, sync)
    ro.close()
    out["acting_steps_per_s"] = {
        "raw_env_random": round(raw),
        "bare_loop_teacher_acts": round(bare_label),
        "engine_teacher_acts_and_labels": round(t_act),
        "engine_student_acts_teacher_labels": round(s_act),
    }
    out["acting_ratio_teacher_vs_raw"] = round(t_act / raw, 3)
    out["acting_ratio_engine_vs_bare_teacher_loop"] = round(t_act / bare_label, 3)
    out["acting_ratio_student_vs_raw"] = round(s_act / raw, 3)

    B = a.batch_size
    mem = ReplayMemory(10_000, (4, 84, 84), torch.uint8, 6, device=dev)
    mem.add(torch.randint(0, 256, (10_000, 4, 84, 84), dtype=torch.uint8), torch.randn(10_000, 6))
    opt = torch.optim.Adam(student.parameters(), lr=1e-4)
    gen = torch.Generator(device=dev).manual_seed(0)

    def suite_step():
        mb = mem.sample(B, gen)
        o = student(mb["obs"], 0)
        loss = losses.kl_tau(mb["teacher_logits"], o["logits"], 0.01).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():  # the same logging work supervised_step does
            (o["logits"].argmax(-1) == mb["teacher_logits"].argmax(-1)).float().mean().item()

    bare_net = make_student(a.student, [(4, 84, 84)], [6], 0).to(dev)
    bare_opt = torch.optim.Adam(bare_net.parameters(), lr=1e-4)
    x = torch.rand(B, 4, 84, 84, device=dev) * 255
    y = torch.softmax(torch.randn(B, 6, device=dev) / 0.01, -1)

    def bare_step():
        logits = bare_net.heads[0](bare_net.encoder(x / 255.0))
        loss = F.kl_div(F.log_softmax(logits, -1), y, reduction="batchmean")
        bare_opt.zero_grad()
        loss.backward()
        bare_opt.step()

    suite = rate(suite_step, B, a.seconds, sync)
    bare = rate(bare_step, B, a.seconds, sync)
    out["train_samples_per_s"] = {"suite_distill_step": round(suite), "bare_torch_loop": round(bare)}
    out["train_ratio_suite_vs_bare"] = round(suite / bare, 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
