"""Evaluate a checkpoint with an mmdet or mmseg config (mmext modules registered).

    python tools/test.py CONFIG CHECKPOINT [--show-dir DIR] [--out results.pkl]
    tools/dist_test.sh CONFIG CHECKPOINT 2
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmext.engine import check_checkpoint, run_cli  # noqa: E402
from mmext.engine.cli import (add_runner_args, build_runner,  # noqa: E402
                              parse_runner_args, prepare_config)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this pickle file '
                        '(mmdet configs)')
    parser.add_argument('--show-dir', help='save drawn predictions (PNG) under '
                        '<work_dir>/<timestamp>/<show_dir> (mmdet configs) or '
                        '<work_dir>/<show_dir>/vis_data/vis_image (mmseg configs)')
    add_runner_args(parser)
    return parse_runner_args(parser)


def enable_drawing(cfg, show_dir: str) -> None:
    """Turn on the config's visualization hook and send its PNGs to ``show_dir``."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise RuntimeError("--show-dir needs default_hooks.visualization "
                           "(mmdet's DetVisualizationHook / mmseg's SegVisualizationHook)")
    hook['draw'] = True
    if 'Det' in str(hook.get('type', '')):
        hook['test_out_dir'] = show_dir  # relative to <work_dir>/<timestamp>
    else:
        cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)


def main() -> None:
    args = parse_args()
    import mmext  # noqa: F401  (registers modules and checkpoint safe globals)

    check_checkpoint(args.checkpoint)
    cfg = prepare_config(args, 'test')
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.show_dir:
        enable_drawing(cfg, args.show_dir)
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        raise RuntimeError('--out must be a .pkl file')

    runner = build_runner(cfg)
    if args.out:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    run_cli(main)
