"""The wheel runs a study on its own: built from the project, installed into a fresh virtualenv outside the checkout,
its `udt study run` runs the tiny study from another folder, with the step notebooks it ships (package data).

The virtualenv gets torch, transformers, papermill, ... from the project's environment through a `.pth` file (no
download, no reinstall); its own site-packages comes first, so `unified_delta_tuning` is the wheel's copy.
"""
import shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path

import pandas as pd
import pytest

from studies import ENV, ROOT, TINY

pytestmark = pytest.mark.install

def sh(*args, cwd, env=None, timeout=300):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    assert r.returncode == 0, f"{args}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout

def build_wheel(tmp:Path)->Path:
    "The project's wheel, built offline from a copy of its sources (so the checkout gets no build/ folder)."
    src = tmp/"src"; src.mkdir()
    shutil.copytree(ROOT/"unified_delta_tuning", src/"unified_delta_tuning", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", "README.md"): shutil.copy(ROOT/f, src/f)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", tmp/"dist", src, cwd=tmp)
    return next((tmp/"dist").glob("unified_delta_tuning-*.whl"))

def test_the_wheel_runs_a_study_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for nb in ("stage0", "stage1", "stage2", "landscape", "report"): assert f"unified_delta_tuning/experiments/{nb}.ipynb" in names, names

    venv = tmp_path/"venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    py = venv/"bin"/"python"
    site = Path(sh(py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path).strip())
    (site/"_project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")   # torch & co.; after the venv's own packages
    env = {k: v for k, v in ENV.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    sh(py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel, cwd=tmp_path, env=env)

    elsewhere = tmp_path/"elsewhere"; elsewhere.mkdir()
    where = sh(py, "-c", "import unified_delta_tuning as u, unified_delta_tuning.plan as p; print(u.__file__); print(p.experiments_dir())", cwd=elsewhere, env=env).split()
    assert all(Path(w).is_relative_to(site) for w in where) and not any(Path(w).is_relative_to(ROOT) for w in where), where

    (elsewhere/"tiny.toml").write_text(TINY)
    out = sh(venv/"bin"/"udt", "study", "run", "tiny.toml", "--jobs", "2", "--threads", "1", cwd=elsewhere, env=env, timeout=600)
    assert "7 done" in out, out
    res = pd.read_csv(elsewhere/"runs"/"tiny"/"results.csv")
    assert len(res) == 7 and (res.state == "done").all() and res.test.between(0, 1).all()
