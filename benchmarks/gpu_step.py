"""One training step of each stage against PEFT LoRA eager, on T5-v1.1-base shapes (random weights): time, tokens/s, memory.

The GPU benchmark of issue 15. Arms, each a full step (forward, backward, Adafactor update) on the same batches:

- `peft_lora`: PEFT's LoRA (r, alpha and targets q, v as our LoRA spec), eager;
- `stage0_<method>`: our flat vector θ of each delta method trained through `use_delta`;
- `stage2_<method>`: a y = 4 code trained through a frozen up-projection of a three-method subspace;
- `stage1_y100`: one stage-1 step of a three-method subspace at y = 100 (three dense D × 100 up-projections), the task
  loss of every method at one interpolated code plus the reconstruction term (`subspace.subspace_loss`).

Each arm runs on two batch shapes: `padded` (batch 8, inputs padded to 512 and targets to 64 tokens, as the authors' code
pads) and `per_batch` (the same 8 examples padded to the longest in the batch, lengths drawn from the default study's
tasks; `benchmarks/gpu_lengths.json`, written by `--write-lengths`). Tokens/s counts real (unpadded) tokens.

    PYTHONPATH=. python benchmarks/gpu_step.py                    # on a GPU: bf16, T5-v1.1-base, writes benchmarks/gpu_step.json
    PYTHONPATH=. python benchmarks/gpu_step.py --tiny --out x.json  # a tiny T5 on CPU in seconds (CI runs this)

The GPU machine has torch, transformers and peft but not fastcore: put a fastcore wheel's contents in
`benchmarks/vendor/` (`pip download fastcore --no-deps -d /tmp/w && unzip /tmp/w/*.whl -d benchmarks/vendor`) and carry it.
"""
import argparse, datetime, json, platform, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE/"vendor").is_dir(): sys.path.insert(0, str(HERE/"vendor"))

import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.optimization import Adafactor

from unified_delta_tuning.backbones import Backbone
from unified_delta_tuning.deltas import METHODS, delta_spec, use_delta
from unified_delta_tuning.subspace import Subspace, subspace_loss

LENGTHS = HERE/"gpu_lengths.json"
BATCH = 8

def t5_config(tiny:bool)->T5Config:
    "T5-v1.1-base's shapes, or a tiny T5 of the same kind."
    common = dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    if tiny: return T5Config(vocab_size=256, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2, **common)
    return T5Config(vocab_size=32128, d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12, **common)

