"Two processes under `torchrun` (gloo on CPU) train stage 0 and stage 1 to the same tensors as one process with the same global batch."
import importlib.util, os, shutil, subprocess, sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, tmp):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]


def test_two_processes_equal_one(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun (installed with torch) is not on PATH"
    spec = importlib.util.spec_from_file_location("ddp_train", ROOT/"tests"/"ddp_train.py")
    ddp_train = importlib.util.module_from_spec(spec); spec.loader.exec_module(ddp_train)
    ddp_train.main(tmp_path/"one")   # one process: this one
    _run([torchrun, "--standalone", "--nproc-per-node", "2", str(ROOT/"tests"/"ddp_train.py"), str(tmp_path/"two")], tmp_path)
    one, two = (torch.load(tmp_path/d/"result.pt") for d in ("one", "two"))
    assert (one["world"], two["world"]) == (1, 2)
    for m, (init, theta) in one["stage0"].items():
        moved = (theta - init).abs().max()
        assert moved > 1e-2, (m, moved)   # training moved θ by far more than the tolerance below
        torch.testing.assert_close(two["stage0"][m][1], theta, rtol=0, atol=1e-3 * moved.item(), msg=m)
    assert one["stage1"].keys() == two["stage1"].keys()
    for k, v in one["stage1"].items():   # float rounding of the two summation orders, amplified a little by Adafactor's scaling
        torch.testing.assert_close(two["stage1"][k], v, rtol=0, atol=1e-3 * v.abs().max().item(), msg=k)


def test_a_stage0_run_under_torchrun_equals_the_same_training_in_one_process(tmp_path):
    "The runner's torchrun launcher (`udt study run --launcher torchrun --nproc 2`) on one stage-0 run of the tiny study."
    from unified_delta_tuning.core import load_tensors, read_json
    from unified_delta_tuning.plan import STEP_NOTEBOOKS, experiments_dir, plan_runs
    from unified_delta_tuning.layout import DONE, SOLUTION
    from unified_delta_tuning.execute import execute_run
    from unified_delta_tuning.runner import _kernel_env, _run_parameters
    from unified_delta_tuning.steps import step_backbone, step_specs, step_task, train_config
    from unified_delta_tuning.study import parse_study
    from unified_delta_tuning.train import train_delta
    study = parse_study((ROOT/"tests"/"data"/"tiny.toml").read_text())
    run = next(r for r in plan_runs(study) if r.step == "stage0" and r.params["method"] == "lora")
    folder, p = tmp_path/run.id, _run_parameters(study, run)
    res = execute_run({"id": run.id, "step": run.step, "params": run.params, "deps": list(run.deps)}, folder,
                      experiments_dir(study)/STEP_NOTEBOOKS[run.step], p, _kernel_env(1), 2)
    assert res["state"] == "done", (res, (folder/"kernel.log").read_text()[-3000:] if (folder/"kernel.log").exists() else "")
    assert not list(folder.glob(".rank*")) and not (folder/".parameters.json").exists()   # rank 0 wrote the run, nothing else is left
    assert {SOLUTION, "metrics.json", "run.ipynb"} <= set(read_json(folder/DONE)["files"])
    # the same training in this process, as the step notebook does it
    bb = step_backbone(p["backbone"], p["vocab"], p["task_specs"], p["split_seed"])
    spec = step_specs(bb.model, p["sizes"], [p["method"]], p["seed"])[p["method"]]
    one = train_delta(bb, step_task(p["task"], p["task_specs"], p["split_seed"], p["caps"]), spec, train_config(p["train"], p["seed"])).theta
    two = load_tensors(folder/SOLUTION)[0]["theta"]
    assert (one - spec.init).abs().max() > 1e-2   # trained: the comparison below is not between two copies of θ_init
    torch.testing.assert_close(two, one, rtol=0, atol=1e-4 * one.abs().max().item())


# ---------------------------------------------------------------------------------------------------------------
# The whole tiny study under `udt study run --launcher torchrun --nproc 2`, and stopping it

def _procs_in(folder:Path)->list[int]:
    "Live processes whose working directory is inside `folder` (torchrun, its ranks and their kernels start in a run folder)."
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if (os.readlink(d/"cwd") + "/").startswith(str(folder) + "/") and (d/"stat").read_text().rsplit(")", 1)[1].split()[0] != "Z": out.append(int(d.name))
        except (OSError, IndexError): pass
    return out

def _wait_for(pred, timeout:float)->bool:
    import time
    end = time.time() + timeout
    while time.time() < end:
        if pred(): return True
        time.sleep(0.1)
    return bool(pred())

def _udt_study(tmp_path, *extra):
    from studies import ENV, TINY, UDT
    study = tmp_path/"tiny.toml"; study.write_text(TINY)
    return [str(UDT), "study", "run", str(study), "--launcher", "torchrun", "--nproc", "2", "--threads", "1", "--runs", str(tmp_path/"runs"), *extra], ENV

def test_the_tiny_study_under_torchrun_runs_stage_1_and_2(tmp_path):
    "Stage 1 reads the stage-0 solutions through `../<run>/` paths, which rank 1 (in its scratch folder) reads made absolute."
    import pandas as pd
    cmd, env = _udt_study(tmp_path, "--jobs", "2", "--progress-every", "0")
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = pd.read_csv(tmp_path/"runs"/"tiny"/"results.csv")
    assert len(res) == 7 and (res.state == "done").all() and set(res.step) == {"stage0", "stage1", "stage2"}
    assert res[res.step == "stage2"].test.between(0, 1).all()
    assert not list((tmp_path/"runs").rglob(".rank*")) and not _procs_in(tmp_path)

def test_no_rank_outlives_a_stopped_or_killed_runner(tmp_path):
    "SIGTERM to `udt` (exit 143), then SIGKILL of its process group: each time every rank and kernel is gone within seconds."
    import signal
    cmd, env = _udt_study(tmp_path, "--only", "stage0")
    folder = (tmp_path/"runs"/"tiny").resolve()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:   # rank 1's kernel works in its scratch folder: torchrun, both ranks and their kernels are up
            assert _wait_for(lambda: any(_procs_in(d) for d in folder.glob("*/.rank1")), 120), (p.poll(), _procs_in(folder))
            os.killpg(p.pid, sig); p.communicate(timeout=30)
        finally:
            if p.poll() is None: p.kill()
        assert p.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL), (sig, p.returncode)
        assert _wait_for(lambda: not _procs_in(folder), 10), (sig, _procs_in(folder))
