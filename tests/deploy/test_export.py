"""Segmentors (LaU demo, LaU configs with EncHead / ASPP) export with both exporters
and onnxruntime gives PyTorch's logits at the input size."""
import numpy as np
import pytest
import torch

from mmext.deploy import export_onnx, load_model, wrap_for_export
from mmext.deploy.export import check_input_shape, check_standard_domains
from mmext.engine import load_config
from mmext.utils.errors import UserError

from .conftest import config_path, node_domains, op_types, run_session

ATOL = 1e-4


def _spec(config: str, **options):
    cfg = load_config(config_path(config), options or None)
    return wrap_for_export(load_model(cfg, 'none'))


def _check_same(spec, path, inputs):
    with torch.no_grad():
        (expected, ) = spec.module(inputs)
    got = run_session(path, inputs)['seg_logits']
    assert got.shape == tuple(expected.shape)
    assert got.shape[2:] == tuple(inputs.shape[2:])  # logits at the input size
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=ATOL)
    # the label maps agree except at near-ties
    agree = (got.argmax(1) == expected.numpy().argmax(1)).mean()
    assert agree > 0.999


@pytest.mark.parametrize('dynamo', [True, False], ids=['dynamo', 'torchscript'])
def test_lau_demo_segmentor(tmp_path, lau_ext, dynamo):
    spec = _spec('configs/demo/seg_lau_demo.py')
    assert spec.kind == 'segmentor' and spec.size_divisor == 8
    inputs = torch.randn(1, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    path = export_onnx(spec.module, inputs, str(tmp_path / 'seg.onnx'),
                       spec.output_names, dynamo=dynamo, dynamic=True,
                       size_divisor=spec.size_divisor)
    assert node_domains(path) <= {'', 'ai.onnx'}
    assert 'GridSample' in op_types(path)  # the LaU op, translated
    _check_same(spec, path, inputs)
    # dynamic batch, height and width: another batch size and input size
    _check_same(spec, path, torch.randn(3, 3, 40, 72))


# configs/lau models with a shrunk backbone (ResNetV1c-18 at 1/4 width): LaUHead on
# EncHead (SE loss output included) and on DeepLabV3+'s ASPP head.
SHRINK = {
    'model.backbone.depth': 18, 'model.backbone.stem_channels': 16,
    'model.backbone.base_channels': 16, 'model.auxiliary_head': None,
    'model.decode_head.lau_offset_branch.mid_channels': 8,
}
LAU_CONFIGS = {
    'enc': ('configs/lau/encnet_r50-d8_lau-og_4xb4-25k_pascal-context-59-480x480.py',
            {'model.decode_head.in_channels': [32, 64, 128],
             'model.decode_head.channels': 32}),
    'aspp': ('configs/lau/deeplabv3plus_r50-d8_lau_4xb4-40k_voc12aug-512x512.py',
             {'model.decode_head.in_channels': 128, 'model.decode_head.channels': 32,
              'model.decode_head.c1_in_channels': 16,
              'model.decode_head.c1_channels': 8}),
}


@pytest.mark.parametrize('name,dynamo', [('enc', True), ('aspp', False)])
def test_lau_config_models(tmp_path, lau_ext, name, dynamo):
    config, options = LAU_CONFIGS[name]
    spec = _spec(config, **SHRINK, **options)
    head = spec.module.segmentor.decode_head
    assert type(head).__name__ == 'LaUHead'
    inputs = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    path = export_onnx(spec.module, inputs, str(tmp_path / f'{name}.onnx'),
                       spec.output_names, dynamo=dynamo,
                       size_divisor=spec.size_divisor)
    assert node_domains(path) <= {'', 'ai.onnx'}
    assert 'GridSample' in op_types(path)
    _check_same(spec, path, inputs)


def test_shape_not_divisible_is_a_user_error():
    check_input_shape((64, 48), 8)
    with pytest.raises(UserError, match=r'multiples of 8.*e\.g\. 64 56'):
        check_input_shape((60, 50), 8)


def test_opset_below_16_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match='opset >= 16'):
        export_onnx(torch.nn.Identity(), torch.zeros(1, 3, 8, 8),
                    str(tmp_path / 'x.onnx'), ['y'], opset=15)


def test_custom_domain_is_detected(tmp_path):
    import onnx
    from onnx import helper
    node = helper.make_node('Custom', ['x'], ['y'], domain='mmext')
    graph = helper.make_graph([node], 'g', [helper.make_tensor_value_info(
        'x', onnx.TensorProto.FLOAT, [1])], [helper.make_tensor_value_info(
            'y', onnx.TensorProto.FLOAT, [1])])
    path = str(tmp_path / 'custom.onnx')
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(RuntimeError, match='mmext::Custom'):
        check_standard_domains(path)


class _LoopsOverTheBatch(torch.nn.Module):
    def forward(self, x):
        # a Python loop over the batch: the exporter fixes the batch size
        return (torch.stack([x[i] for i in range(x.shape[0])]) + 1, )


def test_dynamic_shape_the_model_fixes_is_a_user_error(tmp_path):
    path = tmp_path / 'fixed.onnx'
    with pytest.raises(UserError, match='--dynamic: the exported graph fixes the input '
                       'batch'):
        export_onnx(_LoopsOverTheBatch(), torch.zeros(2, 3, 16, 16), str(path), ['y'],
                    dynamic=True, size_divisor=8)
    assert not path.exists()
