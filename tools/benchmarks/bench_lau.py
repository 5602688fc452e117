"""Benchmark of the LaU op: compiled kernel vs pure-PyTorch reference vs F.interpolate.

Not a test. Every ratio is against baselines measured in the same run:
  ref    = mmext's pure-PyTorch reference (4-tap gather), grid construction included;
  interp = F.interpolate(bilinear, no offsets), the speed floor.
On CUDA the two kernel families are timed too: ext-pp (per-pixel kernels,
impl 1) and ext-cl (channels-last kernels, impl 2); `ext` is the public op
(automatic choice). CUDA timing: cuda events around `--inner` back-to-back
calls (host launch overhead hides behind queued work unless it exceeds the GPU
time), after warm-up, median over `--repeats` samples; a second table times
CUDA-graph replays of the same calls (GPU time only, no Python/launch cost). GB/s counts the
fewest bytes the op must move (each input read once, each output written
once; fwd: x + offsets + out; fwd+bwd adds grad_out + x + offsets read and
grad_x + grad_offsets written) against a device-to-device copy (read + write
bytes) measured in the same run. CPU: perf_counter, median.

Usage:
  python tools/benchmarks/bench_lau.py                    # CUDA if available
  python tools/benchmarks/bench_lau.py --device cpu --threads 2 --quick
  python tools/benchmarks/bench_lau.py --profile          # one pass of each CUDA
      kernel family on C=150 float32 (run under ncu -k regex:lau_)
Imports torch and mmext.ops only.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout
from mmext.ops import extension_state, load_extension, location_aware_upsample  # noqa: E402
from mmext.ops.lau_reference import location_aware_upsample_reference  # noqa: E402


def shapes(device: str) -> List[Tuple[str, int, int, int, int, int, int]]:
    """(name, N, C, h, w, k, G)."""
    n_feat = 8 if device == "cuda" else 2
    return [
        ("logits C=21 64->256 k4", 8, 21, 64, 64, 4, 1),
        ("logits C=150 64->256 k4", 8, 150, 64, 64, 4, 1),
        (f"feat N={n_feat} C=256 128->256 k2", n_feat, 256, 128, 128, 2, 1),
    ]


def timer(device: str, fn: Callable[[], None], warmup: int, repeats: int, inner: int = 1) -> float:
    """Median milliseconds of fn() (CUDA: events around `inner` queued calls)."""
    for _ in range(warmup):
        fn()
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / inner)
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def copy_bandwidth_gbs(device: str) -> float:
    """Device copy bandwidth (read + write bytes / time) of a 1 GiB clone."""
    a = torch.empty(256 * 1024 * 1024, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    ms = timer(device, lambda: b.copy_(a), 3, 20)
    return 2 * a.numel() * 4 / (ms * 1e-3) / 1e9


class _ImplFn(torch.autograd.Function):
    """One CUDA kernel family (impl 1 = per-pixel, 2 = channels-last) with autograd."""

    @staticmethod
    def forward(ctx, x, off, k, impl):
        ctx.save_for_backward(x, off)
        ctx.k, ctx.impl = k, impl
        return torch.ops.mmext_testing.lau_forward_impl(x, off, k, k, impl)

    @staticmethod
    def backward(ctx, gy):
        x, off = ctx.saved_tensors
        gx, goff = torch.ops.mmext_testing.lau_backward_impl(gy.contiguous(), x, off, ctx.k, ctx.k, ctx.impl)
        return gx, goff, None, None


def methods_for(device: str, k: int) -> Dict[str, Callable]:
    m: Dict[str, Callable] = {
        "ext": lambda a, b: location_aware_upsample(a, b, k, backend="extension"),
    }
    if device == "cuda":
        m["ext-pp"] = lambda a, b: _ImplFn.apply(a, b, k, 1)
        m["ext-cl"] = lambda a, b: _ImplFn.apply(a, b, k, 2)
    m["ref"] = lambda a, b: location_aware_upsample_reference(a, b, k)
    m["interp"] = lambda a, b: F.interpolate(a, scale_factor=k, mode="bilinear", align_corners=False)
    return m


def make_inputs(device, dtype, n, c, h, w, k, g):
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen).to(device, dtype)
    off = (torch.randn(n, 2 * g, k * h, k * w, generator=gen) * 1.5).to(device, dtype)
    gy = torch.randn(n, c, k * h, k * w, generator=gen).to(device, dtype)
    return x, off, gy


def graph_timer(step: Callable[[], None], repeats: int, inner: int) -> float:
    """Median ms of one replay of a CUDA graph of step() (GPU time, no host overhead).

    Returns NaN if step() cannot be captured.
    """
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture stream (PyTorch's recipe)
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
    except Exception as exc:  # capture is best effort: report, do not abort the run
        print(f"  (graph capture failed: {type(exc).__name__}: {str(exc)[:120]})", flush=True)
        torch.cuda.synchronize()
        return float("nan")
    ms = timer("cuda", graph.replay, 3, repeats, inner)
    del graph
    return ms


def bench_case(device, dtype, name, n, c, h, w, k, g, warmup, repeats, inner=1, graphs=False) -> Dict[str, float]:
    x, off, gy = make_inputs(device, dtype, n, c, h, w, k, g)
    res: Dict[str, float] = {}
    for key, fn in methods_for(device, k).items():
        def fwd():
            with torch.no_grad():
                fn(x, off)

        res[f"{key}_fwd"] = timer(device, fwd, warmup, repeats, inner)
        xr, offr = x.clone().requires_grad_(), off.clone().requires_grad_()

        def fwd_bwd():
            xr.grad = offr.grad = None
            fn(xr, offr).backward(gy)

        res[f"{key}_fb"] = timer(device, fwd_bwd, warmup, repeats, inner)
        if graphs:
            res[f"{key}_fwd_graph"] = graph_timer(fwd, repeats, inner)
            res[f"{key}_fb_graph"] = graph_timer(fwd_bwd, repeats, inner)
    es = x.element_size()
    res["fwd_bytes"] = es * (x.numel() + off.numel() + gy.numel())
    # + backward: read grad_out, x, offsets; write grad_x, grad_offsets.
    res["fb_bytes"] = res["fwd_bytes"] + es * (gy.numel() + 2 * x.numel() + 2 * off.numel())
    return res


def profile(dtype: torch.dtype) -> None:
    """One forward + backward of each CUDA kernel family on C=150 (for ncu)."""
    x, off, gy = make_inputs("cuda", dtype, 8, 150, 64, 64, 4, 1)
    for impl in (1, 2, 1, 2):  # second round: after warm-up, what ncu should look at
        torch.ops.mmext_testing.lau_forward_impl(x, off, 4, 4, impl)
        torch.ops.mmext_testing.lau_backward_impl(gy, x, off, 4, 4, impl)
    torch.cuda.synchronize()
    print("profile pass done")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU), 0 = leave")
    p.add_argument("--quick", action="store_true", help="few repeats (CPU)")
    p.add_argument("--dtypes", default=None, help="comma list, default float32 (+bfloat16 on CUDA)")
    p.add_argument("--inner", type=int, default=0, help="calls per timed sample (CUDA), 0 = auto")
    p.add_argument("--profile", action="store_true", help="one pass per CUDA kernel family, for ncu")
    p.add_argument("--no-graphs", action="store_true", help="CUDA: skip the CUDA-graph (GPU time) table")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not load_extension():
        print(f"extension unavailable: {extension_state().error}")
        return 1
    dev = args.device
    if args.profile:
        profile(getattr(torch, (args.dtypes or "float32").split(",")[0]))
        return 0
    dtypes = args.dtypes.split(",") if args.dtypes else (["float32", "bfloat16"] if dev == "cuda" else ["float32"])
    if dev == "cuda":
        warmup, repeats = (3, 10) if args.quick else (5, 20)
        inner = args.inner or (3 if args.quick else 5)
        dev_name = torch.cuda.get_device_name()
    else:
        warmup, repeats = (2, 3) if args.quick else (2, 7)
        inner = args.inner or 1
        dev_name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, device {dev} ({dev_name}), warmup {warmup}, "
          f"repeats {repeats} (median) x {inner} calls per sample")
    copy_bw = copy_bandwidth_gbs(dev) if dev == "cuda" else None
    if copy_bw:
        print(f"measured copy bandwidth (1 GiB float32 copy_, read + write bytes): {copy_bw:.0f} GB/s")
    graphs = dev == "cuda" and not args.no_graphs
    results = []
    for dname in dtypes:
        dtype = getattr(torch, dname)
        for name, n, c, h, w, k, g in shapes(dev):
            r = bench_case(dev, dtype, name, n, c, h, w, k, g, warmup, repeats, inner, graphs)
            results.append((name, dname, r))
            print(f"  measured {name} {dname}", flush=True)
            if dev == "cuda":
                torch.cuda.empty_cache()
    keys = list(methods_for(dev, 2))
    print_table(results, keys, "", "eager (Python + launch overhead included)", copy_bw)
    if graphs:
        print_table(results, keys, "_graph", "CUDA graph replay (GPU time only)", copy_bw)
    return 0


def print_table(results, keys, suffix: str, title: str, copy_bw) -> None:
    extra = [key for key in keys if key.startswith("ext-")]
    print(f"\n{title}: median ms per call; x/ref < 1 means faster than the reference")
    hdr = (f"| {'shape':<30} | {'dtype':<8} | {'mode':<7} | "
           + " | ".join(f"{key + ' ms':>9}" for key in keys)
           + f" | {'ext/ref':>7} | {'ext/interp':>10} | {'ref/interp':>10}"
           + "".join(f" | {key + '/ref':>10}" for key in extra))
    if copy_bw:
        hdr += " | " + " | ".join(f"{key + ' %copy':>12}" for key in ["ext"] + extra) + f" | {'ext GB/s':>8}"
    print(hdr + " |")
    print("|" + "|".join("---" for _ in hdr.split("|")[1:]) + "|")
    for name, dname, r in results:
        for mode, tag in (("fwd", "fwd"), ("fb", "fwd+bwd")):
            t = {key: r[f"{key}_{mode}{suffix}"] for key in keys}
            e, rf, it = t["ext"], t["ref"], t["interp"]
            line = (f"| {name:<30} | {dname:<8} | {tag:<7} | "
                    + " | ".join(f"{t[key]:9.3f}" for key in keys)
                    + f" | {e / rf:7.2f} | {e / it:10.2f} | {rf / it:10.2f}"
                    + "".join(f" | {t[key] / rf:10.2f}" for key in extra))
            if copy_bw:
                nbytes = r[f"{mode}_bytes"]
                pct = [100 * nbytes / (t[key] * 1e-3) / 1e9 / copy_bw for key in ["ext"] + extra]
                line += " | " + " | ".join(f"{v:11.0f}%" for v in pct)
                line += f" | {nbytes / (e * 1e-3) / 1e9:8.0f}"
            print(line + " |", flush=True)

if __name__ == "__main__":
    sys.exit(main())
