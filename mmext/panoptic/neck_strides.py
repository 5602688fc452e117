"""Do SpatialFlow's neck outputs have the strides its heads are built for?

Four parts of a SpatialFlow config assume the strides of the neck's outputs:

* ``bbox_head.anchor_generator.strides``: one stride per neck output, all levels;
* ``mask_branch.mask_roi_extractor.featmap_strides``: the first
  ``bbox_head.num_panoptic_levels`` of them (the mask-tower levels);
* ``stuff_head.num_upsamples``: level l is upsampled ``num_upsamples[l]`` times by
  2 to stride 4, so it must have stride ``4 * 2 ** num_upsamples[l]``;
* the neck itself, whose strides are *measured* (``SpatialFlow`` runs one dummy
  forward of backbone + neck, :func:`~mmext.utils.feature_levels.measure_levels`),
  not read from its config, so any backbone / neck is checked the same way.

:func:`neck_stride_problems` compares them and returns one sentence per mismatch,
naming both lists and the config keys to change (a pure function: the detector
raises them at build time, before the first training step).
"""
from typing import List, Sequence

import torch.nn as nn

# The stuff head upsamples every level at least once (num_upsamples >= 1) to stride 4:
# its finest input level can have stride 8, not 4.
STUFF_OUTPUT_STRIDE = 4
MIN_STUFF_STRIDE = 2 * STUFF_OUTPUT_STRIDE


def stuff_strides(num_upsamples: Sequence[int]) -> List[int]:
    """The input strides the stuff head is built for: ``4 * 2 ** n`` per level."""
    return [STUFF_OUTPUT_STRIDE * 2**n for n in num_upsamples]


def stuff_num_upsamples(stuff_head: nn.Module) -> List[int]:
    """The ``num_upsamples`` a :class:`~mmext.panoptic.SpatialFlowStuffHead` was
    built with: the 2x upsampling layers of each of its branches
    (``lateral_convs[l]``), as the head keeps no copy of the argument."""
    return [sum(isinstance(m, nn.Upsample) for m in branch.modules())
            for branch in stuff_head.lateral_convs]


def _neck_vs_anchors(neck: List[int], anchors: List[int], levels: int) -> str:
    """The sentence for a neck whose measured strides are not the anchor strides."""
    what = (f'the neck outputs {len(neck)} maps of strides {neck} (measured with a '
            f'dummy forward) but bbox_head.anchor_generator.strides is {anchors}'
            + (f' ({len(anchors)} levels)' if len(neck) != len(anchors) else ''))
    fix = ('change the neck so that it outputs the anchor strides (its output count '
           'and first stride: e.g. FPN num_outs / start_level / add_extra_convs, '
           'HRFPN num_outs / stride)')
    finest = neck[:levels]
    if len(finest) == levels and min(finest) >= MIN_STUFF_STRIDE:
        fix += (', or set bbox_head.anchor_generator.strides to the neck\'s strides '
                '(and mask_branch.mask_roi_extractor.featmap_strides and '
                f'stuff_head.num_upsamples for the first {levels} levels with them)')
    elif finest:
        fix += (f'; the anchors cannot follow the neck instead: its stride-{min(finest)} '
                f'map is finer than the stuff head takes (stride >= {MIN_STUFF_STRIDE},'
                ' stuff_head.num_upsamples >= 1)')
    return f'{what}: {fix}'


def neck_stride_problems(neck_strides: Sequence[int], anchor_strides: Sequence[int],
                         num_panoptic_levels: int, roi_strides: Sequence[int],
                         num_upsamples: Sequence[int]) -> List[str]:
    """Mismatches between the strides the neck outputs and the heads' strides.

    Args:
        neck_strides: measured stride of each neck output, finest first.
        anchor_strides: ``bbox_head.prior_generator.strides`` (one int per level).
        num_panoptic_levels: ``bbox_head.num_panoptic_levels`` (stuff + mask levels).
        roi_strides: ``mask_branch.mask_roi_extractor.featmap_strides``.
        num_upsamples: the stuff head's ``num_upsamples`` (one per level).

    Returns:
        One sentence per problem (empty: consistent), e.g. for HRNet + HRFPN with
        its default ``stride=1``: ``'the neck outputs 5 maps of strides [4, 8, 16,
        32, 64] (measured with a dummy forward) but
        bbox_head.anchor_generator.strides is [8, 16, 32, 64, 128]: change the
        neck ...'``.
    """
    neck, anchors = list(neck_strides), list(anchor_strides)
    levels = num_panoptic_levels
    panoptic = anchors[:levels]
    problems = []
    if neck != anchors:
        problems.append(_neck_vs_anchors(neck, anchors, levels))
    if list(roi_strides) != panoptic:
        problems.append(f'mask_branch.mask_roi_extractor.featmap_strides='
                        f'{list(roi_strides)} must be the strides of the {levels} '
                        f'panoptic levels {panoptic} (bbox_head.anchor_generator.'
                        'strides[:bbox_head.num_panoptic_levels])')
    if len(num_upsamples) != levels:
        problems.append(f'stuff_head has {len(num_upsamples)} branches (num_upsamples='
                        f'{tuple(num_upsamples)}) for {levels} panoptic levels '
                        '(bbox_head.num_panoptic_levels)')
    elif stuff_strides(num_upsamples) != panoptic:
        problems.append(f'stuff_head.num_upsamples={tuple(num_upsamples)} takes levels '
                        f'of strides {stuff_strides(num_upsamples)} (4 * 2 ** n) but the '
                        f'{levels} panoptic levels have strides {panoptic}')
    return problems
