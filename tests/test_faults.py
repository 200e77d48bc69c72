"""Faults: a study stopped by a signal, killed at random moments, or short of disk space.

- Ctrl-C (SIGINT) and SIGTERM stop `udt study run` within 10 s with 130 / 143, kill the kernels in flight (which run
  in their own session, so they never see the signal), leave those runs partial, release the lock, print the command
  that resumes, and the rerun resumes (fake step notebooks: a kernel that imports nothing heavy and waits).
- SIGKILL at three seeded random moments, each followed by a resume, ends with the same results (every column but
  timings, and every vector to the bit) as an uninterrupted run, with no kernel or temporary file left; the first
  run with one job, the others with two (the tiny study on a random tiny BERT: 7 runs).
- A full disk and a folder that cannot be written end in one paragraph, not a traceback; a run that fails while
  writing leaves `error.json` (or says that even that could not be written), and no further run starts.
"""
import errno, json, os, random, signal, subprocess, sys, time
from pathlib import Path

import psutil
import pytest

from studies import ENV, ROOT, TINY, UDT, fake_notebooks
from unified_delta_tuning import core, runner
from unified_delta_tuning.layout import DONE, ERROR
from unified_delta_tuning.layout import run_state
from unified_delta_tuning.runner import run_study, study_status
from unified_delta_tuning.study_errors import StudyError

def _procs_in(folder:Path)->list[psutil.Process]:
    "Live processes whose working directory is inside `folder` (a run's kernel starts in its run folder)."
    out, folder = [], str(folder.resolve())
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and (p.cwd() + "/").startswith(folder + "/"): out.append(p)
        except (psutil.Error, OSError): pass
    return out

def _wait_for(pred, timeout:float, step:float=0.1)->bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred(): return True
        time.sleep(step)
    return bool(pred())

def _start(*args)->subprocess.Popen:
    "`udt` in its own session, as a terminal's foreground job would be (the kernels start their own sessions)."
    return subprocess.Popen([str(UDT), *map(str, args)], env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)

def _temp_files(folder:Path)->list[Path]: return [p for p in folder.rglob("*.tmp")]

# ---------------------------------------------------------------------------------------------------------------
# SIGINT / SIGTERM, with fake step notebooks that wait while a file exists

@pytest.fixture
def waiting_study(tmp_path):
    "A fake study (7 runs) whose runs wait while `hold` exists."
    hold = tmp_path/"hold"
    nbs = fake_notebooks(tmp_path/"fake_nbs", first=f"while pathlib.Path({str(hold)!r}).exists(): time.sleep(0.1)\n")
    f = tmp_path/"fake.toml"
    f.write_text(TINY.replace('name = "tiny"', 'name = "fake"').replace('seeds = [42]', f'seeds = [42]\nnotebooks = "{nbs}"'))
    return f, tmp_path/"runs", hold

def _interrupt(p:subprocess.Popen, folder:Path, sig:int, n_flight:int, twice:bool=False)->tuple[int, str, float]:
    "Wait until `n_flight` kernels run in `folder`, send `sig` (twice: a second Ctrl-C), return (status, stderr, seconds to exit)."
    assert _wait_for(lambda: len(_procs_in(folder)) >= n_flight, 120), (p.poll(), p.stderr.read() if p.poll() is not None else "")
    t0 = time.time(); os.kill(p.pid, sig)
    if twice: time.sleep(0.2); p.poll() is None and os.kill(p.pid, sig)
    try: _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None: p.kill()
    return p.returncode, err, time.time() - t0

