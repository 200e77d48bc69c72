"""(IA)³ (`03a_methods`): our hooks compute what PEFT's `IA3Config` computes, on the tiny models and MiniLM in float64;
K vectors share one forward pass; and a tiny study runs it through stages 0-3 beside Adapter and LoRA.
"""
import copy, json, subprocess

import pandas as pd
import pytest
import torch

peft = pytest.importorskip("peft", reason="peft is not installed: `pip install peft` (a dependency in pyproject.toml)")
from peft import IA3Config, get_peft_model

from unified_delta_tuning.backbones import random_gpt2, random_llama
from unified_delta_tuning.deltas import delta_spec, use_delta
from unified_delta_tuning.families import family_of, ia3_parts
from studies import ENV, ROOT, TINY, UDT

X = torch.randint(2, 64, (2, 7), generator=torch.Generator().manual_seed(0))
Y = torch.randint(2, 64, (2, 5), generator=torch.Generator().manual_seed(1))

# Both forwards in float64, as `test_peft`: each op rounds by ε = 1.1e-16, a dot product of n ≤ 1,536 terms (MiniLM's
# feed-forward) by n·ε ≈ 2e-13 relative; a forward chains a few dozen of them. 1e-9 of the output's scale leaves margin and
# is far below what the scales move the output by (checked: more than 1e5 times the tolerance), so a wrong site or a scale on
# the wrong side of a projection cannot pass.
F64_TOL = 1e-9


def _out(model):
    with torch.no_grad():
        if hasattr(model.config, "d_kv"): return model(input_ids=X, decoder_input_ids=Y).logits
        out = model(input_ids=X)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _peft_ia3(model, spec, theta):
    "PEFT's (IA)³ on `model` (changed in place) holding θ's scales: its targets are our sites' modules, named by full path."
    names = {id(m): n for n, m in model.named_modules()}
    parts = ia3_parts(model)
    targets = list(dict.fromkeys(names[id(mod)] for _, mod, _, _, _ in parts))
    ff = [names[id(mod)] for _, mod, _, _, scales_input in parts if scales_input]
    pm = get_peft_model(model, IA3Config(target_modules=targets, feedforward_modules=ff, fan_in_fan_out=family_of(model).name == "gpt2"))
    params = spec.unflatten(theta)
    for site, mod, _, part, scales_input in parts:
        w = pm.get_base_model().get_submodule(names[id(mod)]).ia3_l["default"]   # [out, 1] (keys, values) or [1, in] (feed-forward)
        flat = w.data.view(-1)
        if part is None: flat.copy_(params[f"{site}.ia3_l"])
        else: flat[part] = params[f"{site}.ia3_l"]   # GPT-2: the key or value third of c_attn; the query third stays one
    return pm.get_base_model()


@pytest.mark.parametrize("family", ["t5", "bert", "llama", "gpt2", "minilm"])
def test_peft_ia3_gives_our_outputs(family, t5_model, bert_model, minilm):
    model = {"t5": t5_model, "bert": bert_model, "minilm": minilm.model}.get(family) or {"llama": random_llama, "gpt2": random_gpt2}[family]()
    model = copy.deepcopy(model).double()
    spec = delta_spec(model, "ia3")
    theta = (spec.init + torch.randn(spec.D, generator=torch.Generator().manual_seed(0)) * 0.5).double()
    with use_delta(model, spec, theta): ours = _out(model)
    with use_delta(model, spec, spec.init.double()): bare = _out(model)
    assert torch.equal(bare, _out(model))                 # θ_init (ones) is exactly the bare model
    theirs = _out(_peft_ia3(copy.deepcopy(model), spec, theta))
    tol = F64_TOL * ours.abs().max()
    assert (ours - bare).abs().max() > 1e5 * tol          # the scales matter (BERT's LayerNorms damp them), so agreement means something
    assert (ours - theirs).abs().max() < tol


def test_a_batch_of_vectors_shares_one_forward(bert_model):
    model = copy.deepcopy(bert_model).double()
    spec = delta_spec(model, "ia3")
    thetas = torch.stack([spec.init + torch.randn(spec.D, generator=torch.Generator().manual_seed(k)) * 0.5 for k in range(2)]).double()
    x = torch.cat([X, X])                                 # rows 0-1 use θ[0], rows 2-3 θ[1]
    with torch.no_grad(), use_delta(model, spec, thetas): both = model(input_ids=x).last_hidden_state
    for k in range(2):
        with torch.no_grad(), use_delta(model, spec, thetas[k]): one = model(input_ids=X).last_hidden_state
        assert (both[2 * k:2 * k + 2] - one).abs().max() < F64_TOL * one.abs().max()


def test_ia3_runs_through_a_tiny_study(tmp_path):
    study = tmp_path/"tiny.toml"
    study.write_text(TINY.replace('methods = ["adapter", "lora"]', 'methods = ["adapter", "lora", "ia3"]'))
    r = subprocess.run([str(UDT), "study", "run", str(study), "--jobs", "2", "--threads", "1", "--runs", str(tmp_path/"runs")],
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = pd.read_csv(tmp_path/"runs"/"tiny"/"results.csv")
    assert (res.state == "done").all() and res.test.between(0, 1).all()
    s0, s2 = res[res.step == "stage0"], res[res.step == "stage2"]
    assert set(s0.method) == {"adapter", "ia3", "lora"}                            # stage 0: its own solutions (both tasks), at its own D
    assert len(res[res.step == "stage1"]) == 1                                      # one subspace holds the three methods
    assert "ia3" in set(s2.source)                                                  # stage 2: its code found in that subspace
    rows = [json.loads((tmp_path/"runs"/"tiny"/run/"rows.json").read_text()) for run in s2[s2.source == "ia3"].run_id]
    assert rows and all(rows)                                                       # stage 3: its code decoded through the other methods
