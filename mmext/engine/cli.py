"""What ``tools/train.py`` and ``tools/test.py`` share: options, config set-up, runner."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from .launch import setup_launcher
from .preflight import (check_annotation_files, check_data_paths,
                        check_model_checkpoints, load_config)


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Options common to training and testing, as in mmdet's / mmseg's tools."""
    parser.add_argument('--work-dir', help='the dir to save logs, models and metrics')
    parser.add_argument('--amp', action='store_true', help='mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def prepare_config(args: argparse.Namespace, mode: str) -> Config:
    """Load ``args.config``, check its data for ``mode`` ('train'/'test') and the
    checkpoints its model loads, set the launcher and the work dir (CLI > config >
    work_dirs/<config name>)."""
    cfg = load_config(args.config, args.cfg_options)
    check_data_paths(cfg, mode)
    check_annotation_files(cfg, mode)
    check_model_checkpoints(cfg, mode)
    setup_launcher(cfg, args.launcher)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg: Config):
    """mmengine's Runner, or the config's ``runner_type`` from the registry."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
