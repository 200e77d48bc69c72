"""How fast fine-tuning's Fastfood projections fit its stage-0 solution, by the learning rate of their diagonals.

The four-method subspace of the default study never formed: fine-tuning's relative reconstruction error
‖up(down(Δθ)) − Δθ‖/‖Δθ‖ stayed at 1.0 (`benchmarks/stage1_sweep.json`). Its up-projection is a Fastfood map whose
columns have unit norm (entries of scale 1/√D, D = 22.7 M on MiniLM), so one Adafactor step (each trainable entry moves
by about lr) moves an output coordinate by about lr·|z|/√D, against lr·|z| for a dense `nn.Linear` up-projection.
This fits only the reconstruction term (ra · ‖Δθ − up(down(Δθ))‖, no task loss) of one fine-tuning solution for 60
steps (the study's stage-1 budget) with Adafactor at the stage-1 lr 1e-2 for the dense weights and `fastfood_lr` =
lr × each multiplier for the Fastfood maps (`subspace.optimizer_groups`), and records the error every 10 steps.

    source .venv/bin/activate && export OMP_NUM_THREADS=1
    PYTHONPATH=. python benchmarks/fastfood_lr.py --solution runs/default/s0-tweets3-finetune-s42-*/solution.safetensors
"""
import argparse, datetime, glob, json, platform, subprocess, time
from pathlib import Path

import torch
from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.deltas import delta_spec
from unified_delta_tuning.settings import TrainConfig
from unified_delta_tuning.subspace import Subspace, optimizer_groups
from unified_delta_tuning.train import load_solution, make_optimizer

OUT = Path(__file__).with_name("fastfood_lr.json")

def fit(delta, spec, lr, mult, steps=60, every=10, ra=0.1, y=4, seed=42)->dict:
    "Fit the reconstruction term alone; the error every `every` steps."
    sub = Subspace([spec], y=y, seed=seed)
    opt = make_optimizer(optimizer_groups(sub, None if mult == 1 else lr * mult), TrainConfig(lr=lr))
    errors, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        z = sub.encode(spec.method, delta); r = sub.up_project(spec.method, z)
        gap = torch.linalg.vector_norm(delta - r)
        (ra * gap).backward(); opt.step()
        if step % every == 0: errors.append({"step": step, "error": round((gap / delta.norm()).item(), 4)})
    return {"multiplier": mult, "fastfood_lr": lr * mult, "errors": errors, "final_error": errors[-1]["error"],
            "code_norm": round(z.norm().item(), 4), "seconds": round(time.perf_counter() - start, 1)}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solution", default="runs/default/s0-tweets3-finetune-s42-*/solution.safetensors")
    ap.add_argument("--seed", type=int, default=42, help="the stage-0 seed (θ_init)")
    ap.add_argument("--lr", type=float, default=1e-2, help="the stage-1 lr")
    ap.add_argument("--multipliers", type=float, nargs="+", default=[1, 10, 30, 100])
    a = ap.parse_args()
    path = sorted(glob.glob(a.solution))
    if not path: raise SystemExit(f"no solution matches {a.solution}; run stage 0 of the default study for seed 42 "
                                  "(`udt study run studies/default.toml --seeds 42`) or pass --solution")
    bb = load_backbone("minilm"); spec = delta_spec(bb.model, "finetune", seed=a.seed)
    sol = load_solution(path[0], spec); delta = sol.delta
    rows = []
    for m in a.multipliers:
        rows.append(fit(delta, spec, a.lr, m)); print(json.dumps(rows[-1]), flush=True)
        OUT.write_text(json.dumps({
            "benchmark": "fastfood_lr", "date": datetime.date.today().isoformat(),
            "device": f"cpu ({platform.machine()}), {torch.get_num_threads()} thread(s)",
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
            "command": "PYTHONPATH=. python benchmarks/fastfood_lr.py", "solution": path[0],
            "D": spec.D, "delta_norm": round(delta.norm().item(), 4), "lr": a.lr, "steps": 60, "ra": 0.1, "y": 4,
            "rows": rows}, indent=1) + "\n")

if __name__ == "__main__": main()
