"""Train an mmdet or mmseg config (mmext modules registered), mmdet/mmseg style.

    python tools/train.py configs/demo/retinanet_r18_demo.py [--amp] [--resume [CKPT]]
    tools/dist_train.sh configs/demo/retinanet_r18_demo.py 2
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmext.engine import (check_checkpoint, finish_distributed,  # noqa: E402
                          run_cli)
from mmext.engine.cli import (add_runner_args, build_runner,  # noqa: E402
                              parse_runner_args, prepare_config)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the latest one '
        'in the work dir')
    add_runner_args(parser)
    return parse_runner_args(parser)


def main() -> None:
    args = parse_args()
    import mmext  # noqa: F401  (registers modules and checkpoint safe globals)

    cfg = prepare_config(args, 'train')
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size '
                               'in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.resume == 'auto':
        # The Runner resumes from the work dir's last_checkpoint: check that file
        # now, as an explicit --resume <file> is.
        from mmengine.runner import find_latest_checkpoint
        marker = osp.join(cfg.work_dir, 'last_checkpoint')
        latest = find_latest_checkpoint(cfg.work_dir) if osp.isfile(marker) else None
        check_checkpoint(latest, f'--resume (latest checkpoint of {cfg.work_dir})')
    else:
        check_checkpoint(cfg.get('load_from'), '--resume' if args.resume else 'load_from',
                         model=cfg.model)
    build_runner(cfg).train()
    finish_distributed()


if __name__ == '__main__':
    run_cli(main)
