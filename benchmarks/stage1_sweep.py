"""Stage-1 settings (lr, steps, ra) under which the default study's multi-task and four-method subspaces form.

In the previous published default study (plan v3, `reports/default-v3/`) the multi-task subspace of {tweets3, trec50} (y = 100, ra = 10,
the study's [stage1] lr = 1e-2) did not form: every method's relative reconstruction error
‖up(down(Δθ)) − Δθ‖/‖Δθ‖ was 5.6-6.6 (1.0 = no better than predicting Δθ = 0) and its dev score fell from 0.108 at
step 30 to 0.082 at step 60; in the four-method subspace (tweets3; adapter, LoRA, prefix and fine-tuning; y = 4,
ra = 0.1, lr = 1e-2) fine-tuning's error was 1.04. This sweeps the stage-1 learning rate and ra (and, at the best
multi-task setting, twice the steps) on the same stage-0 solutions and reports, per configuration, each method's
reconstruction error, the best dev score against θ_init's (`init_dev`, written by the stage-1 notebook) and whether
the subspace *converged*: every method's error below 0.5 (`--max-error`) and best dev ≥ θ_init's dev.

How: each configuration is a variant of `studies/default.toml` (`--study`) with `seeds = [42]` and its stage-1 keys
written into `[multi_task.stage1]` (multi-task) or `[four_methods.stage1]` (the four-method subspace reads `[stage1]`,
then `[single_task.stage1]`, then `[four_methods.stage1]`: `Study.stage_config(..., "four")`), saved as
`<runs>/_studies/<name>.toml` and run with `runner.run_study(..., jobs=1, threads=1)` under one runs root (`--runs`,
default /work/sweep-runs), so each stage-0 run is trained once and copied (hard links) into the other variants by the
runner's reuse of runs finished in a sibling study. Only the configuration's stage-1 run and the stage-0 runs it reads
are run: `run_study(only="stage1")` alone would block, because it does not run the stage-0 runs a stage-1 run needs,
so while a variant runs, `runner.plan_runs` is wrapped to keep just that stage-1 run and its dependencies (the study's
other runs are not in its plan). Run ids are the package's own, so the lr-1e-2 baselines have the published runs' ids.

Configurations run one at a time in priority order (the unpublished settings first, the two baselines last) and
`benchmarks/stage1_sweep.json` is rewritten after each; a finished run is not run again, so a second call resumes, and
`--report-only` runs nothing and rereads what is finished. A baseline that was not rerun is reported from the published
run in `--published` (no `init_dev` there). `--stop-after MIN` starts no configuration after MIN minutes.

The recorded `stage1_sweep.json` was made at its `commit` (d930d80), before `[four_methods.stage1]` existed: the
four-method variants then sat in `[single_task.stage1]` and the stage-1 notebook read that setting with the multi-task
`group_size`. To reproduce it, run this script from a checkout of that commit. Run against today's
`studies/default.toml`, a four-method variant also takes that study's `[four_methods.stage1]` keys it does not set
(`fastfood_lr = 0.1`); `benchmarks/four_method_stage1.py` is the sweep of that setting.

    source .venv/bin/activate && export OMP_NUM_THREADS=1
    PYTHONPATH=. python benchmarks/stage1_sweep.py [--runs /work/sweep-runs] [--stop-after 70] [--only multi|four] [--report-only]
"""
import argparse, datetime, json, math, re, subprocess, time
from contextlib import contextmanager
from pathlib import Path

from unified_delta_tuning import runner
from unified_delta_tuning.study import parse_study

OUT = Path(__file__).with_name("stage1_sweep.json")
BASE_LR = 1e-2   # [stage1] lr of studies/default.toml, which both settings inherit (checked in `main`)

# (setting, lr, ra, steps); y is the setting's own (multi 100, four-method 4). Priority order: the unpublished settings
# first, the baselines (lr 1e-2 at the study's own ra) last; "double" is added after the multi-task grid, at its best.
GRID = [("multi", 1e-3, 10.0, 60), ("multi", 1e-4, 10.0, 60), ("four", 1e-3, 0.1, 60), ("multi", 1e-3, 1.0, 60),
        ("multi", 1e-4, 1.0, 60), ("four", 1e-4, 0.1, 60), ("double", None, None, 120), ("multi", 1e-2, 1.0, 60),
        ("multi", 1e-2, 10.0, 60), ("four", 1e-2, 0.1, 60)]
TABLE = {"multi": "multi_task.stage1", "four": "four_methods.stage1"}


def name_of(setting:str, lr:float, ra:float, steps:int)->str:
    return f"s1sweep-{setting}-lr{lr:.0e}-ra{ra:g}-steps{steps}".replace("+", "")


