"""Copy a study folder's small artefacts (JSON, CSV, the study file; no vectors, notebooks or logs) to another folder.

Only the run folders of the study's current plan (`plan.json`) are copied: runs of an earlier plan stay behind.

`python tools/small_artefacts.py /tmp/runs/report-study tests/data/report-study` refreshes the report's test
fixture; the same publishes a study's report inputs without its vectors. DST is replaced.
"""
import json, shutil, sys
from pathlib import Path

SMALL = {".json", ".csv", ".toml"}

def copy_small(src:Path, dst:Path)->int:
    "Replace `dst` by the small artefacts of `src`; the number of files copied."
    if not (src/"results.csv").is_file(): sys.exit(f"{src} is not a study folder (no results.csv); give <runs>/<study>")
    if dst.exists(): shutil.rmtree(dst)
    plan = json.loads((src/"plan.json").read_text())["runs"] if (src/"plan.json").is_file() else None
    n = 0
    for f in sorted(src.rglob("*")):
        parts = f.relative_to(src).parts
        if plan is not None and len(parts) > 1 and parts[0] not in plan: continue   # a run of an earlier plan
        if f.is_file() and f.suffix in SMALL and not any(p.startswith(".") for p in parts):
            (dst/f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, dst/f.relative_to(src)); n += 1
    return n

if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    print(copy_small(Path(sys.argv[1]), Path(sys.argv[2])), "files copied")
