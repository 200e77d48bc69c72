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
