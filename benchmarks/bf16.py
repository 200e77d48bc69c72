"""A study's `precision = "bf16"` against float32 on MiniLM: a stage-0 training step and a scoring pass, side by side.

Issue 15: bf16 autocast is opt-in (off by default) until its effect is measured. Both precisions run in one process,
interleaved, on the same backbone weights, task and LoRA vector (θ_init plus a fixed random step, so the delta is not
zero): the median time of a training step (batch 16, forward and backward) and of scoring the dev split (batch 64),
and what bf16 changes: the loss, the gradient (relative L2 difference) and the dev answers (share that differ, and
the two scores). The JSON beside this file has the result.

    PYTHONPATH=. python benchmarks/bf16.py [--task amazon] [--repeats 5] [--out benchmarks/bf16.json]
"""
import argparse, datetime, json, os, platform, statistics, subprocess, time
from dataclasses import replace
from pathlib import Path

import torch

from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.batches import predict, task_loss, train_batches
from unified_delta_tuning.deltas import delta_spec, equal_sizes, use_delta
from unified_delta_tuning.metrics import score
from unified_delta_tuning.tasks import load_task


def step(bb, task, spec, theta, batch)->tuple[float, float, torch.Tensor]:
    "One training step's forward and backward: (seconds, loss, gradient of θ)."
    th = theta.clone().requires_grad_(True); start = time.perf_counter()
    with use_delta(bb.model, spec, th): loss = task_loss(bb, task, batch)
    loss.backward()
    return time.perf_counter() - start, loss.item(), th.grad


def scoring(bb, task, spec, theta)->tuple[float, list]:
    "Scoring the dev split: (seconds, answers)."
    start = time.perf_counter()
    with torch.no_grad(), use_delta(bb.model, spec, theta): answers = predict(bb, task, "dev")
    return time.perf_counter() - start, answers


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="amazon"); p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-dev", type=int, default=200); p.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    fp32 = load_backbone("minilm"); bf16 = replace(fp32, precision="bf16")   # the same model and tokeniser cache
    task = load_task(a.task, seed=42, max_dev=a.max_dev)
    spec = delta_spec(fp32.model, "lora", seed=42, **equal_sizes(fp32.model)["lora"])
    theta = spec.init + 0.01 * torch.randn(spec.D, generator=torch.Generator().manual_seed(0))
    batch = next(train_batches(fp32, task, 16, seed=42))
    arms = {"fp32": fp32, "bf16": bf16}
    times = {k: {"train step": [], "dev scoring": []} for k in arms}
    out = {}
    for r in range(a.repeats + 1):   # the first round warms up and is not timed
        for name, bb in arms.items():
            t, loss, grad = step(bb, task, spec, theta, batch)
            ts, answers = scoring(bb, task, spec, theta)
            if r: times[name]["train step"].append(t); times[name]["dev scoring"].append(ts)
            out[name] = {"loss": loss, "grad": grad, "answers": answers}
    golds = [x.answers for x in task.dev]
    med = {k: {q: statistics.median(v) for q, v in d.items()} for k, d in times.items()}
    g32, g16 = out["fp32"]["grad"], out["bf16"]["grad"]
    result = {
        "benchmark": "bf16", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
        "task": a.task, "n_dev": len(task.dev), "method": "lora", "D": spec.D, "batch": 16, "repeats": a.repeats,
        "seconds": times, "median_s": med,
        "ratio_bf16_to_fp32": {q: med["bf16"][q] / med["fp32"][q] for q in med["fp32"]},
        "loss": {k: out[k]["loss"] for k in arms},
        "grad_relative_l2_difference": ((g16 - g32).norm() / g32.norm()).item(),
        "dev_answers_that_differ": sum(x != y for x, y in zip(out["fp32"]["answers"], out["bf16"]["answers"])) / len(golds),
        "dev_score": {k: score(out[k]["answers"], golds, task.metric) for k in arms}, "metric": task.metric}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("ratio_bf16_to_fp32", "loss", "grad_relative_l2_difference", "dev_answers_that_differ", "dev_score")}))
    return result


if __name__ == "__main__": main()
