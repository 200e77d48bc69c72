"""Whether the default study's four-method subspace forms, by the settings of its stage 1 (`[four_methods.stage1]`).

In the published default study (seeds 42 and 43) fine-tuning's relative reconstruction error
‖up(down(Δθ)) − Δθ‖/‖Δθ‖ in the four-method subspace of tweets3 (adapter, LoRA, prefix, fine-tuning; y = 4, ra = 0.1,
lr = 1e-2) was 1.04 and 1.00: no better than predicting Δθ = 0, so the subspace did not form
(`evidence.stage1_health`). Fine-tuning's Fastfood up-projection moves each output coordinate √D times less per step
than a dense one (`06_subspace`, "The Fastfood maps' learning rate"), so each variant here gives those maps their own
learning rate (`fastfood_lr`) and some also a larger reconstruction weight `ra`.

How: each variant is `studies/default.toml` with `name = "fourcheck-<variant>"`, `seeds = [42]` and the variant's keys
in `[four_methods.stage1]`, written to `<runs>/_studies/`. It is run with the study runner under the runs root that
holds the default study's seed-42 runs (`--runs`): `only="stage0"` first, which only reuses (hard-links) the finished
stage-0 runs of the sibling study `default`, then `only="stage1"`, which reuses the single- and multi-task stage-1 runs
and runs the one four-method stage-1 run of the variant. A finished run is not run again, so a second call resumes
and rereads. The row of each variant is its run's `metrics.json` (every method's error, best dev, θ_init's dev) and
`history.json`; "formed" is `evidence.stage1_health`'s rule (every error below 1, best dev ≥ θ_init's dev) and
"within 0.5" the stricter one of `benchmarks/stage1_sweep.py`.

    source .venv/bin/activate && export OMP_NUM_THREADS=1
    PYTHONPATH=. python benchmarks/four_method_stage1.py --runs runs [--variants ff0.1 ff0.1-ra1 ff1] [--report-only]
"""
import argparse, datetime, json, re, subprocess
from pathlib import Path

from unified_delta_tuning import runner
from unified_delta_tuning.study import parse_study

OUT = Path(__file__).with_name("four_method_stage1.json")
# variant name: [four_methods.stage1] keys; "published": the lr-1e-2 setting of the published runs (no keys)
VARIANTS = {"published": {}, "ff0.1": {"fastfood_lr": 0.1}, "ff0.1-ra1": {"fastfood_lr": 0.1, "ra": 1.0},
            "ff1": {"fastfood_lr": 1.0}, "ff0.1-ra10": {"fastfood_lr": 0.1, "ra": 10.0}}

def variant_text(text:str, name:str, keys:dict)->str:
    "The default study as one seed-42 variant: its name, seeds and [four_methods.stage1] replaced."
    text = re.sub(r'(?m)^name = .*$', f'name = "fourcheck-{name}"', text)
    text = re.sub(r'(?m)^seeds = \[[^\]]*\]', "seeds = [42]", text)
    # drop the study's own [four_methods.stage1] table, then add the variant's
    text = re.sub(r'(?ms)^\[four_methods\.stage1\].*?(?=^\[)', "", text)
    if keys: text += "\n[four_methods.stage1]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return text

def read_json(p:Path):
    try: return json.loads(p.read_text())
    except (OSError, ValueError): return None

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="studies/default.toml")
    ap.add_argument("--runs", default="runs", help="the runs root that holds the default study's seed-42 runs")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--report-only", action="store_true", help="run nothing: reread the finished runs")
    a = ap.parse_args(argv)
    text, runs = Path(a.study).read_text(encoding="utf-8"), Path(a.runs)
    (runs/"_studies").mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.variants:
        f = runs/"_studies"/f"fourcheck-{name}.toml"; f.write_text(variant_text(text, name, VARIANTS[name]))
        study = parse_study(f.read_text(), f)
        if not a.report_only:
            runner.run_study(f, runs_root=runs, jobs=1, threads=1, only="stage0", progress_every=None)
            runner.run_study(f, runs_root=runs, jobs=1, threads=1, only="stage1", progress_every=120)
        r1 = next(r for r in runner.plan_runs(study) if r.step == "stage1" and r.params["setting"] == "four")
        folder = runs/study.name/r1.id
        m, h, d = (read_json(folder/n) or {} for n in ("metrics.json", "history.json", "done.json"))
        errs = {k[len("recon_error_"):]: round(v, 4) for k, v in m.items() if k.startswith("recon_error_")}
        cfg1 = study.stage_config("stage1", "four")
        rows.append({"variant": name, "keys": VARIANTS[name], "run_id": r1.id, "state": "done" if d else "not run",
                     "lr": cfg1["lr"], "ra": cfg1["ra"], "y": cfg1["y"], "steps": cfg1["steps"],
                     "fastfood_lr": cfg1.get("fastfood_lr"), "recon_error": errs,
                     "worst_error": max(errs.values()) if errs else None, "dev": m.get("dev"),
                     "init_dev": m.get("init_dev"), "test": m.get("test"),
                     "test_by_method": {k[5:]: v for k, v in m.items() if k.startswith("test_")},
                     "formed": (bool(errs) and max(errs.values()) < 1 and m["dev"] >= m["init_dev"]) if m else None,
                     "within_0.5": (bool(errs) and max(errs.values()) < 0.5) if m else None,
                     "wall_time_s": d.get("wall_time"),
                     "history": [{k: r.get(k) for k in ("step", "loss", "recon", "dev", "dev_finetune")} for r in h]})
        print(json.dumps({k: rows[-1][k] for k in ("variant", "recon_error", "dev", "init_dev", "formed")}), flush=True)
    OUT.write_text(json.dumps({
        "benchmark": "four_method_stage1", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "command": "PYTHONPATH=. python benchmarks/four_method_stage1.py " + " ".join(argv or __import__("sys").argv[1:]),
        "device": "cpu, 1 thread a run", "seed": 42, "study": a.study,
        "note": "the 'published' run (reused from the default study's seed-42 runs) was made by the stage-1 notebook before "
                "commit aa9431e, which read the four-method setting as multi-task and so split each batch of 8 into "
                "groups of 4 (two interpolations a step); the other variants use one group of 8, as the single-task "
                "setting does. The other runs shared the 2 cores with the default study's seed-44 shard (2 runs) and "
                "one another: wall times are not comparable.",
        "rows": rows}, indent=1, ensure_ascii=False) + "\n")

if __name__ == "__main__": main()
