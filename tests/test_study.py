"""Studies end to end: the study command, papermill runs that resume, failures that block only their dependants, results.

The runner's logic is tested with fast fake step notebooks (no torch in the kernel, ~2 s a run); the real pipeline
(stage 0 -> stage 1 -> stages 2-3 on a tiny random BERT, through the real step notebooks) is run once, killed midway,
resumed, partly corrupted and redone, which also checks that a run repeated with the same seed gives the same numbers.
The study file's checks, the plan and the run states are unit-tested in the notebooks (`10a_study_checks`, `11_plan`, `14_results`).
"""
import json, os, signal, subprocess, time
from pathlib import Path

import pandas as pd
import pytest

from studies import ENV, ROOT, TINY, UDT, fake_notebooks
from unified_delta_tuning.plan import plan_runs
from unified_delta_tuning.layout import run_state
from unified_delta_tuning.runner import run_study, study_status
from unified_delta_tuning.study import load_study
from unified_delta_tuning.study_errors import StudyError

def udt(*args, timeout=600):
    return subprocess.run([str(UDT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)

# ---------------------------------------------------------------------------------------------------------------
# The study command

def test_paper_dry_run_lists_every_run_and_missing_input():
    r = udt("study", "run", "studies/paper.toml", "--dry-run")   # the weights and data are not on this machine: listed, and exit 2 as the real run would
    assert r.returncode == 2 and "2 missing input(s), listed above" in r.stderr, r.stderr
    runs = plan_runs(load_study(ROOT/"studies"/"paper.toml"))
    assert all(run.id in r.stdout for run in runs)
    assert "286 runs (stage0: 219, stage1: 7, stage2: 60)" in r.stdout
    assert "paper.toml:8 (backbone): no model folder" in r.stdout and "(tasks.data_dir): no folder" in r.stdout


def test_bad_study_stops_the_command(tmp_path):
    f = tmp_path/"bad.toml"; f.write_text(TINY.replace("steps = 10", "step = 10"))
    r = udt("study", "run", f, "--runs", tmp_path/"runs")
    assert r.returncode == 2 and "unknown key `step`" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path/"runs").exists()
    f.write_text(TINY.replace('name = "tiny"', 'name = ".."'))                      # a name that would leave --runs
    r = udt("study", "run", f, "--runs", tmp_path/"runs")
    assert r.returncode == 2 and "(name): must not start with '.'" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]               # nothing written, inside or out
    (tmp_path/"empty").mkdir()                                                      # `udt report` on an empty study folder
    r = udt("report", tmp_path/"empty")
    assert r.returncode == 2 and "holds no run folders" in r.stderr and "udt study run" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path/"empty"/"results.csv").exists()

def test_divergence_fails_the_run(tmp_path):
    f = tmp_path/"tiny.toml"; f.write_text(TINY.replace("lr = 0.05\n", 'lr = 1e9\noptimizer = "adamw"\n', 1))   # stage 0 only
    r = udt("study", "run", f, "--only", "stage0", "--jobs", "2", "--threads", "1", "--runs", tmp_path/"runs")
    assert r.returncode == 1, r.stdout + r.stderr
    errors = {e.parent: json.loads(e.read_text())["message"] for e in (tmp_path/"runs"/"tiny").glob("s0-*/error.json")}
    # 3 of the 4 reach a NaN loss; the fourth (sms, adapter) plateaus at ln 2, which no rule catches yet
    assert len(errors) >= 3 and all("training diverged" in m and "lower the learning rate (`lr`, now 1e+09" in m for m in errors.values()), errors
    assert all(run_state(d) == "failed" and not (d/"done.json").exists() for d in errors)   # nothing downstream can use them

# ---------------------------------------------------------------------------------------------------------------
# The runner, with fake step notebooks: a kernel that imports nothing heavy

