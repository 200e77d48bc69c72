"Shared pytest fixtures: the package's tiny test models (`backbones`), so notebooks and tests build the same ones."
import pytest

from unified_delta_tuning.backbones import load_backbone, random_bert, random_t5


@pytest.fixture(scope="module")
def t5_model():
    "A frozen tiny random T5 (64 token ids, weights N(0, 0.5²)), as in `04_deltas`."
    return random_t5()


@pytest.fixture(scope="module")
def bert_model():
    "A frozen tiny random BERT (64 token ids), as in `04_deltas`."
    return random_bert()


@pytest.fixture(scope="session")
def minilm():
    "The packaged all-MiniLM-L6-v2 as a frozen `Backbone`."
    return load_backbone("minilm")


@pytest.fixture(scope="session")
def tiny_local(tmp_path_factory):
    "The tiny study run once by the local runner (`udt study run --jobs 2 --threads 1`): its folder, the reference other ways of running it must match."
    import subprocess
    from studies import ENV, ROOT, TINY, UDT
    d = tmp_path_factory.mktemp("tiny-local"); study = d/"tiny.toml"; study.write_text(TINY)
    r = subprocess.run([str(UDT), "study", "run", str(study), "--jobs", "2", "--threads", "1", "--runs", str(d/"runs")],
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return d/"runs"/"tiny"
