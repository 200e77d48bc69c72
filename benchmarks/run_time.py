"""Where a finished study's run time goes: start-up against work for every run, and the work of a sample of runs split
into training passes, scoring passes (by split) and the rest.

Issue 15 asks for the default study's run time 1.8x lower at the same settings, with identical scores wherever the
arithmetic is unchanged. This measures what that arithmetic costs, so the ceiling of an exact speed-up is known:

1. From every current run's `run.ipynb` (papermill records each cell's duration): the kernel's start, the set-up cell
   (imports, loading the backbone, the task, the subspace) and the cells that do the work, summed per step.
2. A sample of runs (by default the shortest current run of each step and setting, if it took at most `--max-run-s`), executed again in this process from
   their `params.json` with the step notebook's own code, with timers around the backbone's training forward pass
   (`batches.task_loss`), every backward pass and every scoring pass (`batches.predict_batched`, by split).

The sample's shares of each step's work are applied to that step's work in (1), giving the study's run time by kind
of computation. Each sampled run's metrics are compared with the ones it wrote: with the arithmetic unchanged since
the study ran, every score is reproduced exactly (`metrics_that_differ` is empty). The JSON beside this file has the
result; nothing the runs wrote is changed (they run again in a scratch folder).

    PYTHONPATH=. python benchmarks/run_time.py [--study runs/default] [--out benchmarks/run_time.json] [--runs ID ...]
"""
import argparse, collections, contextlib, datetime, json, os, platform, subprocess, tempfile, time
from pathlib import Path


def read_cells(run:Path)->dict:
    "Start-up and work of one finished run, in seconds, from its executed notebook's papermill metadata."
    nb = json.loads((run/"run.ipynb").read_text())
    pm = nb["metadata"]["papermill"]; code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    when = lambda s: datetime.datetime.fromisoformat(s)
    d = [c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in code]
    # code cells: the parameters, papermill's injected parameters, the set-up cell, then the work
    return {"total": pm["duration"], "kernel start": (when(code[0]["metadata"]["papermill"]["start_time"]) - when(pm["start_time"])).total_seconds(),
            "set-up cell": d[2], "work cells": sum(d[3:]), "parameter cells": d[0] + d[1]}


class Timers:
    "Seconds spent in the backbone's passes, patched in for one run."
    def __init__(self): self.s, self.n = collections.Counter(), collections.Counter()
    @contextlib.contextmanager
    def patched(self):
        import torch
        import unified_delta_tuning.batches as B, unified_delta_tuning.train as T, unified_delta_tuning.subspace as S
        orig = B.predict_batched, B.task_loss, torch.Tensor.backward
        def timed(key, f):
            def g(*a, **k):
                start = time.perf_counter()
                try: return f(*a, **k)
                finally: self.s[key(*a, **k)] += time.perf_counter() - start; self.n[key(*a, **k)] += 1
            return g
        split = lambda bb, task, split="test", *a, **k: f"scoring {split}"
        B.predict_batched = timed(split, orig[0])
        loss = timed(lambda *a, **k: "training forward", orig[1]); T.task_loss = S.task_loss = loss
        torch.Tensor.backward = timed(lambda *a, **k: "backward", orig[2])
        try: yield self
        finally: B.predict_batched, torch.Tensor.backward = orig[0], orig[2]; T.task_loss = S.task_loss = orig[1]