@pytest.fixture
def fake_study(tmp_path):
    nbs = fake_notebooks(tmp_path/"fake_nbs", first='if "nyt" in [globals().get("task"), *globals().get("tasks", [])]: raise ValueError("fake failure on nyt")\n')
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
    s0b = next(folder/k for k in marks if k.startswith("s0-sms-adapter"))
    b = bytearray((s0b/"solution.safetensors").read_bytes()); b[50] ^= 1
    (s0b/"solution.safetensors").write_bytes(bytes(b))                # a byte changed, same size: corrupt (sha256 in done.json)
    assert (run_state(s0), run_state(s2), run_state(s0b)) == ("corrupt", "partial", "corrupt")
    log = []
    t = run_study(f, runs, jobs=2, threads=1, log=log.append)
    assert "14 runs, 6 already done, 8 to run" in log[0], log         # failed runs are tried again
    again = {k: (folder/k/"done.json").stat().st_mtime_ns for k in marks}
    assert {k for k in marks if marks[k] != again[k]} == {s0.name, s2.name, s0b.name} and (run_state(s0), run_state(s2)) == ("done", "done")
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
    t = run_study(study, runs, jobs=2, threads=1, log=log.append, progress_every=1)
    assert f"7 runs, {len(killed)} already done, {7 - len(killed)} to run" in log[0], log
    assert any(l.startswith("  running ") for l in log), log                  # a progress line per run in flight
    assert f"now, {len(killed)} reused (done before); run time" in log[-1], log[-1]   # the summary
    assert all((folder/k/"done.json").stat().st_mtime_ns == m for k, m in killed.items())   # nothing finished was redone
    t = study_status(study, runs)
    assert (t.state == "done").all() and len(t) == 7
    res = pd.read_csv(folder/"results.csv")
    assert len(res) == 7 and (res.state == "done").all() and res.test.between(0, 1).all()
    assert res.current.all() and sorted(json.loads((folder/"plan.json").read_text())["runs"]) == sorted(res.run_id)   # the plan it ran
    s0 = folder/t[t.step == "stage0"].run.iloc[0]   # provenance: the kernel's threads, the same in done.json and in the solution's sidecar
    assert json.loads((s0/"done.json").read_text())["device"] == json.loads((s0/"solution.json").read_text())["device"]
    assert not list(folder.glob("*/progress.json"))                        # only while a run is in flight

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

def test_shards_run_apart_and_add_up(fake_study, tmp_path):
    from unified_delta_tuning.results import publish_runs, read_results, seed_coverage
    f, runs = fake_study
    f.write_text(f.read_text().replace("seeds = [42]", "seeds = [42, 43]").replace('nyt = ["tweets"]\n', ""))   # one pair, two seeds
    r = udt("study", "run", f, "--seeds", "44", "--runs", runs)
    assert r.returncode == 2 and "seed 44 is not a seed of this study (42, 43)" in r.stderr, r.stderr
    log = []
    t = run_study(f, runs, jobs=2, threads=1, seeds=[43], log=log.append)        # machine A: seed 43's chain only
    assert "14 runs" not in log[0] and "7 runs of seed(s) 43 (7 of its 14)" in log[0], log[0]
    assert set(t[t.seed == 43].state) == {"done"} and set(t[t.seed == 42].state) == {"todo"}
    assert len(json.loads((runs/"fake"/"plan.json").read_text())["runs"]) == 14  # the plan is the whole study's
    r = udt("study", "status", f, "--runs", runs)
    assert "by seed (runs done of the seed's runs): 42 0/7, 43 7/7" in r.stdout, r.stdout
    other = tmp_path/"machine-b"
    run_study(f, other, jobs=2, threads=1, seeds=[42], log=lambda *a: None)     # machine B: seed 42's
    pub = tmp_path/"reports"/"fake"
    assert publish_runs(runs/"fake", pub)["copied"] == 7 and not seed_coverage(pub).complete.all()
    assert publish_runs(other/"fake", pub)["kept"] == 7 and seed_coverage(pub).complete.all()
    run_study(f, tmp_path/"all", jobs=2, threads=1, log=lambda *a: None)        # the whole study at once, for comparison
    merged, whole = (read_results(p).set_index("run_id").sort_index() for p in (pub, tmp_path/"all"/"fake"))
    assert merged.index.tolist() == whole.index.tolist() and set(merged.state) == {"published"}
    assert merged["metrics.seed"].tolist() == whole["metrics.seed"].tolist() == merged.seed.tolist()
    assert not list(pub.glob("*/*.safetensors")) and not list(pub.glob("*/run.ipynb"))
