"""Stage 0 and stage 1 on a tiny BERT, in one process or under `torchrun` (tests/test_distributed.py compares the two).

    python tests/ddp_train.py OUT                                  # one process
    torchrun --standalone --nproc-per-node 2 tests/ddp_train.py OUT  # two processes (gloo on CPU), rank 0 writes OUT
"""
import sys
from pathlib import Path

import torch

from unified_delta_tuning.backbones import tiny_bert
from unified_delta_tuning.deltas import delta_spec
from unified_delta_tuning.distributed import init_distributed, is_main
from unified_delta_tuning.subspace import SubspaceConfig, train_subspace
from unified_delta_tuning.examples import Example, Task
from unified_delta_tuning.train import TrainConfig, train_delta


def toy_task(n:int=48) -> Task:
    "A sentiment task whose label one word gives away, with inputs of different lengths."
    words = ["film", "story", "cast", "plot", "score", "music"]
    ex = lambda i: Example(" ".join(["a", "gorgeous" if i % 2 else "tedious"] + words[: 1 + i % 6]), ("positive" if i % 2 else "negative",))
    return Task("toy", [ex(i) for i in range(n)], [ex(i) for i in range(n, n + 8)], [ex(i) for i in range(n + 8, n + 16)], ["negative", "positive"], "ACC")


def main(out:Path):
    rank, size = init_distributed("gloo")
    task = toy_task(); bb = tiny_bert([e.text for e in task.train] + list(task.labels))
    cfg = TrainConfig(lr=0.05, batch_size=8, steps=4, eval_every=4, progress=False, seed=3)
    sols = [train_delta(bb, task, delta_spec(bb.model, m, seed=42, **s), cfg) for m, s in (("lora", {"r": 2}), ("adapter", {"r": 2}))]
    sub = train_subspace(bb, task, sols, TrainConfig(lr=1e-2, batch_size=8, steps=3, eval_every=3, progress=False, seed=3),
                         SubspaceConfig(y=2, ra=0.1, n_points=1, group_size=4)).subspace
    if is_main():
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"world": size, "stage0": {s.spec.method: (s.spec.init, s.theta) for s in sols}, "stage1": sub.state_dict()}, out/"result.pt")


if __name__ == "__main__": main(Path(sys.argv[1]))
