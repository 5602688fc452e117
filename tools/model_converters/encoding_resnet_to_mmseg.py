"""Convert PyTorch-Encoding's ImageNet ResNet-50s / ResNet-101s (the deep-stem ResNet
the official LaU code starts from) into an mmseg ``ResNetV1c(stem_channels=128)``
backbone checkpoint.

    python tools/model_converters/encoding_resnet_to_mmseg.py \\
        resnet50-25c4b509.pth checkpoints/encoding_resnet50-25c4b509_mmseg.pth

The source is what the official code loads (HolmesShuan/Location-aware-Upsampling-for-
Semantic-Segmentation, LaU-reg/encoding/dilated/resnet.py L253-L264 and
encoding/models/model_store.py L11-L27): ``resnet50-25c4b509.pth`` from
https://hangzh.s3.amazonaws.com/encoding/models/resnet50-25c4b509.zip
(``resnet101-2a57e44d.zip`` for ResNet-101). Later PyTorch-Encoding releases call
this model ``resnet50s`` / ``resnet101s`` (same module names, stem width 64, no
avg-down): their ``resnet50s-a75c83cf.pth`` / ``resnet101s-03a0f310.pth`` convert too.

The official stem (dilated/resnet.py L137-L154) is ``conv1`` = conv3x3(3, 64, s2),
BN, ReLU, conv3x3(64, 64), BN, ReLU, conv3x3(64, 128), then ``bn1``, ReLU, max-pool;
mmseg's deep stem with ``stem_channels=128`` is the same sequence in one
``nn.Sequential`` (``stem.0`` ... ``stem.8``). Key renames (official -> mmseg):

* ``conv1.0`` -> ``stem.0``, ``conv1.1`` -> ``stem.1`` (BN), ``conv1.3`` -> ``stem.3``,
  ``conv1.4`` -> ``stem.4`` (BN), ``conv1.6`` -> ``stem.6``, ``bn1`` -> ``stem.7``;
* ``layer1`` ... ``layer4`` keep their names (Bottleneck ``conv1..3``, ``bn1..3``,
  ``downsample.0`` = strided 1x1 conv, ``downsample.1`` = BN, as in ResNetV1c);
* ``fc.weight`` / ``fc.bias`` (the ImageNet classifier) are dropped: the segmentation
  backbone has no classifier.

Every other tensor is placed on exactly one tensor of the mmseg backbone, and every
backbone tensor is filled; anything else (an unknown key, a shape mismatch, a
backbone tensor left empty) stops the conversion with the list of offending keys.
Checkpoints saved before PyTorch 0.4.1 have no BN ``num_batches_tracked`` counters:
those are written as 0 (mmseg's BN uses a fixed momentum, so the counter is unused).
Dilation and strides do not change any tensor: the output serves the D8 backbone of
the LaU configs (strides (1, 2, 1, 1), dilations (1, 1, 2, 4), contract_dilation).

The output holds the backbone's own names (no ``backbone.`` prefix), for
``model.backbone.init_cfg = dict(type='Pretrained', checkpoint=OUT)`` (mmengine loads
a backbone's Pretrained checkpoint into the backbone module itself).
"""
import argparse
import hashlib
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmext.engine import run_cli  # noqa: E402
from mmext.utils.checkpoint import (load_foreign_state_dict,  # noqa: E402
                                    place_tensors)
from mmext.utils.errors import UserError  # noqa: E402

# sha1 of the ImageNet checkpoints: the official LaU code's model store
# (LaU-reg/encoding/models/model_store.py L12-L13) and PyTorch-Encoding's later
# ``resnet50s`` / ``resnet101s`` entries. Only recorded in the output's meta.
KNOWN_SHA1 = {
    '25c4b50959ef024fcc050213a06b614899f94b3d': 'resnet50 (official LaU model store)',
    '2a57e44de9c853fa015b172309a1ee7e2d0e4e2a': 'resnet101 (official LaU model store)',
    'a75c83cfc89a56a4e8ba71b14f1ec67e923787b3': 'resnet50s (PyTorch-Encoding)',
    '03a0f310d6447880f1b22a83bd7d1aa7fc702c6e': 'resnet101s (PyTorch-Encoding)',
}
# Blocks of layer3 -> depth (ResNet-50: 6, -101: 23, -152: 36).
DEPTH_OF_LAYER3 = {6: 50, 23: 101, 36: 152}
STEM_CHANNELS = 128

_STEM = {'conv1.0': 'stem.0', 'conv1.1': 'stem.1', 'conv1.3': 'stem.3',
         'conv1.4': 'stem.4', 'conv1.6': 'stem.6', 'bn1': 'stem.7'}
_DROPPED = ('fc.weight', 'fc.bias')


