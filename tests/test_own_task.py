"""A researcher's own task, end to end, and runs shared between studies.

1. `studies/own-task.toml` at tiny budgets: its `[tasks.genre]` (the CSV shipped in `studies/data/`) and its first
   single-task pair, with the tiny study's backbone and budgets (`tests/data/tiny.toml`): 7 runs through the real step
   notebooks; the results and the report's task table name the task `genre`, with what loading read and dropped.
2. Two studies that share a source task, through fast fake step notebooks (no torch in the kernel), stage 0 only:
   the second adds a held-out task and executes only that task's stage-0 runs (it copies the shared ones from the
   first), and `udt study status` says so. That every step can be reused is tested in `11a_reuse` (`reuse.reuse_runs`).
"""
import contextlib, io, json, re, tomllib
from pathlib import Path

import pandas as pd

from studies import ROOT, TINY, fake_notebooks
from unified_delta_tuning.cli import main
from unified_delta_tuning.layout import REUSED
from unified_delta_tuning.runner import run_study, study_status

OWN = (ROOT/"studies"/"own-task.toml").read_text()

def own_task_block()->str:
    "The `[tasks.genre]` table of studies/own-task.toml, as written."
    return re.search(r"^\[tasks\.genre\].*?(?=^\[)", OWN, re.S | re.M).group(0)

def test_own_task_study_runs_at_tiny_budgets(tmp_path):
    own = tomllib.loads(OWN)
    source, targets = next(iter(own["single_task"]["pairs"].items()))
    block = own_task_block().replace('source = "data/genre.csv"', f'source = "{ROOT/"studies"/"data"/"genre.csv"}"')
    study = tmp_path/"own-tiny.toml"
    study.write_text(TINY.replace('name = "tiny"', 'name = "own-tiny"').replace('sms = ["nyt"]', f"{source} = {json.dumps(targets)}")
                     .replace("[stage0]", block + "\n[stage0]"))
    t = run_study(study, tmp_path/"runs", jobs=2, threads=1, log=lambda s: None)
    folder = tmp_path/"runs"/"own-tiny"
    assert (t.state == "done").all(), t
    res = pd.read_csv(folder/"results.csv")
    assert len(res) == 7 and (res.state == "done").all(), res[["run_id", "state"]]
    s0 = res[(res.step == "stage0") & (res.task == "genre")]
    assert len(s0) == 2 and s0["task_load.rows"].eq(300).all() and s0.n_test.eq(32).all()   # tiny.toml caps test at 32
    assert res[res.step == "stage2"].task.eq("genre").all()
    log = (folder/s0.run_id.iloc[0]/"run.ipynb").read_text()
    assert "task 'genre': 300 rows read from" in log and "labels movie review" in log      # the step says what loading did
    from unified_delta_tuning.report import task_summary
    t = task_summary(folder)
    assert list(t.index) == [source, "genre"], t
    assert t.loc["genre", "rows read"] == 300 and t.loc["genre", "metric"] == "Classification-F1" and "movie review" in t.loc["genre", "labels"]
    assert 0 <= t.loc["genre", "majority"] <= 1 and 0 <= t.loc["genre", "θ_init (mean)"] <= 1

def test_a_second_study_reuses_the_shared_source_tasks_runs(tmp_path):
    nbs, runs = fake_notebooks(tmp_path/"nbs"), tmp_path/"runs"
    base = TINY.replace('"tiny-bert"', '"minilm"').replace("seeds = [42]", f'seeds = [42]\nnotebooks = "{nbs}"')   # no tiny vocabulary: runs read their own tasks only
    first, second = tmp_path/"first.toml", tmp_path/"second.toml"
    first.write_text(base.replace('name = "tiny"', 'name = "first"'))
    second.write_text(base.replace('name = "tiny"', 'name = "second"').replace('sms = ["nyt"]', 'sms = ["nyt", "mr"]'))   # one more held-out task
    run_study(first, runs, jobs=2, threads=1, only="stage0", log=lambda s: None)
    status = study_status(second, runs)
    ready = status[status.reused != ""]
    assert set(ready.task) == {"sms", "nyt"} and set(ready.step) == {"stage0"} and ready.reused.eq("ready in first/").all(), status
    log = []
    t = run_study(second, runs, jobs=2, threads=1, only="stage0", log=log.append)
    assert (t[t.step == "stage0"].state == "done").all()
    executed = [l.split()[2] for l in log if re.match(r"\s+\[\d+/\d+\] done", l)]   # runs whose notebook ran in a kernel
    reused = [l.split()[1] for l in log if l.strip().startswith("reused")]
    assert sorted(i.rsplit("-", 1)[0] for i in executed) == ["s0-mr-adapter-s42", "s0-mr-lora-s42"], executed   # the new task only
    assert not [i for i in executed if i.startswith("s0-sms-")]                    # the shared source task: no stage-0 run executed
    assert sorted(i.rsplit("-", 1)[0] for i in reused) == ["s0-nyt-adapter-s42", "s0-nyt-lora-s42", "s0-sms-adapter-s42", "s0-sms-lora-s42"], reused
    for i in reused:
        assert json.loads((runs/"second"/i/REUSED).read_text())["from"] == str((runs/"first"/i).resolve())
        assert (runs/"second"/i/"run.ipynb").stat().st_ino == (runs/"first"/i/"run.ipynb").stat().st_ino   # a hard-linked copy, not a rerun
    out = io.StringIO()
    with contextlib.redirect_stdout(out): main(["study", "status", str(second), "--runs", str(runs)])
    assert f"4 run(s) reused from other studies: 4 from {(runs/'first').resolve()}/" in out.getvalue(), out.getvalue()
