"""The LaU authors' evaluation (``MultiEvalModule``) as an mmseg test-time mode.

Reference: HolmesShuan/Location-aware-Upsampling-for-Semantic-Segmentation (commit
83822e8), ``LaU-reg/encoding/models/base.py`` (PyTorch-Encoding's evaluator), called by
``LaU-reg/experiments/segmentation/test.py:L67-L71``. Per image (full size, normalised)
and per scale ``s``:

1. resize (bilinear, ``align_corners=True``) so that the LONG side is
   ``ceil(base_size * s)`` and the other side ``int(other * long / side + 0.5)``
   (``base.py:L123-L134``);
2. long side <= crop: pad bottom/right to ``crop x crop`` with ``-mean / std`` (zero in
   pixel space) and run one window, keep the top-left ``height x width``
   (``base.py:L135-L139``, ``pad_image`` L191-L202);
3. otherwise pad the short side to ``crop`` if it is shorter, then windows of ``crop``
   at ``h0 = i * stride``, ``stride = int(crop * 2/3)``, ``ceil((ph - crop) / stride) + 1``
   per axis, the last ones cut at the border and padded to ``crop`` (not shifted back as
   in mmseg's slide inference); window scores summed and divided by the per-pixel
   window count (``base.py:L140-L172``);
4. window score (``module_inference``, ``base.py:L180-L186``):
   ``exp(logits(x) + flip(logits(flip(x))))`` -- the raw logits of the image and of its
   mirror are ADDED, then exponentiated once (no softmax);
5. the scale's scores are resized to the image (bilinear, ``align_corners=True``) and
   SUMMED over scales (``base.py:L174-L175``); the prediction is their argmax.

:class:`EncodingMultiEvalTTA` does exactly this around any mmseg segmentor, taking
each window's raw logits from ``module.encode_decode`` at window size. Use it through
``tools/test.py CONFIG CKPT --tta`` with ``tta_model = dict(type='EncodingMultiEvalTTA')``
and a ``tta_pipeline`` that loads the image at its own size (no Resize, no flip: the
model does the scales and the flip), e.g. ``LoadImageFromFile`` then
``TestTimeAug(transforms=[[LoadAnnotations(...)], [PackSegInputs()]])``.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from torch import Tensor, nn

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

# MultiEvalModule's defaults (base.py:L82-L83) and the scales test.py passes for every
# dataset but Cityscapes (test.py:L67-L68); base / crop size: option.py:L29-L32.
OFFICIAL_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
OFFICIAL_BASE_SIZE = 520
OFFICIAL_CROP_SIZE = 480
OFFICIAL_STRIDE_RATE = 2.0 / 3.0  # base.py:L117


def resized_shape(h: int, w: int, base_size: int, scale: float) -> Tuple[int, int, int]:
    """``(height, width, short_size)`` of an ``h x w`` image at ``scale``: long side
    ``ceil(base_size * scale)``, the other rounded half up (``base.py:L124-L132``;
    a square image counts as wider than high)."""
    long_size = int(math.ceil(base_size * scale))
    if h > w:
        width = int(1.0 * w * long_size / h + 0.5)
        return long_size, width, width
    height = int(1.0 * h * long_size / w + 0.5)
    return height, long_size, height


def grid_starts(size: int, crop_size: int, stride: int) -> List[int]:
    """Window starts along one axis of length ``size`` >= ``crop_size``:
    ``i * stride`` for ``i < ceil((size - crop) / stride) + 1`` (``base.py:L150-L159``)."""
    count = int(math.ceil(1.0 * (size - crop_size) / stride)) + 1
    return [i * stride for i in range(count)]


@MODELS.register_module()
class EncodingMultiEvalTTA(BaseTTAModel):
    """The authors' multi-scale / flip / sliding-window evaluator (``MultiEvalModule``).

    Args:
        module: the segmentor (config dict or built), an mmseg ``EncoderDecoder``-like
            model with ``data_preprocessor`` and ``encode_decode(inputs, metas)``
            returning (N, K, H, W) logits at the input size.
        scales: image scales, relative to ``base_size``. Default: the official
            ``[0.5, ..., 1.75]`` (``base.py:L83``, ``test.py:L67-L68``); ``(1.0,)`` with
            ``flip=False`` is the official single-scale test (``test.py:L69-L71``).
        base_size: long side of the image at scale 1 (``option.py:L29``: 520).
        crop_size: square window side (``option.py:L31``: 480).
        stride_rate: window stride as a fraction of ``crop_size``; the stride is
            ``int(crop_size * stride_rate)`` (``base.py:L117-L119``: 2/3, stride 320).
        flip: add the logits of the horizontally mirrored window (mirrored back)
            before the exp (``base.py:L180-L186``; ``flip=args.ms``, test.py:L71).
        align_corners: of the image and score resizes (``base.py:L21``: True).
        data_preprocessor: as in ``BaseTTAModel`` (overrides the module's).

    The ``tta_pipeline`` must give one view per image (no Resize / flip views): the
    scales and the flip are done here. Output: the data sample with ``seg_logits``
    (K, H, W) = the fused scores (sums of exps, not probabilities) and
    ``pred_sem_seg`` (1, H, W) = their argmax, at ``ori_shape``.
    """

    def __init__(self,
                 module: Union[dict, nn.Module],
                 scales: Sequence[float] = OFFICIAL_SCALES,
                 base_size: int = OFFICIAL_BASE_SIZE,
                 crop_size: int = OFFICIAL_CROP_SIZE,
                 stride_rate: float = OFFICIAL_STRIDE_RATE,
                 flip: bool = True,
                 align_corners: bool = True,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None) -> None:
        super().__init__(module, data_preprocessor)
        scales = tuple(float(s) for s in scales)
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f'EncodingMultiEvalTTA: scales must be a non-empty list '
                             f'of positive numbers, got {scales}')
        for name, value in (('base_size', base_size), ('crop_size', crop_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'EncodingMultiEvalTTA: {name} must be a positive '
                                 f'int, got {value!r}')
        stride = int(crop_size * stride_rate)
        if not 1 <= stride <= crop_size:
            raise ValueError(f'EncodingMultiEvalTTA: stride_rate {stride_rate} gives '
                             f'stride {stride} for crop_size {crop_size}; need 1..crop')
        if not hasattr(self.module, 'encode_decode'):
            raise TypeError(f'EncodingMultiEvalTTA: {type(self.module).__name__} has no '
                            'encode_decode(inputs, batch_img_metas); wrap an mmseg '
                            'segmentor')
        self.scales = scales
        self.base_size = base_size
        self.crop_size = crop_size
        self.stride = stride
        self.flip = bool(flip)
        self.align_corners = bool(align_corners)

    # -- the evaluator -------------------------------------------------------------
    def pad_values(self, like: Tensor) -> Tensor:
        """(C,) value of a zero pixel after the module's normalisation: ``-mean / std``
        (``pad_image``, ``base.py:L196``), or 0 without normalisation."""
        pre = self.module.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            return (-pre.mean / pre.std).reshape(-1).to(like)
        return like.new_zeros(like.shape[1])

    def pad(self, img: Tensor, value: Tensor) -> Tensor:
        """Pad (1, C, h, w) bottom / right to at least ``crop x crop`` with the per-channel
        ``value`` (C,) -> (1, C, max(h, crop), max(w, crop)) (``base.py:L191-L202``)."""
        n, c, h, w = img.shape
        out = value.view(1, c, 1, 1).expand(
            n, c, max(h, self.crop_size), max(w, self.crop_size)).clone()
        out[:, :, :h, :w] = img
        return out

    def logits(self, window: Tensor) -> Tensor:
        """Raw logits (1, K, s, s) of a (1, C, s, s) window, in float32 (``evaluate``:
        the model's first output, ``base.py:L69-L72``)."""
        size = tuple(window.shape[-2:])
        metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
        return self.module.encode_decode(window, metas).float()

    def window_scores(self, window: Tensor) -> Tensor:
        """``module_inference`` (``base.py:L180-L186``): (1, C, crop, crop) ->
        (1, K, crop, crop) ``exp(logits + mirror(logits(mirror(window))))``."""
        out = self.logits(window)
        if self.flip:
            out = out + self.logits(window.flip(3)).flip(3)
        return out.exp()

    def scale_scores(self, image: Tensor, scale: float) -> Tensor:
        """Scores (1, K, h, w) of a normalised (1, C, h, w) image at one scale
        (``base.py:L123-L174``)."""
        _, _, h, w = image.shape
        crop = self.crop_size
        height, width, short_size = resized_shape(h, w, self.base_size, scale)
        img = F.interpolate(image, (height, width), mode='bilinear',
                            align_corners=self.align_corners)
        value = self.pad_values(image)
        if max(height, width) <= crop:
            out = self.window_scores(self.pad(img, value))[:, :, :height, :width]
        else:
            if short_size < crop:
                img = self.pad(img, value)
            ph, pw = img.shape[-2:]
            out, count = None, img.new_zeros(1, 1, ph, pw)
            for h0 in grid_starts(ph, crop, self.stride):
                for w0 in grid_starts(pw, crop, self.stride):
                    h1, w1 = min(h0 + crop, ph), min(w0 + crop, pw)
                    scores = self.window_scores(self.pad(img[:, :, h0:h1, w0:w1], value))
                    if out is None:
                        out = scores.new_zeros(1, scores.shape[1], ph, pw)
                    out[:, :, h0:h1, w0:w1] += scores[:, :, :h1 - h0, :w1 - w0]
                    count[:, :, h0:h1, w0:w1] += 1
            out = (out / count)[:, :, :height, :width]
        return F.interpolate(out, (h, w), mode='bilinear',
                             align_corners=self.align_corners)

    def fuse(self, image: Tensor) -> Tensor:
        """Sum over scales (``base.py:L123-L177``): (1, C, h, w) -> (K, h, w)."""
        scores = None
        for scale in self.scales:
            s = self.scale_scores(image, scale)
            scores = s if scores is None else scores + s
        return scores[0]

    # -- mmengine's TTA interface ---------------------------------------------------
    @staticmethod
    def _one_view(data: dict) -> Tuple[List[Tensor], List[SegDataSample]]:
        """(inputs, data_samples) of the batch; TestTimeAug's list-of-views layout must
        hold exactly one view."""
        if not isinstance(data, dict):
            raise TypeError('EncodingMultiEvalTTA: expected a dict batch (inputs, '
                            f'data_samples), got {type(data).__name__}')
        inputs, samples = data['inputs'], data['data_samples']
        if len(inputs) and isinstance(inputs[0], (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(
                    f'EncodingMultiEvalTTA: the tta_pipeline gives {len(inputs)} views '
                    'per image; it must give one (no Resize / RandomFlip views in '
                    'TestTimeAug): the model does the scales and the flip itself')
            inputs, samples = inputs[0], samples[0]
        return list(inputs), list(samples)

    def merge_preds(self, data_samples_list):
        """Unused: :meth:`test_step` fuses the raw scores itself."""
        raise NotImplementedError('EncodingMultiEvalTTA fuses scores in test_step')

    def test_step(self, data: dict) -> List[SegDataSample]:
        """Preprocess each image with the module's data preprocessor, fuse its scores
        (:meth:`fuse`), resize them to ``ori_shape`` if the pipeline resized, and set
        ``seg_logits`` (K, H, W) and ``pred_sem_seg`` (1, H, W)."""
        results = []
        for inp, sample in zip(*self._one_view(data)):
            batch = self.module.data_preprocessor(
                dict(inputs=[inp], data_samples=[sample]), False)
            image, sample = batch['inputs'], batch['data_samples'][0]
            h, w = sample.img_shape[:2]
            scores = self.fuse(image[:, :, :h, :w])
            ori = tuple(sample.metainfo.get('ori_shape', (h, w))[:2])
            if ori != (h, w):
                scores = F.interpolate(scores[None], ori, mode='bilinear',
                                       align_corners=self.align_corners)[0]
            sample.set_data(dict(
                seg_logits=PixelData(data=scores),
                pred_sem_seg=PixelData(data=scores.argmax(dim=0, keepdim=True))))
            results.append(sample)
        return results
