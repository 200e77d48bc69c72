"""How long a run waits before its first cell and after its last one, with the kernel asked to exit (`graceful`, the
runner before issue 27) or killed once the last cell has ended (`immediate`, `execute.KERNEL_SHUTDOWN` now).

Each run is `execute.execute_run` of a three-cell step notebook: the parameters, the import every step notebook
starts with (`unified_delta_tuning.steps`: torch, transformers, the package), and `steps.finish_step`. The cells write
the time they start and end, so that

- `start` = first cell's start - `execute_run` called (kernel start, connection),
- `stop`  = `execute_run` returned - last cell's end (kernel shutdown, then the runner's checks and `done.json`),

and `total` is the whole run. The modes alternate, `--n` runs each, on this machine with one thread per kernel.
`whole_process` in the JSON holds the second form below timed from outside as whole processes, 5 paired runs of
each mode (wall and CPU seconds of the process and its children, peak memory; the ratio graceful / immediate).

    PYTHONPATH=. python benchmarks/run_stop.py --n 5 --out benchmarks/run_stop.json   # both modes, JSON
    PYTHONPATH=. python benchmarks/run_stop.py --shutdown graceful --n 1                  # one mode, one run (for timing whole processes)
"""
import argparse, datetime, json, os, platform, statistics, subprocess, tempfile, time
from pathlib import Path

import nbformat

from unified_delta_tuning import execute, runner

CELLS = ["import time, pathlib; pathlib.Path('t_first').write_text(repr(time.time()))\nimport unified_delta_tuning.steps as steps",
         "steps.finish_step(run_dir, {'test': 0.5}); pathlib.Path('t_last').write_text(repr(time.time()))"]

def step_notebook(path:Path):
    "The three-cell step notebook."
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("run_dir = '.'", metadata={"tags": ["parameters"]})] + [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, path)

def one_run(work:Path, mode:str, i:int)->dict:
    "Execute one run with the kernel shut down as `mode`; its start, stop and total seconds."
    execute.KERNEL_SHUTDOWN = mode
    folder = work/f"{mode}-{i}"
    t0 = time.time()
    res = execute.execute_run({"id": folder.name, "step": "stage0", "params": {}, "deps": []}, folder, work/"step.ipynb", {}, runner._kernel_env(1))
    t1 = time.time()
    assert res["state"] == "done", res
    first, last = (float((folder/f).read_text()) for f in ("t_first", "t_last"))
    return {"start": first - t0, "stop": t1 - last, "total": t1 - t0}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shutdown", choices=("graceful", "immediate"), help="one mode only (default: both, alternating)")
    p.add_argument("--n", type=int, default=5, help="runs per mode")
    p.add_argument("--out", type=Path, help="write the JSON here")
    a = p.parse_args(argv)
    modes = [a.shutdown] if a.shutdown else ["graceful", "immediate"]
    runs = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d); step_notebook(work/"step.ipynb")
        for i in range(a.n):
            for m in modes:
                r = one_run(work, m, i); runs[m].append(r)
                print(f"{m:>9} run {i}: start {r['start']:.2f} s, stop {r['stop']:.2f} s, total {r['total']:.2f} s", flush=True)
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("start", "stop", "total")} for m, rs in runs.items()}
    for m, v in med.items(): print(f"{m:>9} median of {a.n}: start {v['start']:.2f} s, stop {v['stop']:.2f} s, total {v['total']:.2f} s")
    if a.out:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        import torch
        out = {"benchmark": "run_stop", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, 1 thread per kernel, torch {torch.__version__}",
               "n": a.n, "median_s": med, "runs": runs}
        a.out.write_text(json.dumps(out, indent=1) + "\n"); print(f"wrote {a.out}")
    return med

if __name__ == "__main__": main()
