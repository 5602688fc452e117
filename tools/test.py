"""Evaluate a checkpoint with an mmdet or mmseg config (mmext modules registered).

    python tools/test.py CONFIG CHECKPOINT [--show-dir DIR] [--out results.pkl] [--tta]
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
    parser.add_argument('--tta', action='store_true', help='test-time augmentation: '
                        "wrap the model in the config's tta_model and test with its "
                        'tta_pipeline (as mmdet\'s tools/test.py --tta)')
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


def enable_tta(cfg, config_path: str) -> None:
    """mmdet's ``--tta``: ``model = tta_model(module=model)`` and the test dataset
    reads ``tta_pipeline``. Unlike mmdet there is no silent default (a flip-only
    box TTA would be wrong for panoptic models): both keys must be in the config."""
    from mmengine.config import ConfigDict

    from mmext.utils.errors import UserError
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise UserError(f"--tta needs {' and '.join(missing)} in {config_path}: "
                        "add tta_model = dict(type=...) (e.g. 'SpatialFlowTTAModel', "
                        "mmdet's 'DetTTAModel') and a tta_pipeline with TestTimeAug "
                        '(see configs/demo/spatialflow_r18_demo.py)')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # dataset wrappers: the leaf loads the images
        dataset = dataset.dataset
    dataset.pipeline = cfg.tta_pipeline


def main() -> None:
    args = parse_args()
    import mmext  # noqa: F401  (registers modules and checkpoint safe globals)

    check_checkpoint(args.checkpoint)
    cfg = prepare_config(args, 'test')
    cfg.load_from = args.checkpoint
    if args.tta:
        enable_tta(cfg, args.config)
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
