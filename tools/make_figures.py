"""Draw the README figures from the demo checkpoints and logs into docs/images/.

    python tools/make_figures.py                       # all four figures
    python tools/make_figures.py --only lau pkd        # some of them
    python tools/make_figures.py --out /tmp/figs

Figures (small PNGs, matplotlib Agg, fixed seed, no timestamps in the files):

* ``spatialflow_panel.png``: val image / ground truth / SpatialFlow prediction of
  the demo panoptic model (segments coloured by class, instances shaded, legend);
* ``lau_panel.png``: val image / ground truth / bilinear demo model / LaU demo model
  / LaU's learned offset field (colour wheel: hue = direction, brightness = length;
  arrows), drawn with tools/visualize_lau.py's functions;
* ``pkd_pearson.png``: per FPN level, the Pearson r between student and teacher maps
  on demo val images, for the plain student and the PKD student
  (tools/benchmarks/bench_pkd.py checkpoints);
* ``demo_curves.png``: training loss and validation metric vs iteration of the
  demo runs, read from mmengine's ``vis_data/scalars.json``.

Each figure takes its runs from the first complete source in ``SOURCES``: for
SpatialFlow and LaU the ``make demo`` work dirs, then the benchmark ones (seed 0 of
the same configs); for PKD the benchmark's (its teacher trained to 500 iterations),
then ``make demo``'s. So ``make demo`` alone is enough to draw all four. A missing checkpoint
stops the script with one ``mmext: error:`` line that names it and the command that
writes it.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # run from a checkout

import matplotlib  # noqa: E402

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from mmext.utils.errors import UserError  # noqa: E402

FIGURES = ('spatialflow', 'lau', 'pkd', 'curves')
DISTILL_PREFIXES = ('loss_pkd', 'loss_mse')  # distillation terms in the logs (bench_pkd)
DPI = 100


def _load_tool(rel_path: str, name: str):
    """Import a script of tools/ (not a package) by path, to reuse its functions."""
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel_path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------- run sources
@dataclass
class Run:
    """One trained demo model: its config and work dir (checkpoint + logs)."""
    label: str
    config: str
    work_dir: str
    metric: str  # key of the validation / test metric in mmengine's json logs


@dataclass
class Source:
    """A set of runs that belong together and the command that trains them."""
    command: str
    runs: Dict[str, Run]


SOURCES: Dict[str, List[Source]] = {
    'spatialflow': [
        Source('python tools/run_demo.py spatialflow', {
            'flows': Run('SpatialFlow R18', 'configs/demo/spatialflow_r18_demo.py',
                         'work_dirs/demo/spatialflow_r18_demo', 'coco_panoptic/PQ')}),
        Source('python tools/benchmarks/spatialflow_ablation.py --seeds 0', {
            'flows': Run('SpatialFlow R18', 'configs/demo/spatialflow_r18_demo.py',
                         'work_dirs/spatialflow_ablation/spatialflow_r18_demo_seed0',
                         'coco_panoptic/PQ'),
            'noflows': Run('no flows (ablation)', 'configs/demo/spatialflow_r18_demo_noflows.py',
                           'work_dirs/spatialflow_ablation/spatialflow_r18_demo_noflows_seed0',
                           'coco_panoptic/PQ')}),
    ],
    'lau': [
        Source('python tools/run_demo.py lau', {
            'bilinear': Run('bilinear', 'configs/demo/seg_bilinear_demo.py',
                            'work_dirs/demo/seg_bilinear_demo', 'mIoU'),
            'lau': Run('LaU k=4', 'configs/demo/seg_lau_demo.py',
                       'work_dirs/demo/seg_lau_demo', 'mIoU')}),
        Source('python tools/benchmarks/lau_seg_table.py --seeds 0', {
            'bilinear': Run('bilinear', 'configs/demo/seg_bilinear_demo.py',
                            'work_dirs/lau_seg_table/seg_bilinear_demo_seed0', 'mIoU'),
            'lau': Run('LaU k=4', 'configs/demo/seg_lau_demo.py',
                       'work_dirs/lau_seg_table/seg_lau_demo_seed0', 'mIoU')}),
    ],
    'pkd': [
        Source('python tools/benchmarks/bench_pkd.py --part table --seeds 0', {
            'teacher': Run('teacher Faster R-CNN R18',
                           'configs/demo/pkd_teacher_faster_rcnn_r18_demo_converged.py',
                           'work_dirs/bench_pkd/teacher', 'coco/bbox_mAP'),
            'plain': Run('student, plain', 'configs/demo/pkd_retinanet_r18_plain.py',
                         'work_dirs/bench_pkd/plain_seed0', 'coco/bbox_mAP'),
            'pkd': Run('student + PKD', 'configs/demo/pkd_retinanet_r18_distill.py',
                       'work_dirs/bench_pkd/pkd_seed0', 'coco/bbox_mAP')}),
        # make demo's runs: the same students under the 300-iteration demo teacher.
        Source('python tools/run_demo.py pkd', {
            'teacher': Run('teacher Faster R-CNN R18',
                           'configs/demo/pkd_teacher_faster_rcnn_r18_demo.py',
                           'work_dirs/demo/pkd_teacher_faster_rcnn_r18_demo', 'coco/bbox_mAP'),
            'plain': Run('student, plain', 'configs/demo/pkd_retinanet_r18_plain.py',
                         'work_dirs/demo/pkd_retinanet_r18_plain', 'coco/bbox_mAP'),
            'pkd': Run('student + PKD', 'configs/demo/pkd_retinanet_r18_distill.py',
                       'work_dirs/demo/pkd_retinanet_r18_distill', 'coco/bbox_mAP')}),
    ],
}


def checkpoint_of(work_dir: str) -> Optional[str]:
    """The checkpoint named by mmengine's ``<work_dir>/last_checkpoint`` (absolute
    paths there are tried as written, then inside ``work_dir``), or None."""
    pointer = osp.join(ROOT, work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        written = f.read().strip()
    for path in (written, osp.join(ROOT, work_dir, osp.basename(written))):
        if written and osp.isfile(path):
            return path
    return None


def pick_source(figure: str, sources: Optional[Sequence[Source]] = None) -> Source:
    """The first source of ``figure`` whose runs all have a checkpoint.

    Raises UserError naming the first missing checkpoint of the preferred source and
    the commands that write a complete source.
    """
    sources = SOURCES[figure] if sources is None else sources
    for source in sources:
        if all(checkpoint_of(run.work_dir) for run in source.runs.values()):
            return source
    first = sources[0]
    missing = next(r for r in first.runs.values() if not checkpoint_of(r.work_dir))
    commands = ' or '.join(_command_text(s.command) for s in sources)
    raise UserError(f'{figure} figure: no checkpoint in {missing.work_dir}/ '
                    f'(last_checkpoint missing or pointing nowhere); create it with '
                    f'{commands}')


def _command_text(command: str) -> str:
    return f'`{command}`' + (' (part of `make demo`)' if 'run_demo.py' in command else '')


# ------------------------------------------------------------------ logs
def read_records(path: str) -> List[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def training_curves(work_dir: str, metric: str
                    ) -> Tuple[List[Tuple[int, float]], List[Tuple[int, float]]]:
    """([(iter, loss)], [(iter, metric)]) of the newest training run in ``work_dir``.

    The loss is mmengine's logged ``loss`` minus any distillation term.

    Training records come from the newest ``<ts>/vis_data/scalars.json`` that holds
    losses. mmengine writes validation records of iteration-based loops with step 0,
    so each takes the iteration of the training record before it (as bench_pkd's
    ``val_curve``). A run without validation gets the metric of the newest test run
    (``<ts>/<ts>.json``, written by tools/test.py) at its last iteration.
    """
    root = osp.join(ROOT, work_dir)
    runs = sorted(glob.glob(osp.join(root, '*', 'vis_data', 'scalars.json')), key=osp.getmtime)
    losses: List[Tuple[int, float]] = []
    vals: List[Tuple[int, float]] = []
    for path in reversed(runs):
        records = read_records(path)
        if not any('loss' in r for r in records):
            continue
        last_iter = 0
        for r in records:
            if 'loss' in r:
                last_iter = int(r.get('iter', r.get('step', last_iter)))
                # The model's own loss: PKD/MSE distillation terms are left out so
                # that distilled and plain students compare.
                distill = sum(v for k, v in r.items() if k.startswith(DISTILL_PREFIXES))
                losses.append((last_iter, float(r['loss']) - distill))
            elif metric in r:
                vals.append((last_iter, float(r[metric])))
        break
    if losses and not vals:
        tests = [p for p in glob.glob(osp.join(root, '*', '*.json'))
                 if osp.basename(osp.dirname(p)) == osp.splitext(osp.basename(p))[0]]
        for path in sorted(tests, key=osp.getmtime, reverse=True):
            found = [r for r in read_records(path) if metric in r]
            if found:
                vals.append((losses[-1][0], float(found[-1][metric])))
                break
    return losses, vals


# ------------------------------------------------------------------ PKD maths
def pearson_r(feat_s: torch.Tensor, feat_t: torch.Tensor) -> torch.Tensor:
    """Per-channel Pearson r of two maps, statistics over N*H*W (as PKD's loss).

    feat_s, feat_t: (N, C, H, W), same shape. Returns (C,) in [-1, 1]; a constant
    channel gives 0. PKD's loss per channel is about 1 - r (docs/pkd.md).
    """
    from mmext.distill.pkd_loss import standardize_per_channel
    if feat_s.shape != feat_t.shape:
        raise ValueError(f'pearson_r: shapes differ: {tuple(feat_s.shape)} vs '
                         f'{tuple(feat_t.shape)}')
    # population std: the mean of the products is r itself
    return (standardize_per_channel(feat_s, unbiased=False) *
            standardize_per_channel(feat_t, unbiased=False)).mean(1)


def _rows(feat: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N*H*W, C) float64."""
    return feat.double().permute(0, 2, 3, 1).reshape(-1, feat.shape[1])


def linear_probe_r(fit_s: torch.Tensor, fit_t: torch.Tensor, eval_s: torch.Tensor,
                   eval_t: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """Mean-free least-squares map student -> teacher channels fitted on one set of
    maps, then the per-teacher-channel Pearson r of its prediction on another set.

    fit_s (Nf, Cs, H, W), fit_t (Nf, Ct, H, W), eval_s (Ne, Cs, H', W'),
    eval_t (Ne, Ct, H', W'); returns (Ct,). This compares students whose channels are
    not the teacher's (the plain student has 64, the teacher 128) on equal terms:
    how much of each teacher channel a 1x1 conv of the student map can express.
    ``ridge`` (relative to the mean feature variance) keeps the fit well posed.
    """
    xs, xt = _rows(fit_s), _rows(fit_t)
    mean_s, mean_t = xs.mean(0), xt.mean(0)
    xs, xt = xs - mean_s, xt - mean_t
    gram = xs.T @ xs
    lam = ridge * gram.diagonal().mean().clamp_min(1e-12)
    weight = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype),
                                xs.T @ xt)  # (Cs, Ct)
    pred = (_rows(eval_s) - mean_s) @ weight + mean_t  # (Ne*H'*W', Ct)
    n, _, h, w = eval_t.shape
    pred_map = pred.reshape(n, h, w, -1).permute(0, 3, 1, 2)
    return pearson_r(pred_map, eval_t.double())


