"End-to-end checks of the delta methods: the real packaged MiniLM, and a saved vector (unit tests live in nbs/03a_methods and nbs/04_deltas)."
import pytest
import torch

from unified_delta_tuning.core import load_tensors, save_tensors
from unified_delta_tuning.deltas import METHODS, check_theta, delta_size, delta_spec, equal_sizes, use_delta


def _batch(bb):
    enc = bb.tokenizer(["a gorgeous , witty film", "a dull and tedious mess that never ends"], padding=True, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask")}


def test_methods_on_minilm_batched_and_restored(minilm):
    model, x = minilm.model, _batch(minilm)
    sizes = equal_sizes(model)
    assert len({delta_size(model, m, **sizes[m]) for m in METHODS}) == 1
    bare = model(**x).last_hidden_state
    for m in METHODS:
        spec = delta_spec(model, m, **sizes[m])
        thetas = spec.init + 0.05 * torch.randn(2, spec.D, generator=torch.Generator().manual_seed(0))
        two = {k: v.repeat(2, 1) for k, v in x.items()}
        with torch.no_grad(), use_delta(model, spec, thetas):
            batched = model(**two).last_hidden_state
        for k in range(2):
            with torch.no_grad(), use_delta(model, spec, thetas[k]):
                alone = model(**x).last_hidden_state
            torch.testing.assert_close(batched[2 * k:2 * k + 2], alone, atol=1e-5, rtol=0)
        assert (alone - bare).abs().max() > 1e-3, m                      # the delta acts
        assert torch.equal(model(**x).last_hidden_state, bare)            # and is gone after the block


def test_saved_vector_round_trip_and_refusal(tmp_path, t5_model, bert_model):
    "A saved θ loads back, fits the spec rebuilt from the model, and is refused by a model of another family."
    spec = delta_spec(t5_model, "prefix", m=4, r=2)
    theta = spec.init + 0.1 * torch.randn(spec.D, generator=torch.Generator().manual_seed(1))
    save_tensors(tmp_path / "theta.safetensors", {"theta": theta}, {"spec_hash": spec.hash, **spec.meta()})
    loaded, meta = load_tensors(tmp_path / "theta.safetensors", spec_hash=spec.hash)
    again = delta_spec(t5_model, "prefix", m=4, r=2)                    # rebuilt from the model: the same spec
    assert torch.equal(check_theta(again, loaded["theta"], spec_hash=meta["spec_hash"]), theta)
    with pytest.raises(ValueError, match="belongs to t5"):
        with use_delta(bert_model, again, loaded["theta"]):
            pass
