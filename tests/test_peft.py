"""PEFT adapters out and in (`04a_peft`): PEFT loads our LoRA export with our outputs, the import gives θ back exactly
and refuses what does not fit, and `udt export` / `udt import` work on run folders of a study.

The run folders here are written in-process with the runner's layout (params.json, the step's artefacts, metrics.json,
done.json with sizes and hashes) instead of by papermill, which would take a minute; `16_cli`'s slow cells export the
runs of a real tiny study.
"""
import copy, hashlib, json

import pytest
import torch

peft = pytest.importorskip("peft", reason="peft is not installed: `pip install peft` (a dependency in pyproject.toml)")
from peft import PeftModel

from unified_delta_tuning.backbones import random_gpt2, random_llama
from unified_delta_tuning.cli import main
from unified_delta_tuning.core import save_tensors, write_json
from unified_delta_tuning.deltas import delta_spec, use_delta
from unified_delta_tuning.peft_io import NATIVE, PROVENANCE, export_native, export_peft, import_peft, load_native, read_peft
from unified_delta_tuning.layout import ADAPTER_CONFIG, CODE, DONE, METRICS, PARAMS, SOLUTION, SUBSPACE
from unified_delta_tuning.steps import load_run, load_solutions, step_backbone
from unified_delta_tuning.subspace import Subspace, save_subspace
from unified_delta_tuning.train import DeltaSolution, save_solution

X = torch.randint(2, 64, (2, 7), generator=torch.Generator().manual_seed(0))
Y = torch.randint(2, 64, (2, 5), generator=torch.Generator().manual_seed(1))


def _out(model):
    with torch.no_grad():
        if hasattr(model.config, "d_kv"): return model(input_ids=X, decoder_input_ids=Y).logits
        out = model(input_ids=X)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


# Our forward against PEFT's, both in float64: each op rounds by ε = 1.1e-16, a dot product of n ≤ 128 terms by n·ε, a tiny
# model's forward chains a few dozen matmuls: ~1e-12 of the output's scale at worst. 1e-9 leaves margin and is 1e8 times below
# what a real mistake (a lost α/r, a transposed tensor) moves the output by, > 0.1. (float32 rounding, ~1e-5, moves with versions.)
F64_TOL = 1e-9

def _noisy(spec, seed=0, std=0.1):
    return spec.init + torch.randn(spec.D, generator=torch.Generator().manual_seed(seed)) * std


@pytest.mark.parametrize("family", ["t5", "bert", "llama"])
def test_peft_loads_our_lora_with_our_outputs(family, t5_model, bert_model, tmp_path):
    model = {"t5": t5_model, "bert": bert_model}.get(family) or random_llama()   # Llama: grouped-query attention (smaller v_proj)
    spec = delta_spec(model, "lora", r=4, alpha=8)
    theta = _noisy(spec, std=0.5)
    folder = export_peft(model, spec, theta, tmp_path/"a", base_model=f"random-{family}")
    assert torch.equal(import_peft(folder, model, spec, [f"random-{family}"]), theta)
    model = copy.deepcopy(model).double()   # θ is float32 like the file, exact in float64: only the forwards' rounding differs
    with use_delta(model, spec, theta): ours = _out(model)
    pm = PeftModel.from_pretrained(copy.deepcopy(model), folder)
    theirs = _out(pm); merged = _out(pm.merge_and_unload())
    assert (ours - _out(model)).abs().max() > 0.1   # the LoRA matters, so agreement means something
    tol = F64_TOL * ours.abs().max()
    assert (ours - theirs).abs().max() < tol and (ours - merged).abs().max() < tol


