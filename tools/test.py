"""Evaluate a checkpoint with an mmdet or mmseg config (mmext modules registered).

    python tools/test.py CONFIG CHECKPOINT [--show-dir DIR] [--out results.pkl]
    tools/dist_test.sh CONFIG CHECKPOINT 2
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmengine.config import DictAction  # noqa: E402

from mmext.engine import (check_checkpoint, check_data_paths,  # noqa: E402
                          load_config, run_cli, setup_launcher)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file '
                        '(mmdet configs)')
    parser.add_argument('--show-dir', help='save drawn predictions under '
                        '<work_dir>/<timestamp>/<show_dir>')
    parser.add_argument('--amp', action='store_true', help='mixed-precision test')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


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
        hook['interval'] = 1


def main() -> None:
    args = parse_args()
    import mmext  # noqa: F401  (registers modules and checkpoint safe globals)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    cfg = load_config(args.config, args.cfg_options)
    check_checkpoint(args.checkpoint)
    check_data_paths(cfg, 'test')
    setup_launcher(cfg, args.launcher)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.show_dir:
        enable_drawing(cfg, args.show_dir)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise RuntimeError('--out must be a .pkl file')
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    run_cli(main)
