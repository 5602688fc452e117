"""Benchmark of the LaU op: compiled kernel vs grid_sample reference vs F.interpolate.

Not a test. Every ratio is against baselines measured in the same run:
  ref    = mmext's grid_sample reference, grid construction included;
  interp = F.interpolate(bilinear, no offsets), the speed floor.
CUDA: cuda-event timing after warm-up, median of many runs, plus forward
bandwidth against the bytes the op must move and the device's measured copy
bandwidth. CPU: perf_counter, median.

Usage:
  python tools/benchmarks/bench_lau.py                    # CUDA if available
  python tools/benchmarks/bench_lau.py --device cpu --threads 2 --quick
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


def timer(device: str, fn: Callable[[], None], warmup: int, repeats: int) -> float:
    """Median milliseconds of fn()."""
    for _ in range(warmup):
        fn()
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
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


def bench_case(device, dtype, name, n, c, h, w, k, g, warmup, repeats) -> Dict[str, float]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen).to(device, dtype)
    off = (torch.randn(n, 2 * g, k * h, k * w, generator=gen) * 1.5).to(device, dtype)
    gy = torch.randn(n, c, k * h, k * w, generator=gen).to(device, dtype)
    methods = {
        "ext": lambda a, b: location_aware_upsample(a, b, k, backend="extension"),
        "ref": lambda a, b: location_aware_upsample_reference(a, b, k),
        "interp": lambda a, b: F.interpolate(a, scale_factor=k, mode="bilinear", align_corners=False),
    }
    res: Dict[str, float] = {}
    for key, fn in methods.items():
        with torch.no_grad():
            res[f"{key}_fwd"] = timer(device, lambda: fn(x, off), warmup, repeats)
        xr, offr = x.clone().requires_grad_(), off.clone().requires_grad_()

        def fwd_bwd():
            xr.grad = offr.grad = None
            fn(xr, offr).backward(gy)

        res[f"{key}_fb"] = timer(device, fwd_bwd, warmup, repeats)
    es = x.element_size()
    res["fwd_bytes"] = es * (x.numel() + off.numel() + gy.numel())
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU), 0 = leave")
    p.add_argument("--quick", action="store_true", help="few repeats (CPU)")
    p.add_argument("--dtypes", default=None, help="comma list, default float32 (+bfloat16 on CUDA)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not load_extension():
        print(f"extension unavailable: {extension_state().error}")
        return 1
    dev = args.device
    dtypes = args.dtypes.split(",") if args.dtypes else (["float32", "bfloat16"] if dev == "cuda" else ["float32"])
    if dev == "cuda":
        warmup, repeats = (3, 10) if args.quick else (10, 50)
        dev_name = torch.cuda.get_device_name()
    else:
        warmup, repeats = (2, 3) if args.quick else (2, 7)
        dev_name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, device {dev} ({dev_name}), warmup {warmup}, repeats {repeats} (median)")
    copy_bw = copy_bandwidth_gbs(dev) if dev == "cuda" else None
    if copy_bw:
        print(f"measured copy bandwidth: {copy_bw:.0f} GB/s")
    hdr = (f"{'shape':<30} {'dtype':<9} {'mode':<7} {'ext ms':>9} {'ref ms':>9} {'interp ms':>9} "
           f"{'ext/ref':>8} {'ext/interp':>10} {'ref/interp':>10}")
    if copy_bw:
        hdr += f" {'ext GB/s':>9} {'%copy':>6}"
    print(hdr)
    for dname in dtypes:
        dtype = getattr(torch, dname)
        for name, n, c, h, w, k, g in shapes(dev):
            r = bench_case(dev, dtype, name, n, c, h, w, k, g, warmup, repeats)
            for mode, tag in (("fwd", "fwd"), ("fb", "fwd+bwd")):
                e, rf, it = r[f"ext_{mode}"], r[f"ref_{mode}"], r[f"interp_{mode}"]
                line = (f"{name:<30} {dname:<9} {tag:<7} {e:9.2f} {rf:9.2f} {it:9.2f} "
                        f"{e / rf:8.2f} {e / it:10.2f} {rf / it:10.2f}")
                if copy_bw and mode == "fwd":
                    gbs = r["fwd_bytes"] / (e * 1e-3) / 1e9
                    line += f" {gbs:9.0f} {100 * gbs / copy_bw:5.0f}%"
                print(line, flush=True)
            if dev == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
