"""PILGaussianBlur: the LaU authors' blur augmentation (encoding/datasets/base.py:L95-L98)."""
import numpy as np
import pytest
from PIL import Image, ImageFilter

from mmext.datasets import PILGaussianBlur


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)


def test_blur_is_pils_with_the_drawn_radius():
    """prob=1: the image is PIL's GaussianBlur at radius U(0, max_radius) drawn from
    numpy's global RNG; the label map is untouched."""
    img, seg = _image(), np.arange(108, dtype=np.uint8).reshape(12, 9)
    np.random.seed(3)
    np.random.rand()  # the probability draw
    radius = np.random.rand() * 2.0
    np.random.seed(3)
    out = PILGaussianBlur(prob=1.0, max_radius=2.0)(dict(img=img.copy(), gt_seg_map=seg))
    assert out['blur_radius'] == pytest.approx(radius) and radius > 0.1
    want = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=radius)))
    assert out['img'].dtype == np.uint8 and np.array_equal(out['img'], want)
    assert not np.array_equal(out['img'], img)
    assert out['gt_seg_map'] is seg


def test_probability_zero_and_rate():
    """prob=0 never blurs; prob=0.5 blurs about half of the images."""
    img = _image()
    out = PILGaussianBlur(prob=0.0)(dict(img=img.copy()))
    assert out['blur_radius'] is None and np.array_equal(out['img'], img)
    np.random.seed(0)
    blur = PILGaussianBlur(prob=0.5)
    hits = sum(blur(dict(img=img.copy()))['blur_radius'] is not None for _ in range(400))
    assert 160 < hits < 240


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match='uint8'):
        PILGaussianBlur(prob=1.0)(dict(img=_image().astype(np.float32)))
    with pytest.raises(ValueError, match='prob'):
        PILGaussianBlur(prob=1.5)
