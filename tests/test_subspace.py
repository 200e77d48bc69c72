"Fast checks of `unified_delta_tuning.subspace` (stage 1) through the installed package."
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")
import pytest, torch

from unified_delta_tuning.backbones import tiny_bert, train_batches, task_loss
from unified_delta_tuning.deltas import METHODS, delta_spec, use_delta
from unified_delta_tuning.tasks import Example, Task
from unified_delta_tuning.train import DeltaSolution, TrainConfig
from unified_delta_tuning.subspace import (Subspace, SubspaceConfig, interpolation_weights, eval_points, subspace_loss,
                                           solution_pool, train_subspace, save_subspace, load_subspace, reconstruction_error)

SIZES = {"adapter": {"r": 2}, "lora": {"r": 2}, "prefix": {"m": 2, "r": 2}}

@pytest.fixture(scope="module")
def setup():
    exs = [Example(f"a {'gorgeous' if i % 2 else 'tedious'} film", ("positive" if i % 2 else "negative",)) for i in range(16)]
    task = Task("toy", exs, exs[:8], exs[8:], ["negative", "positive"], "ACC")
    bb = tiny_bert([e.text for e in exs] + ["positive", "negative"])
    specs = {m: delta_spec(bb.model, m, **SIZES[m]) for m in METHODS}
    sols = [DeltaSolution(s.init + 0.1 * torch.randn(s.D, generator=torch.Generator().manual_seed(i)), s, {"task": "toy", "dev": 0.5, "test": 0.5})
            for i, s in enumerate(specs.values())]
    return bb, task, specs, sols

def test_weights_and_points():
    g = torch.Generator().manual_seed(0)
    for kind in ("authors", "dirichlet"):
        for k in (2, 3, 4):
            w = interpolation_weights(k, kind, g)
            assert w.shape == (k,) and (w >= 0).all() and abs(w.sum().item() - 1) < 1e-6
    p = eval_points(3, 4, seed=1)
    assert torch.equal(p, eval_points(3, 4, seed=1)) and torch.allclose(p[0], torch.full((3,), 1 / 3))
    with pytest.raises(ValueError, match="at least 2 methods"): interpolation_weights(1)
    with pytest.raises(ValueError, match="unknown weighting"): interpolation_weights(3, "beta")

def test_projections(setup):
    bb, task, specs, sols = setup
    sub = Subspace(specs, y=3)
    assert sub.methods == METHODS and sub.hashes == {m: s.hash for m, s in specs.items()}
    with torch.no_grad():
        assert torch.equal(sub.decode("prefix", torch.zeros(3)), specs["prefix"].init)
        assert sub.encode("lora", torch.zeros(2, specs["lora"].D)).shape == (2, 3)
    with pytest.raises(KeyError, match="no method 'bitfit'"): sub.decode("bitfit", torch.zeros(3))
    with pytest.raises(ValueError, match="has length"): sub.encode("adapter", torch.zeros(5))
    with pytest.raises(ValueError, match="unknown up-projection"): Subspace(specs, up="conv")
    with pytest.raises(ValueError, match="unknown reconstruction"): SubspaceConfig(recon="l1")

def test_loss_is_the_authors_formula(setup):
    bb, task, specs, sols = setup
    sub = Subspace(specs, y=3); batch = next(train_batches(bb, task, 4, seed=0))
    deltas = {s.spec.method: s.delta for s in sols}; w = torch.tensor([0.2, 0.3, 0.5])
    loss, parts = subspace_loss(bb, sub, task, batch, deltas, w, ra=0.5)
    with torch.no_grad():
        codes = {m: sub.encode(m, deltas[m]) for m in METHODS}
        mix = sum(wi * codes[m] for wi, m in zip(w.tolist(), METHODS))
        ce = 0.0
        for m in METHODS:
            with use_delta(bb.model, specs[m], specs[m].init + sub.up[m].weight @ mix): ce += task_loss(bb, task, batch).item()
        d = sum((deltas[m] - sub.up[m].weight @ codes[m]).norm().item() for m in METHODS)
    assert abs(loss.item() - (0.5 * d + ce)) < 1e-3 and abs(parts["recon"] - d) < 1e-3

def test_train_save_load(setup, tmp_path):
    bb, task, specs, sols = setup
    cfg = TrainConfig(lr=2e-2, batch_size=4, steps=4, eval_every=2, optimizer="adamw", progress=False)
    r = train_subspace(bb, task, sols, cfg, SubspaceConfig(y=3, ra=1.0, n_points=2))
    assert [h["step"] for h in r.history] == [2, 4] and r.best_step in (2, 4) and len(r.scores) == 2 * 3
    _, pool = solution_pool(sols, [task])
    assert all(e["error"] < 1 for e in reconstruction_error(r.subspace, pool))
    path = save_subspace(r.subspace, tmp_path/"sub.safetensors")
    back, meta = load_subspace(path, specs)
    with torch.no_grad(): assert torch.equal(back.decode("lora", torch.ones(3)), r.subspace.decode("lora", torch.ones(3)))
    with pytest.raises(ValueError, match="was learnt for other specs"): load_subspace(path, dict(specs, lora=delta_spec(bb.model, "lora", r=1)))

def test_bad_solution_sets(setup):
    bb, task, specs, sols = setup
    cfg = TrainConfig(steps=1, eval_every=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="at least 2 methods"): train_subspace(bb, task, sols[:1], cfg)
    other = Task("other", task.train, task.dev, task.test, task.labels, "ACC")
    with pytest.raises(ValueError, match="no stage-0 solution"): train_subspace(bb, [task, other], sols, cfg)
    with pytest.raises(ValueError, match="must divide batch_size"): train_subspace(bb, task, sols, cfg, SubspaceConfig(group_size=3))


def test_finetune_gets_fastfood_projections(setup, tmp_path):
    from unified_delta_tuning.finetune import Fastfood
    bb, task, specs, sols = setup
    ft = delta_spec(bb.model, "finetune")
    sub = Subspace({**specs, "finetune": ft}, y=3, seed=5)
    assert sub.fastfood == ("finetune",) and isinstance(sub.up["finetune"], Fastfood)
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in Subspace(specs, y=3).parameters()) + 3 * (ft.D + 4)
    back, meta = load_subspace(save_subspace(sub, tmp_path / "s.safetensors"), {**specs, "finetune": ft})
    with torch.no_grad():
        code = torch.randn(3)
        assert torch.equal(back.decode("finetune", code), sub.decode("finetune", code))
        assert torch.equal(back.encode("finetune", ft.init * 0.01), sub.encode("finetune", ft.init * 0.01))
