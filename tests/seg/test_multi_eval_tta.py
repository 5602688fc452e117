"""EncodingMultiEvalTTA equals the LaU authors' evaluator (PyTorch-Encoding's
``MultiEvalModule.forward``, LaU-reg/encoding/models/base.py:L112-L211 at 83822e8),
transcribed below in plain torch, on a stub segmentor with fixed random weights whose
logits depend on position, padding and orientation; and ``tools/test.py --tta`` runs
it on the demo data."""
import glob
import json
import math
import os.path as osp
from typing import List, Sequence

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import Tensor, nn

import mmext  # noqa: F401
from mmext.seg import EncodingMultiEvalTTA
from mmseg.models import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from tests.tool_runner import ROOT, run_tool

NUM_CLASSES = 5
# The official normalisation: ToTensor (/255) + Normalize (test.py:L34-L36).
MEAN = [.485, .456, .406]
STD = [.229, .224, .225]


class StubSegmentor(BaseModel):
    """``encode_decode``: a fixed random 3x3 conv at stride 2 (not mirror-symmetric, so
    the flip matters; zero padding, so the window borders matter), resized bilinearly
    to ``img_shape`` as mmseg's decode heads do. Inputs normalised by the mmseg
    equivalent of the official normalisation (x 255), from BGR."""

    def __init__(self) -> None:
        super().__init__(data_preprocessor=SegDataPreProcessor(
            mean=[m * 255 for m in MEAN], std=[s * 255 for s in STD], bgr_to_rgb=True))
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, NUM_CLASSES, 3, stride=2, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(0.3 * torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(0.1 * torch.randn(NUM_CLASSES, generator=g))
        self.calls: List[tuple] = []

    def net(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) normalised -> (N, K, H, W) logits (the official ``evaluate``)."""
        return F.interpolate(self.conv(x), x.shape[-2:], mode='bilinear',
                             align_corners=False)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        self.calls.append(tuple(inputs.shape))
        return F.interpolate(self.conv(inputs), batch_img_metas[0]['img_shape'],
                             mode='bilinear', align_corners=False)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        raise NotImplementedError


# -- the official evaluator, transcribed ---------------------------------------------
def ref_pad_image(img: Tensor, crop_size: int) -> Tensor:
    b, c, h, w = img.size()
    padh = crop_size - h if h < crop_size else 0
    padw = crop_size - w if w < crop_size else 0
    pad_values = [-m / s for m, s in zip(MEAN, STD)]
    img_pad = img.new_zeros(b, c, h + padh, w + padw)
    for i in range(c):
        img_pad[:, i, :, :] = F.pad(img[:, i, :, :], (0, padw, 0, padh),
                                    value=pad_values[i])
    return img_pad


def ref_flip_image(img: Tensor) -> Tensor:
    idx = torch.arange(img.size(3) - 1, -1, -1).long()
    return img.index_select(3, idx)


def ref_module_inference(net, image: Tensor, flip: bool) -> Tensor:
    output = net(image)
    if flip:
        foutput = net(ref_flip_image(image))
        output = output + ref_flip_image(foutput)
    return output.exp()


def ref_multi_eval(net, image: Tensor, base_size: int, crop_size: int,
                   scales: Sequence[float], flip: bool) -> Tensor:
    """MultiEvalModule.forward on a normalised (1, 3, h, w) image -> (1, K, h, w)."""
    up = dict(mode='bilinear', align_corners=True)
    batch, _, h, w = image.size()
    stride = int(crop_size * (2.0 / 3.0))
    scores = image.new_zeros(batch, NUM_CLASSES, h, w)
    for scale in scales:
        long_size = int(math.ceil(base_size * scale))
        if h > w:
            height = long_size
            width = int(1.0 * w * long_size / h + 0.5)
            short_size = width
        else:
            width = long_size
            height = int(1.0 * h * long_size / w + 0.5)
            short_size = height
        cur_img = F.interpolate(image, (height, width), **up)
        if long_size <= crop_size:
            pad_img = ref_pad_image(cur_img, crop_size)
            outputs = ref_module_inference(net, pad_img, flip)
            outputs = outputs[:, :, 0:height, 0:width]
        else:
            pad_img = ref_pad_image(cur_img, crop_size) if short_size < crop_size \
                else cur_img
            _, _, ph, pw = pad_img.size()
            h_grids = int(math.ceil(1.0 * (ph - crop_size) / stride)) + 1
            w_grids = int(math.ceil(1.0 * (pw - crop_size) / stride)) + 1
            outputs = image.new_zeros(batch, NUM_CLASSES, ph, pw)
            count_norm = image.new_zeros(batch, 1, ph, pw)
            for idh in range(h_grids):
                for idw in range(w_grids):
                    h0 = idh * stride
                    w0 = idw * stride
                    h1 = min(h0 + crop_size, ph)
                    w1 = min(w0 + crop_size, pw)
                    crop_img = pad_img[:, :, h0:h1, w0:w1]
                    pad_crop_img = ref_pad_image(crop_img, crop_size)
                    output = ref_module_inference(net, pad_crop_img, flip)
                    outputs[:, :, h0:h1, w0:w1] += output[:, :, 0:h1 - h0, 0:w1 - w0]
                    count_norm[:, :, h0:h1, w0:w1] += 1
            assert (count_norm == 0).sum() == 0
            outputs = outputs / count_norm
            outputs = outputs[:, :, :height, :width]
        scores += F.interpolate(outputs, (h, w), **up)
    return scores


# -- helpers -----------------------------------------------------------------------
def _image(h: int, w: int, seed: int = 0) -> Tensor:
    """(3, h, w) RGB pixel values 0..255 (float)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g).float()