def set_keys(text:str, table:str, keys:dict)->str:
    "The TOML text with `keys` set in `[table]` ('' = the top level): an existing `k = ...` line replaced, else added under the header."
    lines, out, cur, done = text.splitlines(), [], "", set()
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
    for i, line in enumerate(lines):
        if m := header.match(line):
            if cur == table: out += [f"{k} = {json.dumps(v)}" for k, v in keys.items() if k not in done]; done |= set(keys)
            cur = m.group(1)
            out.append(line)
            continue
        m = re.match(r"^\s*([A-Za-z0-9_]+)\s*=", line)
        if cur == table and m and m.group(1) in keys:
            k = m.group(1); out.append(f"{k} = {json.dumps(keys[k])}"); done.add(k); continue
        out.append(line)
    if cur == table: out += [f"{k} = {json.dumps(v)}" for k, v in keys.items() if k not in done]; done |= set(keys)
    if set(keys) - done: raise ValueError(f"no table [{table}] in the study to set {sorted(set(keys) - done)} in")
    return "\n".join(out) + "\n"


def variant_text(text:str, setting:str, lr:float, ra:float, steps:int)->str:
    "The study restricted to seed 42, with the setting's stage-1 lr, ra and steps."
    name = name_of(setting, lr, ra, steps)
    text = set_keys(text, "", {"name": name, "seeds": [42]})
    return set_keys(text, TABLE[setting], {"lr": lr, "ra": ra, "steps": steps})


@contextmanager
def stage1_plan(setting:str):
    "While a variant runs: its plan is only the stage-1 run(s) of `setting` and the stage-0 runs they read."
    orig = runner.plan_runs
    def trimmed(study):
        runs = orig(study)
        keep = [r for r in runs if r.step == "stage1" and r.params["setting"] == setting]
        need = {d for r in keep for d in r.deps}
        return [r for r in runs if r.id in need] + keep
    runner.plan_runs = trimmed
    try: yield trimmed
    finally: runner.plan_runs = orig


def read_json(p:Path):
    try: return json.loads(p.read_text())
    except (OSError, ValueError): return None


def record(cfg:dict, folder:Path, source:str, max_error:float)->dict:
    "One configuration's row from its finished stage-1 run folder."
    m, h, d = read_json(folder/"metrics.json") or {}, read_json(folder/"history.json") or [], read_json(folder/"done.json") or {}
    errs = {k[len("recon_error_"):]: v for k, v in m.items() if k.startswith("recon_error_")}
    worst = max(errs, key=errs.get) if errs else None
    init = m.get("init_dev")
    ok_err = bool(errs) and all(v < max_error for v in errs.values())
    ok_dev = None if init is None or m.get("dev") is None else bool(m["dev"] >= init)
    converged = (ok_err and ok_dev) if ok_dev is not None else (False if not ok_err else None)
    why = ([f"{worst}'s error {errs[worst]:.3f} ≥ {max_error}"] if errs and not ok_err else []) + \
          ([f"best dev {m['dev']:.3f} < θ_init's {init:.3f}"] if ok_dev is False else []) + \
          (["no init_dev recorded (published run): the dev half of the rule is unchecked"] if ok_dev is None else [])
    return {**cfg, "run_id": folder.name, "source": source, "state": "done" if m else "missing",
            "recon_error": errs, "worst_error": errs.get(worst), "worst_method": worst,
            "dev": m.get("dev"), "init_dev": init, "test": m.get("test"), "best_step": m.get("best_step"),
            "train_time": m.get("train_time"), "wall_time": d.get("wall_time"), "device": d.get("device"),
            "converged": converged, "why_not": "; ".join(why),
            "history": [{k: r.get(k) for k in ("step", "dev", "loss", "recon") if k in r} for r in h]}


