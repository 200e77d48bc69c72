"""Runs in TensorBoard (issue 28, `05b_tracking`): every training run of a real tiny study (stage 0, 1 and 2 on a
random tiny BERT, through the real step notebooks) writes its curves as a TensorBoard event file in its own folder,
which TensorBoard's reader gives back equal to the run's `history.json`; the runner's checksums cover the file, and
the published small artefacts leave it out."""
import json, subprocess, sys

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="tensorboard is not installed: `pip install \"unified-delta-tuning[logging]\"`")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from studies import ENV, ROOT, TINY, UDT
from unified_delta_tuning.layout import run_state
from unified_delta_tuning.tracking import scalar_tag

def test_every_training_run_writes_its_curves_for_tensorboard(tmp_path):
    f = tmp_path/"tiny.toml"; f.write_text(TINY)
    r = subprocess.run([str(UDT), "study", "run", f, "--jobs", "2", "--threads", "1", "--runs", tmp_path/"runs"],
                       capture_output=True, text=True, env=ENV, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    folder = tmp_path/"runs"/"tiny"
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    assert {p.name[:2] for p in runs} == {"s0", "s1", "s2"} and len(runs) == 7
    for run in runs:
        events = list(run.glob("events.out.tfevents.*"))
        assert len(events) == 1, (run.name, sorted(p.name for p in run.iterdir()))
        done = json.loads((run/"done.json").read_text())
        assert events[0].name in done["sha256"] and run_state(run) == "done"       # checked like every other file of the run
        stage = json.loads((run/"params.json").read_text())["step"]
        history = json.loads((run/"history.json").read_text())
        acc = EventAccumulator(str(run)); acc.Reload()
        for key in history[0]:
            if key == "step": continue
            got = [(e.step, e.value) for e in acc.Scalars(scalar_tag(key, stage))]
            assert got == [(h["step"], np.float32(h[key])) for h in history], (run.name, key)
        tags = acc.Tags()["scalars"]
        assert f"{stage}/train/loss" in tags and f"{stage}/dev/score" in tags
        if stage == "stage1": assert {"stage1/dev/adapter", "stage1/dev/lora", "stage1/recon_error/adapter", "stage1/recon_error/lora"} <= set(tags), tags
        if stage == "stage2": assert any(t.startswith("stage2/dev/") and t != "stage2/dev/score" for t in tags), tags   # the target, decoded
    r = subprocess.run([sys.executable, "tools/small_artefacts.py", folder, tmp_path/"published"], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr
    published = [p.name for p in (tmp_path/"published").rglob("*") if p.is_file()]
    assert published and not [n for n in published if "tfevents" in n]
