"""The Markdown of tools/benchmarks/bench_pkd.py: step-time table, memory table,
teacher curve and the students' table, from the numbers bench_pkd measured."""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from bench_report import ROOT, header, mean_std
from memory_probe import memory_lines

METRIC = 'coco/bbox_mAP'
LABELS = {
    'plain': '(a) plain student training step',
    'teacher': '(b) teacher backbone+neck forward, no_grad',
    'distiller': '(c) distiller training step',
}


@dataclass
class SpeedSetting:
    """What the speed part timed: the batch, the distiller, the rounds."""
    shape: Tuple[int, ...]  # padded input batch (N, 3, H, W)
    boxes: int  # gt boxes in the batch
    levels: int  # PKD level pairs
    adapters: int
    warmup: int
    repeats: int
    teacher: Optional[str]  # checkpoint; None: random initialisation


def _ms(values: List[float]) -> Tuple[str, str]:
    """(median, 'min..max') in ms."""
    return (f'{statistics.median(values):.1f}', f'{min(values):.1f}..{max(values):.1f}')


def speed_lines(times: Dict[str, List[float]], s: SpeedSetting) -> List[str]:
    """The step-time table of (a), (b), (c) and the floor (a) + (b), with ratios."""
    floor = [a + b for a, b in zip(times['plain'], times['teacher'])]
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio_floor = med['distiller'] / statistics.median(floor)
    per_round = [c / f for c, f in zip(times['distiller'], floor)]
    lines = [
        f'One fixed batch of the demo train dataloader: {s.shape[0]} images, padded '
        f'input {s.shape[2]}x{s.shape[3]}, {s.boxes} gt boxes. Student RetinaNet R18 '
        '(64-ch FPN P3-P7), teacher Faster R-CNN R18 backbone+neck (128-ch FPN P2-P6), '
        f'{s.levels} PKD levels, {s.adapters} adapters. '
        f'{s.warmup} warm-up rounds, then median of {s.repeats} rounds; the '
        'three variants run round-robin in one process, order rotating per round.',
        '',
        ('Teacher weights: random initialisation (saved to a temporary checkpoint); '
         'step time does not depend on trained weights.') if s.teacher is None
        else f'Teacher weights: `{s.teacher}`.', '',
        '| variant | median ms | min..max ms |', '|---|---:|---:|',
    ]
    for name in ('plain', 'teacher', 'distiller'):
        lines.append('| {} | {} | {} |'.format(LABELS[name], *_ms(times[name])))
        if name == 'teacher':
            lines.append('| floor = (a) + (b), per round | {} | {} |'.format(*_ms(floor)))
    verdict = 'within' if ratio_floor <= 1.10 else 'NOT within'
    return lines + [
        '',
        f'- distiller / plain: **{med["distiller"] / med["plain"]:.3f}** (medians)',
        f'- distiller / floor: **{ratio_floor:.3f}** (medians; median of the per-round '
        f'ratios {statistics.median(per_round):.3f}) -> {verdict} the 1.10 target', '',
    ]


def memory_section(memory: Dict[str, dict], on_cuda: bool) -> List[str]:
    """The peak-memory table of 'plain' and 'distiller', their ratios, the method."""
    p, d = memory['plain'], memory['distiller']
    ratios = (f'- distiller / plain: **{d["peak_mib"] / p["peak_mib"]:.2f}** for the '
              f'peak, {d["increase_mib"] / p["increase_mib"]:.2f} for the increase, '
              f'{d["saved_mib"] / p["saved_mib"]:.2f} for the tensors saved for backward')
    return memory_lines(memory, {v: LABELS[v][4:] for v in memory}, on_cuda,
                        notes=[ratios, ''])


def teacher_lines(result: dict, config: str, device: str) -> List[str]:
    """The teacher's validation curve and where its best checkpoint came from."""
    curve = result['curve']
    best_iter, best_map = max(curve, key=lambda c: c[1])
    return header('PKD demo teacher trained until its val mAP stops rising', device) + [
        f'`{config}`: Faster R-CNN R18 from scratch, validated every 100 '
        'iterations on the 100 demo val images, early stop after 3 validations without '
        f'a +0.002 rise; trained {result["trained_iters"]} iterations in '
        f'{result["seconds"]:.0f} s (`{result["command"]}`). Best: **{best_map:.3f}** '
        f'at iteration {best_iter} (`{result["checkpoint"]}`, the teacher of the '
        'table below). ' + (
            'The mAP was still rising at the last validation: the iteration cap (the '
            'CPU budget), not a plateau, ended training.'
            if best_iter == curve[-1][0] else
            'The mAP stopped rising before the end.'), '',
        '| iteration | ' + ' | '.join(str(i) for i, _ in curve) + ' |',
        '|---|' + '---:|' * len(curve),
        f'| {METRIC} | ' + ' | '.join(f'{m:.3f}' for _, m in curve) + ' |', '']


