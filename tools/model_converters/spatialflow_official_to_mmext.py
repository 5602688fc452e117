"""Convert an official SpatialFlow checkpoint (chensnathan/SpatialFlow, mmdetection
v2.3 key names) into an mmext checkpoint for the matching config.

    python tools/model_converters/spatialflow_official_to_mmext.py \\
        configs/spatialflow/spatialflow_r50_fpn_20e_coco.py \\
        spatialflow_r50_fpn_20e_coco.pth spatialflow_r50_mmext.pth
    python tools/test.py configs/spatialflow/spatialflow_r50_fpn_20e_coco.py \\
        spatialflow_r50_mmext.pth

Every official tensor is placed on exactly one parameter / buffer of the model the
config builds, and every parameter / buffer of that model is filled; anything else
(a key with no place, a shape mismatch, a model tensor left empty) stops the
conversion with the list of offending keys. Key renames (official -> mmext):

* ``bbox_head.cls_spatial_flow_convs.i``   -> ``bbox_head.cls_flows.i``
* ``bbox_head.stuff_spatial_flow_convs.i`` -> ``bbox_head.stuff_flows.i``
* ``bbox_head.mask_spatial_flow_convs.0``  -> ``bbox_head.mask_flow_reg``
* ``bbox_head.stuff_mask_flow_convs.0``    -> ``bbox_head.mask_flow_stuff``
* ``mask_head.*``                          -> ``mask_branch.mask_head.*``
* ``stuff_head.conv``                      -> ``stuff_head.conv_logits``, with its
  output channels reordered: the official stuff head puts the merged "things"
  channel (COCO category 183, "things-other") among the stuff classes in category
  id order (channel 36 of 54 on COCO); mmdet's label order puts it last.

The backbone, neck, the towers (``bbox_head.{cls,reg,stuff,mask}_convs``), the
RetinaNet predictors and the stuff head's ``lateral_convs`` keep their names.
Half precision tensors (the fp16 R101-DCN checkpoint) are cast to the model's dtype.
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmext.engine import run_cli  # noqa: E402
from mmext.utils.checkpoint import (load_foreign_state_dict,  # noqa: E402
                                    place_tensors)
from mmext.utils.errors import UserError  # noqa: E402

# The official stuff head's output channels on COCO: the 53 stuff classes and
# 'things-other' in category id order (mmdet/datasets/coco.py of the official code,
# seg_ids with things_other=True).
OFFICIAL_COCO_STUFF_CHANNELS = (
    'banner', 'blanket', 'bridge', 'cardboard', 'counter', 'curtain', 'door-stuff',
    'floor-wood', 'flower', 'fruit', 'gravel', 'house', 'light', 'mirror-stuff', 'net',
    'pillow', 'platform', 'playingfield', 'railroad', 'river', 'road', 'roof', 'sand',
    'sea', 'shelf', 'snow', 'stairs', 'tent', 'towel', 'wall-brick', 'wall-stone',
    'wall-tile', 'wall-wood', 'water-other', 'window-blind', 'window-other',
    'things-other', 'tree-merged', 'fence-merged', 'ceiling-merged',
    'sky-other-merged', 'cabinet-merged', 'table-merged', 'floor-other-merged',
    'pavement-merged', 'mountain-merged', 'grass-merged', 'dirt-merged',
    'paper-merged', 'food-other-merged', 'building-other-merged', 'rock-merged',
    'wall-other-merged', 'rug-merged')
COCO_THINGS_CHANNEL = OFFICIAL_COCO_STUFF_CHANNELS.index('things-other')  # 36

_RENAMES: List[Tuple[str, str]] = [
    (r'^bbox_head\.cls_spatial_flow_convs\.', 'bbox_head.cls_flows.'),
    (r'^bbox_head\.stuff_spatial_flow_convs\.', 'bbox_head.stuff_flows.'),
    (r'^bbox_head\.mask_spatial_flow_convs\.0\.', 'bbox_head.mask_flow_reg.'),
    (r'^bbox_head\.stuff_mask_flow_convs\.0\.', 'bbox_head.mask_flow_stuff.'),
    (r'^mask_head\.', 'mask_branch.mask_head.'),
    (r'^stuff_head\.conv\.(weight|bias)$', r'stuff_head.conv_logits.\1'),
    # Same names in both code bases.
    (r'^(backbone|neck)\.', r'\1.'),
    (r'^bbox_head\.(cls|reg|stuff|mask)_convs\.', r'bbox_head.\1_convs.'),
    (r'^bbox_head\.retina_(cls|reg)\.', r'bbox_head.retina_\1.'),
    (r'^stuff_head\.lateral_convs\.', 'stuff_head.lateral_convs.'),
]


def map_key(key: str) -> Optional[str]:
    """mmext name of an official key, or None when no rule places it."""
    for pattern, replacement in _RENAMES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def stuff_channel_order(num_channels: int, things_channel: int) -> List[int]:
    """Official channel of each mmext stuff-logit channel: mmext has the stuff
    classes in order, then "things"; the official has "things" at
    ``things_channel``."""
    if not 0 <= things_channel < num_channels:
        raise UserError(f'things_channel={things_channel} is not a channel of the '
                        f'{num_channels} stuff logits')
    stuff = [c for c in range(num_channels) if c != things_channel]
    return stuff + [things_channel]


def convert_state_dict(official: Dict[str, 'torch.Tensor'],
                       target: Dict[str, 'torch.Tensor'],
                       things_channel: Optional[int] = None
                       ) -> Dict[str, 'torch.Tensor']:
    """Map ``official`` (mmdet v2 names) onto the keys / shapes / dtypes of
    ``target`` (our model's ``state_dict()``).

    Raises:
        UserError: listing every official key with no place, every shape
            mismatch, every target key filled twice or not at all.
    """
    def reorder_stuff_logits(key: str, new_key: str, value: 'torch.Tensor'):
        if not new_key.startswith('stuff_head.conv_logits.'):
            return value
        channel = COCO_THINGS_CHANNEL if things_channel is None else things_channel
        if things_channel is None and value.shape[0] != len(
                OFFICIAL_COCO_STUFF_CHANNELS):
            raise UserError(
                f'{key} has {value.shape[0]} output channels, not COCO\'s '
                f'{len(OFFICIAL_COCO_STUFF_CHANNELS)}: give --things-channel (the '
                'official channel of the merged "things" class).')
        return value[stuff_channel_order(value.shape[0], channel)]

    out, problems = place_tensors(official, target, map_key,
                                  convert=reorder_stuff_logits)
    if problems:
        raise UserError('cannot convert the official SpatialFlow checkpoint: '
                        + '; '.join(problems) + '. Is the config the one the '
                        'checkpoint was trained with (depth, DCN, classes)?')
    return out


def load_official(path: str, trust: bool = False) -> Dict[str, 'torch.Tensor']:
    """The ``state_dict`` of an mmdet v2 checkpoint (or a bare state dict)."""
    return load_foreign_state_dict(path, 'official checkpoint', trust)


def build_target_state(config: str) -> Dict[str, 'torch.Tensor']:
    """``state_dict()`` of the model ``config`` builds (no pretrained download)."""
    from mmdet.utils import register_all_modules
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    from mmext.engine import load_config
    register_all_modules(init_default_scope=False)
    init_default_scope('mmdet')
    cfg = load_config(config)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).state_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='mmext config of the same model, e.g. '
                        'configs/spatialflow/spatialflow_r50_fpn_20e_coco.py')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output mmext checkpoint (.pth)')
    parser.add_argument('--things-channel', type=int, default=None,
                        help='official stuff-logit channel of the "things" class '
                        f'(default: COCO\'s {COCO_THINGS_CHANNEL})')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load src with torch.load(weights_only=False)')
    args = parser.parse_args()
    import torch

    import mmext  # noqa: F401  (registers the SpatialFlow modules)
    if not osp.isfile(args.src):
        raise UserError(f"official checkpoint '{args.src}' does not exist")
    official = load_official(args.src, args.trust_checkpoint)
    state = convert_state_dict(official, build_target_state(args.config),
                               args.things_channel)
    meta = dict(converted_from=osp.abspath(args.src), config=args.config,
                converter='tools/model_converters/spatialflow_official_to_mmext.py')
    torch.save(dict(meta=meta, state_dict=state), args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors')


if __name__ == '__main__':
    run_cli(main)
