"Fastfood timings (issue 15): today's `fwht` and Fastfood/FastfoodDown against the dense-factor code they replace, at MiniLM fine-tuning scale. Writes benchmarks/fastfood.json."
import datetime, json, os, platform, time
from pathlib import Path
import torch, torch.nn.functional as F
from unified_delta_tuning.projections import Fastfood, FastfoodDown, fwht, hadamard, _Permute

torch.set_num_threads(1)
D, REPS = 22_713_216, int(os.environ.get("REPS", 5))

def legacy_fwht(x, bits=6):   # the code before issue 15: dense Kronecker factors of ≤ 2**bits along moved axes
    n = x.shape[-1]; k, lead = n.bit_length() - 1, x.shape[:-1]
    sizes = [1 << min(bits, k - i) for i in range(0, k, bits)]
    if len(sizes) <= 1: return x @ hadamard(n, x.dtype, x.device) if n > 1 else x
    x = x.reshape(*lead, *sizes)
    for i, m in enumerate(sizes): x = (x.movedim(len(lead) + i, -1) @ hadamard(m, x.dtype, x.device)).movedim(-1, len(lead) + i)
    return x.reshape(*lead, n)

def legacy_forward(ff, x):
    h = F.pad(x, (0, ff.n - ff.y)).unsqueeze(-2) * ff.B.to(x.dtype)
    h = _Permute.apply(legacy_fwht(h).flatten(-2), ff.perm, ff.iperm).unflatten(-1, (ff.blocks, ff.n)) * ff.G
    return legacy_fwht(h).flatten(-2)[..., :ff.D] * ff.scale

def legacy_transpose(ff, v):
    h = F.pad(v, (0, ff.blocks * ff.n - ff.D)).unflatten(-1, (ff.blocks, ff.n))
    h = legacy_fwht(h) * ff.G
    h = legacy_fwht(_Permute.apply(h.flatten(-2), ff.iperm, ff.perm).unflatten(-1, (ff.blocks, ff.n))) * ff.B.to(v.dtype)
    return h.sum(-2)[..., :ff.y] * ff.scale

def timeit(f, reps=REPS):
    f(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    q = torch.tensor(ts, dtype=torch.float64).quantile(torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {"median_s": q[1], "iqr_s": q[2] - q[0], "reps": reps}

res = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": f"{platform.platform()} | {platform.processor() or platform.machine()} | {os.cpu_count()} CPUs",
       "torch": torch.__version__, "threads": torch.get_num_threads(), "D": D, "fwht": {}, "fastfood": {}}
g = torch.Generator().manual_seed(0)
shapes = {"n4 [5.7M, 4]": (D // 4, 4), "n128 [177k, 128]": (D // 128, 128), "n128 batch [4, 44k, 128]": (4, D // 512, 128), "n1024 [22k, 1024]": (D // 1024, 1024)}
for name, shape in shapes.items():
    x = torch.randn(shape, generator=g); n = shape[-1]
    cands = {"legacy dense factors bits=6 (old)": lambda: legacy_fwht(x), "legacy dense factors bits=4": lambda: legacy_fwht(x, 4),
             "butterfly only (bits=0)": lambda: fwht(x, 0), "dense 2^3 + butterflies (bits=3)": lambda: fwht(x, 3),
             "dense 2^6 + butterflies (bits=6)": lambda: fwht(x, 6), "dense 2^7 + butterflies (bits=7, new default)": lambda: fwht(x, 7)}
    if n == 1024: cands["dense 2^8 + butterflies (bits=8)"] = lambda: fwht(x, 8)
    if "batch" in name: cands = {k: v for k, v in cands.items() if "old" in k or "new" in k}
    res["fwht"][name] = {k: timeit(f) for k, f in cands.items()}
    print(name, {k: round(v["median_s"] * 1e3, 1) for k, v in res["fwht"][name].items()}, flush=True)
    del x

for y in (4, 100):
    up, down = Fastfood(y, D, D ** -0.5, seed=1), FastfoodDown(D, y, 0.02, seed=2)
    code, delta = torch.randn(y, generator=g), torch.randn(D, generator=g) * 1e-4
    def fb(fn, inp):
        def f():
            i = inp.clone().requires_grad_(inp.numel() == y)
            out = fn(i); (out.square().sum() if out.numel() > y else out.tanh().sum()).backward()
        return f
    cases = {"Fastfood forward": (lambda: legacy_forward(up, code), lambda: up(code)),
             "Fastfood forward+backward": (fb(lambda i: legacy_forward(up, i), code), fb(up, code)),
             "FastfoodDown forward": (lambda: legacy_transpose(down.ff, delta) + down.bias, lambda: down(delta)),
             "FastfoodDown forward+backward": (fb(lambda i: legacy_transpose(down.ff, i) + down.bias, delta), fb(down, delta))}
    for name, (old, new) in cases.items():
        ctx = torch.no_grad() if "backward" not in name else torch.enable_grad()
        with ctx: r = {"old": timeit(old), "new": timeit(new)}
        r["speedup"] = r["old"]["median_s"] / r["new"]["median_s"]
        res["fastfood"][f"y={y} (n={up.n}) {name}"] = r
        print(y, name, round(r["old"]["median_s"], 3), round(r["new"]["median_s"], 3), round(r["speedup"], 2), flush=True)
    del up, down
Path(__file__).with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