def test_gpt2_lora_exports_as_one_rank_2r_adapter_on_c_attn(tmp_path):
    "GPT-2's q and v live in one fused c_attn, which PEFT's LoRA adapts as a whole: the export stacks our two updates into one of rank 2r."
    model = random_gpt2(); spec = delta_spec(model, "lora", r=2, alpha=4)
    theta = _noisy(spec, std=0.5)
    folder = export_peft(model, spec, theta, tmp_path/"g", base_model="random-gpt2")
    cfg = json.loads((folder/ADAPTER_CONFIG).read_text())
    assert (cfg["r"], cfg["lora_alpha"], cfg["task_type"], cfg["fan_in_fan_out"]) == (4, 8, "CAUSAL_LM", True)
    model = copy.deepcopy(model).double()
    with use_delta(model, spec, theta): ours = _out(model)
    pm = PeftModel.from_pretrained(copy.deepcopy(model), folder)
    theirs = _out(pm); merged = _out(pm.merge_and_unload())
    assert (ours - _out(model)).abs().max() > 0.1
    tol = F64_TOL * ours.abs().max()
    assert (ours - theirs).abs().max() < tol and (ours - merged).abs().max() < tol
    with pytest.raises(ValueError, match="cannot hold"): import_peft(folder, random_gpt2(), spec, ["random-gpt2"])


def test_import_refuses_what_does_not_fit(t5_model, tmp_path):
    spec = delta_spec(t5_model, "lora", r=4, alpha=8)
    folder = export_peft(t5_model, spec, _noisy(spec), tmp_path/"a", base_model="random-t5")
    with pytest.raises(ValueError, match=r"rank: the adapter has r=4, the spec r=2.*scaling"):
        import_peft(folder, t5_model, delta_spec(t5_model, "lora", r=2, alpha=8), ["random-t5"])
    with pytest.raises(ValueError, match=r"base model: the adapter was trained on 'random-t5'"):
        import_peft(folder, t5_model, spec, ["t5-base"])
    cfg, w = read_peft(folder)
    (tmp_path/"b").mkdir(); write_json(tmp_path/"b"/ADAPTER_CONFIG, cfg)
    from safetensors.torch import save_file
    save_file({k: v for k, v in w.items() if "decoder" not in k}, tmp_path/"b"/"adapter_model.safetensors")
    with pytest.raises(ValueError, match=r"no update for 8 of our 12 modules"):
        import_peft(tmp_path/"b", t5_model, spec, ["random-t5"])


@pytest.mark.parametrize("method,sizes", [("adapter", {"r": 2}), ("prefix", {"m": 3, "r": 2})])
def test_native_round_trip(method, sizes, t5_model, bert_model, tmp_path):
    for model in (t5_model, bert_model):
        spec = delta_spec(model, method, **sizes)
        theta = _noisy(spec, std=0.01)
        spec2, back, meta = load_native(export_native(model, spec, theta, tmp_path/spec.family, base_model="x"), model)
        assert spec2 == spec and torch.equal(back, theta) and meta["method"] == method
    with pytest.raises(ValueError, match="this model is bert"):
        load_native(tmp_path/"t5", bert_model)


# --- `udt export` and `udt import` on run folders of a tiny study -------------------------------------------------
COMMON = {"backbone": "tiny-bert", "vocab": ["sms"], "data_dir": None, "split_seed": 42, "caps": {"max_train": 16, "max_dev": 8, "max_test": 8},
          "sizes": {"adapter": {"r": 2}, "lora": {"r": 2, "alpha": 16}}, "seed": 42}