def recommend(rows:list[dict], setting:str)->dict:
    "The converged configuration with the lowest worst-method error; if none, the closest (lowest worst error), said so."
    rs = [r for r in rows if r["setting"] == setting and r["state"] == "done" and r["worst_error"] is not None]
    if not rs: return {"converged": None, "note": "no finished configuration"}
    conv = [r for r in rs if r["converged"]]
    best = min(conv or rs, key=lambda r: r["worst_error"])
    keep = {k: best[k] for k in ("name", "lr", "ra", "steps", "y", "worst_error", "worst_method", "dev", "init_dev")}
    return {**keep, "converged": bool(conv),
            "note": "lowest worst-method error among the converged configurations" if conv else
                    f"no configuration converged; this is the closest (lowest worst-method error): {best['why_not']}"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", default="studies/default.toml"); p.add_argument("--runs", default="/work/sweep-runs")
    p.add_argument("--published", default="reports/default-v3", help="the published study's runs: baselines not rerun are read from here")
    p.add_argument("--out", default=str(OUT)); p.add_argument("--max-error", type=float, default=0.5)
    p.add_argument("--only", choices=["multi", "four"], help="only this setting's configurations")
    p.add_argument("--stop-after", type=float, default=None, help="start no configuration after this many minutes")
    p.add_argument("--report-only", "--compare-only", action="store_true", help="run nothing: reread the finished runs")
    a = p.parse_args(argv)
    t0, src, runs = time.monotonic(), Path(a.study), Path(a.runs)
    text = src.read_text(encoding="utf-8"); base = parse_study(text, src.resolve())
    (runs/"_studies").mkdir(parents=True, exist_ok=True)
    from unified_delta_tuning.core import run_metadata
    out = {"benchmark": "stage1_sweep", "date": subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip(),
           "device": run_metadata(threads=1)["device"], "jobs": 1, "threads": 1,
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() + " (with the working tree's changes)",
           "command": "source .venv/bin/activate && export OMP_NUM_THREADS=1 && PYTHONPATH=. python benchmarks/stage1_sweep.py "
                      + " ".join(x for x in (argv if argv is not None else __import__("sys").argv[1:])),
           "study": str(src), "runs_root": str(runs), "seed": 42,
           "rule": f"converged: every method's relative reconstruction error < {a.max_error} and best dev ≥ θ_init's dev (init_dev)",
           "base_settings": {s: {k: v for k, v in base.stage_config("stage1", s).items()} for s in TABLE},
           "configurations": [], "stage0": [], "recommended": {}}
    log = runs/"_studies"/"invocations.json"   # every call of this script on this runs root, so the JSON says how its runs were made
    calls = read_json(log) or []
    calls.append({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "argv": list(argv if argv is not None else __import__("sys").argv[1:]), "runs_nothing": a.report_only})
    log.write_text(json.dumps(calls, indent=1) + "\n"); out["invocations"] = calls
    for s in TABLE: assert base.stage_config("stage1", s)["lr"] == BASE_LR, f"{s}: lr is not {BASE_LR} in {src}"
    rows, s0 = {}, {}

    def save():
        out["configurations"] = list(rows.values()); out["stage0"] = list(s0.values())
        out["recommended"] = {s: recommend(out["configurations"], s) for s in TABLE if not a.only or s == a.only}
        out["elapsed_s"] = round(time.monotonic() - t0)
        Path(a.out).write_text(json.dumps(out, indent=1, default=str, ensure_ascii=False) + "\n")

    def one(setting, lr, ra, steps, may_run=True):
        name = name_of(setting, lr, ra, steps)
        vtext = variant_text(text, setting, lr, ra, steps)
        f = runs/"_studies"/f"{name}.toml"; f.write_text(vtext)
        study = parse_study(vtext, f)
        cfg1 = study.stage_config("stage1", setting)
        assert (cfg1["lr"], cfg1["ra"], cfg1["steps"]) == (lr, ra, steps), cfg1
        with stage1_plan(setting) as plan:
            r1 = [r for r in plan(study) if r.step == "stage1"]; assert len(r1) == 1, [r.id for r in r1]
            r1, deps = r1[0], r1[0].deps
            folder, pub = runs/name/r1.id, Path(a.published)/r1.id
            cfg = {"name": name, "setting": setting, "lr": lr, "ra": ra, "steps": steps, "y": cfg1["y"], "study_file": str(f),
                   "same_run_as_published": (pub/"metrics.json").is_file()}
            done = (folder/"done.json").is_file()
            late = a.stop_after is not None and time.monotonic() - t0 > 60 * a.stop_after
            if not done and may_run and not a.report_only and not late:
                print(f"== {name}: {r1.id} (+ {len(deps)} stage-0 runs)", flush=True)
                runner.run_study(f, runs_root=runs, jobs=1, threads=1, progress_every=120)
                done = (folder/"done.json").is_file()
        for d in deps:   # the stage-0 runs it read
            if d not in s0 and (m := read_json(runs/name/d/"metrics.json")):
                dn = read_json(runs/name/d/"done.json") or {}
                s0[d] = {"run_id": d, "dev": m.get("dev"), "test": m.get("test"), "init_test": m.get("init_test"),
                         "train_time": m.get("train_time"), "wall_time": dn.get("wall_time"),
                         "published_dev": (read_json(Path(a.published)/d/"metrics.json") or {}).get("dev")}
        if done: rows[name] = record(cfg, folder, "sweep", a.max_error)
        elif cfg["same_run_as_published"]: rows[name] = record(cfg, pub, f"published ({a.published}; not rerun)", a.max_error)
        else: rows[name] = {**cfg, "run_id": r1.id, "source": None, "state": "not run", "worst_error": None, "converged": None}
        save()
        return rows[name]

    for setting, lr, ra, steps in GRID:
        if a.only and a.only != ("multi" if setting == "double" else setting): continue
        if setting == "double":   # twice the steps at the best multi-task configuration so far
            best = recommend(list(rows.values()), "multi")
            if best.get("lr") is None: continue
            one("multi", best["lr"], best["ra"], 2 * best["steps"]); continue
        one(setting, lr, ra, steps)
    save()
    for r in out["configurations"]:
        e = r.get("recon_error") or {}
        print(f"{r['name']:42} {r['state']:8} worst {r['worst_error'] if r['worst_error'] is None else round(r['worst_error'], 3)!s:6} "
              + " ".join(f"{k} {v:.3f}" for k, v in e.items()) + f"  dev {r.get('dev')}  init {r.get('init_dev')}  conv {r['converged']}")
    print(json.dumps(out["recommended"], indent=1, ensure_ascii=False))
    return out


if __name__ == "__main__": main()
