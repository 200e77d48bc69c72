"The GPU step benchmark runs on CPU with a tiny T5 (`--tiny`), so the script that a GPU session runs is known to work."
import importlib.util, json, math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT/"benchmarks"/f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_gpu_step_tiny(tmp_path):
    pytest.importorskip("peft", reason="the benchmark compares with PEFT LoRA; peft is a dependency (pyproject.toml)")
    out = tmp_path/"gpu_step.json"
    _load("gpu_step").main(["--tiny", "--steps", "2", "--out", str(out)])
    r = json.loads(out.read_text())
    arms = {"peft_lora", "stage1_y100"} | {f"stage{s}_{m}" for s in (0, 2) for m in ("adapter", "lora", "prefix")}
    assert set(r["arms"]) == arms
    for name, kinds in r["arms"].items():
        assert set(kinds) == {"padded", "per_batch"}, name
        for k, v in kinds.items():
            assert v["steps"] == 2 and 0 < v["median_s"] < 60 and math.isfinite(v["real_tokens_per_s"]), (name, k, v)
    assert r["dtype"] == "float32" and r["model"] == "tiny T5" and r["commit"] and r["threads"] == 1   # one thread: CI's cores are shared


def test_study_variant_sets_the_variant_in_every_stage():
    v = _load("study_variant")
    text = (ROOT/"studies"/"quick.toml").read_text()
    mb = v.variant(text, "quick-micro_batches", "micro_batches")
    assert 'name = "quick-micro_batches"' in mb and mb.count("micro_batches = 2") == 3
    for s in ("stage0", "stage1", "stage2"): assert f"[{s}]\nmicro_batches = 2\n" in mb, s
    assert v.variant(text, "quick-bf16", "bf16").startswith('precision = "bf16"\n') and v.variant(text, "quick-fp32", None).count("micro_batches") == 0
    import tomllib
    assert all(tomllib.loads(mb)[s]["micro_batches"] == 2 for s in ("stage0", "stage1", "stage2"))
    with pytest.raises(ValueError, match="has 2 of the tables"): v.variant(text.replace("[stage1]", "[stage1x]"), "x", "micro_batches")


