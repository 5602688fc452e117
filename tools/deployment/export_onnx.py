"""Export an mmseg / mmdet / mmext model to ONNX (standard ops only) and check it.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out model.onnx
        [--shape H W] [--batch N] [--dynamic] [--verify] [--opset N]
        [--dynamo | --no-dynamo] [--cfg-options key=value ...]

What the file computes (see docs/deploy.md): segmentors -> ``seg_logits`` at the input
size; single-stage detectors (RetinaNet, FCOS, PKD students) -> the head's outputs per
level; two-stage detectors (Faster / Mask / Cascade R-CNN) -> neck maps and RPN
outputs (proposals and the RoI head run in Python:
mmext.deploy.two_stage_predict_from_outputs); SpatialFlow -> head outputs, stuff logits and mask-tower features (the rest runs
in Python: mmext.deploy.spatialflow_predict_from_outputs). The graph's input
``inputs`` is the data preprocessor's output (normalised, padded), (N, 3, H, W).

CHECKPOINT ``none`` exports the config's untrained (seeded) weights (smoke tests).
A FeatureDistiller config exports its student. ``--verify`` runs the file in
onnxruntime on the export input (and, with ``--dynamic``, on a second batch size and
input size) and prints the max abs difference to PyTorch per output.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmext.engine import run_cli  # noqa: E402
from mmext.utils.errors import UserError  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='model config file (mmdet or mmseg scope)')
    parser.add_argument('checkpoint', help="checkpoint .pth, or 'none' for untrained "
                        'weights')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input height and width (default: the config's crop / "
                        'test size, rounded up to the network stride)')
    parser.add_argument('--batch', type=int, default=1, help='batch size of the '
                        'export input (default 1)')
    parser.add_argument('--dynamic', action='store_true', help='dynamic batch, height '
                        'and width (height and width: multiples of the network stride)')
    parser.add_argument('--verify', action='store_true', help='run the file in '
                        'onnxruntime and print the max abs difference to PyTorch')
    parser.add_argument('--atol', type=float, default=1e-3, help='--verify fails above '
                        'this max abs difference (default 1e-3)')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset (default 18; at least 16)')
    parser.add_argument('--dynamo', action=argparse.BooleanOptionalAction, default=True,
                        help="torch's dynamo exporter (default) or, with --no-dynamo, "
                        'the TorchScript exporter')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def check_dependencies(args: argparse.Namespace) -> None:
    """Fail before building anything when a deploy package is missing."""
    from mmext.deploy.verify import require_module
    require_module('onnx', 'ONNX export')
    if args.dynamo:
        require_module('onnxscript', "torch's dynamo ONNX exporter")
    if args.verify:
        require_module('onnxruntime', '--verify')


def default_shape(cfg, divisor: int) -> Tuple[int, int]:
    """The config's crop size (mmseg) or first test Resize scale (mmdet, (w, h)),
    rounded up to ``divisor``; 512 x 512 when the config has neither."""
    h = w = 512
    if cfg.get('crop_size'):
        h, w = cfg.crop_size
    else:
        pipeline = (cfg.get('test_dataloader') or {}).get('dataset', {}).get('pipeline', [])
        for step in pipeline or []:
            if step.get('type') == 'Resize' and step.get('scale'):
                w, h = step['scale']
                break

    def up(v: int) -> int:
        return max(divisor, -(-int(v) // divisor) * divisor)
    return up(h), up(w)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if not args.out.endswith('.onnx'):
        raise UserError(f"--out '{args.out}': give a file name ending in .onnx")
    if args.batch < 1:
        raise UserError(f'--batch {args.batch}: give a batch size >= 1')
    check_dependencies(args)
    import torch

    from mmext.deploy import (compare_outputs, export_onnx, load_model,
                              run_onnxruntime, wrap_for_export)
    from mmext.deploy.export import check_input_shape
    from mmext.deploy.verify import torch_outputs
    from mmext.engine import load_config

    cfg = load_config(args.config, args.cfg_options)
    model = load_model(cfg, args.checkpoint)
    spec = wrap_for_export(model)
    if args.shape:
        check_input_shape(args.shape, spec.size_divisor)
        shape = tuple(args.shape)
    else:
        shape = default_shape(cfg, spec.size_divisor)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(args.batch, 3, *shape, generator=generator)
    export_onnx(spec.module, inputs, args.out, spec.output_names, opset=args.opset,
                dynamo=args.dynamo, dynamic=args.dynamic,
                size_divisor=spec.size_divisor)
    print(f'wrote {args.out}: {spec.kind} {type(model).__name__}, input inputs '
          f'{tuple(inputs.shape)}{" (dynamic N, H, W)" if args.dynamic else ""}, '
          f'outputs {", ".join(spec.output_names)}')
    if not args.verify:
        return
    checks = [inputs]
    if args.dynamic:
        h, w = shape
        checks.append(torch.randn(args.batch + 1, 3, h + spec.size_divisor, w,
                                  generator=generator))
    worst = 0.0
    for x in checks:
        diffs = compare_outputs(torch_outputs(spec.module, x),
                                run_onnxruntime(args.out, x), spec.output_names)
        print(f'verify (onnxruntime vs PyTorch) on input {tuple(x.shape)}:')
        for name, diff in diffs.items():
            print(f'  {name:<16} max abs diff {diff:.3g}')
        worst = max(worst, max(diffs.values()))
    if worst > args.atol:
        print(f'mmext: verify failed: max abs diff {worst:.3g} > --atol {args.atol}',
              file=sys.stderr)
        sys.exit(1)
    print(f'verify ok: max abs diff {worst:.3g} <= {args.atol}')


if __name__ == '__main__':
    run_cli(main)
