"""onnxruntime vs PyTorch CPU latency of exported demo models (not a test).

For each model (untrained seeded weights: latency does not depend on them) the
export wrapper (mmext.deploy) runs in PyTorch (``torch.no_grad``, eval) and the
exported file in onnxruntime (CPU execution provider), on the same input, in the same
process, alternating, after warm-up; the table gives the median of ``--runs`` calls
each and the ratio onnxruntime / PyTorch. Both use ``--threads`` threads.

    python tools/benchmarks/bench_onnx.py [--runs 30] [--threads 2] [--shape 160 160]
"""
import argparse
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
from typing import Callable, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

MODELS = {
    'LaU demo segmentor (FCN R18/4 + LaUHead k=4)': 'configs/demo/seg_lau_demo.py',
    'RetinaNet R18 demo (head outputs)': 'configs/demo/retinanet_r18_demo.py',
}


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def _median_ms(fn: Callable[[], object], runs: int) -> List[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--shape', type=int, nargs=2, default=(160, 160))
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from mmext.deploy import export_onnx, load_model, wrap_for_export
    from mmext.engine import load_config

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for title, config in MODELS.items():
            model = load_model(load_config(config), 'none')
            spec = wrap_for_export(model)
            x = torch.randn(1, 3, *args.shape, generator=torch.Generator().manual_seed(0))
            path = export_onnx(spec.module, x, osp.join(tmp, 'model.onnx'),
                               spec.output_names, size_divisor=spec.size_divisor)
            session = ort.InferenceSession(path, options,
                                           providers=['CPUExecutionProvider'])
            feed = {'inputs': x.numpy()}

            def run_torch():
                with torch.no_grad():
                    return spec.module(x)

            def run_ort():
                return session.run(None, feed)

            for _ in range(args.warmup):
                run_torch()
                run_ort()
            t_torch, t_ort = [], []
            for _ in range(args.runs):  # alternate: both see the same machine load
                t_torch += _median_ms(run_torch, 1)
                t_ort += _median_ms(run_ort, 1)
            pt, rt = statistics.median(t_torch), statistics.median(t_ort)
            rows.append((title, pt, rt, rt / pt))
    print(f'machine: {_cpu_name()}, {os.cpu_count()} logical CPUs, '
          f'{platform.system()} {platform.machine()}; Python {platform.python_version()}, '
          f'torch {torch.__version__}, onnxruntime {ort.__version__}; '
          f'{args.threads} threads each; input 1x3x{args.shape[0]}x{args.shape[1]}; '
          f'median of {args.runs} runs after {args.warmup} warm-up runs')
    print()
    print('| model | PyTorch (ms) | onnxruntime (ms) | onnxruntime / PyTorch |')
    print('|---|---|---|---|')
    for title, pt, rt, ratio in rows:
        print(f'| {title} | {pt:.2f} | {rt:.2f} | {ratio:.2f} |')


if __name__ == '__main__':
    main()
