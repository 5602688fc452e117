"""LaU swapped into every decode-head family of mmseg's shipped configs, by config only.

One representative config per decode-head class (cascades included): its last decode
head becomes ``dict(type='LaUHead', head=<its type>, <its keys>, lau_factor=4, ...)``
(auxiliary heads untouched), with a tiny stand-in backbone (tests/seg/
lau_swap_configs.py) and 64x64 inputs. Each case: one training step (finite losses,
the offset branch gets a gradient), LaU output = 4 x the head's logits and, with zero
offsets on the 'interpolate' grid, their bilinear upsampling; then prediction. Every
other head class of the shipped configs is refused at build with one LaUConfigError
naming the reason (the list in docs/lau_seg.md, "Which decode heads").
"""
import glob
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F

import mmext  # noqa: F401  (registers the modules)
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from mmext.seg import REFUSED_HEADS, LaUConfigError, LaUHead
from tests.seg.lau_swap_configs import (CONFIG_ROOT, last_decode_head, lau_swapped_model,
                                        lau_wrapped_head, load_config)

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build in mmseg's scope, as the Runner does (tests/conftest.py clears it)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


pytestmark = pytest.mark.usefixtures('one_torch_thread')

K = 4
SIZE = 64
#: decode head class -> a shipped config whose (last) decode head it is.
SUPPORTED = {
    'ANNHead': 'ann/ann_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'APCHead': 'apcnet/apcnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'ASPPHead': 'deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'CCHead': 'ccnet/ccnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'DAHead': 'danet/danet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'DDRHead': 'ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-1024x1024.py',
    'DMHead': 'dmnet/dmnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'DNLHead': 'dnlnet/dnl_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'DPTHead': 'dpt/dpt_vit-b16_8xb2-160k_ade20k-512x512.py',
    'DepthwiseSeparableASPPHead':
        'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'DepthwiseSeparableFCNHead': 'fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py',
    'EMAHead': 'emanet/emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'EncHead': 'encnet/encnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'FCNHead': 'fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'FPNHead': 'sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py',
    'GCHead': 'gcnet/gcnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'ISAHead': 'isanet/isanet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'LRASPPHead': 'mobilenet_v3/mobilenet-v3-d8_lraspp_4xb4-320k_cityscapes-512x1024.py',
    'LightHamHead': 'segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py',
    'NLHead': 'nonlocal_net/nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'OCRHead': 'ocrnet/ocrnet_hr18_4xb2-40k_cityscapes-512x1024.py',  # cascade
    'PIDHead': 'pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py',
    'PSAHead': 'psanet/psanet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'PSPHead': 'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'SETRMLAHead': 'setr/setr_vit-l-mla_8xb1-160k_ade20k-512x512.py',
    'SETRUPHead': 'setr/setr_vit-l_pup_8xb2-160k_ade20k-512x512.py',
    'SegformerHead': 'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    'UPerHead': 'upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py',
}
#: (config, decode-head stage wrapped) -> a word of the one-line refusal.
REFUSED = {
    'IterativeDecodeHead': ('knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py',
                            -1, 'query-based'),
    'MaskFormerHead': ('maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py', -1,
                       'query-based'),
    'Mask2FormerHead': ('mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py', -1,
                        'query-based'),
    'PointHead': ('point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py', -1,
                  'subdivision'),
    'SegmenterMaskTransformerHead': (
        'segmenter/segmenter_vit-t_mask_8xb1-160k_ade20k-512x512.py', -1,
        'dot products of patch and class embeddings'),
    'SideAdapterCLIPHead': ('san/san-vit-b16_coco-stuff164k-640x640.py', -1,
                            'query-based'),
    'VPDDepthHead': ('vpd/vpd_sd_4xb8-25k_nyu-480x480.py', -1, 'depth'),
    # A LaUHead on a non-final cascade stage (OCRNet's FCNHead, PointRend's FPNHead).
    'OCRNet stage 0 (FCNHead)': ('ocrnet/ocrnet_hr18_4xb2-40k_cityscapes-512x1024.py',
                                 0, 'last stage'),
    'PointRend stage 0 (FPNHead)': (
        'point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py', 0, 'last stage'),
}
#: The head's own loss terms kept for its extra outputs (all others: none).
EXTRA_LOSSES = {'DAHead': {'pam.loss_ce', 'cam.loss_ce'}, 'EncHead': {'loss_se'},
                'DDRHead': {'loss_spatial'}, 'PIDHead': {'loss_sem_p', 'loss_bd'}}
AUX_ONLY = {'STDCHead'}  # in the shipped configs only as an auxiliary head
INTERNAL = {'KernelUpdateHead'}  # K-Net's kernel update stages, not a decode head


