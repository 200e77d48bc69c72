"""A model and a dataset by name from a Hugging Face cache, with no network (`00b_hub`, `03_backbones`, `01_tasks`, `11_plan`, `11c_inputs`).

The cache is a folder in the hub's layout (`$HF_HOME/hub/models--org--name/{refs,snapshots,blobs}`) built with
`hub.add_to_cache` from a tiny random BERT saved with `save_pretrained` and from the offline `nyt` task written as CSV
files; `HF_HOME` points at it and the Hugging Face offline variables are set, so nothing can come from the network.
Then: both load by name and equal what went in; a tiny study whose backbone and held-out task are names runs end to
end through the real step notebooks; and a cache that lacks them gives the error that names the cache folder.
"""
import subprocess

import pandas as pd
import pytest
import torch

from studies import ENV, ROOT, TINY, UDT
from unified_delta_tuning.backbones import load_backbone, tiny_bert
from unified_delta_tuning.hub import add_to_cache
from unified_delta_tuning.plan import plan_runs
from unified_delta_tuning.runner import run_study
from unified_delta_tuning.study import load_study
from unified_delta_tuning.examples import SPLITS
from unified_delta_tuning.tasks import load_task

MODEL, DATASET = "acme/tiny-bert", "acme/nyt"
TEXTS = ["a witty film", "a dull mess", "the market fell", "the team won"]

@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    "An HF_HOME whose hub cache holds MODEL (a tiny random BERT) and DATASET (the offline nyt task's splits as CSV files)."
    d = tmp_path_factory.mktemp("hf"); home = d/"home"
    bert = tiny_bert(TEXTS)
    bert.model.save_pretrained(d/"model"); bert.tokenizer.save_pretrained(d/"model")
    nyt = load_task("nyt")
    (d/"data").mkdir()
    for ours, theirs in zip(SPLITS, ("train", "validation", "test")):
        pd.DataFrame({"sentence": [x.text for x in nyt.split(ours)], "topic": [x.answers[0] for x in nyt.split(ours)]}).to_csv(d/"data"/f"{theirs}.csv", index=False)
    mp = pytest.MonkeyPatch(); mp.setenv("HF_HOME", str(home)); mp.delenv("HF_HUB_CACHE", raising=False); mp.delenv("HF_DATASETS_CACHE", raising=False)
    revs = {MODEL: add_to_cache(d/"model", MODEL), DATASET: add_to_cache(d/"data", DATASET, "dataset")}
    yield home, bert, nyt, revs
    mp.undo()

def test_model_and_dataset_load_by_name_from_the_cache(hf_home):
    home, bert, nyt, revs = hf_home
    assert ENV["HF_HUB_OFFLINE"] == "1" and (home/"hub"/"models--acme--tiny-bert"/"refs"/"main").read_text() == revs[MODEL]
    named = load_backbone(MODEL)
    assert named.name == MODEL and named.family == "bert"
    assert all(torch.equal(a, b) for a, b in zip(bert.model.state_dict().values(), named.model.state_dict().values()))
    assert named.tokenizer("the team won").input_ids == bert.tokenizer("the team won").input_ids
    task = load_task("nyt-hub", spec={"dataset": DATASET, "text_col": "sentence", "label_col": "topic"})
    for s in SPLITS: assert task.split(s) == nyt.split(s), s     # the same examples, in the same splits
    assert task.labels == sorted(nyt.labels) and task.source == f"{DATASET} (Hugging Face cache, revision {revs[DATASET][:12]})"
    cut = load_task("nyt-hub", spec={"dataset": DATASET, "text_col": "sentence", "label_col": "topic",
                                     "split": {"train": "train[:40]", "dev": "validation", "test": "test"}})
    assert cut.train == nyt.train[:40] and cut.test == nyt.test

def test_a_missing_name_is_named_with_the_cache_and_the_fix(hf_home, tmp_path, monkeypatch):
    home = hf_home[0]
    with pytest.raises(FileNotFoundError, match=f"no model 'acme/absent' in the Hugging Face cache {home/'hub'}.*hf download acme/absent"):
        load_backbone("acme/absent")
    with pytest.raises(FileNotFoundError, match=f"no dataset 'acme/absent' in the Hugging Face cache {home/'hub'}.*--repo-type dataset"):
        load_task("x", spec={"dataset": "acme/absent"})
    empty = tmp_path/"empty-home"; empty.mkdir()                       # the same study on a machine whose cache lacks both
    study = tmp_path/"named.toml"
    study.write_text(TINY.replace('backbone = "tiny-bert"', f'backbone = "{MODEL}"').replace('sms = ["nyt"]', 'sms = ["nyt-hub"]')
                     + f'\n[tasks.nyt-hub]\ndataset = "{DATASET}"\ntext_col = "sentence"\nlabel_col = "topic"\n')
    r = subprocess.run([str(UDT), "study", "run", str(study), "--dry-run", "--runs", str(tmp_path/"runs")], capture_output=True, text=True,
                       env={**ENV, "HF_HOME": str(empty)}, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "2 missing input(s), listed above" in r.stderr, r.stdout + r.stderr
    assert f"named.toml:2 (backbone): no model folder at {tmp_path/'acme'/'tiny-bert'} (config.json missing), and no model '{MODEL}' " \
           f"in the Hugging Face cache {empty/'hub'}" in r.stdout, r.stdout
    assert f"(tasks.nyt-hub): no dataset '{DATASET}' in the Hugging Face cache {empty/'hub'}" in r.stdout, r.stdout
    assert not (tmp_path/"runs").exists()

def test_a_study_by_name_runs_and_its_ids_follow_the_revision(hf_home, tmp_path):
    revs = hf_home[3]
    study = tmp_path/"named.toml"
    study.write_text(TINY.replace('name = "tiny"', 'name = "named"').replace('backbone = "tiny-bert"', f'backbone = "{MODEL}"')
                     .replace('sms = ["nyt"]', 'sms = ["nyt-hub"]')
                     + f'\n[tasks.nyt-hub]\ndataset = "{DATASET}"\ntext_col = "sentence"\nlabel_col = "topic"\n')
    runs = plan_runs(load_study(study))
    assert {r.params["backbone_revision"] for r in runs} == {revs[MODEL]} and {r.params["backbone"] for r in runs} == {MODEL}
    t = run_study(study, tmp_path/"runs", jobs=2, threads=1, only="stage0", log=lambda s: None)   # stage 0: where a run loads both by name
    assert (t[t.step == "stage0"].state == "done").all(), t
    res = pd.read_csv(tmp_path/"runs"/"named"/"results.csv")
    res = res[res.state == "done"]
    assert len(res) == 4 and set(res.backbone) == {MODEL} and set(res.task) == {"sms", "nyt-hub"} and res.n_test.eq(32).all(), res
    log = (tmp_path/"runs"/"named"/res[res.task == "nyt-hub"].run_id.iloc[0]/"run.ipynb").read_text()
    assert "task 'nyt-hub'" in log and f"{DATASET} (Hugging Face cache, revision {revs[DATASET][:12]})" in log   # what the step loaded
