"""Studies end to end: study files, papermill runs that resume, failures that block only their dependants, results.

The runner's logic is tested with fast fake step notebooks (no torch in the kernel, ~2 s a run); the real pipeline
(stage 0 -> stage 1 -> stages 2-3 on a tiny random BERT, through the real step notebooks) is run once, killed midway,
resumed, partly corrupted and redone, which also checks that a run repeated with the same seed gives the same numbers.
"""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from unified_delta_tuning.study import (StudyError, collect_results, load_study, missing_inputs, parse_study, plan_runs,
                                        run_state, run_study, study_status)
from unified_delta_tuning.tasks import PAPER_MULTITASK_TEST_TASKS, PAPER_SINGLE_TASK_PAIRS, PAPER_TRAIN_TASKS

ROOT = Path(__file__).resolve().parents[1]
UDT = Path(sys.executable).parent/"udt"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

TINY = textwrap.dedent('''\
    name = "tiny"
    backbone = "tiny-bert"
    methods = ["adapter", "lora"]
    seeds = [42]

    [tasks]
    max_train = 64
    max_dev = 32
    max_test = 32

    [stage0]
    lr = 0.05
    batch_size = 8
    steps = 10
    eval_every = 5

    [stage1]
    lr = 0.01
    batch_size = 8
    steps = 6
    eval_every = 3
    n_points = 1

    [stage2]
    lrs = [0.05]
    batch_size = 8
    steps = 6
    eval_every = 3

    [single_task.pairs]
    sms = ["nyt"]
    ''')

