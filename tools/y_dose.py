"""The subspace dimension y as a dose (`studies/y-dose.toml`): one study folder per y, and the curve over them.

    python tools/y_dose.py run [--ys 1 2 4 8 16] [--jobs 2] [--runs runs]
    python tools/y_dose.py publish [--ys ...] [--runs runs] [--out reports/y-dose]

`run` runs `studies/y-dose.toml` once per y, as the study `y-dose-y<Y>` with `single_task.stage1.y = Y` (the same
as `udt study run studies/y-dose.toml --set single_task.stage1.y=Y --set name=y-dose-yY`); runs that another study
under `--runs` has finished (the default study's stage 0, and y = 4 on its seeds) are reused, not run again.
`publish` copies each folder's small artefacts to `<out>/y<Y>/` (`results.publish_runs`) and writes `<out>/curve.csv`
and `<out>/curve.png`: per y, the learned subspace's normalised gain and relative score in stage 2 (optimisation)
and stage 3 (transfer), each the mean over seeds with its 95 % interval (`evidence.aggregate`, `interval`), and
the stage-1 subspaces' worst reconstruction error. It is a curve, not a verdict: no claim is decided on it.
"""
import argparse, sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT/"studies"/"y-dose.toml"
YS = (1, 2, 4, 8, 16)

def study_name(y:int)->str: return f"y-dose-y{y}"

def overrides(y:int)->list[str]: return [f"single_task.stage1.y={y}", f"name={study_name(y)}"]

def run(ys, jobs:int, runs:Path):
    from unified_delta_tuning.runner import run_study
    from unified_delta_tuning.study import load_study
    for y in ys:
        print(f"== y = {y}: {study_name(y)}", flush=True)
        run_study(load_study(STUDY, overrides(y)), runs, jobs=jobs)

def dose_curve(folders:dict, # y -> a study folder (run or published) of that y
               B:int=1000, # bootstrap replicates of the test examples
              )->pd.DataFrame:
    "Per y and stage: the learned subspace's gain and relative score over seeds (mean, 95 % interval) and the worst stage-1 error."
    from unified_delta_tuning.evidence import aggregate, evidence, interval, stage1_health, study_arms
    from unified_delta_tuning.results import read_results
    rows = []
    for y, folder in sorted(folders.items()):
        res = read_results(folder); health = stage1_health(res)
        ev = evidence(*study_arms(folder, res), B=B, health=health)
        learned = (ev.cells.subspace == "learned") & (ev.cells.setting == "single")
        for kind in ("stage2", "stage3"):
            row = {"y": y, "stage": kind}
            for q in ("gain", "relative"):
                e = aggregate(ev, learned & (ev.cells.kind == kind), q)
                lo, hi = interval(e)
                row.update({f"{q}": e.point, f"{q} lo": lo, f"{q} hi": hi, "seeds": e.k})
            row["stage-1 error (worst, mean over seeds)"] = float(health.error.mean()) if len(health) else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)

def plot_curve(curve:pd.DataFrame, out:Path):
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind, label in (("stage2", "stage 2: optimisation in the subspace"), ("stage3", "stage 3: transfer to the other methods")):
        c = curve[curve.stage == kind]
        ax.errorbar(c.y, c.gain, yerr=[c.gain - c["gain lo"], c["gain hi"] - c.gain], marker="o", capsize=3, label=label)
    ax.axhline(0, color="grey", lw=0.8); ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log", base=2); ax.set_xticks(sorted(curve.y.unique()), [str(y) for y in sorted(curve.y.unique())])
    ax.set_xlabel("subspace dimension y"); ax.set_ylabel("normalised gain (0: θ_init, 1: stage 0)")
    ax.set_title(f"tweets3 → amazon, {int(curve.seeds.max())} seeds, 95 % intervals"); ax.legend(fontsize=8)
    fig.tight_layout(); fig.savefig(out, dpi=120); plt.close(fig)

def publish(ys, runs:Path, out:Path):
    from unified_delta_tuning.results import publish_runs
    folders = {}
    for y in ys:
        src = runs/study_name(y)
        if not src.is_dir(): print(f"y = {y}: no runs in {src}; run `python tools/y_dose.py run --ys {y}` first"); continue
        n = publish_runs(src, out/f"y{y}"); folders[y] = out/f"y{y}"
        print(f"y = {y}: {n['copied']} runs copied, {n['kept']} kept, {n['removed']} removed")
    if not folders: sys.exit("nothing to publish")
    curve = dose_curve(folders)
    curve.to_csv(out/"curve.csv", index=False); plot_curve(curve, out/"curve.png")
    print(curve.round(3).to_string(index=False)); print(f"wrote {out/'curve.csv'} and {out/'curve.png'}")

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("run", "publish"))
    p.add_argument("--ys", type=int, nargs="+", default=list(YS), help="the subspace dimensions (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="runs at the same time (default: %(default)s)")
    p.add_argument("--runs", type=Path, default=ROOT/"runs", help="the folder of study folders (default: %(default)s)")
    p.add_argument("--out", type=Path, default=ROOT/"reports"/"y-dose", help="where `publish` writes (default: %(default)s)")
    a = p.parse_args()
    run(a.ys, a.jobs, a.runs) if a.what == "run" else publish(a.ys, a.runs, a.out)
