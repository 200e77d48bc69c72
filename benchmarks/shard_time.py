"""One shard's times from its runs: run time per step (the runs' own `done.json` wall times) and the runner's wall-clock line.

    python benchmarks/shard_time.py --runs /work/shard/runs --seed 45 --log /work/shard/shard45.log \
        --conditions "..." --out benchmarks/shard_time_s45.json

The shard is the seed's runs of `studies/default.toml` (`udt study run studies/default.toml --seeds N --jobs 2 --threads 1`);
`--log` is that command's output, whose last "done now" line gives the wall-clock time the runner measured. What else ran
on the machine meanwhile (`--conditions`) is written down as told: this script cannot see it.
"""
import argparse, datetime, json, re, shlex, statistics, subprocess
from pathlib import Path

from unified_delta_tuning.results import run_seed


def finished_runs(folder:Path, seed:int)->list[dict]:
    "The `done.json` records of `seed`'s finished runs in a study folder."
    return [json.loads((d/"done.json").read_text()) for d in sorted(folder.iterdir())
            if d.is_dir() and run_seed(d.name) == seed and (d/"done.json").is_file()]


def shard_times(folder:Path, seed:int)->dict:
    "Per step: the number of finished runs of `seed`, their total run time (min) and median (s)."
    steps = {}
    for rec in finished_runs(folder, seed): steps.setdefault(rec["step"], []).append(rec["wall_time"])
    return {s: {"runs": len(t), "total_min": round(sum(t) / 60, 1), "median_s": round(statistics.median(t), 1)}
            for s, t in steps.items()}


def runner_line(log:Path)->tuple[str, float|None]:
    "The runner's last summary line and its wall-clock minutes ('run time 3h36m in 1h52m wall-clock')."
    lines = [l.strip() for l in log.read_text().splitlines() if "wall-clock" in l and "run time" in l]
    if not lines: return "", None
    m = re.search(r"in (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)? wall-clock", lines[-1])
    h, mi, s = (int(x or 0) for x in m.groups()) if m else (0, 0, 0)
    return lines[-1], round(h * 60 + mi + s / 60, 1) if m else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True); p.add_argument("--study", default="default")
    p.add_argument("--seed", type=int, required=True); p.add_argument("--log", required=True)
    p.add_argument("--conditions", required=True, help="what else ran on the machine meanwhile")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    folder = Path(a.runs)/a.study
    per_step = shard_times(folder, a.seed)
    line, wall = runner_line(Path(a.log))
    commits = sorted({rec.get("git_commit", "")[:7] for rec in finished_runs(folder, a.seed)})
    out = {"benchmark": "shard_time",
           "what": f"the seed-{a.seed} shard of studies/{a.study}.toml: "
                   f"`udt study run studies/{a.study}.toml --seeds {a.seed} --jobs 2 --threads 1`",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": ", ".join(commits) + " (the runs' git_commit in done.json)",
           "machine": subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
                      + f", {len(__import__('os').sched_getaffinity(0))} cores, no GPU, 1 thread a run",
           "conditions": a.conditions,
           "runs": sum(s["runs"] for s in per_step.values()),
           "run_time_min": round(sum(s["total_min"] for s in per_step.values()), 1),
           "wall_min": wall, "runner_line": line, "per_step": per_step,
           "source": f"{folder}/<run>/done.json wall_time of the seed-{a.seed} runs; {a.log}",
           "command": "python benchmarks/shard_time.py " + shlex.join(argv or __import__("sys").argv[1:])}
    Path(a.out).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__": main()