def _sample(h: int, w: int) -> SegDataSample:
    s = SegDataSample()
    s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), img_path='x.png'))
    s.gt_sem_seg = PixelData(data=torch.zeros(1, h, w, dtype=torch.long))
    return s


def _tta(stub: nn.Module, **kwargs) -> EncodingMultiEvalTTA:
    return EncodingMultiEvalTTA(module=stub, **kwargs).eval()


def _run(tta: EncodingMultiEvalTTA, rgb: Tensor, views: bool = True) -> SegDataSample:
    """tta.test_step on the BGR uint8 image as PackSegInputs gives it, in TestTimeAug's
    layout (one view) or a plain pipeline's."""
    bgr = rgb[[2, 1, 0]].to(torch.uint8)
    sample = _sample(*rgb.shape[1:])
    data = dict(inputs=[[bgr]], data_samples=[[sample]]) if views else \
        dict(inputs=[bgr], data_samples=[sample])
    with torch.no_grad():
        out = tta.test_step(data)
    assert len(out) == 1
    return out[0]


def _reference(stub: StubSegmentor, rgb: Tensor, **kwargs) -> Tensor:
    image = ((rgb / 255. - torch.tensor(MEAN).view(3, 1, 1))
             / torch.tensor(STD).view(3, 1, 1))[None]
    with torch.no_grad():
        return ref_multi_eval(stub.net, image, **kwargs)[0]


CASES = {
    # every scale's long side <= crop: one padded window per scale
    'smaller_than_crop': dict(hw=(14, 20), base_size=40, crop_size=32,
                              scales=(0.5, 0.75)),
    # long side 30 (padded window), 40 (short side 29 padded, 1 x 2 windows, the
    # last cut at the border), 60 (short side 43, 2 x 3 windows)
    'sliding_wide': dict(hw=(50, 70), base_size=40, crop_size=32,
                         scales=(0.75, 1.0, 1.5)),
    'sliding_tall': dict(hw=(70, 50), base_size=40, crop_size=32, scales=(1.0, 1.5)),
    'square': dict(hw=(45, 45), base_size=40, crop_size=32, scales=(0.5, 1.25)),
}


@pytest.mark.parametrize('flip', [True, False], ids=['flip', 'no_flip'])
@pytest.mark.parametrize('case', sorted(CASES))
def test_equals_the_official_multi_eval(case, flip):
    c = CASES[case]
    stub = StubSegmentor().eval()
    rgb = _image(*c['hw'])
    kwargs = dict(base_size=c['base_size'], crop_size=c['crop_size'],
                  scales=c['scales'], flip=flip)
    out = _run(_tta(stub, **kwargs), rgb)
    expected = _reference(stub, rgb, **kwargs)
    scores = out.seg_logits.data
    assert scores.shape == (NUM_CLASSES, *c['hw'])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.pred_sem_seg.data[0], expected.argmax(0))
    # every window the segmentor saw is a crop x crop square
    assert {s[-2:] for s in stub.calls} == {(c['crop_size'], c['crop_size'])}


