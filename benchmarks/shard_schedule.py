"""A shard's wall time replayed from its runs' measured run times, in two orders of the plan: the landscape last (the plan
before) and the landscape right after the stage-2 runs it reads, before the controls (the plan now).

    python benchmarks/shard_schedule.py --out benchmarks/shard_schedule.json

The runner (`12_runner._schedule`) starts, whenever a slot is free, the first run in plan order whose dependencies are
done. This script replays exactly that rule with `--jobs` slots and each run's `wall_time` from the published results
(`reports/default/results.csv`), so it measures what the order alone changes; the runner's own overhead between runs
(seconds a shard) and the machine's noise are not in it. The replay of the plan as it ran is checked against the
runner's measured wall clock where a shard was timed on an idle machine (`benchmarks/shard_time_s45.json`).
"""
import argparse, datetime, json
from pathlib import Path

import pandas as pd

from unified_delta_tuning.plan import plan_runs, shard_runs
from unified_delta_tuning.study import load_study


def replay(runs:list, seconds:dict, jobs:int)->dict:
    "Wall time (min) of `runs` under the runner's rule with `jobs` slots, and how long one slot idled at the end."
    pending, done, running, t = list(runs), {}, [], 0.0   # done: {id: finish time}; running: [(finish, id)]
    while pending or running:
        for r in list(pending):
            if len(running) < jobs and all(d in done and done[d] <= t for d in r.deps):
                running.append((t + seconds[r.id], r.id)); pending.remove(r)
        running.sort()
        if not running: raise ValueError(f"no run can start at {t:.0f} s: {pending[0].id} waits on a run not planned")
        t, rid = running.pop(0); done[rid] = t
    ends = sorted(done.values())
    return {"wall_min": round(t / 60, 1), "one_slot_idle_at_end_min": round((ends[-1] - ends[-2]) / 60, 1)}


def landscape_last(runs:list)->list:
    "The plan's order before: every landscape run after every other run."
    return [r for r in runs if r.step != "landscape"] + [r for r in runs if r.step == "landscape"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", default="studies/default.toml")
    p.add_argument("--published", default="reports/default", help="a folder with results.csv (wall_time per run)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    plan = plan_runs(load_study(a.study))
    res = pd.read_csv(Path(a.published)/"results.csv", low_memory=False)
    seconds = dict(zip(res.run_id, res.wall_time))
    seeds = sorted(int(s) for s in res.seed.dropna().unique())
    per_seed = {}
    for s in seeds:
        shard = shard_runs(plan, [s])
        if any(r.id not in seconds for r in shard): continue   # a shard not published whole
        per_seed[s] = {"runs": len(shard), "run_time_min": round(sum(seconds[r.id] for r in shard) / 60, 1),
                       "landscape_last": replay(landscape_last(shard), seconds, a.jobs),
                       "plan_now": replay(shard, seconds, a.jobs)}
    out = {"benchmark": "shard_schedule",
           "what": f"each published shard of {a.study} replayed with {a.jobs} slots from its runs' measured wall_time "
                   f"({a.published}/results.csv): the plan's order before (landscape last) against the plan now",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "jobs": a.jobs, "per_seed": per_seed}
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(per_seed, indent=1))


if __name__ == "__main__": main()
