"Packaging and command-line checks: the installed package, the `udt` command and the README."
import os, subprocess, sys
from pathlib import Path

import unified_delta_tuning as udt

ROOT = Path(__file__).resolve().parents[1]
UDT = Path(sys.executable).parent/"udt"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

def run(*args):
    return subprocess.run([str(UDT), *args], capture_output=True, text=True, env=ENV, timeout=300)

def test_version():
    assert udt.__version__.count(".") == 2

def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0 and "tasks" in r.stdout and "stage0" in r.stdout

def test_tasks_table():
    r = run("tasks", "mr", "sms")
    assert r.returncode == 0, r.stderr
    assert "mr" in r.stdout and "sms" in r.stdout

def test_unknown_task_is_a_clear_error():
    r = run("tasks", "no-such-task")
    assert r.returncode == 2
    assert "no-such-task" in r.stderr and "Traceback" not in r.stderr

def test_missing_model_folder_is_a_clear_error(tmp_path):
    r = run("stage0", "--task", "mr", "--backbone", str(tmp_path/"nothing"), "--quiet")
    assert r.returncode == 2 and "no model folder" in r.stderr and "Traceback" not in r.stderr

def test_readme_in_sync():
    r = subprocess.run([sys.executable, str(ROOT/"tools"/"readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_compare_results_finds_a_changed_score(tmp_path):
    "tools/compare_results.py, the before/after check of a refactoring, passes identical runs and flags a changed score."
    import shutil, pandas as pd
    a, b = tmp_path/"a", tmp_path/"b"
    for d in (a, b): shutil.copytree(ROOT/"tests"/"data"/"report-study", d)
    cmp = lambda: subprocess.run([sys.executable, str(ROOT/"tools"/"compare_results.py"), str(a), str(b)], capture_output=True, text=True, env=ENV)
    same = cmp()
    assert same.returncode == 0 and "0 values differ" in same.stdout, same.stdout + same.stderr
    res = pd.read_csv(b/"results.csv"); res.loc[res.test.notna().idxmax(), "test"] += 0.01; res.to_csv(b/"results.csv", index=False)
    changed = cmp()
    assert changed.returncode == 1 and "1 values differ" in changed.stdout, changed.stdout

def test_notebook_code_fits_120_columns():
    "Every code line of the library notebooks and of the step notebooks the package ships fits 120 characters."
    import json
    nbs = sorted((ROOT/"nbs").glob("*.ipynb")) + sorted((ROOT/"unified_delta_tuning"/"experiments").glob("*.ipynb"))
    long = [f"{nb.name}: {line[:60]}…" for nb in nbs
            for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if len(line) > 120]
    assert not long, f"{len(long)} code line(s) over 120 characters:\n" + "\n".join(long[:20])

def test_no_module_over_450_lines():
    "One idea per module: none of the package's modules (but nbdev's generated index) is over 450 lines."
    big = {p.name: n for p in (ROOT/"unified_delta_tuning").glob("*.py") if p.name != "_modidx.py"
           if (n := len(p.read_text().splitlines())) > 450}
    assert not big, f"split these by idea: {big}"
