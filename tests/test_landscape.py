"Fast checks of `unified_delta_tuning.landscape` through the installed package: plane, grid, batched scoring, area, bad input."
import math

import numpy as np
import pandas as pd
import pytest
import torch

from unified_delta_tuning.backbones import tiny_bert, tiny_t5, t5_input
from unified_delta_tuning.deltas import METHODS, delta_spec, equal_sizes
from unified_delta_tuning.landscape import (common_region, grid_axes, landscape, plane_through, region_area,
                                            score_vectors)
from unified_delta_tuning.tasks import Example, Task


def toy_task(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = ["film", "story", "cast", "plot"]
    def ex():
        pos = bool(torch.randint(2, (1,), generator=g)); w = words[int(torch.randint(4, (1,), generator=g))]
        return Example(f"the {w} was {'gorgeous' if pos else 'tedious'}", ("positive" if pos else "negative",))
    return Task("toy", [ex() for _ in range(n)], [ex() for _ in range(n)], [ex() for _ in range(n)],
                ["negative", "positive"], "ACC")


TOY = toy_task()
TEXTS = [t5_input("toy", e.text) for e in TOY.train + TOY.dev] + ["positive", "negative", "<extra_id_0>"]


def subspace(bb, y=4, seed=0):
    specs = {m: delta_spec(bb.model, m, **equal_sizes(bb.model)[m]) for m in METHODS}
    g = torch.Generator().manual_seed(seed)
    U = {m: torch.randn(s.D, y, generator=g) / math.sqrt(y) for m, s in specs.items()}
    return specs, (lambda m, I: specs[m].init + U[m] @ I)


@pytest.fixture(scope="module")
def bert():
    return tiny_bert(TEXTS)


@pytest.fixture(scope="module")
def t5():
    bb = tiny_t5(TEXTS)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        for p in bb.model.parameters():
            if p.dim() == 2: p.normal_(0, 0.5, generator=g)
    return bb


POINTS = {m: torch.randn(4, generator=torch.Generator().manual_seed(i)) * 2 for i, m in enumerate(METHODS)}


def test_plane_hits_the_points_exactly():
    pl = plane_through(POINTS)
    assert pl.anchors == {"adapter": (0.0, 0.0), "lora": (1.0, 0.0), "prefix": (0.0, 1.0)}
    assert torch.equal(pl.points([0, 1, 0], [0, 0, 1]), torch.stack(list(POINTS.values())))
    po = plane_through(POINTS, basis="orthonormal")
    for m, (u, v) in po.anchors.items():
        torch.testing.assert_close(po.points([u], [v])[0], POINTS[m], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="on one line"):
        plane_through({"a": torch.zeros(3), "b": torch.ones(3), "c": -torch.ones(3)})


def test_grid_bad_params():
    us, vs = grid_axes((-1, 2), (-0.5, 1.5), (31, 9))
    assert 1.0 in us and 0.0 in us and len(vs) == 9
    for kw, msg in [(dict(n=1), "int >= 2"), (dict(n=(3, 0)), "int >= 2"), (dict(u_range=(1, 1)), "start < end"),
                    (dict(v_range=(0, float("nan"))), "must be finite"), (dict(u_range="ab"), "must be a pair")]:
        with pytest.raises(ValueError, match=msg):
            grid_axes(**kw)


@pytest.mark.parametrize("family", ["bert", "t5"])
def test_batched_scores_equal_one_at_a_time(bert, t5, family):
    bb = bert if family == "bert" else t5
    specs, decode = subspace(bb)
    I = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)) * 2
    for m, spec in specs.items():
        th = torch.stack([decode(m, i) for i in I])
        assert score_vectors(bb, TOY, spec, th, points_per_pass=2, batch_size=8) == \
            score_vectors(bb, TOY, spec, th, points_per_pass=1, batch_size=8)


def test_landscape_grid_hits_solutions(bert):
    specs, decode = subspace(bert)
    plane = plane_through(POINTS)
    df = landscape(bert, TOY, specs, decode, plane, n=5, reference={m: 0.5 for m in METHODS}, points_per_pass=4,
                   batch_size=8, progress=False)
    assert list(df.columns) == ["u", "v", "method", "score", "relative", "anchor"] and len(df) == 75
    at = df[df.anchor != ""].drop_duplicates("anchor").set_index("anchor")[["u", "v"]]
    assert at.loc[list(METHODS)].values.tolist() == [[0, 0], [1, 0], [0, 1]]
    for m in METHODS:
        direct = score_vectors(bert, TOY, specs[m], torch.stack([decode(m, POINTS[a]) for a in METHODS]), batch_size=8)
        assert df[(df.method == m) & (df.anchor != "")].set_index("anchor").score.loc[list(METHODS)].tolist() == direct
    np.testing.assert_allclose(df.relative, df.score / 0.5)
    with pytest.raises(ValueError, match="no original-space score"):
        landscape(bert, TOY, specs, decode, plane, reference={"lora": 1.0}, progress=False)


def test_region_area_on_a_hand_made_grid():
    ax = np.linspace(0, 1, 5); U, V = [a.ravel() for a in np.meshgrid(ax, ax, indexing="ij")]
    df = pd.concat([pd.DataFrame(dict(u=U, v=V, method="adapter", score=0.0, relative=np.where(U < 1, 0.95, 0.5), anchor="")),
                    pd.DataFrame(dict(u=U, v=V, method="lora", score=0.0, relative=np.where(V <= 0.5, 1.2, 0.89), anchor=""))])
    plane = plane_through({"a": torch.zeros(3), "b": torch.tensor([2., 0, 0]), "c": torch.tensor([0., 3, 0])})
    a = region_area(df, 0.9, plane)
    assert (a["points_inside"], a["points"], a["triangle_points"], a["points_adapter"], a["points_lora"]) == (12, 25, 15, 20, 15)
    assert math.isclose(a["overlap"], 0.8)
    assert math.isclose(a["share_of_square"], 0.48) and math.isclose(a["area_uv"], 0.48)
    assert math.isclose(a["area_subspace"], 2.88) and math.isclose(a["share_of_triangle"], 11 / 15)
    assert common_region(df, 0.9).inside.sum() == 12
    with pytest.raises(ValueError, match="not one per point"):
        region_area(df.iloc[3:])
    with pytest.raises(ValueError, match="positive number"):
        region_area(df, -1)


def test_finetune_scores_one_point_per_pass(bert):
    ft = delta_spec(bert.model, "finetune")
    g = torch.Generator().manual_seed(0)
    thetas = torch.stack([ft.init + 0.2 * torch.randn(ft.D, generator=g) for _ in range(3)])
    batched = score_vectors(bert, TOY, ft, thetas, points_per_pass=3)
    assert batched == [score_vectors(bert, TOY, ft, t[None], points_per_pass=1)[0] for t in thetas]
    specs = {"lora": delta_spec(bert.model, "lora"), "finetune": ft}
    U = {m: torch.randn(s.D, 4, generator=g) * 0.05 for m, s in specs.items()}
    plane = plane_through({k: torch.randn(4, generator=g) for k in ("a", "b", "c")})
    df = landscape(bert, TOY, specs, lambda m, I: specs[m].init + U[m] @ I, plane, n=3, points_per_pass=4, progress=False)
    assert sorted(df.method.unique()) == ["finetune", "lora"] and len(df) == 18