def test_sigint_and_sigterm_stop_the_study_and_the_rerun_resumes(waiting_study):
    f, runs, hold = waiting_study
    folder = runs/"fake"
    hold.touch()
    args = ("study", "run", f, "--jobs", "2", "--threads", "1", "--runs", runs)
    for sig, code, twice in ((signal.SIGINT, 130, False), (signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)):
        rc, err, secs = _interrupt(_start(*args), folder, sig, 2, twice)
        assert rc == code and secs < 10, (sig, rc, secs, err)
        if not twice:
            assert f"interrupted by {signal.Signals(sig).name}: stopped 2 run(s) in flight" in err and "Traceback" not in err, err
            assert f"to resume, run the same command again:\n  udt study run {f} --jobs 2" in err, err
        assert _wait_for(lambda: not _procs_in(folder), 5), _procs_in(folder)            # the kernels are gone
        states = {d.name: run_state(d) for d in folder.iterdir() if d.is_dir()}
        assert sorted(states.values()) == ["partial", "partial"], states                 # no done.json, no error.json
        assert not any((folder/d/ERROR).exists() for d in states)
        assert set(study_status(f, runs).state) == {"partial", "todo"}                    # the lock is released: not "running"
        assert not _temp_files(folder)
    hold.unlink()
    r = subprocess.run([str(UDT), *map(str, args)], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "7 runs, 0 already done, 7 to run" in r.stdout, r.stdout + r.stderr
    assert (study_status(f, runs).state == "done").all() and not _procs_in(folder) and not _temp_files(folder)

# ---------------------------------------------------------------------------------------------------------------
# SIGKILL at random moments, resumed: the same results as an uninterrupted run


def _run(study:Path, runs:Path, jobs:int)->subprocess.CompletedProcess:
    return subprocess.run([str(UDT), "study", "run", str(study), "--jobs", str(jobs), "--threads", "1", "--runs", str(runs)],
                          env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)

@pytest.fixture(scope="module")
def uninterrupted(tiny_local): return tiny_local   # conftest: one uninterrupted run of the tiny study for every test that compares with it

def test_sigkill_at_random_moments_then_resume_gives_the_same_results(uninterrupted, tmp_path):
    study = tmp_path/"tiny.toml"; study.write_text(TINY)
    runs, folder, rng = tmp_path/"runs", tmp_path/"runs"/"tiny", random.Random(0)
    for jobs in (1, 2):                                                                   # one job, then two
        p = _start("study", "run", study, "--jobs", jobs, "--threads", "1", "--runs", runs)
        try: p.wait(timeout=rng.uniform(3, 12))
        except subprocess.TimeoutExpired: pass
        p.kill(); p.communicate()                                                         # SIGKILL: no handler runs
        assert _wait_for(lambda: not _procs_in(tmp_path), 15), _procs_in(tmp_path)        # orphan kernels notice and exit
    r = _run(study, runs, 2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (study_status(study, runs).state == "done").all()
    cmp = subprocess.run([sys.executable, str(ROOT/"tools"/"compare_results.py"), str(uninterrupted), str(folder)],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert cmp.returncode == 0 and "7 runs" in cmp.stdout and "0 values differ" in cmp.stdout, cmp.stdout + cmp.stderr
    assert not _procs_in(tmp_path) and not _temp_files(runs)

# ---------------------------------------------------------------------------------------------------------------
# Disk errors: a full disk (ENOSPC injected at core.atomic_write, the write path) and a folder that cannot be written

@pytest.fixture
def fake_study(waiting_study):
    "The fake study, without waiting."
    return waiting_study[:2]

def _failing_writes(monkeypatch, code:int, when):
    "Make `atomic_write` fail with `code` for the paths `when(path)` selects (everywhere the runner and the kernels' parent write)."
    real = core.atomic_write
    def aw(path, data):
        if when(Path(path)): raise OSError(code, os.strerror(code), str(path))
        return real(path, data)
    monkeypatch.setattr(core, "atomic_write", aw); monkeypatch.setattr(runner, "atomic_write", aw)

def test_full_disk_before_the_study_starts_no_run(fake_study, monkeypatch):
    f, runs = fake_study
    _failing_writes(monkeypatch, errno.ENOSPC, lambda p: True)
    with pytest.raises(StudyError) as e: run_study(f, runs, log=lambda *a: None)
    msg = str(e.value)
    assert "cannot write" in msg and "study.toml" in msg and "No space left on device" in msg and "is full: free space on it" in msg, msg
    assert "\n" not in msg and not [p for p in (runs/"fake").iterdir() if p.is_dir()]    # one paragraph; no run started
    monkeypatch.setattr(runner, "MIN_FREE_MB", 10**12)                                    # the space is not there: refused first
    with pytest.raises(StudyError, match="MiB free, less than"): run_study(f, runs, log=lambda *a: None)

def test_full_disk_during_a_run_leaves_error_json_and_starts_no_more(fake_study, monkeypatch):
    f, runs = fake_study
    _failing_writes(monkeypatch, errno.ENOSPC, lambda p: p.name == DONE)                  # the first run fails writing its marker
    with pytest.raises(StudyError) as e: run_study(f, runs, log=lambda *a: None)
    msg = str(e.value)
    assert "failed writing to disk, so no further run was started (6 not started)" in msg and "done.json" in msg and "is full" in msg, msg
    [d] = [d for d in (runs/"fake").iterdir() if d.is_dir()]
    assert run_state(d) == "failed" and "No space left on device" in json.loads((d/ERROR).read_text())["message"]
    _failing_writes(monkeypatch, errno.ENOSPC, lambda p: p.name in (DONE, ERROR))           # even error.json cannot be written
    with pytest.raises(StudyError) as e: run_study(f, runs, log=lambda *a: None)
    assert "error.json could not be written either" in str(e.value) and run_state(d) == "partial", str(e.value)
    monkeypatch.undo()
    assert (run_study(f, runs, jobs=2, threads=1, log=lambda *a: None).state == "done").all()   # space again: it resumes

def test_read_only_runs_folder_gives_one_paragraph(fake_study, tmp_path, monkeypatch):
    f, _ = fake_study
    ro = tmp_path/"ro"; ro.mkdir(); ro.chmod(0o555)
    inject = os.geteuid() == 0 or os.access(ro, os.W_OK)                                 # root writes anyway: inject the error
    code = ("import errno, unified_delta_tuning.core as c, unified_delta_tuning.runner as r\n"
            "def aw(p, d): raise PermissionError(errno.EACCES, 'Permission denied', str(p))\n"
            "c.atomic_write = r.atomic_write = aw\n" if inject else "") + (
            f"from unified_delta_tuning.cli import main\nmain(['study', 'run', {str(f)!r}, '--runs', {str(ro)!r}])\n")
    r = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    ro.chmod(0o755)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line = r.stderr.strip()
    assert line.startswith("udt study: error: cannot run study 'fake': cannot write") and "\n" not in line, line
    assert "Permission denied" in line and "is not writable: make it writable" in line and "--runs" in line, line
    assert not [p for p in ro.rglob("*") if p.is_dir() and p.name != "fake"]                # no run started

# ---------------------------------------------------------------------------------------------------------------
# Issue 23: sources that cannot hang a dry run, label sets that cannot be classification tasks, and weak inputs

OWN = '''name = "{name}"
backbone = "tiny-bert"
methods = ["adapter", "lora"]
seeds = {seeds}

[tasks.mine]
source = "{source}"

[stage0]
steps = 2

[single_task.pairs]
{pairs}
'''

def _own_study(tmp_path, source, name="own", seeds="[42]", pairs='sms = ["mine"]'):
    f = tmp_path/f"{name[:40]}.toml"
    f.write_text(OWN.format(name=name, seeds=seeds, source=source, pairs=pairs))
    return f

def _udt(*args, timeout=60)->subprocess.CompletedProcess:
    return subprocess.run([str(UDT), *map(str, args)], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

def test_dry_run_refuses_a_pipe_a_device_and_a_loop_without_reading_them(tmp_path):
    os.mkfifo(tmp_path/"pipe.csv")                                                         # reading it would wait forever
    (tmp_path/"a.csv").symlink_to(tmp_path/"b.csv"); (tmp_path/"b.csv").symlink_to(tmp_path/"a.csv")
    for source, says in ((tmp_path/"pipe.csv", "pipe.csv is a named pipe (FIFO): reading it would wait for a writer, not a regular file"),
                         ("/dev/zero", "/dev/zero is a character device: reading it may never end, not a regular file"),
                         (tmp_path/"a.csv", "a.csv is a symbolic link loop"), (tmp_path, f"{tmp_path} is a folder")):
        r = _udt("study", "run", _own_study(tmp_path, source), "--dry-run", "--runs", tmp_path/"runs")   # (a hang times out)
        assert r.returncode == 2 and "missing inputs (1):" in r.stdout and says in r.stdout, (source, r.returncode, r.stdout[-800:], r.stderr[-800:])

def test_a_binary_study_file_a_study_link_loop_and_a_pipe_are_named(tmp_path):
    (tmp_path/"bin.toml").write_bytes(b"name = \"x\"\n\xff\xfe\x00binary")
    (tmp_path/"l1.toml").symlink_to(tmp_path/"l2.toml"); (tmp_path/"l2.toml").symlink_to(tmp_path/"l1.toml")
    os.mkfifo(tmp_path/"pipe.toml")
    for f, says in (("bin.toml", "bin.toml: byte 0xff at offset 11 is not UTF-8, so this is not a study file"),
                    ("l1.toml", "l1.toml is a symbolic link loop"), ("pipe.toml", "pipe.toml is a named pipe (FIFO)")):
        for cmd in (("study", "run", tmp_path/f, "--dry-run"), ("study", "status", tmp_path/f)):
            r = _udt(*cmd, "--runs", tmp_path/"runs")
            assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (cmd, r.stderr)

def test_a_label_set_that_cannot_be_classification_is_refused_at_load(tmp_path):
    import pandas as pd
    text = [f"row {i}" for i in range(20_000)]
    cases = {"classes.csv": ([f"c{i % 10_000}" for i in range(20_000)], "'label' has 10,000 classes in 20,000 examples, fewer than 3 examples per class: not a classification task to learn; merge classes"),
             "floats.csv": ([f"{(i * 0.37) % 5:.2f}" for i in range(200)], "'label' holds 200 distinct numbers such as 0.0, 0.12, 0.13: a continuous score, not classes; bin it"),
             "nan.csv": (["NaN" if i % 4 == 0 else "pos" if i % 2 else "neg" for i in range(200)], "'label' holds 50 missing-value label(s) ['NaN']")}
    for f, (labels, says) in cases.items():
        pd.DataFrame({"text": text[:len(labels)], "label": labels}).to_csv(tmp_path/f, index=False)
        r = _udt("study", "run", _own_study(tmp_path, tmp_path/f), "--dry-run", "--runs", tmp_path/"runs")
        assert r.returncode == 2 and "missing inputs (1):" in r.stdout and says in r.stdout, (f, r.stdout[-600:])

def test_custom_notebooks_are_said_and_enter_the_run_ids(waiting_study, tmp_path):
    f, runs, _ = waiting_study
    r = _udt("study", "run", f, "--dry-run", "--runs", runs)
    assert r.returncode == 0 and f"custom step notebooks: {tmp_path/'fake_nbs'} (`notebooks` in {f}), not the package's" in r.stdout, r.stdout[-800:]
    plain = tmp_path/"plain.toml"; plain.write_text(TINY.replace('name = "tiny"', 'name = "fake"'))
    ids = lambda study: set(study_status(study, runs).run)
    assert not ids(f) & ids(plain)                                                       # no run of one counts as done for the other
    assert "custom step notebooks" not in _udt("study", "run", plain, "--dry-run", "--runs", runs).stdout

def test_weak_inputs_are_refused_at_the_dry_run(tmp_path):
    f = tmp_path/"tiny.toml"
    for text, args, says in ((TINY.replace("seeds = [42]", "seeds = [99999999999999999999]"), (), "seed 99999999999999999999 is outside 0 ... 4294967295"),
                             (TINY.replace('sms = ["nyt"]', 'sms = ["sms"]'), (), "'sms' is held out from its own subspace"),
                             (TINY.replace('name = "tiny"', f'name = "{"n" * 300}"'), (), "a folder name holds at most 255"),
                             (TINY, ("--progress-every", "-1"), "--progress-every -1: give the seconds between progress lines, 0 or more")):
        f.write_text(text)
        r = _udt("study", "run", f, "--dry-run", "--runs", tmp_path/"runs", *args)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (says, r.stderr[-600:])
        assert not (tmp_path/"runs").exists()                                             # nothing written, plan.json included

def test_stage0_prints_error_lines_not_tracebacks(tmp_path):
    for args, says in ((("--seed", "-1"), "--seed -1 is outside 0 ... 4294967295"),
                       (("--lr", "1e9", "--optimizer", "adamw", "--steps", "20", "--methods", "lora"), "training diverged: the loss became nan")):
        r = _udt("stage0", "--task", "sms", "--quiet", "--out", tmp_path, *args, timeout=300)
        assert r.returncode == 2 and f"udt stage0: error: {says}" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-1500:])