# ------------------------------------------------------------------ drawing
def save(fig, path: str) -> str:
    """Write ``fig`` as a 256-colour palette PNG (a third of the RGB file's size; the
    demo pictures have few colours) without metadata: same input, same bytes."""
    from PIL import Image
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.set_dpi(DPI)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    image = Image.fromarray(np.ascontiguousarray(rgb)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, format='PNG', optimize=True)
    return path


def _axis_off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _save_with_legend(fig, classes: Sequence[str], palette: Sequence, void_label: str,
                      title: str, out: str) -> str:
    """One legend entry per class colour (plus black = ``void_label``) under the
    panels, the title above them, then :func:`save`."""
    handles = [Patch(color=np.asarray(p) / 255, label=n) for n, p in zip(classes, palette)]
    handles.append(Patch(color='black', label=void_label))
    fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=7,
               frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return save(fig, out)


def panoptic_to_rgb(labels: np.ndarray, instances: np.ndarray, palette: Sequence,
                    void_label: int) -> np.ndarray:
    """Colour a panoptic map: (H, W) class labels + (H, W) instance ids -> (H, W, 3).

    Each class has its palette colour; instances of a class are shaded darker one
    after another and outlined in white; void (``void_label``) is black.
    """
    out = np.zeros((*labels.shape, 3), np.float64)
    for label in np.unique(labels):
        if label == void_label or label < 0 or label >= len(palette):
            continue
        mask = labels == label
        ids = np.unique(instances[mask])
        for k, inst in enumerate(ids):
            shade = 1.0 - 0.25 * (k % 3)
            out[mask & (instances == inst)] = np.asarray(palette[label], float) * shade
    seg = labels.astype(np.int64) * 100000 + instances
    edge = np.zeros(labels.shape, bool)
    edge[:-1] |= seg[:-1] != seg[1:]
    edge[:, :-1] |= seg[:, :-1] != seg[:, 1:]
    out[edge] = 255
    return out.astype(np.uint8)