def write_lengths(path:Path=LENGTHS, n:int=2000):
    "Input and target token counts of the default study's training tasks (MiniLM word pieces; T5's input format adds the task name)."
    from unified_delta_tuning.backbones import load_backbone
    from unified_delta_tuning.text_to_text import t5_input
    from unified_delta_tuning.tasks import load_task
    tok = load_backbone("minilm").tokenizer; out = {"inputs": [], "targets": [], "tasks": ["tweets3", "trec50", "amazon", "trec6"]}
    for name in out["tasks"]:
        t = load_task(name, seed=42); ex = list(t.train)[:n // 4]
        out["inputs"] += [len(ids) for ids in tok([t5_input(name, e.text) for e in ex], truncation=True, max_length=512)["input_ids"]]
        out["targets"] += [len(ids) for ids in tok([e.answers[0] for e in ex], truncation=True, max_length=64)["input_ids"]]
    path.write_text(json.dumps(out) + "\n"); print(f"wrote {path}: {len(out['inputs'])} examples")

def batches(cfg:T5Config, kind:str, n:int, tiny:bool, device, seed:int=0)->list[dict]:
    "`n` batches of random token ids: `padded` to 512/64 (tiny: 64/8) or `per_batch` to the longest of real lengths."
    lengths = json.loads(LENGTHS.read_text()); g = torch.Generator().manual_seed(seed)
    cap_in, cap_tg = (64, 8) if tiny else (512, 64); out = []
    for _ in range(n):
        pick = torch.randint(len(lengths["inputs"]), (BATCH,), generator=g).tolist()
        li = [min(lengths["inputs"][i], cap_in) for i in pick]; lt = [min(lengths["targets"][i] + 1, cap_tg) for i in pick]   # + eos
        Ti, Tt = (cap_in, cap_tg) if kind == "padded" else (max(li), max(lt))
        ids = torch.randint(2, cfg.vocab_size, (BATCH, Ti), generator=g); labels = torch.randint(2, cfg.vocab_size, (BATCH, Tt), generator=g)
        mask = (torch.arange(Ti)[None] < torch.tensor(li)[:, None]).long(); ids[mask == 0] = 0
        labels[torch.arange(Tt)[None] >= torch.tensor(lt)[:, None]] = -100
        out.append({"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device), "real_tokens": sum(li) + sum(lt)})
    return out

def adafactor(params)->Adafactor:
    "The authors' optimiser: Adafactor at a constant learning rate."
    return Adafactor(params, lr=1e-3, scale_parameter=False, relative_step=False, warmup_init=False)

def time_steps(step, data:list[dict], warmup:int, device)->dict:
    "Median and interquartile range of the step time over `data` after `warmup` steps; tokens/s and peak memory."
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    times = []
    for i, b in enumerate(data):
        sync(); t0 = time.perf_counter(); step(b); sync()
        if i >= warmup: times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    tokens = statistics.mean(b["real_tokens"] for b in data[warmup:])
    return {"median_s": statistics.median(times), "iqr_s": [q[0], q[2]], "steps": len(times), "real_tokens_per_s": tokens / statistics.median(times),
            "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None}

def model_loss(model, b:dict): return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss

def peft_arm(model, lora_sizes:dict):
    "PEFT LoRA (same r, alpha, targets) around a copy of the model, with its own step."
    from peft import LoraConfig, get_peft_model
    import copy
    pm = get_peft_model(copy.deepcopy(model), LoraConfig(r=lora_sizes["r"], lora_alpha=lora_sizes["alpha"], target_modules=["q", "v"], lora_dropout=0.0))
    opt = adafactor([p for p in pm.parameters() if p.requires_grad])
    def step(b): opt.zero_grad(set_to_none=True); model_loss(pm, b).backward(); opt.step()
    return step, pm

def vector_arm(model, spec):
    "Our stage 0: the method's flat vector θ, trained through `use_delta`."
    theta = spec.init.clone().to(next(model.parameters()).device, torch.float32).requires_grad_(True); opt = adafactor([theta])
    def step(b):
        opt.zero_grad(set_to_none=True)
        with use_delta(model, spec, theta): loss = model_loss(model, b)
        loss.backward(); opt.step()
    return step

def code_arm(model, sub:Subspace, method:str):
    "Our stage 2: a code of the (frozen) subspace trained through `method`'s up-projection."
    code = torch.zeros(sub.y, device=sub.init(method).device).normal_(0, 0.02).requires_grad_(True); opt = adafactor([code])
    def step(b):
        opt.zero_grad(set_to_none=True)
        with use_delta(model, sub.specs[method], sub.decode(method, code)): loss = model_loss(model, b)
        loss.backward(); opt.step()
    return step

def stage1_arm(model, sub:Subspace, g:torch.Generator):
    "Our stage 1: the projections trained on one batch: every method's task loss at one interpolated code + ra · reconstruction."
    bb = Backbone(model, tokenizer=None, name="random T5")
    deltas = {m: 0.01 * torch.randn(sub.specs[m].D, generator=g).to(sub.init(m)) for m in sub.methods}
    w = torch.full((len(sub.methods),), 1 / len(sub.methods)); opt = adafactor([p for p in sub.parameters() if p.requires_grad])
    def step(b):
        opt.zero_grad(set_to_none=True)
        loss, _ = subspace_loss(bb, sub, None, {k: b[k] for k in ("input_ids", "attention_mask", "labels")}, deltas, w, 10.0)
        loss.backward(); opt.step()
    return step

def commit()->str|None:
    try: return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except Exception: return None

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="a tiny T5 on CPU, a few steps (a check that the benchmark runs)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per arm (default 20; tiny 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; tiny 1)")
    p.add_argument("--out", type=Path, default=HERE/"gpu_step.json", help="where the JSON result goes")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 with --tiny, which runs on shared CI cores; else torch's default)")
    p.add_argument("--write-lengths", action="store_true", help="write benchmarks/gpu_lengths.json from the offline tasks and stop")
    a = p.parse_args(argv)
    if a.write_lengths: return write_lengths()
    if a.tiny or a.threads: torch.set_num_threads(a.threads or 1)   # torch's default takes every core, however many processes share them
    device = torch.device("cuda" if torch.cuda.is_available() and not a.tiny else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    steps, warmup = a.steps or (3 if a.tiny else 20), a.warmup if a.warmup is not None else (1 if a.tiny else 5)
    torch.manual_seed(0); cfg = t5_config(a.tiny)
    model = T5ForConditionalGeneration(cfg).to(device, dtype).eval().requires_grad_(False)
    specs = {m: delta_spec(model, m, seed=42) for m in METHODS}
    result = {"benchmark": "gpu_step", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit(),
              "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
              "torch": torch.__version__, "dtype": str(dtype).removeprefix("torch."), "model": "tiny T5" if a.tiny else "T5-v1.1-base shapes (random weights)",
              "threads": torch.get_num_threads(), "batch": BATCH, "steps": steps, "warmup": warmup, "D": {m: s.D for m, s in specs.items()}, "arms": {}}
    data = {kind: batches(cfg, kind, warmup + steps, a.tiny, device) for kind in ("padded", "per_batch")}
    sub4 = Subspace([specs[m] for m in METHODS], y=4).to(device).requires_grad_(False)
    sub100 = Subspace([specs[m] for m in METHODS], y=100).to(device)
    arms = {"peft_lora": peft_arm(model, specs["lora"].sizes)[0],
            **{f"stage0_{m}": vector_arm(model, specs[m]) for m in METHODS},
            **{f"stage2_{m}": code_arm(model, sub4, m) for m in METHODS},
            "stage1_y100": stage1_arm(model, sub100, torch.Generator().manual_seed(0))}
    for name, step in arms.items():
        for kind, d in data.items():
            r = result["arms"].setdefault(name, {})[kind] = time_steps(step, d, warmup, device)
            print(f"{name:>16} {kind:>9}: {1e3 * r['median_s']:8.1f} ms/step  {r['real_tokens_per_s']:10.0f} real tokens/s", flush=True)
    base = result["arms"]["peft_lora"]["padded"]["median_s"]
    result["speedup_vs_peft_padded"] = {f"{n}/{k}": base / v[k]["median_s"] for n, v in result["arms"].items() for k in v}
    a.out.write_text(json.dumps(result, indent=1) + "\n"); print(f"wrote {a.out}")
    return result

if __name__ == "__main__": main()