def table_lines(args: argparse.Namespace, variants: Dict[str, tuple],
                results: Dict[str, Dict[int, dict]], teacher_ckpt: str,
                seconds: float) -> List[str]:
    """The Markdown tables of the table part (only seeds every variant finished).

    ``variants``: name -> (label, config, options), 'plain' among them;
    ``results``: name -> seed -> {'value': metric, 'losses': loss summary}.
    """
    seeds = [s for s in args.seeds if all(s in r for r in results.values())]
    missing = {v: [s for s in args.seeds if s not in r] for v, r in results.items()}
    missing = {v: s for v, s in missing.items() if s}
    iters = args.iters if args.iters is not None else "the configs' 200"
    lines = header(f'PKD: {len(results)} students on the demo data, {len(seeds)} seeds',
                   args.device)
    lines += [
        f'{iters} iterations per student, batch 8, AdamW lr 1e-3, seeds '
        f'{", ".join(map(str, seeds))}; teacher `{osp.relpath(teacher_ckpt, ROOT)}`; '
        f'each final checkpoint tested with `{variants["plain"][1]}` on the demo val set'
        + (f' (first {args.test_images} images only)' if args.test_images else '')
        + f'; {seconds:.0f} s of training in this invocation (runs finished earlier '
        'are reused from their result.json). std: sample std over seeds. Paired '
        'difference: per seed, variant minus plain, then mean ± std of those.', '']
    if missing:
        lines += ['NOT RUN (yet): ' + '; '.join(f'{v} seeds {s}' for v, s in
                                               missing.items()), '']
    values = {name: [results[name][s]['value'] for s in seeds] for name in results}
    label = {name: variants[name][0] for name in results}
    return (lines + _students(values, label, seeds)
            + _comparisons(values, label, args.small_weight, bool(seeds))
            + _losses(results, label, seeds) + [''])


def _students(values: Dict[str, List[float]], label: Dict[str, str],
              seeds: List[int]) -> List[str]:
    """Per student: metric per seed, mean ± std, paired differences to plain."""
    seed_list = ', '.join(map(str, seeds))
    lines = [f'| student | {METRIC} per seed ({seed_list}) | mean ± std | '
             'minus plain, paired by seed | mean ± std of the differences |',
             '|---|---|---|---|---|']
    for name, v in values.items():
        if not v:
            continue
        row = f'| {label[name]} | {", ".join(f"{x:.3f}" for x in v)} | {mean_std(v)} |'
        if name != 'plain' and 'plain' in values:
            d = [a - b for a, b in zip(v, values['plain'])]
            row += f' {", ".join(f"{x:+.3f}" for x in d)} | {mean_std(d, signed=True)} |'
        else:
            row += ' | |'
        lines.append(row)
    return lines


def _comparisons(values: Dict[str, List[float]], label: Dict[str, str],
                 small_weight: float, any_seed: bool) -> List[str]:
    """Paired differences between the PKD variants (which pairing, loss, weight)."""
    pairs = [('pkd', 'mse'), ('pkd', 'pkd_stride'), (f'pkd_w{small_weight:g}', 'pkd')]
    pairs = [(a, b) for a, b in pairs if a in values and b in values]
    if not (pairs and any_seed):
        return []
    lines = ['', '| paired comparison | per seed | mean ± std |', '|---|---|---|']
    for a, b in pairs:
        d = [x - y for x, y in zip(values[a], values[b])]
        lines.append(f'| {label[a]} minus {label[b]} | '
                     f'{", ".join(f"{x:+.3f}" for x in d)} | {mean_std(d, signed=True)} |')
    return lines


def _losses(results: Dict[str, Dict[int, dict]], label: Dict[str, str],
            seeds: List[int]) -> List[str]:
    """Mean first/last logged loss, distillation part and grad norm per student."""
    lines = ['', 'Training losses from the logs (mean over the seeds above): total '
             'loss, its distillation part, and the gradient norm before clipping '
             '(the config clips at 10), at the first and the last logged iteration.',
             '', '| student | first: loss / distill / grad norm | '
             'last: loss / distill / grad norm |', '|---|---|---|']
    for name in results:
        cells = []
        for tag in ('first', 'last'):
            recs = [results[name][s]['losses'].get(tag) for s in seeds]
            recs = [r for r in recs if r]
            if not recs:
                cells.append('-')
                continue
            gn = [r['grad_norm'] for r in recs if r.get('grad_norm') is not None]
            cells.append(f'it {recs[0]["iter"]}: '
                         f'{statistics.mean(r["loss"] for r in recs):.2f} / '
                         f'{statistics.mean(r["distill"] for r in recs):.2f} / '
                         + (f'{statistics.mean(gn):.1f}' if gn else '-'))
        if seeds:
            lines.append(f'| {label[name]} | {cells[0]} | {cells[1]} |')
    return lines
