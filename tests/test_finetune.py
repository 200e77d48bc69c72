"Fast checks of full fine-tuning as a fourth method (`deltas` finetune spec, `finetune` Fastfood maps, and stages 1-3 and the landscape with it) through the installed package."
import copy, math, os, tempfile
os.environ.setdefault("OMP_NUM_THREADS", "1")
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from unified_delta_tuning.backbones import tiny_bert, tiny_t5, t5_input, task_loss, train_batches
from unified_delta_tuning.deltas import ALL_METHODS, METHODS, check_theta, delta_size, delta_spec, use_delta
from unified_delta_tuning.finetune import Fastfood, FastfoodDown, fwht, hadamard, module_bytes, next_pow2
from unified_delta_tuning.landscape import common_region, landscape, plane_through, score_vectors
from unified_delta_tuning.subspace import (Subspace, SubspaceConfig, cached_subspace, load_subspace, save_subspace,
                                           subspace_loss, train_subspace)
from unified_delta_tuning.tasks import Example, Task
from unified_delta_tuning.train import DeltaSolution, TrainConfig, train_delta
from unified_delta_tuning.transfer import beside_paper, optimize_in_subspace, run_rows, stage0_rows, table1, table2

SIZES = {"adapter": {"r": 2}, "lora": {"r": 2}, "prefix": {"m": 2, "r": 2}}


def toy(name="toy", seed=0):
    g = torch.Generator().manual_seed(seed)
    def ex():
        pos = bool(torch.randint(2, (1,), generator=g))
        return Example(f"a {'gorgeous' if pos else 'tedious'} film", ("positive" if pos else "negative",))
    return Task(name, [ex() for _ in range(32)], [ex() for _ in range(8)], [ex() for _ in range(8)], ["negative", "positive"], "ACC")


@pytest.fixture(scope="module")
def setup():
    task = toy()
    bb = tiny_bert([e.text for e in task.train] + ["positive", "negative"])
    specs = {m: delta_spec(bb.model, m, **SIZES.get(m, {})) for m in ALL_METHODS}
    g = torch.Generator().manual_seed(0)
    sols = [DeltaSolution(s.init + 0.05 * torch.randn(s.D, generator=g), s, {"task": "toy", "dev": 0.5, "test": 0.5})
            for s in specs.values()]
    return bb, task, specs, sols


def test_fwht_and_fastfood_against_dense():
    for n in (1, 2, 8, 128, 256):
        x = torch.randn(3, n, dtype=torch.float64)
        assert torch.allclose(fwht(x), x @ hadamard(n, torch.float64), atol=1e-9)
    for y, D in ((3, 50), (4, 37), (100, 300)):
        ff = Fastfood(y, D, seed=1).double(); M = ff.dense().detach()
        x, v = torch.randn(y, dtype=torch.float64), torch.randn(2, D, dtype=torch.float64)
        assert torch.allclose(ff(x), M @ x, atol=1e-12) and torch.allclose(ff.transpose(v), v @ M, atol=1e-12)
    assert next_pow2(100) == 128
    with pytest.raises(ValueError, match="only for small maps"): Fastfood(10, 10**7).dense()


def test_fastfood_memory_is_linear_in_D():
    D = 247_577_856
    up, down = Fastfood(100, D, device="meta"), FastfoodDown(D, 100, device="meta")
    assert module_bytes(up) == 13 * up.blocks * up.n and module_bytes(up) < 14 * D     # G float32 + B int8 + Π, Π⁻¹ int32
    assert module_bytes(down) == module_bytes(up) + 4 * 100
    assert module_bytes(up) < (100 * D * 4) / 30                                       # a dense D×100 matrix: 99 GB


def test_finetune_spec_and_use_delta():
    bb = tiny_t5(["a b c d e f g"]); m = bb.model
    ft = delta_spec(m, "finetune")
    assert ft.method == "finetune" and ft.sizes == {} and ft.D == sum(p.numel() for p in m.parameters()) == delta_size(m, "finetune")
    assert ft.names == tuple(n for n, _ in m.named_parameters())
    other = delta_spec(tiny_t5(["a b c d e f g"], seed=1).model, "finetune")
    assert other.fingerprint == ft.fingerprint and other.hash != ft.hash
    with pytest.raises(ValueError, match="was saved for spec hash"): check_theta(other, ft.init, spec_hash=ft.hash)
    x = torch.randint(3, 8, (2, 5)); y = torch.randint(3, 8, (2, 3))
    bare = m(input_ids=x, labels=y).logits
    delta = 0.05 * torch.randn(ft.D, generator=torch.Generator().manual_seed(0))
    ref = copy.deepcopy(m)
    with torch.no_grad():
        for p, v in zip(ref.parameters(), ft.unflatten(ft.init + delta).values()): p.copy_(v)
    theta = (ft.init + delta).requires_grad_(True)
    with use_delta(m, ft, ft.init): assert torch.equal(m(input_ids=x, labels=y).logits, bare)
    with use_delta(m, ft, theta):
        out = m(input_ids=x, labels=y)
        gen = m.generate(input_ids=x, max_new_tokens=4, do_sample=False)
    assert torch.allclose(out.logits, ref(input_ids=x, labels=y).logits, atol=1e-5)
    assert torch.equal(gen, ref.generate(input_ids=x, max_new_tokens=4, do_sample=False))
    out.loss.backward()
    assert all(g.abs().sum() > 0 for g in ft.unflatten(theta.grad).values())
    own = list(m.parameters())
    with pytest.raises(RuntimeError, match="boom"):
        with use_delta(m, ft, theta.detach()): raise RuntimeError("boom")
    assert all(p is q for p, q in zip(own, m.parameters())) and torch.equal(m(input_ids=x, labels=y).logits, bare)
    with pytest.raises(ValueError, match="one at a time"): use_delta(m, ft, torch.stack([ft.init] * 2)).__enter__()


