"""Cityscapes panoptic quality (PQ / SQ / RQ) of mmdet panoptic predictions.

Predictions are converted to the Cityscapes panoptic result format (a PNG per
image, segment id = R + 256 G + 256^2 B, plus a JSON with each segment's
category id) and scored with cityscapesScripts' own evaluation code
(``evalPanopticSemanticLabeling``), against the GT that its
``createPanopticImgs`` writes.
"""
import contextlib
import io
import json
import multiprocessing
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import METRICS
from terminaltables import AsciiTable

from ..utils.cityscapes_categories import CONVERTER_COMMAND, category_ids_by_name
from ..utils.errors import UserError

__all__ = ['CityscapesPanopticMetric', 'encode_prediction']


def encode_prediction(pan: np.ndarray, label2cat: Sequence[int],
                      void_labels: Sequence[int]) -> Tuple[np.ndarray, List[dict]]:
    """mmdet's panoptic encoding -> Cityscapes result ids and segments.

    Args:
        pan: (H, W) ints, ``label + instance_id * INSTANCE_OFFSET``.
        label2cat: category id of each contiguous label (``len = num_classes``).
        void_labels: labels meaning "no prediction" (``num_classes`` and the
            prediction's ``ignore_index``).

    Returns:
        ids: (H, W) uint32 segment ids, 0 = void, 1..n one per segment (ids are
            only matched through the JSON, so their values carry no meaning).
        segments: ``[{'id', 'category_id', 'area', 'iscrowd'}]`` for ids 1..n.
    """
    pan = np.asarray(pan, dtype=np.int64)
    if pan.size and 0 <= pan.min() and pan.max() < 2**24:
        # a histogram is ~20x faster than np.unique's sort on 2048x1024 maps
        counts = np.bincount(pan.ravel())
        values = np.flatnonzero(counts)
        areas = counts[values]
        index = np.zeros(len(counts), np.int64)
        index[values] = np.arange(len(values))
        inverse = index[pan]
    else:
        values, inverse, areas = np.unique(
            pan, return_inverse=True, return_counts=True)
    labels = values % INSTANCE_OFFSET
    keep = ~np.isin(labels, void_labels)
    bad = labels[keep & ((labels < 0) | (labels >= len(label2cat)))]
    if bad.size:
        raise UserError(
            f'panoptic prediction has labels {sorted(set(bad.tolist()))} outside '
            f'0..{len(label2cat) - 1} (+ void {len(label2cat)}): set the model\'s '
            "num_things_classes / num_stuff_classes to the dataset's classes")
    new_ids = np.zeros(len(values), np.uint32)
    new_ids[keep] = np.arange(1, int(keep.sum()) + 1)
    segments = [
        dict(id=int(new_ids[i]), category_id=int(label2cat[labels[i]]),
             area=int(areas[i]), iscrowd=0)
        for i in np.flatnonzero(keep)
    ]
    return new_ids[inverse.reshape(pan.shape)], segments


def _id_png(ids: np.ndarray) -> bytes:
    """(H, W) segment ids -> PNG bytes of the RGB image R + 256 G + 256^2 B."""
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], -1)
    ok, buf = cv2.imencode('.png', rgb[..., ::-1].astype(np.uint8))  # BGR
    if not ok:  # pragma: no cover
        raise RuntimeError('PNG encoding failed')
    return buf.tobytes()


def _silence_stdout() -> None:
    """Pool initializer: cityscapesScripts' workers print progress lines."""
    sys.stdout = open(os.devnull, 'w')