def test_study_variant_both_settings_and_the_adoption_rule(tmp_path):
    v = _load("study_variant")
    both = v.variant((ROOT/"studies"/"default.toml").read_text(), "default-bf16_micro_batches", "bf16_micro_batches")
    import tomllib
    d = tomllib.loads(both)
    assert d["precision"] == "bf16" and all(d[s]["micro_batches"] == 2 for s in ("stage0", "stage1", "stage2"))
    import pandas as pd
    # three as-written seeds of two aggregates (SDs 0.1 and 1.0); the variant's seed 44 moves them by 0.05 and 2.0
    base = pd.DataFrame({42: [0.4, 1.0], 43: [0.5, 2.0], 44: [0.6, 3.0]}, index=["a: gain", "b: gain"])
    var = pd.DataFrame({44: [0.65, 5.0]}, index=["a: gain", "b: gain"])
    r = v.seed_changes(base, var, [44])
    ch = {x["aggregate"]: round(x["change_in_sd"], 6) for x in r["aggregates"]}
    assert ch == {"a: gain": 0.5, "b: gain": 2.0}, ch
    assert r["decision"]["adopt"] is False and (r["decision"]["within"], r["decision"]["of"]) == (1, 2)
    assert v.seed_changes(base, base[[44]], [44])["decision"] | {"rule": ""} == {
        "rule": "", "max_change_in_sd": 0.0, "median_change_in_sd": 0.0, "within": 2, "of": 2, "adopt": True}

    # a CPU's bf16 instructions, from its flags: none on a CPU without them, nothing where /proc/cpuinfo is absent
    (tmp_path/"with").write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    (tmp_path/"without").write_text("flags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert v.cpu_bf16(tmp_path/"with") == ["amx_bf16", "avx512_bf16"] and v.cpu_bf16(tmp_path/"without") == []
    assert v.cpu_bf16(tmp_path/"absent") == []


def test_shard_time_sums_a_seeds_runs_and_reads_the_runner_line(tmp_path):
    st = _load("shard_time")
    folder = tmp_path/"default"
    for rid, step, t in (("s0-mr-lora-s45-0123abcd", "stage0", 120.0), ("s0-nyt-lora-s45-89abcdef", "stage0", 180.0),
                         ("s2-single-mr-nyt-lora-s45-aaaabbbb", "stage2", 60.0), ("s0-mr-lora-s44-ccccdddd", "stage0", 999.0)):
        (folder/rid).mkdir(parents=True); (folder/rid/"done.json").write_text(json.dumps({"step": step, "wall_time": t}))
    (folder/"s0-sms-lora-s45-eeeeffff").mkdir()   # a run in flight: no done.json, not counted
    assert st.shard_times(folder, 45) == {"stage0": {"runs": 2, "total_min": 5.0, "median_s": 150.0},
                                          "stage2": {"runs": 1, "total_min": 1.0, "median_s": 60.0}}
    log = tmp_path/"shard.log"
    log.write_text("study 'default': 153 runs\n100 done now; run time 2h10m in 1h05m wall-clock\n"
                   "153 done now, 0 reused; run time 3h02m in 1h31m wall-clock. The study: 153 done\n")
    assert st.runner_line(log)[1] == 91.0
    log.write_text("40 done now; run time 6m30s in 3m05s wall-clock\n")
    assert st.runner_line(log)[1] == round(3 + 5 / 60, 1)
    log.write_text("no summary yet\n")
    assert st.runner_line(log) == ("", None)


def test_shard_schedule_replays_the_runners_rule():
    ss = _load("shard_schedule")
    from unified_delta_tuning.plan import Run
    # two slots: a (60 s) and b (100 s) start at once; c needs a, the long landscape l needs a, d needs nothing
    a, b, d = (Run(i, "stage2", {}) for i in "abd")
    c, l = Run("c", "stage2", {}, ("a",)), Run("l", "landscape", {}, ("a",))
    s = {"a": 60.0, "b": 100.0, "c": 60.0, "d": 60.0, "l": 300.0}
    # listed last, l starts at 120 s (c at 60, d at 100) and runs alone from d's end at 160 s to 420 s;
    # listed before c and d, it starts at 60 s and ends at 360 s, d (160-220 s) beside it
    assert ss.replay([a, b, c, d, l], s, 2) == {"wall_min": 7.0, "one_slot_idle_at_end_min": round(260 / 60, 1)}
    assert ss.replay([a, b, l, c, d], s, 2) == {"wall_min": 6.0, "one_slot_idle_at_end_min": round(140 / 60, 1)}
    assert [r.id for r in ss.landscape_last([l, a, c])] == ["a", "c", "l"]
    with pytest.raises(ValueError, match="waits on a run not planned"): ss.replay([Run("x", "stage2", {}, ("y",))], s | {"x": 1}, 2)


def test_stage1_steps_variant_is_the_default_studys_pair_and_seed():
    s1 = _load("stage1_steps")
    from unified_delta_tuning.plan import plan_runs
    from unified_delta_tuning.study import parse_study
    text = (ROOT/"studies"/"default.toml").read_text()
    plans = {n: plan_runs(parse_study(s1.variant_text(text, "mr", "nyt", 45, n), ROOT/"studies"/"x.toml")) for n in (60, 120)}
    steps = lambda runs: sorted(r.step for r in runs)
    assert steps(plans[60]) == ["stage0"] * 6 + ["stage1"] + ["stage2"] * 3 and steps(plans[120]) == steps(plans[60])
    # at the study's 60 steps, the published runs' ids: the variant reruns the published subspace
    published = {p.name for p in (ROOT/"reports"/"default").iterdir()}
    assert {r.id for r in plans[60]} <= published and "s1-single-mr-s45-6c4c8f76" in {r.id for r in plans[60]}
    # more steps: the same stage 0, a new stage 1 and the stage-2 runs through it
    same = {r.id for r in plans[60]} & {r.id for r in plans[120]}
    assert same == {r.id for r in plans[60] if r.step == "stage0"}
    assert next(r for r in plans[120] if r.step == "stage1").params["train"]["steps"] == 120