def map_key(key: str) -> Optional[str]:
    """mmseg backbone name of an official key; None when no rule places it."""
    head, _, leaf = key.rpartition('.')
    if head in _STEM:
        return f'{_STEM[head]}.{leaf}'
    if re.match(r'^layer[1-4]\.\d+\.', key):
        return key
    return None


def detect_depth(official: Dict[str, 'torch.Tensor']) -> int:
    """ResNet depth from the number of ``layer3`` blocks of the checkpoint."""
    blocks = {int(m.group(1)) for k in official
              for m in [re.match(r'^layer3\.(\d+)\.', k)] if m}
    count = max(blocks) + 1 if blocks else 0
    if count not in DEPTH_OF_LAYER3:
        raise UserError(f'the checkpoint has {count} layer3 blocks: not a PyTorch-'
                        'Encoding ResNet-50s / 101s / 152s (6, 23 or 36 blocks)')
    return DEPTH_OF_LAYER3[count]


def build_target_state(depth: int) -> Dict[str, 'torch.Tensor']:
    """``state_dict()`` of the authors' backbone in mmseg: ResNetV1c with the
    64-64-128 stem, as the LaU reproduction configs build it."""
    from mmseg.models.backbones import ResNetV1c
    backbone = ResNetV1c(depth=depth, stem_channels=STEM_CHANNELS,
                         strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                         contract_dilation=True)
    return backbone.state_dict()


def convert_state_dict(official: Dict[str, 'torch.Tensor'],
                       target: Dict[str, 'torch.Tensor']
                       ) -> Tuple[Dict[str, 'torch.Tensor'], List[str]]:
    """Map ``official`` (PyTorch-Encoding names) onto the keys / shapes / dtypes of
    ``target`` (the mmseg backbone's ``state_dict()``).

    Returns:
        The converted state dict and the BN counters written as 0 because the
        checkpoint has none (``num_batches_tracked`` of pre-0.4.1 checkpoints).

    Raises:
        UserError: listing every official key with no place, every shape mismatch,
            every target key filled twice or not at all.
    """
    import torch
    out, problems = place_tensors(
        official, target, map_key, part='backbone', skip=_DROPPED,
        may_be_missing=lambda key: key.endswith('.num_batches_tracked'))
    counters = sorted(k for k in set(target) - set(out)
                      if k.endswith('.num_batches_tracked'))
    if problems:
        raise UserError('cannot convert the PyTorch-Encoding ResNet checkpoint: '
                        + '; '.join(problems) + '. Is it an ImageNet resnet50s / '
                        'resnet101s (deep 64-64-128 stem) of PyTorch-Encoding?')
    for key in counters:
        out[key] = torch.zeros_like(target[key])
    return out, counters


def load_official(path: str, trust: bool = False) -> Dict[str, 'torch.Tensor']:
    """The state dict of a PyTorch-Encoding checkpoint (a bare state dict, as its
    model store serves it, or one under ``state_dict``; ``module.`` stripped)."""
    return load_foreign_state_dict(path, 'PyTorch-Encoding checkpoint', trust)


def file_sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help="PyTorch-Encoding ImageNet checkpoint, e.g. "
                        'resnet50-25c4b509.pth (unzipped)')
    parser.add_argument('dst', help='output mmseg backbone checkpoint (.pth), e.g. '
                        'checkpoints/encoding_resnet50-25c4b509_mmseg.pth')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load src with torch.load(weights_only=False)')
    args = parser.parse_args()
    import torch
    if not osp.isfile(args.src):
        raise UserError(f"PyTorch-Encoding checkpoint '{args.src}' does not exist "
                        '(download https://hangzh.s3.amazonaws.com/encoding/models/'
                        'resnet50-25c4b509.zip and unzip it)')
    official = load_official(args.src, args.trust_checkpoint)
    depth = detect_depth(official)
    state, counters = convert_state_dict(official, build_target_state(depth))
    sha1 = file_sha1(args.src)
    meta = dict(converted_from=osp.abspath(args.src), source_sha1=sha1,
                source_model=KNOWN_SHA1.get(sha1, 'unknown'),
                backbone=dict(type='ResNetV1c', depth=depth,
                              stem_channels=STEM_CHANNELS),
                dropped=[k for k in _DROPPED if k in official],
                zero_filled=counters,
                converter='tools/model_converters/encoding_resnet_to_mmseg.py')
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state), args.dst)
    print(f'wrote {args.dst}: ResNetV1c-{depth} (stem 64-64-128), {len(state)} '
          f"tensors; dropped {', '.join(meta['dropped']) or 'nothing'}"
          + (f'; {len(counters)} BN counters set to 0' if counters else '')
          + ('' if sha1 in KNOWN_SHA1 else
             f'; note: sha1 {sha1[:8]} is not a known PyTorch-Encoding file'))


if __name__ == '__main__':
    run_cli(main)
