"""The tiny study on a Dask LocalCluster of two single-threaded worker processes (`12a_cluster`).

One study run on the cluster, with the worker that executes the first run killed (SIGKILL) while its kernel works:
the scheduler gives that run to a worker again, the study completes, no run is left partial, and every score and
every vector equals the local runner's (`tools/compare_results.py`: every results.csv column but timings, every
`.safetensors` file to the bit). And Ctrl-C stops the runs in flight on the workers, leaving them partial.
"""
import os, signal, subprocess, sys, threading, time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from studies import ENV, ROOT, TINY
from unified_delta_tuning.layout import run_state
from unified_delta_tuning.runner import run_study, study_status


def _kernels_in(folder:Path)->list[tuple[int, int, str]]:
    "(pid, parent pid, run folder) of the processes working in a run folder of `folder`."
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try: cwd = os.readlink(d/"cwd"); ppid = int((d/"stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError): continue
        if cwd.startswith(str(folder) + "/"): out.append((int(d.name), ppid, cwd))
    return out


def _kill_first_worker(folder:Path, killed:list, stop:threading.Event):
    "Once a run's kernel works in `folder`, SIGKILL the worker process that started it (the kernel's parent)."
    while not stop.is_set():
        for pid, ppid, cwd in _kernels_in(folder):
            if ppid not in (os.getpid(), 1):
                os.kill(ppid, signal.SIGKILL); killed.append((ppid, Path(cwd).name)); return
        time.sleep(0.05)


def test_tiny_study_on_a_local_cluster_survives_a_killed_worker_with_the_local_results(tiny_local, tmp_path):
    study = tmp_path/"tiny.toml"; study.write_text(TINY)

    folder, killed, stop, log = (tmp_path/"dask"/"tiny").resolve(), [], threading.Event(), []
    killer = threading.Thread(target=_kill_first_worker, args=(folder, killed, stop), daemon=True); killer.start()
    try: t = run_study(study, tmp_path/"dask", cluster="local:2", threads=1, progress_every=None, log=log.append)
    finally: stop.set(); killer.join(5)
    assert killed, "no worker was killed: the test did not test a lost worker"
    assert "Dask: 2 worker(s), 2 run(s) at once" in "\n".join(log), log
    assert (t.state == "done").all() and len(t) == 7, t
    assert {run_state(d) for d in folder.iterdir() if d.is_dir()} == {"done"}            # no partial run left
    assert (study_status(study, tmp_path/"dask").state == "done").all()
    assert not [p for p in _kernels_in(folder)]                                           # no kernel left behind
    cmp = subprocess.run([sys.executable, str(ROOT/"tools"/"compare_results.py"), str(tiny_local), str(folder)],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert cmp.returncode == 0 and "7 runs" in cmp.stdout and "0 values differ" in cmp.stdout, cmp.stdout + cmp.stderr
    assert "vectors: " in cmp.stdout and " bit-identical" in cmp.stdout, cmp.stdout


def test_sigint_stops_the_runs_on_the_workers_and_leaves_them_partial(tmp_path):
    "Ctrl-C of `udt study run --cluster local:2` (exit 130): the two runs in flight on the workers stop, partial, no kernel left."
    from studies import UDT
    study = tmp_path/"tiny.toml"; study.write_text(TINY); folder = (tmp_path/"runs"/"tiny").resolve()
    p = subprocess.Popen([str(UDT), "study", "run", str(study), "--cluster", "local:2", "--threads", "1", "--runs", "runs"], cwd=tmp_path,
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        end = time.time() + 120
        while len({cwd for _, _, cwd in _kernels_in(folder)}) < 2 and time.time() < end: time.sleep(0.1)
        assert len({cwd for _, _, cwd in _kernels_in(folder)}) == 2, (p.poll(), _kernels_in(folder))
        os.kill(p.pid, signal.SIGINT); _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == 130 and "stopped 2 run(s) in flight" in err, err[-2000:]
    end = time.time() + 10
    while _kernels_in(folder) and time.time() < end: time.sleep(0.1)
    assert not _kernels_in(folder)
    assert sorted(run_state(d) for d in folder.iterdir() if d.is_dir()) == ["partial", "partial"] and not list(folder.glob("*/error.json"))