def test_stage0_finetunes_unchanged(setup):
    bb, task, specs, _ = setup
    sol = train_delta(bb, task, specs["finetune"], TrainConfig(lr=1e-2, batch_size=8, steps=6, eval_every=3, progress=False))
    assert sol.theta.shape == (specs["finetune"].D,) and sol.delta.abs().max() > 0
    assert sol.meta["method"] == "finetune" and sol.meta["sizes"] == {}


def test_subspace_with_finetune(setup):
    bb, task, specs, sols = setup
    sub = Subspace(specs, y=3)
    assert sub.methods == ALL_METHODS and sub.fastfood == ("finetune",)
    assert isinstance(sub.up["finetune"], Fastfood) and isinstance(sub.down["finetune"][0], FastfoodDown)
    assert isinstance(sub.up["lora"], nn.Linear)
    D = specs["finetune"].D
    assert sum(p.numel() for p in sub.up["finetune"].parameters()) == sub.up["finetune"].blocks * 4 < D + 4
    with torch.no_grad():
        assert torch.equal(sub.decode("finetune", torch.zeros(3)), specs["finetune"].init)
        assert sub.encode("finetune", torch.randn(2, D)).shape == (2, 3)
    dense = Subspace({m: specs[m] for m in METHODS}, y=3, fastfood_above=0)
    assert dense.fastfood == METHODS                                                    # the option: Fastfood for any large D
    deltas = {s.spec.method: s.delta for s in sols}
    batch = next(train_batches(bb, task, 8, seed=0))
    loss, parts = subspace_loss(bb, sub, task, batch, deltas, torch.full((4,), 0.25), 0.1)
    loss.backward()
    assert sub.up["finetune"].G.grad.abs().sum() > 0 and sub.down["finetune"][0].ff.G.grad.abs().sum() > 0
    assert set(parts) == {"recon", *(f"ce_{m}" for m in ALL_METHODS)}


def test_stages_1_to_3_and_tables_with_finetune(setup):
    bb, task, specs, sols = setup
    s1 = TrainConfig(lr=1e-2, batch_size=8, steps=4, eval_every=2, progress=False)
    with tempfile.TemporaryDirectory() as d:
        r = cached_subspace(bb, task, sols, s1, SubspaceConfig(y=4, ra=0.1), d)
        again = cached_subspace(bb, task, sols, s1, SubspaceConfig(y=4, ra=0.1), d)
        p = save_subspace(r.subspace, Path(d) / "sub.safetensors")
        back, meta = load_subspace(p, specs)
    assert r.subspace.methods == ALL_METHODS and meta["fastfood"] == ["finetune"]
    code = torch.randn(4)
    with torch.no_grad():
        for m in ALL_METHODS:
            assert torch.equal(back.decode(m, code), r.subspace.decode(m, code)) and torch.equal(again.subspace.decode(m, code), r.subspace.decode(m, code))
    target = toy("target", seed=1)
    rows = stage0_rows([DeltaSolution(s.theta, s.spec, {**s.meta, "task": "target"}) for s in sols])
    s2 = TrainConfig(lr=5e-2, batch_size=8, steps=4, eval_every=2, progress=False)
    for src in ("finetune", "lora"):
        run = optimize_in_subspace(bb, target, r.subspace, src, s2)
        assert set(run.transfer) == set(ALL_METHODS) - {src}
        rows += run_rows(run, "toy")
    res = pd.DataFrame(rows)
    t1, t2 = table1(res), table2(res)
    assert list(t1.columns) == ["LoRA", "Fine-tuning", "Avg"]
    assert list(t2.columns) == ["L→A", "L→P", "L→F", "F→A", "F→L", "F→P", "Avg"]
    b = beside_paper(t2, 2)
    assert b.loc["paper (Table 2)", ["L→F", "F→A"]].isna().all() and b.loc["paper (Table 2)", "L→A"] == 85.0
    assert "Avg (paper's columns)" in b.columns


def test_landscape_with_finetune(setup):
    bb, task, specs, sols = setup
    sub = Subspace(specs, y=4)
    pts = {m: torch.randn(4, generator=torch.Generator().manual_seed(i)) for i, m in enumerate(("adapter", "lora", "finetune"))}
    plane = plane_through(pts)
    with torch.no_grad(): dec = lambda m, I: sub.decode(m, I)
    df = landscape(bb, task, specs, dec, plane, (0, 1), (0, 1), n=3, reference={m: 0.5 for m in specs}, progress=False)
    assert set(df.method) == set(ALL_METHODS) and len(df) == 4 * 9
    with torch.no_grad(): th = torch.stack([sub.decode("finetune", I) for I in plane.points([0, 1], [0, 0])])
    one = score_vectors(bb, task, specs["finetune"], th, points_per_pass=8)   # finetune scores one vector per pass
    assert one == df[(df.method == "finetune") & (df.v == 0) & df.u.isin([0, 1])].sort_values("u").score.tolist()
    assert len(common_region(df, 0.9)) == 9
