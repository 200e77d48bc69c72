"""Length-grouped micro-batches for a training step on MiniLM, against the whole batch padded to its longest example.

Issue 15 lists length-grouped batches among the cheaper backbone passes. A training batch of 16 random examples is
padded to its longest one; sorted by length and split into g micro-batches, each padded to its own longest, the
encoder runs on fewer padding tokens. In exact arithmetic the loss and its gradient are the same; in float32 the
matrix products of other shapes round differently. This measures both, side by side in one process on the same
batches and vectors (θ_init plus a fixed random step, for each delta method): the median time of a forward and
backward pass, the share of real tokens, and whether the loss and the gradient are bitwise the same. The JSON beside
this file has the result.

    PYTHONPATH=. python benchmarks/length_groups.py [--task tweets3] [--batches 5] [--out benchmarks/length_groups.json]
"""
import argparse, datetime, json, os, platform, statistics, subprocess, time
from pathlib import Path

import torch
import torch.nn.functional as F

from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.batches import train_batches
from unified_delta_tuning.label_matching import label_embeddings, pooled_inputs
from unified_delta_tuning.deltas import delta_spec, equal_sizes, use_delta
from unified_delta_tuning.tasks import load_task


def step(bb, task, spec, theta, batch, groups:int)->tuple[float, torch.Tensor, torch.Tensor]:
    "One label-matching training step's forward and backward: (seconds, loss, gradient of θ)."
    th = theta.clone().requires_grad_(True); start = time.perf_counter()
    with use_delta(bb.model, spec, th):
        y = label_embeddings(bb, task)[0]
        x = F.normalize(pooled_inputs(bb, batch, groups), dim=-1)   # the package's own micro-batching (`scoring.length_groups`)
        loss = F.cross_entropy(x @ y.T / bb.temperature, batch["label_index"])
    loss.backward()
    return time.perf_counter() - start, loss.detach(), th.grad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="tweets3"); p.add_argument("--batches", type=int, default=5); p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--groups", type=int, nargs="+", default=[1, 2, 4]); p.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    bb = load_backbone("minilm"); task = load_task(a.task, seed=42)
    it = train_batches(bb, task, a.batch_size, seed=42); batches = [next(it) for _ in range(a.batches)]
    real = sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel() for b in batches)
    methods = {}
    for m in ("adapter", "lora", "prefix"):
        spec = delta_spec(bb.model, m, seed=42, **equal_sizes(bb.model)[m])
        theta = spec.init + 0.01 * torch.randn(spec.D, generator=torch.Generator().manual_seed(0))
        times, same_loss, same_grad, grad_diff = {g: [] for g in a.groups}, {g: 0 for g in a.groups}, {g: 0 for g in a.groups}, {g: [] for g in a.groups}
        step(bb, task, spec, theta, batches[0], 1)   # warm-up
        for b in batches:
            out = {g: step(bb, task, spec, theta, b, g) for g in a.groups}   # interleaved: every way on the same batch
            for g, (t, loss, grad) in out.items():
                times[g].append(t); ref = out[a.groups[0]]
                same_loss[g] += torch.equal(loss, ref[1]); same_grad[g] += torch.equal(grad, ref[2])
                grad_diff[g].append(((grad - ref[2]).norm() / ref[2].norm()).item())
        med = {g: statistics.median(v) for g, v in times.items()}
        methods[m] = {"median_s": med, "ratio_to_one_batch": {g: med[g] / med[a.groups[0]] for g in a.groups},
                      "batches_with_bitwise_same_loss": same_loss, "batches_with_bitwise_same_gradient": same_grad,
                      "max_gradient_relative_difference": {g: max(v) for g, v in grad_diff.items()}}
        print(m, json.dumps({k: methods[m][k] for k in ("ratio_to_one_batch", "batches_with_bitwise_same_gradient", "max_gradient_relative_difference")}))
    result = {"benchmark": "length_groups", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
              "backbone": "minilm", "task": a.task, "batch_size": a.batch_size, "batches": a.batches, "groups": a.groups,
              "real_token_share_one_batch": real, "methods": methods}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__": main()
