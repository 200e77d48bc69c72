"""`udt study run STUDY --set KEY=VALUE` (issue 28): a tiny study run, then run again with overrides, gets new runs exactly
where a changed setting changes what a run computes, and reuses the others. The step notebooks are fakes that import
nothing heavy (as in `test_study.py`), since only the runner's bookkeeping is under test; `10_study` tests the
parsing and the checks of the overrides, `16_cli` the options."""
import subprocess

from studies import ENV, ROOT, TINY, UDT, fake_notebooks
from unified_delta_tuning.plan import plan_runs
from unified_delta_tuning.study import load_study

def udt(*args):
    return subprocess.run([str(UDT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=600, cwd=ROOT)

def _fake_study(tmp_path):
    nbs = fake_notebooks(tmp_path/"nbs")
    f = tmp_path/"tiny.toml"; f.write_text(TINY.replace("seeds = [42]", f'seeds = [42]\nnotebooks = "{nbs}"'))
    return f

def test_overrides_make_new_runs_exactly_where_they_change_a_setting(tmp_path):
    f, runs = _fake_study(tmp_path), tmp_path/"runs"
    folder = runs/"tiny"
    r = udt("study", "run", f, "--jobs", "2", "--threads", "1", "--runs", runs)
    assert r.returncode == 0, r.stdout + r.stderr
    before = {p.name for p in folder.iterdir() if p.is_dir()}
    assert len(before) == 7
    r = udt("study", "run", f, "--jobs", "2", "--threads", "1", "--runs", runs, "--set", "stage2.steps=4")
    assert r.returncode == 0 and "7 runs, 5 already done, 2 to run" in r.stdout, r.stdout + r.stderr
    new = {p.name for p in folder.iterdir() if p.is_dir()} - before
    assert {n.split("-")[0] for n in new} == {"s2"} and len(new) == 2                       # stage 2 only: stages 0 and 1 are reused
    assert new == {run.id for run in plan_runs(load_study(f, ["stage2.steps=4"])) if run.step == "stage2"}
    assert "steps = 4" in (folder/"study.toml").read_text()                                 # the study as run: with its override
    r = udt("study", "status", f, "--runs", runs, "--set", "stage1.steps=4", "--set", "seeds=[42,43]")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.split()[:1] in (["stage0"], ["stage1"], ["stage2"])]
    assert len(rows) == 14                                                                  # a second seed: a second chain
    done = {row[1] for row in rows if "done" in row}
    assert done == {n for n in before if n.startswith("s0-")}, done                         # stage 1 changed: only seed 42's stage 0 is done
    r = udt("study", "run", f, "--runs", runs, "--set", "stage2.steps=0")
    assert r.returncode == 2 and f"{f} with --set stage2.steps=0 (stage2.steps): must be positive, got 0" in r.stderr, r.stderr
    r = udt("study", "run", f, "--runs", runs, "--set", "seeds=[42,")
    assert r.returncode == 2 and "--set seeds=[42,: '[42,' is not a TOML value" in r.stderr, r.stderr