@dataclass
class PanopticRow:
    name: str
    image: np.ndarray        # (H, W, 3) RGB uint8
    gt: np.ndarray           # (H, W, 3) RGB uint8 (panoptic_to_rgb)
    pred: np.ndarray         # (H, W, 3)
    pq_note: str = ''


def plot_panoptic_panel(rows: Sequence[PanopticRow], classes: Sequence[str],
                        palette: Sequence, out: str, title: str) -> str:
    """Rows of image / ground truth / prediction with a class legend."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(6.3, 2.05 * len(rows) + 0.75),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c, (img, name) in enumerate([(row.image, row.name), (row.gt, 'ground truth'),
                                         (row.pred, 'prediction')]):
            ax = axes[r, c]
            ax.imshow(img, interpolation='nearest')
            ax.set_title(name, fontsize=8)
            _axis_off(ax)
    return _save_with_legend(fig, classes, palette, 'void', title, out)


@dataclass
class SegRow:
    name: str
    image: np.ndarray     # (H, W, 3) RGB uint8
    gt: np.ndarray        # (H, W) labels (255 = ignore)
    bilinear: np.ndarray  # (H, W) labels
    lau: np.ndarray       # (H, W) labels
    dy: np.ndarray        # (h, w) learned offsets in input pixels (LaU output grid)
    dx: np.ndarray


def plot_lau_panel(rows: Sequence[SegRow], classes: Sequence[str], palette: Sequence,
                   out: str, title: str, arrow_step: int = 10) -> str:
    """Rows of image / GT / bilinear / LaU / offset field (colour wheel + arrows).

    Colours and the wheel come from tools/visualize_lau.py (``colorize``,
    ``offset_wheel``): the same picture its command line draws.
    """
    vis = _load_tool('tools/visualize_lau.py', 'visualize_lau')
    max_len = max(float(np.sqrt(r.dy ** 2 + r.dx ** 2).max()) for r in rows)
    fig, axes = plt.subplots(len(rows), 5, figsize=(9.4, 2.05 * len(rows) + 0.7),
                             squeeze=False)
    for r, row in enumerate(rows):
        h, w = row.image.shape[:2]
        panels = [(row.image, row.name), (vis.colorize(row.gt, palette), 'ground truth'),
                  (vis.colorize(row.bilinear, palette), 'bilinear model'),
                  (vis.colorize(row.lau, palette), 'LaU model')]
        for c, (img, name) in enumerate(panels):
            axes[r, c].imshow(img, interpolation='nearest')
            axes[r, c].set_title(name, fontsize=8)
        ax = axes[r, 4]
        gh, gw = row.dy.shape
        ax.imshow(vis.offset_wheel(row.dy, row.dx, max_len), interpolation='nearest',
                  extent=(0, w, h, 0))
        ys, xs = np.mgrid[arrow_step // 2:gh:arrow_step, arrow_step // 2:gw:arrow_step]
        sy, sx = h / gh, w / gw  # input px per offset-grid px
        ax.quiver((xs + 0.5) * sx, (ys + 0.5) * sy, row.dx[ys, xs], row.dy[ys, xs],
                  color='white', angles='xy', scale_units='xy', scale=1 / 3,
                  width=0.008, headwidth=3, headlength=3, headaxislength=2.5)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_title(f'offsets (max {max_len:.1f} px)', fontsize=8)
        for c in range(5):
            _axis_off(axes[r, c])
    return _save_with_legend(fig, classes, palette, 'ignore (GT)', title, out)


def plot_pkd_panel(levels: Sequence[str], bars: Dict[str, Sequence[float]], out: str,
                   title: str) -> str:
    """Grouped bars: one group per level pair, one bar per series (mean r)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.3))
    n = len(bars)
    width = 0.8 / n
    x = np.arange(len(levels))
    colours = ['#999999', '#1f77b4', '#9ecae1', '#ff7f0e']
    for i, (name, values) in enumerate(bars.items()):
        pos = x + (i - (n - 1) / 2) * width
        ax.bar(pos, values, width, label=name, color=colours[i % len(colours)])
        for p, v in zip(pos, values):
            ax.text(p, v + 0.01, f'{v:.2f}', ha='center', va='bottom', fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels(levels, fontsize=8)
    ax.set_ylabel('mean Pearson r over teacher channels', fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc='upper right')
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return save(fig, out)


def plot_curves(panels: Dict[str, Dict[str, Tuple[list, list]]], metric_names: Dict[str, str],
                out: str, title: str) -> str:
    """Two rows (loss, validation metric) x one column per demo.

    panels: {demo title: {run label: ([(iter, loss)], [(iter, metric)])}}.
    """
    cols = len(panels)
    fig, axes = plt.subplots(2, cols, figsize=(3.1 * cols, 4.6), squeeze=False)
    for c, (demo, runs) in enumerate(panels.items()):
        for label, (losses, vals) in runs.items():
            if losses:
                it, loss = zip(*losses)
                line, = axes[0, c].plot(it, loss, label=label, linewidth=1)
                colour = line.get_color()
            else:
                colour = None
            if vals:
                it, val = zip(*vals)
                axes[1, c].plot(it, val, marker='o', markersize=4, linewidth=1,
                                label=label, color=colour)
        for label, (_, vals) in runs.items():
            for it, val in vals[-1:]:  # the final value, written next to its point
                axes[1, c].annotate(f'{val:.4g}', (it, val), fontsize=6,
                                    xytext=(4, 0), textcoords='offset points', va='center')
        axes[0, c].set_title(demo, fontsize=8)
        axes[0, c].set_ylabel('training loss\n(without distillation terms)', fontsize=7)
        axes[1, c].set_ylabel(metric_names[demo], fontsize=7)
        axes[1, c].set_xlabel('iteration', fontsize=7)
        axes[0, c].legend(fontsize=6)
        for r in range(2):
            axes[r, c].tick_params(labelsize=6)
            axes[r, c].grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return save(fig, out)


# ------------------------------------------------------------------ models
def _dataset(cfg, registry_scope: str, indices: Sequence[int]):
    """Items ``indices`` of the config's test dataset (through its pipeline)."""
    from mmengine.registry import init_default_scope
    init_default_scope(registry_scope)
    if registry_scope == 'mmseg':
        from mmseg.registry import DATASETS
    else:
        from mmdet.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    return dataset, [dataset[i] for i in indices]


def _forward_batch(model, item) -> dict:
    from mmengine.dataset import pseudo_collate
    return model.data_preprocessor(pseudo_collate([item]), False)


def _rgb(path: str) -> np.ndarray:
    import mmcv
    return mmcv.imread(path, channel_order='rgb')


def spatialflow_figure(out_dir: str, indices: Sequence[int]) -> str:
    """Image / GT / prediction of the demo SpatialFlow model on val images."""
    from mmdet.apis import init_detector
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from mmengine.dataset import pseudo_collate

    source = pick_source('spatialflow')
    run = source.runs['flows']
    model = init_detector(osp.join(ROOT, run.config), checkpoint_of(run.work_dir),
                          device='cpu')
    dataset, items = _dataset(model.cfg, 'mmdet', indices)
    classes = list(dataset.metainfo['classes'])
    palette = [tuple(p) for p in dataset.metainfo['palette']]
    void = len(classes)
    rows = []
    for i, item in zip(indices, items):
        info = dataset.get_data_info(i)
        with torch.no_grad():
            pred = model.test_step(pseudo_collate([item]))[0]  # preprocesses itself
        pan = pred.pred_panoptic_seg.sem_seg[0].numpy().astype(np.int64)
        pred_rgb = panoptic_to_rgb(pan % INSTANCE_OFFSET, pan // INSTANCE_OFFSET, palette, void)
        # Ground truth: the panoptic PNG (id = R + 256 G + 256^2 B) and its segments.
        png = _rgb(info['seg_map_path']).astype(np.int64)
        ids = png[..., 0] + 256 * png[..., 1] + 256 * 256 * png[..., 2]
        gt_labels = np.full(ids.shape, void)
        for seg in info['segments_info']:
            gt_labels[ids == seg['id']] = seg['category']
        gt_rgb = panoptic_to_rgb(gt_labels, ids, palette, void)
        rows.append(PanopticRow(osp.basename(info['img_path']), _rgb(info['img_path']),
                                gt_rgb, pred_rgb))
    return plot_panoptic_panel(
        rows, classes, palette, osp.join(out_dir, 'spatialflow_panel.png'),
        f'SpatialFlow R18 demo model, demo val images\n({run.work_dir})')


def lau_figure(out_dir: str, indices: Sequence[int]) -> str:
    """Image / GT / bilinear model / LaU model / offsets on demo val images."""
    from mmengine.dataset import pseudo_collate
    from mmseg.apis import init_model

    from mmext.seg import LaUHead

    source = pick_source('lau')
    runs = source.runs
    lau = init_model(osp.join(ROOT, runs['lau'].config), checkpoint_of(runs['lau'].work_dir),
                     device='cpu')
    bil = init_model(osp.join(ROOT, runs['bilinear'].config),
                     checkpoint_of(runs['bilinear'].work_dir), device='cpu')
    head = lau.decode_head
    if not isinstance(head, LaUHead):
        raise UserError(f"{runs['lau'].config}: the decode head is {type(head).__name__}, "
                        'not a LaUHead')
    dataset, items = _dataset(lau.cfg, 'mmseg', indices)
    classes = list(dataset.metainfo['classes'])
    palette = [tuple(p) for p in dataset.metainfo['palette']]
    rows = []
    for i, item in zip(indices, items):
        info = dataset.get_data_info(i)
        with torch.no_grad():
            data = _forward_batch(lau, item)
            metas = [s.metainfo for s in data['data_samples']]
            # The LaU model's logits, LaU-upsampled, and its learned offsets (the
            # same calls as tools/visualize_lau.py).
            up, _, ctx = head.predict_offsets(lau.extract_feat(data['inputs']))
            lau_pred = head.head.predict_by_feat(up, metas).argmax(1)[0].numpy()
            bil_pred = bil.test_step(pseudo_collate([item]))[0].pred_sem_seg.data[0].numpy()
        h = lau_pred.shape[0]
        off = ctx.offsets[0, :2].float().numpy()
        stride = h / up.shape[-2]  # input px per LaU output px
        low_stride = stride * ctx.scale_factor  # input px per logit px (offset unit)
        gt = item['data_samples'].gt_sem_seg.data[0].numpy()
        rows.append(SegRow(osp.basename(info['img_path']), _rgb(info['img_path']), gt,
                           bil_pred, lau_pred, off[0] * low_stride, off[1] * low_stride))
    return plot_lau_panel(rows, classes, palette, osp.join(out_dir, 'lau_panel.png'),
                          'LaU demo: FCN-R18, bilinear vs LaU k=4 (separately trained), '
                          'demo val images')


def pkd_figure(out_dir: str, num_images: int) -> str:
    """Per level pair: Pearson r of student and teacher maps, plain vs PKD student."""
    from mmdet.apis import init_detector

    from mmext.distill.feature_loss import match_size

    source = pick_source('pkd')
    runs = source.runs
    teacher_ckpt = checkpoint_of(runs['teacher'].work_dir)
    distiller = init_detector(
        osp.join(ROOT, runs['pkd'].config), checkpoint_of(runs['pkd'].work_dir),
        device='cpu', cfg_options={
            'model.teacher.checkpoint': teacher_ckpt,
            'model.teacher.config': osp.join(ROOT, runs['teacher'].config)})
    plain = init_detector(osp.join(ROOT, runs['plain'].config),
                          checkpoint_of(runs['plain'].work_dir), device='cpu')
    _, items = _dataset(plain.cfg, 'mmdet', range(num_images))
    feats: Dict[str, List[List[torch.Tensor]]] = {'t': [], 'plain': [], 'pkd': [],
                                                  'pkd_adapted': []}
    with torch.no_grad():
        for item in items:  # one image at a time: the stacks below pair them
            inputs = _forward_batch(distiller, item)['inputs']
            feats['t'].append(list(distiller.teacher_features(inputs)))
            feats['pkd'].append(list(distiller.student.extract_feat(inputs)))
            feats['plain'].append(list(plain.extract_feat(_forward_batch(plain, item)['inputs'])))
    half = num_images // 2  # fit the linear probes on the first half, score the second
    levels, bars = [], {'plain student, best 1x1 map': [], 'PKD student, best 1x1 map': [],
                        "PKD student, its trained adapter": []}
    for name, i_s, i_t in distiller.level_pairs:
        s_stride = distiller.student_levels[i_s][0]
        t_stride = distiller.teacher_levels[i_t][0]
        levels.append(f'{name}: student P{s_stride.bit_length() - 1}\n'
                      f'-> teacher P{t_stride.bit_length() - 1}')

        def stack(key, idx, images):
            maps = [feats[key][n][idx] for n in images]
            if key != 't':  # the student map resized to the teacher's, as the loss
                maps = [match_size(m, feats['t'][n][i_t])[0] for m, n in zip(maps, images)]
            return torch.cat(maps)

        fit, test = range(half), range(half, num_images)
        t_fit, t_test = stack('t', i_t, fit), stack('t', i_t, test)
        for key, label in (('plain', 'plain student, best 1x1 map'),
                           ('pkd', 'PKD student, best 1x1 map')):
            r = linear_probe_r(stack(key, i_s, fit), t_fit, stack(key, i_s, test), t_test)
            bars[label].append(float(r.mean()))
        adapted = stack('pkd', i_s, test)
        if name in distiller.adapters:  # 1x1 conv 64 -> 128 channels, trained by PKD
            with torch.no_grad():
                adapted = distiller.adapters[name](adapted)
        bars["PKD student, its trained adapter"].append(float(pearson_r(adapted, t_test).mean()))
    print('PKD panel, mean Pearson r over teacher channels (the bars):')
    print('| level pair | ' + ' | '.join(bars) + ' |')
    for i, level in enumerate(levels):
        print(f"| {level.replace(chr(10), ' ')} | "
              + ' | '.join(f'{v[i]:.3f}' for v in bars.values()) + ' |')
    return plot_pkd_panel(
        levels, bars, osp.join(out_dir, 'pkd_pearson.png'),
        f'PKD demo: Pearson r, student (RetinaNet R18, 64 ch) vs teacher FPN maps\n'
        f'(Faster R-CNN R18, 128 ch); 1x1 maps fitted on {half} val images, '
        f'r on {num_images - half} others')


def curves_figure(out_dir: str) -> str:
    """Loss and validation metric vs iteration of the demo runs of each method."""
    panels: Dict[str, Dict[str, Tuple[list, list]]] = {}
    metrics: Dict[str, str] = {}
    for figure, demo, keys in (('lau', 'LaU (seg demo)', ('bilinear', 'lau')),
                               ('pkd', 'PKD (detection demo)', ('teacher', 'plain', 'pkd')),
                               ('spatialflow', 'SpatialFlow (panoptic demo)',
                                ('flows', 'noflows'))):
        source = pick_source(figure)
        panels[demo] = {}
        for key in keys:
            if key in source.runs:
                run = source.runs[key]
                panels[demo][run.label] = training_curves(run.work_dir, run.metric)
                metrics[demo] = run.metric
    return plot_curves(panels, metrics, osp.join(out_dir, 'demo_curves.png'),
                       'Demo runs: training loss and validation / test metric')


# ------------------------------------------------------------------ main
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(ROOT, 'docs', 'images'),
                        help='output folder (default: docs/images of this checkout)')
    parser.add_argument('--only', nargs='+', choices=FIGURES, default=list(FIGURES))
    parser.add_argument('--images', type=int, nargs='+', default=[0, 1, 2],
                        help='val image indices of the SpatialFlow and LaU panels')
    parser.add_argument('--pkd-images', type=int, default=24,
                        help='val images of the PKD panel (half fit, half scored)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    import mmext  # noqa: F401  (registers the models, datasets and config scope)
    torch.manual_seed(0)
    np.random.seed(0)
    out_dir = osp.abspath(args.out)
    # Fail before any drawing when a checkpoint is missing (the curves use all runs).
    for figure in sorted(set(SOURCES) if 'curves' in args.only else set(args.only)):
        pick_source(figure)
    os.chdir(ROOT)  # the configs' data_root and the work dirs are repo-relative
    if args.pkd_images < 4:
        raise UserError(f'--pkd-images {args.pkd_images}: need at least 4 (half to fit, '
                        'half to score)')
    made = []
    if 'spatialflow' in args.only:
        made.append(spatialflow_figure(out_dir, args.images))
    if 'lau' in args.only:
        made.append(lau_figure(out_dir, args.images))
    if 'pkd' in args.only:
        made.append(pkd_figure(out_dir, args.pkd_images))
    if 'curves' in args.only:
        made.append(curves_figure(out_dir))
    for path in made:
        print(f'wrote {osp.relpath(path, ROOT)} ({osp.getsize(path) // 1024} KB)')


if __name__ == '__main__':
    from mmext.engine.errors import run_cli
    run_cli(main)
