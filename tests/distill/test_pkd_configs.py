"""configs/pkd: every authors' PKD config has a counterpart that builds and runs
their recipe; the stride-pairing ablations build; a loss step of retina_r50.py and
fcos_r50.py compares student P3..P6 with teacher P2..P5 maps."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PKD_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/pkd/*.py')))

# open-mmlab/mmrazor configs/distill/mmdet/pkd/<file> -> ours (docs/pkd.md audit).
AUTHORS = {
    'pkd_fpn_mask-rcnn_swin_retina_r50_2x_coco.py': 'retina_r50.py',
    'pkd_fpn_retina_x101_retina_r50_2x_coco.py': 'retina_x101_r50.py',
    'pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_coco.py': 'faster_rcnn_r101_r50.py',
    'pkd_fpn_fcos_x101_retina_r50_1x_coco.py': 'fcos_x101_retina_r50_1x.py',
    'pkd_fpn_reppoints_x101-dcn_reppoints_r50_2x_coco.py': 'reppoints_x101_dcn_r50.py',
}
SWIN = 'mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py'
# config -> (student type, teacher config, loss weight, lr, epochs, lr steps,
#            student strides, teacher strides of the distilled pairs)
P3_P6, P2_P5 = [8, 16, 32, 64], [4, 8, 16, 32]
EXPECTED = {
    'retina_r50.py': ('RetinaNet', SWIN, 6.0, 0.01, 24, [16, 22], P3_P6, P2_P5),
    'fcos_r50.py': ('FCOS', SWIN, 6.0, 0.01, 24, [16, 22], P3_P6, P2_P5),
    'retina_r50_ablation_stride_pairing.py':
    ('RetinaNet', SWIN, 6.0, 0.01, 24, [16, 22], P3_P6, P3_P6),
    'fcos_r50_ablation_stride_pairing.py':
    ('FCOS', SWIN, 6.0, 0.01, 24, [16, 22], P3_P6, P3_P6),
    'retina_x101_r50.py': ('RetinaNet', 'mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
                           10.0, 0.01, 24, [16, 22], P3_P6, P3_P6),
    'faster_rcnn_r101_r50.py': ('FasterRCNN', 'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
                                6.0, 0.02, 24, [16, 22], P2_P5, P2_P5),
    'fcos_x101_retina_r50_1x.py':
    ('RetinaNet', 'mmdet::fcos/fcos_x101-64x4d_fpn_gn-head_ms-640-800-2x_coco.py',
     10.0, 0.01, 12, [8, 11], P3_P6, P3_P6),
    'reppoints_x101_dcn_r50.py':
    ('RepPointsDetector',
     'mmdet::reppoints/reppoints-moment_x101-dconv-c3-c5_fpn-gn_head-gn_2x_coco.py',
     10.0, 0.01, 24, [16, 22], P3_P6, P3_P6),
}
LOSS_STEP = ('retina_r50.py', 'fcos_r50.py')


def test_every_authors_config_has_a_counterpart_and_every_config_is_checked():
    names = {osp.basename(p) for p in PKD_CONFIGS}
    assert set(AUTHORS.values()) <= names
    assert names == set(EXPECTED)  # a new config gets its expected recipe here


def _tiny_batch(size=128):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                         batch_input_shape=(size, size),
                                         scale_factor=(1, 1), ori_shape=(size, size)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 70., 90.]]),
                                       labels=torch.tensor([3]))
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)), \
        [sample]


def _check_swin_teacher_modes(model):
    """The authors' teacher modes (MMRazor's SingleTeacherDistill.train with
    teacher_norm_eval=True): after train(), the Swin-S teacher's DropPath modules
    (46 with a rate > 0, up to drop_path_rate 0.2) train, its norm layers are in eval mode; with
    train_mode='eval' every teacher module is in eval mode; train(False) puts all of
    it in eval mode. The teacher never gets a gradient."""
    from mmengine.utils.dl_utils import is_norm
    model.train()
    teacher = model.teacher
    drop_paths = [m for m in teacher.modules() if type(m).__name__ == 'DropPath']
    norms = [m for m in teacher.modules() if is_norm(m)]
    # 24 blocks x (attention, FFN); block 0's rate is 0, the other 46 are > 0
    assert len(drop_paths) == 48 and all(m.training for m in drop_paths)
    assert sum(m.drop_prob > 0 for m in drop_paths) == 46
    assert max(m.drop_prob for m in drop_paths) == pytest.approx(0.2)
    assert norms and not any(m.training for m in norms)
    model.teacher_train_mode = 'eval'
    model.train()
    assert not any(m.training for m in teacher.modules())
    model.teacher_train_mode = 'norm_eval'
    model.train(False)
    assert not any(m.training for m in teacher.modules())
    model.train()
    assert not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_builds_with_the_authors_recipe(name):
    import mmext  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    student, teacher, weight, lr, epochs, steps, s_strides, t_strides = EXPECTED[name]
    cfg = Config.fromfile(osp.join(ROOT, 'configs/pkd', name))
    assert cfg.model.teacher.config == teacher
    assert cfg.model.teacher.checkpoint_url.startswith('https://download.openmmlab.com/')
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[1].milestones == steps
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16, as mmdet's configs
    cfg.model.teacher.checkpoint = None  # building needs no teacher weights
    cfg.model.teacher.random_init = True
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert type(model.student).__name__ == student
    assert model.distill_loss.loss_weight == weight and model.distill_loss.resize == 'student'
    assert len(model.adapters) == 0  # 256 channels on both sides, as the authors
    assert [model.student_levels[p.student][0] for p in model.level_pairs] == s_strides
    assert [model.teacher_levels[p.teacher][0] for p in model.level_pairs] == t_strides
    assert cfg.model.teacher.train_mode == 'norm_eval'  # MMRazor's teacher_norm_eval
    if teacher == SWIN:
        _check_swin_teacher_modes(model)
    if name not in LOSS_STEP:
        return
    # One loss step: the maps that reach PKDLoss are student P3..P6 (128 px input:
    # 16, 8, 4, 2 px) and teacher P2..P5 (32, 16, 8, 4 px).
    seen = []
    model.distill_loss.register_forward_hook(
        lambda module, args, out: seen.append((args[0], args[1], out)))
    model.train()
    losses = model.loss(*_tiny_batch())
    assert [(tuple(s.shape), tuple(t.shape)) for s, t, _ in seen] == [
        ((1, 256, 16, 16), (1, 256, 32, 32)), ((1, 256, 8, 8), (1, 256, 16, 16)),
        ((1, 256, 4, 4), (1, 256, 8, 8)), ((1, 256, 2, 2), (1, 256, 4, 4))]
    assert sorted(k for k in losses if k.startswith('loss_pkd')) == [
        'loss_pkd_fpn0', 'loss_pkd_fpn1', 'loss_pkd_fpn2', 'loss_pkd_fpn3']
    # and the loss value is 6 x (M - 1) / M x (1 - Pearson r) of the student map
    # resized up (MMRazor's unbiased std; M = N*H*W)
    for feat_s, feat_t, out in seen:
        up = torch.nn.functional.interpolate(feat_s.detach().double(), feat_t.shape[-2:],
                                             mode='bilinear', align_corners=False)
        s = up.transpose(0, 1).flatten(1)
        t = feat_t.double().transpose(0, 1).flatten(1)
        s, t = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
        r = (s * t).sum(1) / (s.norm(dim=1) * t.norm(dim=1))
        m = t.shape[1]  # rel: the 1e-6 added to the std moves it by ~1e-6 / std
        assert out.item() == pytest.approx(6 * (m - 1) / m * (1 - r).mean().item(),
                                           rel=1e-4)