def _finish(folder, step, params, metrics):
    "Mark `folder` done as the runner does: params.json, metrics.json, then done.json with every file's size and hash."
    write_json(folder/PARAMS, {"id": folder.name, "step": step, "params": params, "deps": [], "parameters": params})
    write_json(folder/METRICS, metrics)
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    write_json(folder/DONE, {"id": folder.name, "step": step, "files": files,
                             "sha256": {n: hashlib.sha256((folder/n).read_bytes()).hexdigest() for n in files}})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    "A stage-0 LoRA run, a stage-1 run (its subspace at its random start) and a stage-2 run through the Adapter in it."
    root = tmp_path_factory.mktemp("runs")/"tiny"
    s0, s1, s2 = (root/n for n in ("s0-sms-lora-s42-0", "s1-single-sms-s42-0", "s2-single-sms-sms-adapter-s42-0"))
    for f in (s0, s1, s2): f.mkdir(parents=True)
    p0 = {**COMMON, "task": "sms", "method": "lora"}
    bb = step_backbone("tiny-bert", ["sms"])
    specs = {m: delta_spec(bb.model, m, seed=42, **COMMON["sizes"][m]) for m in ("adapter", "lora")}
    theta = _noisy(specs["lora"], std=0.5)
    save_solution(DeltaSolution(theta, specs["lora"], {"stage": 0, "task": "sms", "method": "lora", "spec_hash": specs["lora"].hash,
                                                       "dev": 0.5, "test": 0.5}), s0/SOLUTION)
    _finish(s0, "stage0", p0, {"dev": 0.5, "test": 0.5})
    save_subspace(Subspace(specs, y=4, seed=42), s1/SUBSPACE)
    _finish(s1, "stage1", {**COMMON, "methods": ["adapter", "lora"]}, {})
    save_tensors(s2/CODE, {"code": torch.randn(4, generator=torch.Generator().manual_seed(2)) * 3}, {"task": "sms"})
    _finish(s2, "stage2", {**COMMON, "task": "sms", "train_task": "sms", "source": "adapter", "methods": ["adapter", "lora"],
                           "subspace_path": f"../{s1.name}/{SUBSPACE}", "control": None}, {"test": 0.5, "test_lora": 0.4})
    return dict(bb=bb, specs=specs, s0=s0, s2=s2, theta=theta)


def test_udt_export_and_import(runs, tmp_path):
    bb, specs = runs["bb"], runs["specs"]
    ids = bb.tokenizer(["call now to claim your prize", "see you at lunch"], padding=True, return_tensors="pt")
    for run in (runs["s0"], runs["s2"]):
        out = tmp_path/run.name
        main(["export", str(run), str(out)])
        prov = json.loads((out/PROVENANCE).read_text())
        assert prov["run"] == run.name and prov["method"] == "lora" and json.loads((out/ADAPTER_CONFIG).read_text())["base_model_name_or_path"] == "tiny-bert"
        theta = import_peft(out, bb.model, specs["lora"], ["tiny-bert"])
        if run == runs["s0"]: assert torch.equal(theta, runs["theta"])
        model = copy.deepcopy(bb.model).double()   # float64: only the forwards' rounding differs (see F64_TOL)
        with use_delta(model, specs["lora"], theta), torch.no_grad(): ours = model(**ids).last_hidden_state
        theirs = PeftModel.from_pretrained(copy.deepcopy(model), out)(**ids).last_hidden_state
        assert (ours - theirs).abs().max() < F64_TOL * ours.abs().max() and (ours - model(**ids).last_hidden_state).abs().max() > 0.1
    with pytest.raises(SystemExit) as e: main(["export", str(runs["s0"]), str(tmp_path/runs["s0"].name)])   # another adapter is there: refused
    assert e.value.code == 2
    main(["export", str(runs["s0"]), str(tmp_path/runs["s0"].name), "--overwrite"])                     # unless asked
    main(["export", str(runs["s2"]), str(tmp_path/"native"), "--format", "native"])   # the run's source method, Adapter
    spec, theta, meta = load_native(tmp_path/"native", bb.model)
    assert spec == specs["adapter"] and meta["run"] == runs["s2"].name
    with pytest.raises(SystemExit) as e: main(["export", str(runs["s2"]), str(tmp_path/"x"), "--method", "adapter"])
    assert e.value.code == 2   # PEFT has no Houlsby adapter
    sol = tmp_path/"imported"/"lora.safetensors"
    main(["import", str(tmp_path/runs["s0"].name), str(sol), "--model", "tiny-bert", "--task", "sms", "--sizes", '{"r": 2, "alpha": 16}',
          "--max-dev", "8", "--max-test", "8"])
    back = load_solutions([str(sol)], load_run(runs["s0"]).specs(bb))[0]   # what stage 1 does with its inputs
    assert torch.equal(back.theta, runs["theta"]) and back.meta["task"] == "sms" and 0 <= back.meta["test"] <= 1
    with pytest.raises(SystemExit) as e:   # the study's equal sizes give another rank: refused, exit 2
        main(["import", str(tmp_path/runs["s0"].name), str(sol), "--model", "tiny-bert", "--task", "sms", "--max-dev", "8", "--max-test", "8"])
    assert e.value.code == 2


