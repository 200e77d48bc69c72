"Fast checks of `unified_delta_tuning.transfer` (stages 2-3 and the paper's tables) through the installed package."
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")
import pandas as pd, pytest, torch

from unified_delta_tuning.backbones import tiny_bert
from unified_delta_tuning.deltas import METHODS, delta_spec
from unified_delta_tuning.tasks import Example, Task
from unified_delta_tuning.train import TrainConfig
from unified_delta_tuning.subspace import Subspace
from unified_delta_tuning.transfer import (optimize_in_subspace, score_code, relative_performance, table1, table2, paper_table)

def hand_results():
    rows = [{"stage": 0, "train_task": None, "task": "mr", "source": m, "target": m, "seed": 42, "test": 0.8} for m in METHODS]
    for i, s in enumerate(METHODS):
        rows.append({"stage": 2, "train_task": "src", "task": "mr", "source": s, "target": s, "seed": 42, "test": 0.4 + 0.2 * i})
        rows += [{"stage": 3, "train_task": "src", "task": "mr", "source": s, "target": t, "seed": 42, "test": 0.4} for t in METHODS if t != s]
    return pd.DataFrame(rows)

def test_relative_and_tables():
    res = hand_results()
    rel = relative_performance(res)
    assert rel[rel.stage == 2].relative.round(6).tolist() == [50.0, 75.0, 100.0]
    t1, t2 = table1(res), table2(res)
    assert list(t1.columns) == ["Adapter", "LoRA", "Prefix", "Avg"] and list(t1.index) == [("src", "mr"), ("", "Avg.")]
    assert t1.loc[("src", "mr"), "Avg"] == pytest.approx(75.0)
    assert list(t2.columns) == ["A→L", "A→P", "L→A", "L→P", "P→A", "P→L", "Avg"] and t2.loc[("", "Avg."), "Avg"] == pytest.approx(50.0)
    with pytest.raises(KeyError, match="no stage-0 score"): relative_performance(res[res.stage != 0])

def test_paper_tables():
    for n in (1, 2, 3, 4):
        p = paper_table(n)
        assert abs(p.iloc[:-1].mean(axis=0) - p.iloc[-1]).max() < 0.051
    assert paper_table(2).loc[("MNLI", "RTE"), "P→A"] == 55.0
    with pytest.raises(ValueError, match="Tables 1-4"): paper_table(0)

def test_stage2_decodes_through_each_method():
    exs = [Example(f"a {'gorgeous' if i % 2 else 'tedious'} film", ("positive" if i % 2 else "negative",)) for i in range(16)]
    task = Task("toy", exs, exs[:8], exs[8:], ["negative", "positive"], "ACC")
    bb = tiny_bert([e.text for e in exs] + ["positive", "negative"])
    specs = [delta_spec(bb.model, "adapter", r=2), delta_spec(bb.model, "lora", r=2)]
    sub = Subspace(specs, y=3)
    cfg = TrainConfig(lr=5e-2, batch_size=4, steps=4, eval_every=2, progress=False)
    run = optimize_in_subspace(bb, task, sub, "adapter", cfg)
    assert sorted(run.snapshots) == [2, 4] and torch.equal(run.snapshots[run.best_step], run.code)
    assert run.transfer["lora"]["test"] == score_code(bb, task, sub, "lora", run.code, "test", cfg)
    assert all(p.requires_grad for p in sub.parameters())
    with pytest.raises(KeyError, match="no method 'prefix'"): optimize_in_subspace(bb, task, sub, "prefix", cfg)


def test_tables_with_finetune():
    from unified_delta_tuning.transfer import beside_paper
    four = METHODS + ("finetune",)
    rows = [{"stage": 0, "train_task": None, "task": "mr", "source": m, "target": m, "seed": 42, "test": 0.8} for m in four]
    for s in four:
        rows.append({"stage": 2, "train_task": "src", "task": "mr", "source": s, "target": s, "seed": 42, "test": 0.8})
        rows += [{"stage": 3, "train_task": "src", "task": "mr", "source": s, "target": t, "seed": 42, "test": 0.4} for t in four if t != s]
    res = pd.DataFrame(rows)
    assert list(table1(res).columns) == ["Adapter", "LoRA", "Prefix", "Fine-tuning", "Avg"]
    t2 = table2(res)
    assert [c for c in t2.columns if "F" in c] == ["A→F", "L→F", "P→F", "F→A", "F→L", "F→P"]
    b = beside_paper(t2, 2)
    assert b.loc["paper (Table 2)", "F→A"] != b.loc["paper (Table 2)", "F→A"]          # NaN: the paper has no fine-tuning
    assert b.loc["ours", "A→L"] == pytest.approx(50.0)
