"End-to-end check of the landscape on the real packaged MiniLM and a real task (the unit tests live in nbs/08_landscape)."
import math

import torch

from unified_delta_tuning.batches import evaluate
from unified_delta_tuning.deltas import METHODS, delta_spec, equal_sizes, use_delta
from unified_delta_tuning.landscape import capped, landscape, plane_through, region_area, score_vectors
from unified_delta_tuning.tasks import load_task


def test_landscape_on_minilm(minilm):
    task = capped(load_task("mr"), "dev", 16)
    specs = {m: delta_spec(minilm.model, m, **equal_sizes(minilm.model)[m]) for m in METHODS}
    g = torch.Generator().manual_seed(0)
    U = {m: torch.randn(s.D, 4, generator=g) * 0.05 / math.sqrt(4) for m, s in specs.items()}
    decode = lambda m, I: specs[m].init + U[m] @ I
    points = {m: torch.randn(4, generator=g) for m in METHODS}
    df = landscape(minilm, task, specs, decode, plane_through(points), (0, 1), (0, 1), n=3, reference={m: 0.5 for m in METHODS},
                   points_per_pass=3, batch_size=8, progress=False)
    assert len(df) == 27 and df.score.between(0, 1).all()
    for m in METHODS:                                   # the anchors score as `evaluate` scores the decoded solution
        with use_delta(minilm.model, specs[m], decode(m, points[m])):
            direct = evaluate(minilm, task, "dev", batch_size=8)
        assert df[(df.method == m) & (df.anchor == m)].score.item() == direct
        th = torch.stack([decode(m, points[a]) for a in METHODS])
        assert score_vectors(minilm, task, specs[m], th, points_per_pass=3, batch_size=8) == \
            score_vectors(minilm, task, specs[m], th, points_per_pass=1, batch_size=8)
    assert 0 <= region_area(df, 0.9)["share_of_square"] <= 1
