"""How long `udt` takes to answer the commands that need no model (issue 13: under 2 s), and whether they import torch.

Usage: python benchmarks/cli_start.py [--tree DIR] [--label NAME] [--runs N] [--out benchmarks/cli_start.json]
  --tree   a checkout whose `unified_delta_tuning` is measured (default: this one); e.g. an older commit unpacked with
           `git archive <commit> unified_delta_tuning studies | tar -x -C /tmp/before`
  --label  the key the result is stored under in the JSON file (default: "after" for this checkout, else "before")
Each command runs --runs times (default 7) in a fresh interpreter, from the tree's folder; the median wall time is kept,
with the machine's load average, so that numbers from a busy machine read as such. A benchmark, not a test.
"""
import argparse, json, os, platform, statistics, subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {   # what a user types, as `udt` arguments
    "udt --help": ["--help"],
    "udt study status studies/default.toml": ["study", "status", "studies/default.toml", "--runs", "{tmp}"],
    "udt study run studies/default.toml --dry-run": ["study", "run", "studies/default.toml", "--dry-run", "--runs", "{tmp}"],
    "udt study status no-such.toml (an error)": ["study", "status", "no-such.toml"],
    "udt study run --jobs x (an argument error)": ["study", "run", "studies/default.toml", "--jobs", "x"],
}
HEAVY = ("torch", "transformers", "sklearn", "scipy", "pandas")
# `udt` itself is `from unified_delta_tuning.cli import main; main()`; the probe also lists the heavy modules it loaded
PROBE = ("import sys, atexit; atexit.register(lambda: print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & set(%r)), file=sys.stderr)); "
         "from unified_delta_tuning.cli import main; sys.argv[0] = 'udt'; main(sys.argv[1:])") % (HEAVY,)

def _commit(tree:Path)->str|None:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True)
    if r.returncode: return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=tree, capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("-dirty" if dirty else "")

def measure(tree:Path, runs:int, tmp:str)->dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = {}
    for name, args in COMMANDS.items():
        args = [a.format(tmp=tmp) for a in args]
        times, heavy = [], None
        for _ in range(runs):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tree, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            heavy = next((l.split(" ", 1)[1] for l in r.stderr.splitlines() if l.startswith("HEAVY ")), heavy)
        out[name] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3),
                     "exit_status": r.returncode, "heavy_modules_imported": heavy}
        print(f"{out[name]['median_s']:7.2f} s (min {out[name]['min_s']:.2f}, max {out[name]['max_s']:.2f})  {name}  imports {heavy}", flush=True)
    return out

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(ROOT)); ap.add_argument("--label"); ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT/"benchmarks"/"cli_start.json"))
    ap.add_argument("--commit", help="the commit the tree was taken from, when it is not a git checkout")
    a = ap.parse_args()
    tree = Path(a.tree).resolve(); label = a.label or ("after" if tree == ROOT else "before")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()
        res = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tree": str(tree), "commit": a.commit or _commit(tree),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}", "python": platform.python_version(),
               "load_average_1m_at_start": round(load[0], 2), "runs_per_command": a.runs, "commands": measure(tree, a.runs, tmp)}
        res["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    path = Path(a.out); data = json.loads(path.read_text()) if path.exists() else {}
    data[label] = res
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{label}: written to {path}")
