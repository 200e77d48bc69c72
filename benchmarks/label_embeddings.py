"""Scoring on MiniLM with the label embeddings computed once per pass, against once per batch (as before), side by side.

Issue 15: an encoder scores by matching each input's embedding against every label's, and the labels' embeddings
depend on θ, so they go through the delta-tuned encoder too; within one scoring pass θ does not change. Before, every
batch of 64 inputs embedded the labels again (trec50: 50 label strings per batch); now `predict_batched` embeds them
once per pass (`Scoring.rank_context`). Both ways run in one process, interleaved, on the same LoRA vector (θ_init
plus a fixed random step): the median time of scoring the dev split of each task, and whether every answer is the
same (it must be: the same computation, done once). The JSON beside this file has the result.

    PYTHONPATH=. python benchmarks/label_embeddings.py [--tasks trec50 trec6 amazon] [--repeats 5] [--out benchmarks/label_embeddings.json]
"""
import argparse, datetime, json, os, platform, statistics, subprocess, time
from pathlib import Path

import torch

from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.batches import _repeat, eval_batches, predict_batched
from unified_delta_tuning.deltas import delta_spec, equal_sizes, use_delta
from unified_delta_tuning.tasks import load_task


def per_batch(bb, task, split:str)->list[str]:
    "Answers with the labels embedded again in every batch (`rank` without its pass context), as before this change."
    preds = [None] * len(task.split(split))
    for batch in eval_batches(bb, task, split, 64):
        for i, j in zip(batch["index"].tolist(), bb.scoring.rank(bb, task, _repeat(batch, 1), 1)[0].tolist()): preds[i] = task.labels[j]
    return preds


def once_per_pass(bb, task, split:str)->list[str]:
    "Answers as the package computes them now."
    return predict_batched(bb, task, split)[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["trec50", "trec6", "amazon"]); p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-dev", type=int, default=200); p.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    bb = load_backbone("minilm")
    spec = delta_spec(bb.model, "lora", seed=42, **equal_sizes(bb.model)["lora"])
    theta = spec.init + 0.01 * torch.randn(spec.D, generator=torch.Generator().manual_seed(0))
    arms = {"labels per batch (before)": per_batch, "labels once per pass (now)": once_per_pass}
    tasks = {}
    for name in a.tasks:
        task = load_task(name, seed=42, max_dev=a.max_dev)
        times, answers = {k: [] for k in arms}, {}
        with torch.no_grad(), use_delta(bb.model, spec, theta):
            for r in range(a.repeats + 1):   # the first round warms up (and tokenises) and is not timed
                for arm, f in arms.items():
                    start = time.perf_counter(); answers[arm] = f(bb, task, "dev")
                    if r: times[arm].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        before, now = list(arms)
        tasks[name] = {"labels": len(task.labels), "n_dev": len(task.dev), "seconds": times, "median_s": med,
                       "ratio_now_to_before": med[now] / med[before], "same_answers": answers[now] == answers[before]}
        print(name, json.dumps({k: tasks[name][k] for k in ("labels", "ratio_now_to_before", "same_answers")}))
    result = {"benchmark": "label_embeddings", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
              "backbone": "minilm", "method": "lora", "D": spec.D, "eval_batch_size": 64, "repeats": a.repeats, "tasks": tasks}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__": main()
