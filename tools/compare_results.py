"""Compare two runs of the same study: every results.csv column but timings, dates, commits and versions, and every vector.

Usage: python tools/compare_results.py runs/quick /tmp/other/runs/quick
Prints the columns compared, each differing value, and how many `.safetensors` files hold bit-identical tensors;
exits 1 when anything differs (a refactoring that keeps the arithmetic must give exit 0).
"""
import sys
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

TIMING = {"wall_time", "finished", "git_commit", "train_time", "landscape_time", "device", "current"}

def compare(a:Path, b:Path)->int:
    ra, rb = (pd.read_csv(p/"results.csv").set_index("run_id").sort_index() for p in (a, b))
    if list(ra.index) != list(rb.index):
        print(f"different runs: only in {a}: {sorted(set(ra.index) - set(rb.index))}; only in {b}: {sorted(set(rb.index) - set(ra.index))}")
        return 1
    cols = [c for c in ra.columns if c in rb.columns and c not in TIMING and not c.startswith("version.")]
    diff = [(r, c, ra.at[r, c], rb.at[r, c]) for r in ra.index for c in cols
            if not (pd.isna(ra.at[r, c]) and pd.isna(rb.at[r, c])) and ra.at[r, c] != rb.at[r, c]]
    extra = sorted(set(ra.columns) ^ set(rb.columns))
    print(f"{len(ra)} runs, {len(cols)} columns compared, {len(diff)} values differ" + (f"; columns in one file only: {extra}" if extra else ""))
    for d in diff[:20]: print("  ", *d)
    files = sorted(p.relative_to(a) for p in a.glob("*/*.safetensors"))
    same = 0
    for f in files:
        x, y = load_file(a/f), load_file(b/f)
        same += x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    print(f"vectors: {same} of {len(files)} files bit-identical")
    return int(bool(diff or extra or same < len(files)))

if __name__ == "__main__": sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[2])))
