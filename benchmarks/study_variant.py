"""A whole study with one speed setting changed against the same study as written: every score and the run time.

Issue 15: a setting that makes a study faster but changes its arithmetic stays off by default until its effect on
the tables is measured. Two variants:

- `bf16`: `precision = "bf16"` (every forward pass under bf16 autocast);
- `micro_batches`: `micro_batches = 2` in `[stage0]`, `[stage1]` and `[stage2]` (each training batch as two
  length-grouped micro-batches, `scoring.length_groups`).

This runs one study file (default: studies/quick.toml) twice under `--runs` (default: runs/), once as written and once
as the variant, as two studies named `<name>-fp32` and `<name>-<variant>` (the variant's runs have their own ids), one
after the other with the same jobs and threads. It then sets every test score of the two side by side (stage 0,
θ_init, stage 2 and the stage-3 transfers), the cells of the paper's tables, and the run time summed from each
`results.csv`; for a whole study also the paper's claims with their verdicts under each arm. A finished study is not run again, so a second call only recomputes the comparison. The result goes
to `benchmarks/<variant>_study.json`.

    PYTHONPATH=. python benchmarks/study_variant.py bf16|micro_batches [--study studies/quick.toml] [--runs runs] [--jobs 2]
    PYTHONPATH=. python benchmarks/study_variant.py micro_batches --study studies/default.toml --base-name default --only stage0 \\
        --out benchmarks/micro_batches_default_stage0.json   # against the published default study's own stage-0 runs
"""
import argparse, datetime, json, os, platform, re, subprocess, tempfile
from pathlib import Path

import pandas as pd

from unified_delta_tuning.results import paper_tables, read_results, result_rows
from unified_delta_tuning.runner import run_study
from unified_delta_tuning.study import STEPS, load_study


VARIANTS = {"bf16": ('precision = "bf16"', None),   # (a top-level line, a line for each [stageN] table)
            "micro_batches": (None, "micro_batches = 2")}


def variant(text:str, name:str, kind:str|None)->str:
    "The study's text under another name and, if given, as variant `kind`."
    text = re.sub(r'^name\s*=.*$', f'name = "{name}"', text, count=1, flags=re.M)
    if kind is None: return text
    top, stage = VARIANTS[kind]
    if stage:
        text, n = re.subn(r'^(\[stage[012]\])[ \t]*(#.*)?$', lambda m: m.group(0) + "\n" + stage, text, flags=re.M)
        if n != 3: raise ValueError(f"the study has {n} of the tables [stage0], [stage1], [stage2]; write all three to set {stage!r}")
    return (top + "\n" if top else "") + text


def scores(folder:Path)->pd.Series:
    "Every test score of a finished study, labelled by stage, task, source, target and seed (a shared stage 0 once per chain)."
    rows = result_rows(folder)
    rows = rows.assign(train_task=rows.train_task.fillna(""), setting=rows.setting.fillna(""),
                       subspace=rows.subspace.fillna("learned") if "subspace" in rows else "learned")
    rows.loc[rows.stage == 0, "subspace"] = ""
    return rows.set_index(["stage", "setting", "subspace", "train_task", "task", "source", "target", "seed"]).test.sort_index()


def claim_rows(folder:Path)->list[dict]:
    "The claims table of a finished study (`claims.study_claims`): each claim's evidence, numbers and verdict."
    from unified_delta_tuning.claims import study_claims
    res = read_results(folder)
    return json.loads(study_claims(folder, res).reset_index().to_json(orient="records"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", choices=list(VARIANTS))
    p.add_argument("--study", default="studies/quick.toml"); p.add_argument("--runs", default="runs"); p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", help="default: benchmarks/<variant>_study.json")
    p.add_argument("--only", choices=list(STEPS), help="run and compare only this step (the variant's other steps are not run)")
    p.add_argument("--compare-only", action="store_true", help="run nothing: compare the runs both arms have finished")
    p.add_argument("--base-name", help="the as-written study's folder name under --runs (default: <name>-fp32); the study's own name reuses its runs")
    a = p.parse_args(argv)
    out_path = Path(a.out) if a.out else Path(__file__).with_name(f"{a.variant}_study.json")
    arms = ("fp32", a.variant)
    src = Path(a.study).resolve(); base = load_study(src)
    folders, wall = {}, {}
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:   # beside the original, so its relative paths hold
        for arm in arms:
            name = (a.base_name or f"{base.name}-{arm}") if arm == "fp32" else f"{base.name}-{arm}"
            f = Path(tmp)/f"{name}.toml"; f.write_text(variant(src.read_text(), name, None if arm == "fp32" else arm))
            if not a.compare_only: run_study(f, runs_root=a.runs, jobs=a.jobs, threads=1, only=a.only, progress_every=None)
            folders[arm] = Path(a.runs)/name
    done = {}
    for k, folder in folders.items():
        res = read_results(folder); done[k] = res[(res.state == "done") & ((res.step == a.only) if a.only else True)]
    counts = {k: v.step.value_counts() for k, v in done.items()}   # run time over the steps both arms have finished whole
    steps = [st for st in STEPS if counts[arms[0]].get(st, 0) and counts[arms[0]].get(st, 0) == counts[arms[1]].get(st, 0)]
    for k in done: done[k] = done[k][done[k].step.isin(steps)]; wall[k] = float(done[k].wall_time.sum())
    s = pd.DataFrame({k: scores(v) for k, v in folders.items()}).dropna()   # with --only: the scores both arms have
    base, var = arms; s["difference"] = s[var] - s[base]
    tables = {k: paper_tables(result_rows(v)) for k, v in folders.items()}
    cells = {n: {str(c): {str(i): v for i, v in col.items()} for c, col in (tables[var][n] - tables[base][n]).round(2).to_dict().items()}
             for n in tables[base] if n in tables[var]}   # relative-% points, per column and row
    out = {"benchmark": f"{var}_study", "variant": var, "setting": [x for x in VARIANTS[var] if x][0],
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, jobs {a.jobs} × 1 thread", "study": str(a.study),
           "only": a.only, "steps_timed": steps, "runs": {k: len(v) for k, v in done.items()},
           "run_time_s": wall, "run_time_ratio": wall[var] / wall[base],
           "scores": [{"stage": int(i[0]), "setting": i[1], "subspace": i[2], "train_task": i[3], "task": i[4], "source": i[5], "target": i[6], "seed": int(i[7]),
                       base: r[base], var: r[var], "difference": r["difference"]} for i, r in s.iterrows()],
           "max_abs_score_difference": float(s["difference"].abs().max()), "mean_abs_score_difference": float(s["difference"].abs().mean()),
           "table_cells_difference": cells}
    if not a.only:   # the paper's claims, as the report computes them, under each arm
        out["claims"] = {k: claim_rows(v) for k, v in folders.items()}
    out_path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(s.round(4).to_string()); print(json.dumps({k: out[k] for k in ("run_time_s", "run_time_ratio", "max_abs_score_difference", "mean_abs_score_difference")}))
    return out


if __name__ == "__main__": main()
