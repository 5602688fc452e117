"""TeacherInputTransform against the teacher's own DetDataPreprocessor on raw images."""
import pytest
import torch

import mmext  # noqa: F401
from mmext.distill.input_transform import TeacherInputTransform

# The two normalisations of the PKD pairs: caffe-style BGR (e.g. the FCOS students'
# and teachers') and ImageNet RGB (torchvision / Swin weights); raw 0-255 BGR pixels.
CAFFE_BGR = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
IMAGENET_RGB = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True)
RAW_BGR = dict(mean=None, std=None, bgr_to_rgb=False)
RAW_RGB = dict(mean=None, std=None, bgr_to_rgb=True)


def _preprocessor(norm):
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    return DetDataPreprocessor(pad_size_divisor=1, **norm)


def _raw_images():
    """Two non-square uint8 BGR images (as mmcv loads them), channels very unlike."""
    gen = torch.Generator().manual_seed(0)
    images = []
    for _ in range(2):
        img = torch.rand(3, 6, 10, generator=gen) * 80
        img += torch.tensor([0.0, 80.0, 170.0]).view(3, 1, 1)  # B dark, R bright
        images.append(img.to(torch.uint8))
    return images


@pytest.mark.parametrize('student,teacher', [
    pytest.param(IMAGENET_RGB, CAFFE_BGR, id='caffe_bgr_teacher_imagenet_rgb_student'),
    pytest.param(CAFFE_BGR, IMAGENET_RGB, id='imagenet_rgb_teacher_caffe_bgr_student'),
    pytest.param(IMAGENET_RGB, RAW_BGR, id='raw_bgr_teacher_imagenet_rgb_student'),
    pytest.param(RAW_RGB, CAFFE_BGR, id='caffe_bgr_teacher_raw_rgb_student'),
])
def test_teacher_input_equals_teachers_own_preprocessing(student, teacher):
    """Re-normalised student input == the teacher preprocessor applied to the raw
    images, whatever the mean/std and channel order on either side."""
    student_pre, teacher_pre = _preprocessor(student), _preprocessor(teacher)
    images = _raw_images()
    student_in = student_pre(dict(inputs=images), False)['inputs']
    expected = teacher_pre(dict(inputs=images), False)['inputs']
    transform = TeacherInputTransform(student_pre, teacher_pre)
    assert not transform.identity
    got = transform(student_in)
    assert got.shape == expected.shape == (2, 3, 6, 10)
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-5)


def test_same_normalisation_is_the_identity():
    """Equal preprocessors: the teacher gets the student's tensor itself."""
    student_in = _preprocessor(CAFFE_BGR)(dict(inputs=_raw_images()), False)['inputs']
    transform = TeacherInputTransform(_preprocessor(CAFFE_BGR), _preprocessor(CAFFE_BGR))
    assert transform.identity and transform(student_in) is student_in
