"""Single-task stage 1 of one pair and seed at several step counts: does a subspace that did not form at the default
study's 60 steps form with more?

In the default study's seed-45 shard the `mr` subspace (`s1-single-mr-s45-6c4c8f76`) did not form: its best dev score,
0.586 at step 60, is below θ_init's 0.626 (LoRA stays at 0.430 at steps 30 and 60), so the three single-task verdicts
are "not tested". 13 of the 16 published single-task subspaces and all 4 multi-task ones have their best dev score at
step 60, the last evaluation: stage 1 stops while dev is still rising. This runs that pair and seed at each step count
(`--steps`, default 60 120 240; dev every 30 steps as in the study) and reports each stage-1 run's best step, dev
against θ_init's, reconstruction errors and per-method test scores, and each stage-2 run's test score on the target.

How: each step count is a variant of `studies/default.toml` (`--study`) with `seeds = [SEED]`, only the pair in
`[single_task.pairs]`, the delta methods (no fine-tuning tables), the multi-task, four-method, landscape and control tables left out, and `steps` set in
`[single_task.stage1]`, saved as `<runs>/_studies/<name>.toml` and run with `udt study run ... --jobs 2 --threads 1`
under one runs root (`--runs`), so the stage-0 runs are trained once and reused by the other variants (the runner's reuse
of runs finished in a sibling study). At 60 steps the runs have the published runs' ids, so that variant reproduces the
published stage-1 run (same dev, errors and test scores where the runs are deterministic). `benchmarks/stage1_steps.json`
is rewritten after each variant, so an interrupted call leaves what finished; a second call resumes.

    source .venv/bin/activate && export OMP_NUM_THREADS=1
    python benchmarks/stage1_steps.py --runs /work/s1steps [--pair mr nyt] [--seed 45] [--steps 60 120 240]
"""
import argparse, datetime, json, platform, re, subprocess, sys
from pathlib import Path

from unified_delta_tuning.plan import plan_runs
from unified_delta_tuning.study import parse_study

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("stage1_steps.json")
DROP = ("multi_task", "four_methods", "landscape", "controls", "stage0.methods")   # tables a variant leaves out


def set_keys(text:str, table:str, keys:dict)->str:
    "The TOML text with `keys` set in `[table]` ('' = the top level): an existing `k = ...` line replaced, else added."
    out, cur, done = [], "", set()
    for line in text.splitlines():
        if m := re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line):
            if cur == table: out += [f"{k} = {json.dumps(v)}" for k, v in keys.items() if k not in done]; done |= set(keys)
            cur = m.group(1)
        elif cur == table and (m := re.match(r"^\s*([A-Za-z0-9_]+)\s*=", line)) and m.group(1) in keys:
            line = f"{m.group(1)} = {json.dumps(keys[m.group(1)])}"; done.add(m.group(1))
        out.append(line)
    if cur == table: out += [f"{k} = {json.dumps(v)}" for k, v in keys.items() if k not in done]; done |= set(keys)
    if set(keys) - done: raise ValueError(f"no table [{table}] in the study to set {sorted(set(keys) - done)} in")
    return "\n".join(out) + "\n"


def variant_text(text:str, source:str, target:str, seed:int, steps:int)->str:
    "The study with one seed, one single-task pair, no other setting or control, and single-task stage 1 at `steps`."
    out, cur = [], ""
    for line in text.splitlines():
        if m := re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line):
            cur = m.group(1)
            if cur == "single_task.pairs": out += [line, f"{source} = {json.dumps([target])}"]; continue
        if any(cur == t or cur.startswith(t + ".") for t in DROP) or (cur == "single_task.pairs" and not line.startswith("[")): continue
        out.append(line)
    text = set_keys("\n".join(out) + "\n", "", {
        "name": name_of(source, seed, steps), "seeds": [seed], "methods": ["adapter", "lora", "prefix"],
        "description": f"{source} -> {target}, seed {seed}: the default study's single-task setting, stage 1 at {steps} steps"})
    return set_keys(text, "single_task.stage1", {"steps": steps})


def name_of(source:str, seed:int, steps:int)->str: return f"s1steps-{source}-s{seed}-steps{steps}"


def read_runs(folder:Path, runs:list)->dict:
    "Each finished stage-1 and stage-2 run's metrics (stage 2: by source method)."
    got = {"stage1": None, "stage2": {}}
    for r in runs:
        m = folder/r.id/"metrics.json"
        if r.step == "stage0" or not (folder/r.id/"done.json").is_file(): continue
        met = json.loads(m.read_text())
        if r.step == "stage1":
            hist = json.loads((folder/r.id/"history.json").read_text())
            got["stage1"] = {"run": r.id, **{k: round(v, 4) if isinstance(v, float) else v for k, v in met.items()},
                             "dev_by_step": {h["step"]: {k: round(h[k], 4) for k in h if k.startswith("dev")}
                                             for h in hist}}
        else:
            got["stage2"][r.params["source"]] = {"run": r.id, "test": round(met["test"], 4),
                                                 "init_test": round(met["init_test"], 4) if "init_test" in met else None}
    return got


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", default=str(ROOT/"studies"/"default.toml"))
    p.add_argument("--runs", required=True, help="one runs root for every variant (stage 0 is shared)")
    p.add_argument("--pair", nargs=2, default=["mr", "nyt"], metavar=("SOURCE", "TARGET"))
    p.add_argument("--seed", type=int, default=45)
    p.add_argument("--steps", type=int, nargs="+", default=[60, 120, 240])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--published", default=str(ROOT/"reports"/"default"),
                   help="the published study's folder: a variant's stage-1 run with a published id is set beside it")
    a = p.parse_args(argv)
    text, (src, tgt) = Path(a.study).read_text(), a.pair
    root, studies = Path(a.runs), Path(a.runs)/"_studies"
    studies.mkdir(parents=True, exist_ok=True)
    res = {"benchmark": "stage1_steps", "what": __doc__.splitlines()[0],
           "pair": [src, tgt], "seed": a.seed, "study": Path(a.study).name,
           "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(),
           "machine": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                            if l.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").is_file()
                      else platform.machine(),
           "variants": {}}
    for n in a.steps:
        name = name_of(src, a.seed, n)
        path = studies/f"{name}.toml"
        path.write_text(variant_text(text, src, tgt, a.seed, n))
        rc = subprocess.run([sys.executable, "-m", "unified_delta_tuning.cli", "study", "run", str(path), "--runs",
                             str(root), "--jobs", str(a.jobs), "--threads", "1", "--progress-every", "0"]).returncode
        runs = plan_runs(parse_study(path.read_text(), path))
        res["variants"][str(n)] = got = {"rc": rc, **read_runs(root/name, runs)}
        if got["stage1"] and (Path(a.published)/got["stage1"]["run"]/"done.json").is_file():   # the published run itself
            pub = read_runs(Path(a.published), [r for r in runs if r.id == got["stage1"]["run"]])["stage1"]
            got["published_stage1"] = {**pub, "device": json.loads((Path(a.published)/pub["run"]/"done.json")
                                                                 .read_text()).get("device")}
        res["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        OUT.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res["variants"], indent=1))


if __name__ == "__main__": main()