@METRICS.register_module()
class CityscapesPanopticMetric(BaseMetric):
    """Cityscapes panoptic quality, computed by cityscapesScripts.

    Config, e.g. for the Cityscapes val split (``gt_folder`` defaults to
    ``gt_json`` without ``.json``, as in cityscapesScripts)::

        val_evaluator = dict(type='CityscapesPanopticMetric',
                             data_root='data/cityscapes/',
                             gt_json='gtFine/cityscapes_panoptic_val.json')

    Consumes mmdet panoptic predictions: ``pred_panoptic_seg.sem_seg`` (1, H, W)
    at the original image size, pixel = ``label + instance_id * 1000``, void =
    ``num_classes`` (or its ``ignore_index``), and ``img_id`` / ``img_path``.
    Label ``i`` is the GT category named ``dataset_meta['classes'][i]``.

    Returns ``PQ``, ``SQ``, ``RQ`` (all classes), ``*_th`` (things) and ``*_st``
    (stuff), in percent, averaged over the dataset's classes that occur in the
    GT or the predictions; the per-class table is logged. Only the GT images
    that have a prediction are scored (all of them in a normal val/test run).

    Args:
        gt_json: COCO-panoptic GT JSON written by createPanopticImgs.
        gt_folder: its PNG folder; default ``gt_json`` without ``.json``.
        data_root: prefix for relative ``gt_json`` / ``gt_folder``.
        outfile_prefix: keep the prediction files as
            ``{outfile_prefix}.panoptic.json`` and ``{outfile_prefix}.panoptic/``
            (the Cityscapes result format); default: a temporary folder.
        nproc: worker processes for the PQ computation; default: CPU count.
        classwise: log the per-class table.
        collect_device, collect_dir, prefix: as for mmengine's ``BaseMetric``.
    """

    default_prefix: Optional[str] = 'cityscapes_panoptic'

    def __init__(self,
                 gt_json: str,
                 gt_folder: Optional[str] = None,
                 data_root: Optional[str] = None,
                 outfile_prefix: Optional[str] = None,
                 nproc: Optional[int] = None,
                 classwise: bool = True,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if gt_folder is None:
            gt_folder = osp.splitext(gt_json)[0]
        if data_root:
            gt_json = osp.join(data_root, gt_json)
            gt_folder = osp.join(data_root, gt_folder)
        self.gt_json, self.gt_folder = gt_json, gt_folder
        self.outfile_prefix = outfile_prefix
        self.nproc = nproc
        self.classwise = classwise

        for what, path, ok in (('gt_json', gt_json, osp.isfile),
                               ('gt_folder', gt_folder, osp.isdir)):
            if not ok(path):
                raise UserError(
                    f"CityscapesPanopticMetric: {what} '{path}' not found. Create "
                    f'the Cityscapes panoptic GT with: {CONVERTER_COMMAND}')
        with open(gt_json, encoding='utf-8') as f:
            gt = json.load(f)
        if not {'images', 'annotations', 'categories'} <= set(gt):
            raise UserError(f"'{gt_json}' is not a COCO-panoptic GT JSON; create it "
                            f'with: {CONVERTER_COMMAND}')
        self._categories: Dict[int, dict] = {c['id']: c for c in gt['categories']}
        self._images: Dict[str, dict] = {im['id']: im for im in gt['images']}
        self._gt_anns: Dict[str, dict] = {
            a['image_id']: a for a in gt['annotations']}

    # ------------------------------------------------------------------
    # Per batch (every rank)
    # ------------------------------------------------------------------
    def process(self, data_batch: Optional[dict],
                data_samples: Sequence[dict]) -> None:
        """Encode each prediction as a Cityscapes result PNG (kept as bytes).

        The files are written in :meth:`compute_metrics`, on the main process,
        after results were collected from all ranks: no shared folder needed.
        """
        label2cat = self._label2cat()
        num_classes = len(label2cat)
        for sample in data_samples:
            image_id = self._image_id(sample)
            pred = sample.get('pred_panoptic_seg')
            if pred is None or 'sem_seg' not in pred:
                raise UserError(
                    'CityscapesPanopticMetric needs pred_panoptic_seg.sem_seg in '
                    'the data samples: use a panoptic model (e.g. PanopticFPN, '
                    'Mask2Former) with a panoptic test_cfg')
            pan = pred['sem_seg']
            pan = (pan.cpu().numpy() if hasattr(pan, 'cpu') else np.asarray(pan))[0]
            gt_hw = (self._images[image_id]['height'], self._images[image_id]['width'])
            if pan.shape != gt_hw:
                raise UserError(
                    f"prediction for '{image_id}' is {pan.shape[0]}x{pan.shape[1]} "
                    f'but its GT is {gt_hw[0]}x{gt_hw[1]}: predict at the original '
                    'image size (rescale=True, the default of mmdet test loops)')
            void = {num_classes, pred.get('ignore_index', num_classes)}
            ids, segments = encode_prediction(pan, label2cat, sorted(void))
            self.results.append(
                dict(image_id=image_id, file_name=f'{image_id}_panoptic.png',
                     png=_id_png(ids), segments_info=segments))

    def _label2cat(self) -> List[int]:
        """Category id of each label, matched by class name."""
        meta = self.dataset_meta
        if not meta or 'classes' not in meta:
            raise UserError('CityscapesPanopticMetric: dataset_meta with classes is '
                            'not set (the runner sets it from the dataset)')
        return category_ids_by_name(
            meta['classes'], list(self._categories.values()),
            f"gt_json '{self.gt_json}'",
            fix="Use the dataset's ann_file as gt_json")

    def _image_id(self, sample: dict) -> str:
        """The GT image id: ``img_id``, or derived from ``img_path``."""
        image_id = sample.get('img_id')
        if image_id in self._images:
            return image_id
        stem = osp.basename(str(sample.get('img_path', '')))
        stem = stem.replace('_leftImg8bit.png', '')
        if stem in self._images:
            return stem
        raise UserError(
            f"prediction for image '{image_id}' ({sample.get('img_path')}) has no "
            f"GT in gt_json '{self.gt_json}': the evaluator's gt_json must be the "
            "dataset's ann_file (same split)")

    # ------------------------------------------------------------------
    # Once, on the main process
    # ------------------------------------------------------------------
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Write the result files, score them, log the tables.

        Args:
            results: what :meth:`process` stored, from all ranks.

        Returns:
            ``PQ``, ``SQ``, ``RQ``, ``PQ_th``, ..., ``RQ_st`` in percent.
        """
        logger = MMLogger.get_current_instance()
        preds = {r['image_id']: r for r in results}  # a repeated image counts once
        if len(preds) < len(self._gt_anns):
            print_log(f'CityscapesPanopticMetric: scoring {len(preds)} of the '
                      f'{len(self._gt_anns)} GT images (the predicted ones)',
                      logger=logger)
        label2cat = self._label2cat()
        categories = {cid: self._categories[cid] for cid in label2cat}

        with contextlib.ExitStack() as stack:
            prefix = self.outfile_prefix
            if prefix is None:
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                prefix = osp.join(tmp, 'results')
            pred_folder = self._write_results(list(preds.values()), prefix)
            matched = [(self._gt_anns[i], self._pred_ann(p))
                       for i, p in preds.items()]
            pq_stat = self._pq_stat(matched, pred_folder, categories)

        summary, per_class = _average(pq_stat, categories)
        self._log_tables(summary, per_class, pq_stat, label2cat, logger)
        names = (('All', ''), ('Things', '_th'), ('Stuff', '_st'))
        return {f'{key}{suffix}': 100 * summary[name][key.lower()]
                for name, suffix in names for key in ('PQ', 'SQ', 'RQ')}

    @staticmethod
    def _pred_ann(result: dict) -> dict:
        """The result-JSON annotation of one image (without the PNG bytes)."""
        return dict(image_id=result['image_id'], file_name=result['file_name'],
                    segments_info=[dict(s) for s in result['segments_info']])

    def _write_results(self, results: List[dict], prefix: str) -> str:
        """Write ``{prefix}.panoptic/*.png`` and ``{prefix}.panoptic.json``."""
        folder = f'{prefix}.panoptic'
        os.makedirs(folder, exist_ok=True)
        for r in results:
            with open(osp.join(folder, r['file_name']), 'wb') as f:
                f.write(r['png'])
        with open(f'{prefix}.panoptic.json', 'w', encoding='utf-8') as f:
            json.dump(dict(annotations=[self._pred_ann(r) for r in results]), f)
        return folder

    def _pq_stat(self, matched: List[Tuple[dict, dict]], pred_folder: str,
                 categories: Dict[int, dict]):
        """cityscapesScripts' per-image PQ statistics, summed (its ``PQStat``)."""
        from cityscapesscripts.evaluation import \
            evalPanopticSemanticLabeling as cs_eval

        nproc = min(self.nproc or multiprocessing.cpu_count(), len(matched))
        if nproc <= 1:
            with contextlib.redirect_stdout(io.StringIO()):  # progress prints
                return cs_eval.pq_compute_single_core(
                    0, matched, self.gt_folder, pred_folder, categories)
        chunks = [matched[i::nproc] for i in range(nproc)]
        pq_stat = cs_eval.PQStat()
        with multiprocessing.Pool(nproc, initializer=_silence_stdout) as pool:
            jobs = [
                pool.apply_async(cs_eval.pq_compute_single_core,
                                 (i, chunk, self.gt_folder, pred_folder, categories))
                for i, chunk in enumerate(chunks)
            ]
            for job in jobs:
                pq_stat += job.get()
        return pq_stat

    def _log_tables(self, summary: dict, per_class: dict, pq_stat,
                    label2cat: List[int], logger: MMLogger) -> None:
        rows = [['', 'PQ', 'SQ', 'RQ', 'classes']]
        for name in ('All', 'Things', 'Stuff'):
            s = summary[name]
            rows.append([name] + [f"{100 * s[k]:.2f}" for k in ('pq', 'sq', 'rq')]
                        + [s['n']])
        print_log('Cityscapes panoptic quality:\n' + AsciiTable(rows).table,
                  logger=logger)
        if not self.classwise:
            return
        rows = [['class', 'PQ', 'SQ', 'RQ', 'TP', 'FP', 'FN']]
        for label, cid in enumerate(label2cat):
            c, stat = per_class[cid], pq_stat[cid]
            rows.append([self.dataset_meta['classes'][label]]
                        + [f"{100 * c[k]:.2f}" for k in ('pq', 'sq', 'rq')]
                        + [stat.tp, stat.fp, stat.fn])
        print_log('Cityscapes panoptic quality per class:\n' +
                  AsciiTable(rows).table, logger=logger)


def _average(pq_stat, categories: Dict[int, dict]) -> Tuple[dict, dict]:
    """All / Things / Stuff means of cityscapesScripts' ``pq_average``.

    Returns:
        summary: ``{'All'|'Things'|'Stuff': {'pq', 'sq', 'rq', 'n'}}`` (zeros
            when no class of the group occurs, where cityscapesScripts divides
            by zero).
        per_class: ``{category_id: {'pq', 'sq', 'rq'}}``.
    """
    summary, per_class = {}, {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        try:
            summary[name], classes = pq_stat.pq_average(categories, isthing=isthing)
        except ZeroDivisionError:
            summary[name] = dict(pq=0.0, sq=0.0, rq=0.0, n=0)
            classes = {cid: dict(pq=0.0, sq=0.0, rq=0.0) for cid in categories}
        if isthing is None:
            per_class = classes
    return summary, per_class
