"""load_model: scopes, distillation configs, untrained weights, bad checkpoints."""
import pytest
import torch

from mmext.deploy import load_model, wrap_for_export
from mmext.deploy.model_loading import _without_pretrained
from mmext.engine import load_config
from mmext.utils.errors import UserError

from .conftest import config_path


def test_missing_checkpoint_is_a_user_error(tmp_path):
    cfg = load_config(config_path('configs/demo/seg_lau_demo.py'))
    with pytest.raises(UserError, match="does not exist.*'none'"):
        load_model(cfg, str(tmp_path / 'missing.pth'))


def test_distillation_layout_is_refused_with_the_converter(tmp_path):
    cfg = load_config(config_path('configs/demo/pkd_retinanet_r18_distill.py'))
    path = tmp_path / 'mmrazor.pth'
    torch.save({'state_dict': {'architecture.backbone.conv1.weight': torch.zeros(1),
                               'teacher.backbone.conv1.weight': torch.zeros(1)}}, path)
    with pytest.raises(UserError, match='convert_distill_checkpoint'):
        load_model(cfg, str(path))


def test_detr_family_is_unsupported(tmp_path):
    path = tmp_path / 'detr.py'
    path.write_text("_base_ = 'mmdet::detr/detr_r18_8xb2-500e_coco.py'\n")
    with pytest.raises(UserError, match='cannot export a DETR'):
        wrap_for_export(load_model(load_config(str(path)), 'none'))


def test_untrained_weights_never_download():
    cfg = {'backbone': {'init_cfg': {'type': 'Pretrained', 'checkpoint': 'x'}},
           'pretrained': 'open-mmlab://resnet50_v1c',
           'heads': [{'init_cfg': {'type': 'Normal'}}]}
    assert _without_pretrained(cfg) == {'backbone': {'init_cfg': None},
                                        'heads': [{'init_cfg': {'type': 'Normal'}}]}
