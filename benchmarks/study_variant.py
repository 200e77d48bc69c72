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
    PYTHONPATH=. python benchmarks/study_variant.py bf16_micro_batches --study studies/default.toml --seeds 46 \
        --base-folder reports/default --runs /work/shard/runs --out benchmarks/bf16_micro_batches_shard.json

One shard against the published study (`--seeds` with `--base-folder`, issue 25): the variant runs only those seeds'
chains; the as-written arm is the finished folder (nothing runs for it), whose every seed gives the between-seed spread.
For each per-seed aggregate the report's claims rest on (`per_seed_aggregates`: the normalised gain of each setting,
stage and subspace, the retention of each transfer, the mean stage-0 score, the landscape's triangle share), the JSON
has the change on each variant seed and the as-written seeds' SD, and the claims with the variant's seeds in place of
the as-written ones (`claims_with`); for any whole study, each arm's stage-1 subspaces of the compared seeds
(`evidence.stage1_health`: formed or not), and the CPU's bf16 instructions (`cpu_bf16`). The rule, declared before
the first shard ran both ways: the faster setting is adopted for every shard when every aggregate's change is within
one between-seed SD and their median is within half of one (`ADOPT`).
"""
import argparse, datetime, json, os, platform, re, subprocess, tempfile
from pathlib import Path

import pandas as pd

from unified_delta_tuning.results import paper_tables, read_results, result_rows
from unified_delta_tuning.runner import run_study
from unified_delta_tuning.study import STEPS, load_study


VARIANTS = {"bf16": ('precision = "bf16"', None),   # (a top-level line, a line for each [stageN] table)
            "micro_batches": (None, "micro_batches = 2"),
            "bf16_micro_batches": ('precision = "bf16"', "micro_batches = 2")}   # both: the faster default issue 25 weighs
ADOPT = {"max_change_in_sd": 1.0, "median_change_in_sd": 0.5}   # the rule for adopting a variant from one shard
DONE = ("done", "published")   # a finished run's state in a run folder and in a published one


def cpu_bf16(cpuinfo:Path=Path("/proc/cpuinfo"))->list[str]:
    "This CPU's bf16 instructions (`avx512_bf16`, `amx_bf16`): without them bf16 autocast is emulated, and slower than fp32."
    try: flags = set(cpuinfo.read_text().split())
    except OSError: return []
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


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


def per_seed_aggregates(folder:Path)->pd.DataFrame:
    """Each per-seed aggregate the claims rest on (rows) on each seed (columns): the normalised gain of every setting,
    stage and subspace (and fine-tuning's rows of the four-method setting), each transfer's retention, the mean stage-0
    test score and the landscape's triangle share at the lowest gain threshold."""
    from unified_delta_tuning.evidence import aggregate, evidence, stage1_health, study_arms
    from unified_delta_tuning.results import landscapes
    res = read_results(folder)
    arms, tasks = study_arms(folder, res)
    ev = evidence(arms, tasks, B=2, health=stage1_health(res))   # the points only: few replicates
    c, rows = ev.cells, {}
    masks = {(st, k, sub): (c.setting == st) & (c.kind == k) & (c.subspace == sub)
             for st, k, sub in c[c.kind.isin(["stage2", "stage3"])][["setting", "kind", "subspace"]].drop_duplicates()
                                .itertuples(index=False)}
    ft = c.source.eq("finetune") | c.target.eq("finetune")
    masks.update({("four, fine-tuning", k, sub): m & ft for (st, k, sub), m in list(masks.items()) if st == "four"})
    for (st, k, sub), m in sorted(masks.items()):
        g = aggregate(ev, m, "gain")
        rows[f"{st} {k} {sub}: gain"] = g.seeds
        if k == "stage3" and sub == "learned":
            part = c[m]
            own = masks[(st.split(",")[0], "stage2", "learned")] & c.task.isin(set(part.task)) & c.target.isin(set(part.target))
            rows[f"{st} stage3 learned: retention"] = (g / aggregate(ev, own, "gain")).seeds
    rows["stage 0: mean test score"] = arms[arms.kind == "stage0"].groupby("seed").score.mean()
    share = {}
    for L in landscapes(folder, res):
        a = L["areas"]; a = a[a.by == "gain"]
        share[L["seed"]] = float(a[a.fraction == a.fraction.min()].share_of_triangle.iloc[0])
    if share: rows["landscape: triangle share (gain)"] = pd.Series(share)
    return pd.DataFrame(rows).T.sort_index(axis=1)


def claims_with(base:Path, other:Path, seeds:list[int], tmp:Path)->list[dict]:
    "The claims of `base`'s runs with `seeds` taken from `other` (a folder of symbolic links to both, and their results)."
    from unified_delta_tuning.layout import RESULTS, STUDY_FILE
    mixed = tmp/"mixed"; mixed.mkdir()
    a, b = read_results(base), read_results(other)
    res = pd.concat([a[~a.seed.isin(seeds)], b[b.seed.isin(seeds)]], ignore_index=True)
    for folder, ids in ((base, a[~a.seed.isin(seeds)].run_id), (other, b[b.seed.isin(seeds)].run_id)):
        for i in ids: (mixed/i).symlink_to((folder/i).resolve(), target_is_directory=True)
    (mixed/STUDY_FILE).write_text((base/STUDY_FILE).read_text())
    res.to_csv(mixed/RESULTS, index=False)
    return claim_rows(mixed)


def seed_changes(base:pd.DataFrame, var:pd.DataFrame, seeds:list[int])->dict:
    "Each aggregate's change on each variant seed, the as-written seeds' SD, and the change in SDs; the adoption rule."
    rows = []
    for name in base.index:
        sd = float(base.loc[name].dropna().std(ddof=1))
        for s in seeds:
            if s not in var.columns or name not in var.index or pd.isna(var.loc[name, s]): continue
            d = float(var.loc[name, s] - base.loc[name, s])
            rows.append({"aggregate": name, "seed": int(s), "as_written": float(base.loc[name, s]),
                         "variant": float(var.loc[name, s]), "change": d, "between_seed_sd": sd,
                         "change_in_sd": abs(d) / sd if sd > 0 else float("inf")})
    r = pd.Series([x["change_in_sd"] for x in rows])
    verdict = {"rule": f"adopt when every aggregate's change is within {ADOPT['max_change_in_sd']:g} between-seed SD "
                       f"and their median within {ADOPT['median_change_in_sd']:g}",
               "max_change_in_sd": float(r.max()), "median_change_in_sd": float(r.median()),
               "within": int((r <= ADOPT["max_change_in_sd"]).sum()), "of": len(r)}
    verdict["adopt"] = bool(verdict["max_change_in_sd"] <= ADOPT["max_change_in_sd"]
                            and verdict["median_change_in_sd"] <= ADOPT["median_change_in_sd"])
    return {"aggregates": rows, "decision": verdict}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", choices=list(VARIANTS))
    p.add_argument("--study", default="studies/quick.toml"); p.add_argument("--runs", default="runs"); p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", help="default: benchmarks/<variant>_study.json")
    p.add_argument("--only", choices=list(STEPS), help="run and compare only this step (the variant's other steps are not run)")
    p.add_argument("--compare-only", action="store_true", help="run nothing: compare the runs both arms have finished")
    p.add_argument("--base-name", help="the as-written study's folder name under --runs (default: <name>-fp32); the study's own name reuses its runs")
    p.add_argument("--seeds", type=int, nargs="+", help="run the variant on these seeds' chains only (shards)")
    p.add_argument("--base-folder", help="a finished folder of the study as written (e.g. reports/default): nothing runs "
                                         "for that arm, and its seeds give the between-seed spread")
    a = p.parse_args(argv)
    out_path = Path(a.out) if a.out else Path(__file__).with_name(f"{a.variant}_study.json")
    arms = ("fp32", a.variant)
    src = Path(a.study).resolve(); base = load_study(src)
    folders, wall = {}, {}
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:   # beside the original, so its relative paths hold
        for arm in arms:
            if arm == "fp32" and a.base_folder: folders[arm] = Path(a.base_folder); continue
            name = (a.base_name or f"{base.name}-{arm}") if arm == "fp32" else f"{base.name}-{arm}"
            f = Path(tmp)/f"{name}.toml"; f.write_text(variant(src.read_text(), name, None if arm == "fp32" else arm))
            if not a.compare_only:
                run_study(f, runs_root=a.runs, jobs=a.jobs, threads=1, only=a.only, progress_every=None, seeds=a.seeds)
            folders[arm] = Path(a.runs)/name
    of_seeds = lambda df: df[df.seed.isin(a.seeds)] if a.seeds else df   # compare the variant's seeds only
    results = {k: of_seeds(read_results(folder)) for k, folder in folders.items()}   # each arm's runs of the compared seeds
    done = {k: res[res.state.isin(DONE) & ((res.step == a.only) if a.only else True)] for k, res in results.items()}
    counts = {k: v.step.value_counts() for k, v in done.items()}   # run time over the steps both arms have finished whole
    steps = [st for st in STEPS if counts[arms[0]].get(st, 0) and counts[arms[0]].get(st, 0) == counts[arms[1]].get(st, 0)]
    for k in done: done[k] = done[k][done[k].step.isin(steps)]; wall[k] = float(done[k].wall_time.sum())
    s = pd.DataFrame({k: scores(v) for k, v in folders.items()}).dropna()   # with --only or --seeds: the scores both arms have
    base, var = arms; s["difference"] = s[var] - s[base]
    tables = {k: paper_tables(of_seeds(result_rows(v))) for k, v in folders.items()}
    cells = {n: {str(c): {str(i): v for i, v in col.items()} for c, col in (tables[var][n] - tables[base][n]).round(2).to_dict().items()}
             for n in tables[base] if n in tables[var]}   # relative-% points, per column and row
    out = {"benchmark": f"{var}_study", "variant": var, "setting": " and ".join(x for x in VARIANTS[var] if x),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, jobs {a.jobs} × 1 thread", "cpu_bf16": cpu_bf16(),
           "study": str(a.study),
           "only": a.only, "seeds": a.seeds, "base_folder": a.base_folder, "steps_timed": steps,
           "runs": {k: len(v) for k, v in done.items()}, "run_time_s": wall, "run_time_ratio": wall[var] / wall[base],
           "scores": [{"stage": int(i[0]), "setting": i[1], "subspace": i[2], "train_task": i[3], "task": i[4], "source": i[5], "target": i[6], "seed": int(i[7]),
                       base: r[base], var: r[var], "difference": r["difference"]} for i, r in s.iterrows()],
           "max_abs_score_difference": float(s["difference"].abs().max()), "mean_abs_score_difference": float(s["difference"].abs().mean()),
           "table_cells_difference": cells}
    if not a.only or a.only == "stage1":   # each stage-1 subspace of the compared seeds under each arm: formed or not
        from unified_delta_tuning.evidence import stage1_health
        out["stage1"] = {k: stage1_health(res).reset_index().to_dict("records") for k, res in results.items()}
    if a.seeds and not a.only:   # a shard against the study's every seed: each per-seed aggregate's change in seed SDs
        out["per_seed"] = seed_changes(per_seed_aggregates(folders[base]), per_seed_aggregates(folders[var]), a.seeds)
        with tempfile.TemporaryDirectory() as tmp:
            out["claims"] = {base: claim_rows(folders[base]),
                             f"{var} on seeds {a.seeds}": claims_with(folders[base], folders[var], a.seeds, Path(tmp))}
    elif not a.only:   # the paper's claims, as the report computes them, under each arm
        out["claims"] = {k: claim_rows(v) for k, v in folders.items()}
    out_path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(s.round(4).to_string()); print(json.dumps({k: out[k] for k in ("run_time_s", "run_time_ratio", "max_abs_score_difference", "mean_abs_score_difference")}))
    if "per_seed" in out: print(json.dumps(out["per_seed"]["decision"], indent=1))
    return out


if __name__ == "__main__": main()
