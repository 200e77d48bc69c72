"""A whole study under `precision = "bf16"` against the same study in float32: every score and the run time.

Issue 15: bf16 autocast stays off by default until its effect on the tables is measured. This runs one study file
(default: studies/quick.toml) twice under `--runs` (default: runs/), once as written and once with
`precision = "bf16"`, as two studies named `<name>-fp32` and `<name>-bf16` (bf16 runs have their own ids), one after
the other with the same jobs and threads. It then sets every test score of the two side by side (stage 0, θ_init,
stage 2 and the stage-3 transfers), the cells of the paper's tables, and the run time summed from each `results.csv`.
A finished study is not run again, so a second call only recomputes the comparison.

    PYTHONPATH=. python benchmarks/bf16_study.py [--study studies/quick.toml] [--runs runs] [--jobs 2]
"""
import argparse, datetime, json, os, platform, re, subprocess, tempfile
from pathlib import Path

import pandas as pd

from unified_delta_tuning.results import paper_tables, read_results, result_rows
from unified_delta_tuning.runner import run_study
from unified_delta_tuning.study import load_study


def variant(text:str, name:str, precision:str|None)->str:
    "The study's text under another name and, if given, with `precision` set."
    text = re.sub(r'^name\s*=.*$', f'name = "{name}"', text, count=1, flags=re.M)
    return (f'precision = "{precision}"\n' if precision else "") + text


def scores(folder:Path)->pd.Series:
    "Every test score of a finished study, labelled by stage, task, source and target."
    rows = result_rows(folder)
    rows = rows.assign(train_task=rows.train_task.fillna(""), setting=rows.setting.fillna(""),
                       subspace=rows.subspace.fillna("learned") if "subspace" in rows else "learned")
    rows.loc[rows.stage == 0, "subspace"] = ""
    return rows.set_index(["stage", "setting", "subspace", "train_task", "task", "source", "target"]).test.sort_index()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", default="studies/quick.toml"); p.add_argument("--runs", default="runs"); p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    a = p.parse_args(argv)
    src = Path(a.study).resolve(); base = load_study(src)
    folders, wall = {}, {}
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:   # beside the original, so its relative paths hold
        for precision in ("fp32", "bf16"):
            name = f"{base.name}-{precision}"
            f = Path(tmp)/f"{name}.toml"; f.write_text(variant(src.read_text(), name, None if precision == "fp32" else precision))
            run_study(f, runs_root=a.runs, jobs=a.jobs, threads=1, progress_every=None)
            folders[precision] = Path(a.runs)/name
    for k, folder in folders.items():
        res = read_results(folder); wall[k] = float(res[res.state == "done"].wall_time.sum())
    s = pd.DataFrame({k: scores(v) for k, v in folders.items()})
    s["bf16 - fp32"] = s.bf16 - s.fp32
    tables = {k: paper_tables(result_rows(v)) for k, v in folders.items()}
    cells = {n: {str(c): {str(i): v for i, v in col.items()} for c, col in (tables["bf16"][n] - tables["fp32"][n]).round(2).to_dict().items()}
             for n in tables["fp32"] if n in tables["bf16"]}   # relative-% points, per column and row
    out = {"benchmark": "bf16_study", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, jobs {a.jobs} × 1 thread", "study": str(a.study),
           "runs": {k: len(read_results(v)) for k, v in folders.items()},
           "run_time_s": wall, "run_time_ratio_bf16_to_fp32": wall["bf16"] / wall["fp32"],
           "scores": [{"stage": int(i[0]), "setting": i[1], "subspace": i[2], "train_task": i[3], "task": i[4], "source": i[5], "target": i[6],
                       "fp32": r.fp32, "bf16": r.bf16, "bf16_minus_fp32": r["bf16 - fp32"]} for i, r in s.iterrows()],
           "max_abs_score_difference": float(s["bf16 - fp32"].abs().max()), "mean_abs_score_difference": float(s["bf16 - fp32"].abs().mean()),
           "table_cells_bf16_minus_fp32": cells}
    Path(a.out).write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(s.round(4).to_string()); print(json.dumps({k: out[k] for k in ("run_time_s", "run_time_ratio_bf16_to_fp32", "max_abs_score_difference", "mean_abs_score_difference")}))
    return out


if __name__ == "__main__": main()