def _samples(n, num_classes, ignore_frac=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        label = torch.randint(0, num_classes, (1, SIZE, SIZE), generator=g)
        label[torch.rand(1, SIZE, SIZE, generator=g) < ignore_frac] = 255
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        edge = (label != torch.roll(label, 1, -1)).long()
        s.gt_edge_map = PixelData(data=edge)  # PIDNet's boundary label
        shape = (SIZE, SIZE)
        s.set_metainfo(dict(img_shape=shape, pad_shape=shape, ori_shape=shape))
        out.append(s)
    return out


def _config_or_skip(rel):
    if not osp.isfile(osp.join(CONFIG_ROOT, rel)):
        pytest.skip(f'{rel} is not shipped by this mmseg')


@pytest.mark.parametrize('head_type', sorted(SUPPORTED))
def test_lau_on_head_trains_and_predicts(head_type):
    rel = SUPPORTED[head_type]
    _config_or_skip(rel)
    torch.manual_seed(0)
    model = MODELS.build(lau_swapped_model(rel, lau_factor=K))  # default init: faster
    cascade = isinstance(model.decode_head, torch.nn.ModuleList)
    lau = model.decode_head[-1] if cascade else model.decode_head
    assert isinstance(lau, LaUHead) and type(lau.head).__name__ == head_type
    if model.with_auxiliary_head:
        assert not any(isinstance(m, LaUHead) for m in model.auxiliary_head.modules())
    x = torch.randn(2, 3, SIZE, SIZE)
    # PIDNet's CE with class_weight and avg_non_ignore fails on ignored labels in
    # mmseg 1.2 (cross_entropy indexes class_weight by 255), LaU or not.
    ignore_frac = 0.0 if head_type == 'PIDHead' else 0.1
    samples = _samples(2, lau.num_classes, ignore_frac=ignore_frac)

    model.train()
    losses = model.loss(x, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    prefix = f'decode_{len(model.decode_head) - 1}.' if cascade else 'decode.'
    decode_keys = {k[len(prefix):] for k in losses if k.startswith(prefix)}
    assert decode_keys == {'loss_lau_og', 'acc_seg'} | EXTRA_LOSSES.get(head_type, set())
    total.backward()
    grads = [p.grad for p in lau.offset_branch.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(x)
        prev = (model.decode_head[0].forward(feats), ) if cascade else ()
        torch.manual_seed(1)  # SegNeXt's Hamburger draws random bases in every forward
        up, ctx, _ = lau.lau_forward(feats, *prev)
        torch.manual_seed(1)
        head_out = lau.head.forward(feats, *prev)
        pred = model.predict(x, samples)
    head_logits = head_out[0] if isinstance(head_out, (tuple, list)) else head_out
    logits = ctx.logits
    n, c, h, w = logits.shape
    assert up.shape == (n, c, K * h, K * w) and c == lau.out_channels
    torch.testing.assert_close(logits, head_logits)  # the head's own forward output
    # Zero learned offsets on the 'interpolate' grid: bilinear upsampling of the logits.
    plain = F.interpolate(logits, size=(K * h, K * w), mode='bilinear',
                          align_corners=lau.align_corners)
    torch.testing.assert_close(up, plain, atol=1e-5, rtol=1e-5)
    assert pred[0].pred_sem_seg.data.shape == (1, SIZE, SIZE)


@pytest.mark.parametrize('case', sorted(REFUSED))
def test_unsupported_is_refused_at_build(case):
    rel, stage, reason = REFUSED[case]
    _config_or_skip(rel)
    if stage == -1:  # the head alone: its segmentor may need weights (SAN's CLIP)
        cfg = lau_wrapped_head(last_decode_head(rel), K)
    else:  # the whole cascade segmentor: the stage is refused while it is built
        cfg = lau_swapped_model(rel, stage=stage, lau_factor=K)
    with pytest.raises(LaUConfigError) as info:
        MODELS.build(cfg)
    message = str(info.value)
    assert '\n' not in message and reason in message, message


def _config_head_types():
    """Every ``type='...Head'`` of mmseg's shipped configs that names a head class."""
    names = set()
    for path in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True):
        with open(path) as f:
            names |= set(re.findall(r"type='(\w+Head)'", f.read()))
    return {n for n in names if MODELS.get(n) is not None}


def test_every_shipped_head_class_is_in_the_matrix():
    found = _config_head_types()
    refused_classes = {k for k in REFUSED if k.isidentifier()}
    listed = set(SUPPORTED) | refused_classes | AUX_ONLY | INTERNAL
    assert found <= listed, sorted(found - listed)
    assert refused_classes <= set(REFUSED_HEADS)
    for name in SUPPORTED:
        cls = MODELS.get(name)
        assert issubclass(cls, BaseDecodeHead) and name not in REFUSED_HEADS


def test_refused_list_is_the_documented_one():
    doc = osp.join(osp.dirname(__file__), '..', '..', 'docs', 'lau_seg.md')
    with open(doc) as f:
        text = f.read()
    section = text[text.index('## Which decode heads'):]
    for name in list(SUPPORTED) + list(REFUSED_HEADS):
        assert f'`{name}`' in section, name


def test_config_of_each_family_has_that_head():
    """The representative configs really end in the head they stand for."""
    for name, rel in SUPPORTED.items():
        if not osp.isfile(osp.join(CONFIG_ROOT, rel)):
            continue
        heads = load_config(rel).model.decode_head
        heads = heads if isinstance(heads, list) else [heads]
        assert heads[-1].type == name, rel
