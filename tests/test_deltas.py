"Fast checks of `unified_delta_tuning.deltas` through the installed package: sizes, parity, gradients, generation, bad input."
import copy

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel, T5Config, T5ForConditionalGeneration

from unified_delta_tuning.deltas import (METHODS, PAPER_SIZES, DeltaSpec, check_theta, delta_size, delta_spec,
                                         equal_sizes, model_family, use_delta)


def tiny_t5():
    torch.manual_seed(0)
    m = T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2,
                                            num_decoder_layers=2, feed_forward_proj="gated-gelu",
                                            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2: p.normal_(0, 0.5)
    return m.eval().requires_grad_(False)


def tiny_bert():
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64)).eval().requires_grad_(False)


X = torch.randint(2, 64, (2, 7), generator=torch.Generator().manual_seed(1))
AM = torch.ones_like(X); AM[1, 5:] = 0
Y = torch.randint(2, 64, (2, 5), generator=torch.Generator().manual_seed(2))


def nonzero(spec, seed=0):
    return spec.init + 0.3 * torch.randn(spec.D, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def t5():
    return tiny_t5()


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


def test_t5_base_sizes_are_the_papers():
    cfg = T5Config(vocab_size=32128, d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12,
                   num_decoder_layers=12, feed_forward_proj="gated-gelu")
    with torch.device("meta"):
        big = T5ForConditionalGeneration(cfg)
    for m in METHODS:
        assert delta_size(big, m) == 1_105_920
    assert equal_sizes(big) == PAPER_SIZES
    spec = delta_spec(big, "prefix")
    assert isinstance(spec, DeltaSpec) and spec.D == 1_105_920 and spec.init.shape == (1_105_920,)
    assert len(spec.names) == 6 and spec.hash == delta_spec(big, "prefix").hash


def test_equal_sizes_give_equal_D(bert):
    sizes = equal_sizes(bert)
    assert len({delta_size(bert, m, **s) for m, s in sizes.items()}) == 1
    with pytest.raises(ValueError, match="reachable nearby"):
        equal_sizes(bert, target_D=3000)


def test_family_and_bad_model():
    assert model_family(tiny_t5()) == "t5" and model_family(tiny_bert()) == "bert"
    with pytest.raises(ValueError, match="neither a T5 model"):
        model_family(nn.Linear(2, 2))


@pytest.mark.parametrize("method", METHODS)
def test_lora_adapter_prefix_change_output_and_restore(t5, method):
    bare = t5(input_ids=X, attention_mask=AM, labels=Y)
    spec = delta_spec(t5, method, **equal_sizes(t5)[method])
    with use_delta(t5, spec, nonzero(spec)):
        out = t5(input_ids=X, attention_mask=AM, labels=Y)
    assert (out.logits - bare.logits).abs().max() > 1e-2
    assert (out.encoder_last_hidden_state - bare.encoder_last_hidden_state).abs().max() > 1e-3
    assert torch.equal(t5(input_ids=X, attention_mask=AM, labels=Y).logits, bare.logits)


def test_lora_equals_merged_weight(bert):
    mdl = copy.deepcopy(bert).double()
    spec = delta_spec(mdl, "lora")
    theta = nonzero(spec).double()
    p = spec.unflatten(theta)
    merged, s = copy.deepcopy(mdl), spec.sizes["alpha"] / spec.sizes["r"]
    with torch.no_grad():
        for n in spec.names[::2]:
            site = n.rsplit(".", 1)[0]
            merged.get_submodule(site).weight += s * (p[f"{site}.lora_A"] @ p[f"{site}.lora_B"]).T
    with use_delta(mdl, spec, theta):
        out = mdl(input_ids=X, attention_mask=AM).last_hidden_state
    torch.testing.assert_close(out, merged(input_ids=X, attention_mask=AM).last_hidden_state, atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_gradients_reach_generator(bert, method):
    spec = delta_spec(bert, method)
    up, z = nn.Linear(4, spec.D, bias=False), torch.randn(4, requires_grad=True)
    with use_delta(bert, spec, spec.init + up(z)):
        bert(input_ids=X, attention_mask=AM).last_hidden_state.pow(2).mean().backward()
    assert z.grad.abs().sum() > 0 and up.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in bert.parameters())


def test_prefix_generate_cache_matches_no_cache(t5):
    spec = delta_spec(t5, "prefix", m=6, r=4)
    with use_delta(t5, spec, nonzero(spec)):
        a = t5.generate(input_ids=X, attention_mask=AM, max_new_tokens=6, do_sample=False)
        b = t5.generate(input_ids=X, attention_mask=AM, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(a, b)


def test_bad_vectors_and_mismatched_specs(t5, bert):
    spec = delta_spec(bert, "adapter")
    with pytest.raises(ValueError, match=f"needs D={spec.D:,}"):
        check_theta(spec, torch.zeros(spec.D - 1))
    with pytest.raises(ValueError, match="was saved for spec hash"):
        check_theta(spec, spec.init, spec_hash="feedfacefeedface")
    with pytest.raises(ValueError, match="belongs to bert"):
        with use_delta(t5, spec, spec.init):
            pass
    with pytest.raises(ValueError, match="unknown method"):
        delta_spec(bert, "bitfit")


# ---- a batch of vectors [K, D]: slice k of the batch runs with theta[k]
KB, B1 = 3, 2
XB = torch.randint(2, 64, (KB * B1, 7), generator=torch.Generator().manual_seed(5))
AMB = torch.ones_like(XB); AMB[1::2, 4:] = 0
YB = torch.randint(2, 64, (KB * B1, 5), generator=torch.Generator().manual_seed(6))


def _out(mdl, ids, mask, labels):
    if model_family(mdl) == "bert":
        return mdl(input_ids=ids, attention_mask=mask).last_hidden_state
    return mdl(input_ids=ids, attention_mask=mask, labels=labels).logits


@pytest.mark.parametrize("family", ["t5", "bert"])
@pytest.mark.parametrize("method", METHODS)
def test_batched_equals_separate_runs(t5, bert, family, method):
    mdl = t5 if family == "t5" else bert
    spec = delta_spec(mdl, method, **equal_sizes(mdl)[method])
    thetas = torch.stack([nonzero(spec, seed=s) for s in range(KB)])
    with use_delta(mdl, spec, thetas):
        batched = _out(mdl, XB, AMB, YB)
    for k in range(KB):
        r = slice(k * B1, (k + 1) * B1)
        with use_delta(mdl, spec, thetas[k]):
            alone = _out(mdl, XB[r], AMB[r], YB[r])
        torch.testing.assert_close(batched[r], alone, atol=1e-5, rtol=0)
    assert (batched[:B1] - _out(mdl, XB[:B1], AMB[:B1], YB[:B1])).abs().max() > 1e-3   # the delta acts
    with use_delta(mdl, spec, thetas[:1]):
        one = _out(mdl, XB, AMB, YB)
    with use_delta(mdl, spec, thetas[0]):
        flat = _out(mdl, XB, AMB, YB)
    torch.testing.assert_close(one, flat, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_batched_generate_matches_separate(t5, method):
    spec = delta_spec(t5, method, **equal_sizes(t5)[method])
    thetas = torch.stack([nonzero(spec, seed=s) for s in range(KB)])
    with use_delta(t5, spec, thetas):
        seqs = t5.generate(input_ids=XB, attention_mask=AMB, max_new_tokens=6, do_sample=False)
    for k in range(KB):
        r = slice(k * B1, (k + 1) * B1)
        with use_delta(t5, spec, thetas[k]):
            alone = t5.generate(input_ids=XB[r], attention_mask=AMB[r], max_new_tokens=6, do_sample=False)
        assert torch.equal(seqs[r, :alone.shape[1]], alone)
        assert (seqs[r, alone.shape[1]:] == t5.config.pad_token_id).all()


def test_batched_bad_shapes(t5, bert):
    spec = delta_spec(bert, "prefix", m=4, r=2)
    with pytest.raises(ValueError, match="or a batch of K vectors"):
        with use_delta(bert, spec, torch.zeros(2, 2, spec.D)):
            pass
    with pytest.raises(ValueError, match="must hold at least one"):
        with use_delta(bert, spec, torch.zeros(0, spec.D)):
            pass
    with pytest.raises(ValueError, match=f"needs D={spec.D:,}"):
        with use_delta(bert, spec, torch.zeros(2, spec.D - 1)):
            pass
    with pytest.raises(ValueError, match="run a batch of vectors through use_delta"):
        check_theta(spec, torch.zeros(2, spec.D))
    for mdl in (t5, bert):
        sp = delta_spec(mdl, "lora")
        with pytest.raises(ValueError, match="cannot be split into K=4 equal slices"):
            with use_delta(mdl, sp, torch.stack([sp.init] * 4)):
                _out(mdl, XB, AMB, YB)   # 6 rows
        assert getattr(mdl, "_udt_delta", None) is None


def test_finetune_spec(bert):
    from unified_delta_tuning.deltas import ALL_METHODS
    assert METHODS == ("adapter", "lora", "prefix") and ALL_METHODS == METHODS + ("finetune",)
    ft = delta_spec(bert, "finetune")
    assert ft.names == tuple(n for n, _ in bert.named_parameters()) and ft.D == sum(p.numel() for p in bert.parameters())
    assert torch.equal(ft.init, torch.cat([p.reshape(-1) for p in bert.parameters()]))
    with torch.device("meta"):
        assert delta_size(BertModel(bert.config), "finetune") == ft.D
    other = copy.deepcopy(bert)
    with torch.no_grad(): next(other.parameters()).add_(1e-3)
    assert delta_spec(other, "finetune").hash != ft.hash                              # the hash covers the weights' values
    with pytest.raises(ValueError, match="finetune takes no sizes"): delta_spec(bert, "finetune", r=4)
    delta = 0.1 * torch.randn(ft.D, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p, v in zip(other.parameters(), ft.unflatten(ft.init + delta).values()): p.copy_(v)
    theta = (ft.init + delta).requires_grad_(True)
    with use_delta(bert, ft, theta): out = bert(input_ids=X).last_hidden_state
    assert torch.allclose(out, other(input_ids=X).last_hidden_state, atol=1e-5)
    out.sum().backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0
    assert all(isinstance(p, nn.Parameter) for p in bert.parameters())
    with pytest.raises(ValueError, match="one at a time"): use_delta(bert, ft, ft.init.expand(2, -1)).__enter__()
