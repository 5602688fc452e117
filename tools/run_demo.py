"""`make demo`: train the embedded-data demos with the user-facing tools and print
a results table, plus where checkpoints, logs and PNG visualisations were written.

Each demo is a list of steps that call ``tools/train.py`` / ``tools/test.py`` exactly
as a user would. Later methods append their demos to ``DEMOS``.

    python tools/run_demo.py            # all demos
    python tools/run_demo.py retinanet  # only the named ones

Each training's and test's progress (iteration, ETA, loss; the metrics at the end)
is shown as it runs; the full output goes to ``<work_dir>/{train,test}_stdout.log``.
"""
import argparse
import glob
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # also when loaded by path
from _runner import last_checkpoint, read_test_metrics, run_tool  # noqa: E402


@dataclass
class Job:
    """One trained model of a demo and the metric reported for it."""
    name: str
    config: str
    metric: str  # key in the test-time metrics json, e.g. 'coco/bbox_mAP'
    # '--cfg-options' for train and test; '{ckpt[<config stem>]}' is replaced by the
    # checkpoint of an earlier job of the same run (e.g. a distillation teacher).
    cfg_options: List[str] = field(default_factory=list)
    draw: bool = True  # write PNG visualisations of the test set
    # Test-only job: evaluate the checkpoint of an earlier job (its config stem).
    checkpoint_of: Optional[str] = None
    extra_metrics: List[str] = field(default_factory=list)  # shown after the value


@dataclass
class Result:
    job: Job
    value: str  # the metric as printed, 'n/a' when the run logged none
    seconds: float
    work_dir: str
    checkpoint: str
    vis_dir: str


DEMOS: Dict[str, List[Job]] = {
    'retinanet': [
        Job('RetinaNet R18 (from scratch)', 'configs/demo/retinanet_r18_demo.py',
            'coco/bbox_mAP'),
    ],
    'lau': [
        # Pictures of what LaU learned: tools/visualize_lau.py (docs/lau_seg.md).
        Job('Seg FCN-R18/4, bilinear upsampling', 'configs/demo/seg_bilinear_demo.py',
            'mIoU'),
        Job('Seg FCN-R18/4, LaU k=4 + offset-guided loss', 'configs/demo/seg_lau_demo.py',
            'mIoU'),
    ],
    'spatialflow': [
        Job('SpatialFlow R18 (from scratch), COCO-panoptic format',
            'configs/demo/spatialflow_r18_demo.py', 'coco_panoptic/PQ',
            extra_metrics=['coco_panoptic/PQ_th', 'coco_panoptic/PQ_st']),
        Job('  same model, Cityscapes layout + Cityscapes PQ code',
            'configs/demo/spatialflow_r18_demo_cityscapes.py', 'cityscapes_panoptic/PQ',
            checkpoint_of='spatialflow_r18_demo', draw=False,
            extra_metrics=['cityscapes_panoptic/PQ_th', 'cityscapes_panoptic/PQ_st']),
    ],
    'pkd': [
        Job('PKD teacher: Faster R-CNN R18 (300 it)',
            'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py', 'coco/bbox_mAP'),
        Job('RetinaNet R18 plain (200 it)', 'configs/demo/pkd_retinanet_r18_plain.py',
            'coco/bbox_mAP'),
        Job('RetinaNet R18 + PKD (200 it)',
            'configs/demo/pkd_retinanet_r18_distill.py', 'coco/bbox_mAP',
            cfg_options=['model.teacher.checkpoint='
                         '{ckpt[pkd_teacher_faster_rcnn_r18_demo]}']),
    ],
}


def _latest(pattern: str) -> str:
    found = sorted(glob.glob(pattern, recursive=True), key=osp.getmtime)
    if not found:
        raise SystemExit(f'demo: expected output {pattern} was not written')
    return found[-1]


def run_job(job: Job, work_root: str, checkpoints: Dict[str, str]) -> Result:
    work_dir = osp.join(work_root, osp.splitext(osp.basename(job.config))[0])
    os.makedirs(work_dir, exist_ok=True)
    start = time.time()
    options = [o.format(ckpt=checkpoints) for o in job.cfg_options]
    options = ['--cfg-options', *options] if options else []
    if job.checkpoint_of:
        checkpoint = checkpoints[job.checkpoint_of]
    else:
        print(f'[demo] training {job.name}: {job.config} -> {work_dir}', flush=True)
        run_tool(['tools/train.py', job.config, '--work-dir', work_dir, *options],
                 osp.join(work_dir, 'train_stdout.log'))
        checkpoint = last_checkpoint(work_dir)
        checkpoints[osp.splitext(osp.basename(job.config))[0]] = checkpoint
    print(f'[demo] testing {job.name} with {checkpoint}', flush=True)
    test_args = ['tools/test.py', job.config, checkpoint, '--work-dir', work_dir]
    if job.draw:
        test_args += ['--show-dir', 'vis']
        options = options or ['--cfg-options']
        options.append('default_hooks.visualization.interval=10')
    run_tool(test_args + options, osp.join(work_dir, 'test_stdout.log'))
    _, metrics = read_test_metrics(work_dir)
    # mmdet draws into <run_dir>/vis, mmseg into <work_dir>/vis/vis_data/vis_image.
    vis_dir = osp.dirname(_latest(osp.join(work_dir, '**', 'vis', '**', '*.png'))) \
        if job.draw else '-'
    value = 'n/a' if job.metric not in metrics else f'{metrics[job.metric]:.3f}'
    extras = [f'{k.split("/")[-1]} {metrics[k]:.1f}' for k in job.extra_metrics
              if k in metrics]
    if extras:
        value += f' ({", ".join(extras)})'
    return Result(job, value, time.time() - start, work_dir, checkpoint, vis_dir)


def print_table(results: List[Result]) -> None:
    rows = [('model', 'metric', 'value', 'time'), ]
    for r in results:
        rows.append((r.job.name, r.job.metric, r.value, f'{r.seconds:.0f} s'))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    print('\n' + line)
    for i, row in enumerate(rows):
        print('| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |')
        if i == 0:
            print(line)
    print(line)
    for r in results:
        print(f'{r.job.name}:\n  checkpoint: {r.checkpoint}\n'
              f'  logs:       {r.work_dir}\n  PNGs:       {r.vis_dir}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('demos', nargs='*',
                        help=f'which demos (default: all of {", ".join(DEMOS)})')
    parser.add_argument('--work-root', default='work_dirs/demo')
    args = parser.parse_args()
    names = args.demos or list(DEMOS)
    unknown = sorted(set(names) - set(DEMOS))
    if unknown:
        parser.error(f'unknown demo(s) {unknown}; choose from {list(DEMOS)}')
    checkpoints: Dict[str, str] = {}
    results = [run_job(job, args.work_root, checkpoints)
               for name in names for job in DEMOS[name]]
    print_table(results)


if __name__ == '__main__':
    main()
