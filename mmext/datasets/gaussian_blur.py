"""``PILGaussianBlur``: the Gaussian-blur augmentation of the LaU authors' training
(PyTorch-Encoding's ``_sync_transform``, "gaussian blur as in PSP").

With probability ``prob`` the image is blurred with PIL's
``ImageFilter.GaussianBlur(radius=r)``, ``r ~ U(0, max_radius)``
(``LaU-reg/encoding/datasets/base.py:L95-L98``: ``random.random() < 0.5``,
``radius=random.random()``). PIL itself does the blur, so the result is the
authors' pixel for pixel for a given radius; the blur acts on each channel alone,
so BGR or RGB order does not matter. The label map is untouched.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image, ImageFilter


@TRANSFORMS.register_module()
class PILGaussianBlur(BaseTransform):
    """Randomly blur ``results['img']`` (H, W, 3) or (H, W) uint8 with PIL.

    Args:
        prob: probability of blurring an image.
        max_radius: the radius is drawn uniformly from [0, max_radius).

    Adds ``results['blur_radius']`` (``None`` when not blurred), for inspection.
    """

    def __init__(self, prob: float = 0.5, max_radius: float = 1.0) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'PILGaussianBlur: prob must be in [0, 1], got {prob}')
        if max_radius < 0:
            raise ValueError(f'PILGaussianBlur: max_radius must be >= 0, got {max_radius}')
        self.prob = prob
        self.max_radius = max_radius

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise TypeError('PILGaussianBlur needs the uint8 (H, W[, 3]) image of '
                            f'LoadImageFromFile, got {img.dtype} {img.shape}: put it '
                            'before any transform that changes the dtype')
        radius: Optional[float] = None
        if np.random.rand() < self.prob:
            radius = float(np.random.rand()) * self.max_radius
            blurred = Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=radius))
            results['img'] = np.asarray(blurred).copy()
        results['blur_radius'] = radius
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, max_radius={self.max_radius})'