def udt(*args, timeout=600):
    return subprocess.run([str(UDT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)

# ---------------------------------------------------------------------------------------------------------------
# Study files

def test_shipped_studies_are_valid_and_complete():
    plans = {n: plan_runs(load_study(ROOT/"studies"/f"{n}.toml")) for n in ("quick", "default", "paper")}
    count = lambda n, step: sum(r.step == step for r in plans[n])
    assert [count("default", s) for s in ("stage0", "stage1", "stage2", "landscape")] == [8 * 4, 3 + 1, (4 + 4) * 4, 1]   # A, L, P and F
    assert [count("quick", s) for s in ("stage0", "stage1", "stage2")] == [2 * 3, 1, 3]
    for n in ("quick", "default"): assert missing_inputs(load_study(ROOT/"studies"/f"{n}.toml")) == []
    default = load_study(ROOT/"studies"/"default.toml")
    assert default.single_task["pairs"] == {"tweets3": ["mr", "amazon"], "trec50": ["trec6"], "nyt": ["tweets"]}
    assert (default.multi_task["sources"], default.multi_task["targets"]) == (["tweets3", "trec50", "nyt", "sms"], ["mr", "amazon", "tweets", "trec6"])

def test_paper_study_follows_the_paper():
    paper = load_study(ROOT/"studies"/"paper.toml")
    assert sorted((s, t) for s, ts in paper.single_task["pairs"].items() for t in ts) == sorted(PAPER_SINGLE_TASK_PAIRS)
    assert sorted(paper.multi_task["sources"]) == sorted(PAPER_TRAIN_TASKS) and len(paper.multi_task["sources"]) == 60
    assert sorted(paper.multi_task["targets"]) == sorted(PAPER_MULTITASK_TEST_TASKS) and len(paper.multi_task["targets"]) == 9
    assert paper.sizes == "paper" and paper.stage_config("stage2", "single")["lrs"] == [1e-2, 5e-2]
    assert paper.stage_config("stage1", "single")["y"] == 4 and paper.stage_config("stage1", "multi")["y"] == 100

def test_paper_dry_run_lists_every_run_and_missing_input():
    r = udt("study", "run", "studies/paper.toml", "--dry-run")
    assert r.returncode == 0, r.stderr
    runs = plan_runs(load_study(ROOT/"studies"/"paper.toml"))
    assert all(run.id in r.stdout for run in runs)
    assert "286 runs (stage0: 219, stage1: 7, stage2: 60)" in r.stdout
    assert "paper.toml:8 (backbone): no model folder" in r.stdout and "(tasks.data_dir): no folder" in r.stdout

def test_missing_inputs_stop_the_run_before_it_starts(tmp_path):
    with pytest.raises(StudyError, match=r"cannot start 'paper': \d+ missing input\(s\):\n  .*paper.toml:8 \(backbone\): no model folder"):
        run_study(ROOT/"studies"/"paper.toml", tmp_path)
    assert list(tmp_path.iterdir()) == []

@pytest.mark.parametrize("change, message", [
    (("steps = 10", "steps = "), "bad.toml: not valid TOML: Invalid value (at line 14"),
    (("steps = 10", "step = 10"), "bad.toml:14 (stage0.step): unknown key `step`; did you mean `steps`?"),
    (('sms = ["nyt"]', 'sms = ["nytt"]'), "bad.toml:31 (single_task.pairs.sms): unknown task 'nytt'"),
    (('"lora"]', '"lora", "bitfit"]'), "bad.toml:3 (methods): unknown or repeated method(s) ['bitfit']"),
    (("batch_size = 8\nsteps = 6", "batch_size = 0\nsteps = 6"), "bad.toml:19 (stage1.batch_size): must be positive"),
    (("n_points = 1", "n_points = 1\nup = 'cubic'"), "bad.toml:17 (stage1): unknown up-projection 'cubic'"),
])
def test_bad_study_is_reported_with_line_and_fix(tmp_path, change, message):
    assert change[0] in TINY
    f = tmp_path/"bad.toml"; f.write_text(TINY.replace(*change))
    with pytest.raises(StudyError) as e: load_study(f)
    assert message in str(e.value), str(e.value)

def test_bad_study_stops_the_command(tmp_path):
    f = tmp_path/"bad.toml"; f.write_text(TINY.replace("steps = 10", "step = 10"))
    r = udt("study", "run", f, "--runs", tmp_path/"runs")
    assert r.returncode == 2 and "unknown key `step`" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path/"runs").exists()

def test_unknown_study_file_and_step():
    with pytest.raises(FileNotFoundError, match="no study file"): load_study(ROOT/"studies"/"nope.toml")
    with pytest.raises(StudyError, match="unknown step 'stage9'"): run_study(parse_study(TINY), only="stage9")

# ---------------------------------------------------------------------------------------------------------------
# The runner, with fake step notebooks: a kernel that imports nothing heavy

FAKE = '''\
import json, pathlib
if "nyt" in [globals().get("task"), *globals().get("tasks", [])]: raise ValueError("fake failure on nyt")
out = {"stage0": "solution.safetensors", "stage1": "subspace.safetensors", "stage2": "code.safetensors"}["{step}"]
pathlib.Path(out).write_bytes(b"x" * 100)
pathlib.Path("metrics.json").write_text(json.dumps({"test": 0.5, "seed": seed}))
'''

@pytest.fixture
def fake_study(tmp_path):
    nbs = tmp_path/"fake_nbs"; nbs.mkdir()
    for step in ("stage0", "stage1", "stage2"):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
        nb.cells = [nbformat.v4.new_code_cell("run_dir = None\nseed = 0", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(FAKE.replace("{step}", step))]
        nbformat.write(nb, nbs/f"{step}.ipynb")
    text = TINY.replace('name = "tiny"', 'name = "fake"').replace('seeds = [42]', f'seeds = [42]\nnotebooks = "{nbs}"').replace('sms = ["nyt"]', 'sms = ["mr"]\nnyt = ["tweets"]')
    f = tmp_path/"fake.toml"; f.write_text(text)
    return f, tmp_path/"runs"

def test_runner_failures_blocking_partial_corrupt_and_only(fake_study):
    f, runs = fake_study
    log = []
    t = run_study(f, runs, only="stage1", log=log.append)            # stage 1 needs stage 0 first: nothing runs
    assert (t[t.step == "stage1"].state == "blocked").all() and "blocked  s1-single-sms" in "\n".join(log), log
    assert not [p for p in (runs/"fake").iterdir() if p.is_dir()]

    r = udt("study", "run", f, "--jobs", "2", "--threads", "1", "--runs", runs)
    assert r.returncode == 1 and "5 run(s) did not finish" in r.stderr and "fake failure on nyt" in r.stderr, r.stdout + r.stderr
    t = study_status(f, runs)
    states = {(row.step, row.setting, row.task): row.state for row in t.itertuples()}
    assert states[("stage0", "", "nyt")] == "failed" and states[("stage0", "", "sms")] == "done"
    assert states[("stage1", "single", "nyt")] == "blocked" and states[("stage1", "single", "sms")] == "done"
    assert states[("stage2", "single", "tweets")] == "blocked" and states[("stage2", "single", "mr")] == "done"
    folder = runs/"fake"
    failed = next(p for p in folder.iterdir() if run_state(p) == "failed")
    err = json.loads((failed/"error.json").read_text())
    assert err["message"] == "ValueError: fake failure on nyt" and "ValueError" in err["traceback"]
    assert (failed/"run.ipynb").exists()   # the executed notebook shows where it failed
    res = pd.read_csv(folder/"results.csv")
    assert len(res) == len(list(folder.glob("*/params.json"))) == 4 * 2 + 1 + 2   # blocked runs have no folder
    assert set(res.state) == {"done", "failed"} and res[res.state == "failed"].error.str.contains("fake failure").all()
    assert {"train.lr", "caps.max_dev", "wall_time", "git_commit", "version.torch"} <= set(res.columns)

    marks = {p.name: (p/"done.json").stat().st_mtime_ns for p in folder.iterdir() if run_state(p) == "done"}
    s0, s2 = (next(folder/k for k in marks if k.startswith(pre)) for pre in ("s0-sms-lora", "s2-single-sms-mr-adapter"))
    (s0/"solution.safetensors").write_bytes(b"x" * 10)                 # truncated artefact: corrupt
    (s2/"done.json").unlink()                                         # marker missing: partial
    assert (run_state(s0), run_state(s2)) == ("corrupt", "partial")
    log = []
    t = run_study(f, runs, jobs=2, threads=1, log=log.append)
    assert "14 runs, 7 already done, 7 to run" in log[0], log         # failed runs are tried again
    again = {k: (folder/k/"done.json").stat().st_mtime_ns for k in marks}
    assert {k for k in marks if marks[k] != again[k]} == {s0.name, s2.name} and (run_state(s0), run_state(s2)) == ("done", "done")
    assert t.state.value_counts().to_dict() == {"done": 9, "blocked": 3, "failed": 2}
    assert _kernels_left() == []                                      # every run's kernel was shut down

# ---------------------------------------------------------------------------------------------------------------
# The real pipeline on a tiny model: killed midway, resumed, corrupted, redone

def _kernels_left()->list[str]:
    "Kernel processes this test process started and left behind."
    kids = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
    return [k for k in kids if "ipykernel" in Path(f"/proc/{k}/cmdline").read_text(errors="ignore")] if Path("/proc").is_dir() else []

def _wait_for(pred, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if pred(): return True
        time.sleep(0.2)
    return False

def test_pipeline_end_to_end_resumes_and_repeats(tmp_path):
    study = tmp_path/"tiny.toml"; study.write_text(TINY)
    runs, folder = tmp_path/"runs", tmp_path/"runs"/"tiny"
    p = subprocess.Popen([str(UDT), "study", "run", str(study), "--jobs", "2", "--threads", "1", "--runs", str(runs)],
                         env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    states = lambda: [run_state(d) for d in folder.iterdir()] if folder.is_dir() else []
    try:
        assert _wait_for(lambda: "done" in states() and "partial" in states()), states()
        assert "running" in set(study_status(study, runs).state)              # a live runner holds the study
        with pytest.raises(StudyError, match="is being run by pid"): run_study(study, runs)
    finally: os.killpg(p.pid, signal.SIGKILL); p.wait()
    killed = {d.name: (d/"done.json").stat().st_mtime_ns for d in folder.iterdir() if run_state(d) == "done"}
    assert killed and "partial" in states()

    log = []
    t = run_study(study, runs, jobs=2, threads=1, log=log.append)
    assert f"7 runs, {len(killed)} already done, {7 - len(killed)} to run" in log[0], log
    assert all((folder/k/"done.json").stat().st_mtime_ns == m for k, m in killed.items())   # nothing finished was redone
    t = study_status(study, runs)
    assert (t.state == "done").all() and len(t) == 7
    res = pd.read_csv(folder/"results.csv")
    assert len(res) == 7 and (res.state == "done").all() and res.test.between(0, 1).all()
    assert res.current.all() and sorted(json.loads((folder/"plan.json").read_text())["runs"]) == sorted(res.run_id)   # the plan it ran

    s2 = folder/t[t.step == "stage2"].run.iloc[0]
    before = json.loads((s2/"metrics.json").read_text()), json.loads((s2/"rows.json").read_text())
    (s2/"metrics.json").write_text('{"dev": 0.')                          # corrupt: unreadable metrics
    log = []
    assert (run_study(study, runs, threads=1, log=log.append).state == "done").all()
    assert "6 already done, 1 to run" in log[0], log
    after = json.loads((s2/"metrics.json").read_text()), json.loads((s2/"rows.json").read_text())
    drop = lambda m: {k: v for k, v in m.items() if k != "train_time"}
    assert drop(after[0]) == drop(before[0]) and after[1] == before[1]     # same seed, same numbers, to the last bit

    r = udt("report", study, "--runs", runs)
    assert r.returncode == 0 and "Table 1" in r.stdout and "Table 2" in r.stdout and "A→L" in r.stdout, r.stdout + r.stderr