def rerun(run:Path)->dict:
    "Execute a finished run's step notebook again in this process (scratch folder), timing its passes."
    import nbformat
    p = json.loads((run/"params.json").read_text())
    nb = Path(__import__("unified_delta_tuning").__file__).parent/"experiments"/p["notebook"]
    code = [c.source for c in nbformat.read(nb, 4).cells if c.cell_type == "code"]
    g = {"display": lambda *a, **k: None}
    exec(code[0], g); g.update(p["parameters"]); g["run_dir"] = tempfile.mkdtemp(prefix="run_time-")
    here = os.getcwd(); os.chdir(run)   # the parameters name the dependencies' files relative to the run's folder
    timers = Timers()
    try:
        start = time.perf_counter(); exec(code[1], g); setup = time.perf_counter() - start
        with timers.patched():
            start = time.perf_counter()
            for c in code[2:]: exec(c, g)
            work = time.perf_counter() - start
    finally: os.chdir(here)
    import matplotlib.pyplot as plt; plt.close("all")
    parts = dict(timers.s); parts["other"] = work - sum(parts.values())
    return {"run": run.name, "step": p["step"], "set-up cell": setup, "work": work, "parts_s": parts, "calls": dict(timers.n),
            "metrics_that_differ": differing(json.loads((run/"metrics.json").read_text()), g["metrics"])}


def differing(saved:dict, new:dict)->list[str]:
    "Keys of a run's metrics whose values the rerun did not reproduce exactly (times and speeds left out: they always differ)."
    timing = lambda k: k.endswith("_time") or k.startswith("speedup") or k == "wall_time"
    new = json.loads(json.dumps(new, default=float))   # as the run wrote them
    return sorted(k for k in set(saved) | set(new) if not timing(k) and saved.get(k) != new.get(k))


def current_runs(study:Path)->list[Path]:
    "The study's current, finished runs (its plan)."
    plan = json.loads((study/"plan.json").read_text())
    return [study/r for r in plan["runs"] if (study/r/"done.json").exists()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="runs/default"); ap.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    ap.add_argument("--runs", nargs="*", help="run ids to time in this process (default: the shortest of each step and setting)")
    ap.add_argument("--max-run-s", type=float, default=300, help="by default, leave out of the sample a kind whose shortest run took longer")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    study = Path(a.study).resolve(); runs = current_runs(study)
    cells = {r.name: {"step": json.loads((r/"params.json").read_text())["step"], **read_cells(r)} for r in runs}
    per_step = {}
    for c in cells.values():
        s = per_step.setdefault(c["step"], collections.Counter()); s["runs"] += 1
        for k in ("total", "kernel start", "parameter cells", "set-up cell", "work cells"): s[k] += c[k]
    kind = lambda r: (json.loads((r/"params.json").read_text())["step"], json.loads((r/"params.json").read_text())["parameters"].get("setting"))
    shortest = {}
    for r in sorted(runs, key=lambda r: cells[r.name]["total"]): shortest.setdefault(kind(r), r)
    sample = [study/i for i in a.runs] if a.runs else [r for r in shortest.values() if cells[r.name]["total"] <= a.max_run_s]
    timed = []
    for r in sample:
        t = rerun(r); timed.append(t); print(json.dumps({k: t[k] for k in ("run", "work", "parts_s")}, default=round))
    shares = {}
    for t in timed:   # each step's work split by the mean shares of its sampled runs
        sh = shares.setdefault(t["step"], collections.defaultdict(list))
        for k, v in t["parts_s"].items(): sh[k].append(v / t["work"])
    study_min = collections.Counter()
    for step, s in per_step.items():
        study_min["start-up (kernel, parameters, set-up cell)"] += (s["kernel start"] + s["parameter cells"] + s["set-up cell"]) / 60
        for k, v in shares.get(step, {"unsampled": [1.0]}).items(): study_min[k] += s["work cells"] * sum(v) / len(v) / 60
        study_min["papermill between cells"] += (s["total"] - s["kernel start"] - s["parameter cells"] - s["set-up cell"] - s["work cells"]) / 60
    total = sum(per_step[s]["total"] for s in per_step) / 60
    result = {"benchmark": "run_time", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
              "study": str(Path(a.study)), "runs": len(runs), "run_time_min": total,
              "per_step_min": {s: {k: (v if k == "runs" else v / 60) for k, v in c.items()} for s, c in per_step.items()},
              "sample": timed, "study_min_by_kind": dict(study_min),
              "study_share_by_kind": {k: v / total for k, v in study_min.items()}}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: round(v, 1) for k, v in study_min.items()}), f"of {total:.1f} min")
    return result


if __name__ == "__main__": main()
