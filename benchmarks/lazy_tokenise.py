"""The first training batch of a run, tokenising only what it draws (today) against the whole training split first (before).

Issue 15: a run draws steps × batch_size training examples (960 of tweets3's 35,670 in a default stage-0 run) but used
to tokenise every example of the split before its first step. Both ways run in one process, interleaved, on fresh
caches of the same backbone; the JSON beside this file has the medians and their ratio.

    PYTHONPATH=. python benchmarks/lazy_tokenise.py [--task tweets3] [--repeats 5]
"""
import argparse, datetime, json, platform, statistics, subprocess, time
from pathlib import Path

from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.batches import encode_split, train_batches
from unified_delta_tuning.tasks import load_task

def first_batch(bb, task, whole:bool)->float:
    "Seconds from an empty cache to the first batch of 16 (tokenising the whole split first when `whole`)."
    bb.cache.clear(); start = time.perf_counter()
    if whole: enc = encode_split(bb, task, "train"); enc.load(range(len(enc)))
    next(train_batches(bb, task, 16, seed=42))
    return time.perf_counter() - start

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0]); p.add_argument("--task", default="tweets3"); p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    bb, task = load_backbone("minilm"), load_task(a.task, seed=42)
    times = {"whole split first": [], "drawn examples only": []}
    for _ in range(a.repeats):
        times["whole split first"].append(first_batch(bb, task, True)); times["drawn examples only"].append(first_batch(bb, task, False))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"benchmark": "lazy_tokenise", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "task": a.task, "n_train": len(task.train),
           "repeats": a.repeats, "seconds": times, "median_s": med, "ratio_whole_to_drawn": med["whole split first"] / med["drawn examples only"]}
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n"); print(json.dumps(med), f"ratio {out['ratio_whole_to_drawn']:.0f}x")

if __name__ == "__main__": main()
