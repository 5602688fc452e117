"""Evaluate a checkpoint with an mmdet or mmseg config (mmext modules registered).

    python tools/test.py CONFIG CHECKPOINT [--show] [--show-dir DIR] [--wait-time S]
                         [--out results.pkl | --out PRED_DIR] [--tta]
    tools/dist_test.sh CONFIG CHECKPOINT 2

The options follow the task of the config (its ``default_scope``), as mmdet's and
mmseg's own tools/test.py do:

- detection / panoptic (mmdet): ``--out x.pkl`` dumps every prediction with mmdet's
  ``DumpDetResults``; ``--show-dir vis`` writes one drawn PNG per image to
  ``<work_dir>/<timestamp>/vis``.
- segmentation (mmseg): ``--out DIR`` writes one label PNG per image (class index
  per pixel, named after the image) with the config's ``IoUMetric``; ``--show-dir
  vis`` writes the drawn images to ``<work_dir>/vis/vis_data/vis_image``.

``--show`` opens a window per image for ``--wait-time`` seconds (needs a display).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Mapping, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmext.engine import (check_checkpoint, finish_distributed,  # noqa: E402
                          run_cli)
from mmext.engine.cli import (add_runner_args, build_runner,  # noqa: E402
                              parse_runner_args, prepare_config)
from mmext.utils.errors import UserError  # noqa: E402

PICKLE_SUFFIXES = ('.pkl', '.pickle')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='detection/panoptic configs: dump predictions '
                        'to this .pkl file (mmdet); segmentation configs: write one '
                        'prediction PNG per image to this folder (mmseg)')
    parser.add_argument('--show', action='store_true',
                        help='show each drawn prediction in a window (needs a display)')
    parser.add_argument('--show-dir', help='save drawn predictions (PNG) under '
                        '<work_dir>/<timestamp>/<show_dir> (mmdet configs) or '
                        '<work_dir>/<show_dir>/vis_data/vis_image (mmseg configs)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each --show window stays open (default 2)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation: '
                        "wrap the model in the config's tta_model and test with its "
                        'tta_pipeline (as mmdet\'s tools/test.py --tta)')
    add_runner_args(parser)
    return parse_runner_args(parser)


def is_segmentation(cfg) -> bool:
    """mmseg config (the task is the config's registry scope, as for the tools)."""
    return cfg.get('default_scope') == 'mmseg'


def check_display(env: Mapping[str, str] = os.environ,
                  platform: str = sys.platform) -> None:
    """``--show`` on a Linux machine without X11/Wayland would fail (or block) deep in
    matplotlib/OpenCV after the model ran: refuse it up front."""
    if platform.startswith('linux') and not (env.get('DISPLAY')
                                             or env.get('WAYLAND_DISPLAY')):
        raise UserError('--show needs a display, and neither DISPLAY nor '
                        'WAYLAND_DISPLAY is set: run it in a desktop session (or with '
                        'ssh -X), or save the drawn images with --show-dir DIR instead')


def enable_drawing(cfg, show: bool = False, show_dir: Optional[str] = None,
                   wait_time: float = 2) -> None:
    """Turn on the config's visualization hook as mmdet's / mmseg's tools/test.py
    do: ``draw=True``; ``--show`` sets ``show`` and ``wait_time``; ``--show-dir``
    sends the PNGs to ``show_dir``."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise UserError("--show/--show-dir need default_hooks.visualization in the "
                        "config (mmdet's DetVisualizationHook or mmseg's "
                        'SegVisualizationHook)')
    hook['draw'] = True
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if is_segmentation(cfg):
        # mmseg's hook draws every `interval`-th batch only (50 by default), in
        # testing too; --show/--show-dir promise every image, as mmdet's hook does.
        hook['interval'] = 1
        if show_dir:
            cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
    elif show_dir:
        hook['test_out_dir'] = show_dir  # relative to <work_dir>/<timestamp>


def _metric_configs(evaluator) -> list:
    """The metric dicts of an evaluator config (one dict, a list, or
    ``dict(type='Evaluator', metrics=...)``)."""
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    return list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]


def enable_seg_output(cfg, out_dir: str) -> None:
    """mmseg's ``--out DIR``: the IoU metric writes each prediction as a PNG of class
    indices (``output_dir``) and keeps its results (``keep_results``)."""
    if out_dir.endswith(PICKLE_SUFFIXES):
        raise UserError(f"--out '{out_dir}': a segmentation config writes a folder of "
                        'prediction PNGs (as mmseg), not a pickle: give a folder, '
                        'e.g. --out preds')
    metrics = [m for m in _metric_configs(cfg.test_evaluator)
               if isinstance(m, dict) and m.get('type') == 'IoUMetric']
    if not metrics:
        raise UserError("--out needs an IoUMetric in the config's test_evaluator "
                        '(mmseg writes the prediction PNGs from it)')
    for metric in metrics:
        metric['output_dir'] = out_dir
        metric['keep_results'] = True


def check_det_output(out: str) -> None:
    if not out.endswith(PICKLE_SUFFIXES):
        raise UserError(f"--out '{out}': a detection/panoptic config dumps its "
                        'predictions to a pickle file (as mmdet): give a name ending '
                        'in .pkl, e.g. --out results.pkl')


def enable_tta(cfg, config_path: str) -> None:
    """mmdet's ``--tta``: ``model = tta_model(module=model)`` and the test dataset
    reads ``tta_pipeline``. Unlike mmdet there is no silent default (a flip-only
    box TTA would be wrong for panoptic models): both keys must be in the config."""
    from mmengine.config import ConfigDict

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


def build_test_config(args: argparse.Namespace):
    """The config that ``main`` tests with: pre-flight checks (display, data), ``args``
    applied (load_from, --tta, --amp, drawing, --out), then the checkpoint loaded
    once as the Runner will load it, so that every mistake fails before the Runner
    exists."""
    if args.show:
        check_display()
    cfg = prepare_config(args, 'test')
    cfg.load_from = args.checkpoint
    if args.tta:
        enable_tta(cfg, args.config)
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.show or args.show_dir:
        enable_drawing(cfg, args.show, args.show_dir, args.wait_time)
    if args.out and is_segmentation(cfg):
        enable_seg_output(cfg, args.out)
    elif args.out:
        check_det_output(args.out)
    check_checkpoint(args.checkpoint, model=cfg.model)
    return cfg


def main() -> None:
    args = parse_args()
    import mmext  # noqa: F401  (registers modules and checkpoint safe globals)

    cfg = build_test_config(args)
    runner = build_runner(cfg)
    if args.out and not is_segmentation(cfg):
        # As mmdet's tools/test.py: a metric that only collects the predictions.
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()
    finish_distributed()


if __name__ == '__main__':
    run_cli(main)