def test_flip_windows_and_padding_matter_for_the_stub():
    """The stub is sensitive to what the test checks (else the equality is vacuous)."""
    c = CASES['sliding_wide']
    rgb = _image(*c['hw'])
    common = dict(base_size=c['base_size'], crop_size=c['crop_size'])
    stub = StubSegmentor().eval()
    flip = _run(_tta(stub, scales=(1.5,), flip=True, **common), rgb).seg_logits.data
    plain = _run(_tta(stub, scales=(1.5,), flip=False, **common), rgb).seg_logits.data
    assert not torch.allclose(flip, plain, rtol=1e-3, atol=1e-3)
    assert len(stub.calls) == 2 * 6 + 6  # 2 x 3 windows, with and without the mirror
    # a grey image: padding with zero pixels shows at the bottom right
    grey = torch.full((3, 14, 20), 128.)
    out = _run(_tta(StubSegmentor().eval(), scales=(1.0,), flip=False, base_size=20,
                    crop_size=32), grey).seg_logits.data
    assert not torch.allclose(out[:, -1, -1], out[:, 5, 5], rtol=1e-3, atol=1e-3)


def test_plain_pipeline_layout_and_resized_input():
    """A batch without TestTimeAug's view lists works too; if the pipeline resized the
    image, the scores come back at ori_shape."""
    stub = StubSegmentor().eval()
    tta = _tta(stub, base_size=40, crop_size=32, scales=(1.0,))
    rgb = _image(30, 40)
    a = _run(tta, rgb, views=True).seg_logits.data
    b = _run(tta, rgb, views=False).seg_logits.data
    assert torch.equal(a, b)
    sample = _sample(30, 40)
    sample.set_metainfo(dict(ori_shape=(60, 80)))
    with torch.no_grad():
        out = tta.test_step(dict(inputs=[rgb[[2, 1, 0]].to(torch.uint8)],
                                 data_samples=[sample]))[0]
    assert out.seg_logits.data.shape == (NUM_CLASSES, 60, 80)
    assert out.pred_sem_seg.data.shape == (1, 60, 80)


def test_official_defaults_and_errors():
    tta = EncodingMultiEvalTTA(module=StubSegmentor())
    assert tta.scales == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    assert (tta.base_size, tta.crop_size, tta.stride) == (520, 480, 320)
    assert tta.flip and tta.align_corners
    assert MODELS.get('EncodingMultiEvalTTA') is EncodingMultiEvalTTA
    bgr = torch.zeros(3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match='one'):
        tta.test_step(dict(inputs=[[bgr], [bgr]],
                           data_samples=[[_sample(8, 8)], [_sample(8, 8)]]))
    with pytest.raises(ValueError, match='scales'):
        EncodingMultiEvalTTA(module=StubSegmentor(), scales=())
    with pytest.raises(ValueError, match='stride'):
        EncodingMultiEvalTTA(module=StubSegmentor(), stride_rate=0.0)


# -- the documented command ----------------------------------------------------------
DEMO = osp.join(ROOT, 'configs/demo/seg_bilinear_demo.py')


def test_test_tool_tta_runs_the_official_evaluator(tmp_path):
    """``tools/test.py CONFIG CKPT --tta`` with ``tta_model = EncodingMultiEvalTTA``
    (as in configs/lau/encnet_*_bilinear.py) on the demo data (160 x 160 images, here
    base 160, crop 128: padded and sliding windows), from a plain checkpoint."""
    from mmengine.config import Config
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(DEMO).model)
    model.init_weights()
    checkpoint = tmp_path / 'init.pth'
    torch.save(dict(meta=dict(iter=0), state_dict=model.state_dict()), checkpoint)
    config = tmp_path / 'demo_multi_eval.py'
    config.write_text(
        f"_base_ = '{DEMO}'\n"
        "tta_model = dict(type='EncodingMultiEvalTTA', scales=[0.5, 1.0],\n"
        "                 base_size=160, crop_size=128)\n"
        "tta_pipeline = [\n"
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='TestTimeAug', transforms=[[dict(type='LoadAnnotations')],\n"
        "                                         [dict(type='PackSegInputs')]])]\n")
    proc = run_tool(['tools/test.py', str(config), str(checkpoint), '--tta',
                     '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                     'test_dataloader.batch_size=1', 'test_dataloader.num_workers=0',
                     'test_dataloader.persistent_workers=False',
                     'test_dataloader.dataset.indices=2'], timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "type='EncodingMultiEvalTTA'" in log
    assert 'Load checkpoint from' in log and 'do not match exactly' not in log
    found = sorted(glob.glob(str(tmp_path / 'work' / '*' / '*.json')), key=osp.getmtime)
    with open(found[-1]) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics['mIoU'] <= 100.0