def test_a_study_imports_a_peft_adapter_as_a_stage0_solution(tmp_path):
    "`[stage0.imported]` in a study file: the adapter becomes that stage-0 run's solution, its id follows the adapter's content, not its path."
    import shutil
    from unified_delta_tuning.core import load_tensors
    from unified_delta_tuning.plan import STEP_NOTEBOOKS, experiments_dir, plan_runs
    from unified_delta_tuning.inputs import missing_inputs
    from unified_delta_tuning.execute import execute_run
    from unified_delta_tuning.runner import _kernel_env, _run_parameters
    from unified_delta_tuning.steps import step_specs
    from unified_delta_tuning.study import parse_study
    from unified_delta_tuning.study_errors import StudyError
    from tests.studies import ROOT, TINY
    study0 = parse_study(TINY)
    run0 = next(r for r in plan_runs(study0) if r.step == "stage0" and r.params["task"] == "sms" and r.params["method"] == "lora")
    p0 = _run_parameters(study0, run0)
    bb = step_backbone(p0["backbone"], p0["vocab"], p0["task_specs"], p0["split_seed"])
    spec = step_specs(bb.model, p0["sizes"], ["lora"], p0["seed"])["lora"]
    theta = _noisy(spec, seed=3, std=0.05)
    export_peft(bb.model, spec, theta, tmp_path/"adapters"/"sms-lora", base_model=bb.name)
    text = TINY + '\n[stage0.imported]\n"sms/lora" = "adapters/sms-lora"\n'
    (tmp_path/"s.toml").write_text(text); study = parse_study(text, tmp_path/"s.toml")
    run = next(r for r in plan_runs(study) if r.step == "stage0" and r.params["task"] == "sms" and r.params["method"] == "lora")
    assert run.id != run0.id and run.params["adapter"] == str(tmp_path/"adapters"/"sms-lora") and missing_inputs(study) == []
    shutil.copytree(tmp_path/"adapters", tmp_path/"moved")   # the same adapter elsewhere: the same run
    (tmp_path/"t.toml").write_text(text.replace("adapters/sms-lora", "moved/sms-lora"))
    assert next(r.id for r in plan_runs(parse_study((tmp_path/"t.toml").read_text(), tmp_path/"t.toml")) if r.step == "stage0" and r.params.get("adapter")) == run.id
    (tmp_path/"u.toml").write_text(text.replace("adapters/sms-lora", "nowhere"))
    assert any("no PEFT adapter in" in m for m in missing_inputs(parse_study((tmp_path/"u.toml").read_text(), tmp_path/"u.toml")))
    for bad, msg in (('"sms/adapter" = "x"', r"as \"<task>/lora\" \(the methods PEFT adapters hold here\)"), ('"mr/lora" = "x"', "the study has no task 'mr'")):
        with pytest.raises(StudyError, match=msg): parse_study(TINY + f"\n[stage0.imported]\n{bad}\n")
    folder = tmp_path/"runs"/run.id
    res = execute_run({"id": run.id, "step": run.step, "params": run.params, "deps": list(run.deps)}, folder,
                      experiments_dir(study)/STEP_NOTEBOOKS[run.step], _run_parameters(study, run), _kernel_env(1))
    assert res["state"] == "done", res
    assert torch.equal(load_tensors(folder/SOLUTION)[0]["theta"], theta)   # the adapter is the solution, exactly
    m = json.loads((folder/METRICS).read_text()); assert 0 <= m["test"] <= 1 and m["best_step"] is None
