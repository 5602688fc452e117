"""SpatialFlow test-time augmentation: one view equals plain inference, flips are
undone, boxes come back in original pixels, views are merged as the official
aug_test, the configs carry the official TTA, and tools/test.py --tta runs."""
import copy
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.structures import InstanceData

import mmext  # noqa: F401
from mmext.panoptic import SpatialFlowTTAModel, SpatialFlowView
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from tests.tool_runner import ROOT, run_tool

DEMO = osp.join(ROOT, 'configs/demo/spatialflow_r18_demo.py')
R101_DCN_MS = osp.join(ROOT, 'configs/spatialflow/spatialflow_r101-dcn_fpn_ms-20e_coco.py')
META = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
        'flip_direction')
SIZE = 160  # demo image size; a multiple of 32, so no padding at scale 1


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(DEMO)


@pytest.fixture(scope='module')
def model(cfg):
    """The demo model, random weights, thresholds at 0 so that it has detections."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.output_instances = True
    model_cfg.test_cfg.update(score_thr=0.0, nms_pre=200, max_per_img=30)
    model_cfg.test_cfg.panoptic.update(score_thr=0.0, stuff_area_limit=16)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def _image(mirror_symmetric=False) -> np.ndarray:
    """A 160x160 BGR scene: noise and a few coloured rectangles."""
    rng = np.random.RandomState(0)
    img = (rng.rand(SIZE, SIZE, 3) * 80 + 60).astype(np.uint8)
    img[20:70, 15:60] = (40, 40, 220)
    img[90:150, 80:140] = (40, 200, 40)
    img[30:60, 100:150] = (220, 60, 60)
    if mirror_symmetric:
        img[:, SIZE // 2:] = img[:, :SIZE // 2][:, ::-1]
    return img


def _raw(img: np.ndarray) -> dict:
    return dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], img_id=0,
                img_path='scene.png')


def _tta_data(img, scales, flips, meta_keys=META) -> dict:
    pipeline = Compose([dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=s, keep_ratio=True) for s in scales],
        [dict(type='RandomFlip', prob=float(f)) for f in flips],
        [dict(type='PackDetInputs', meta_keys=meta_keys)]])])
    return pseudo_collate([pipeline(_raw(img))])


def _plain(model, img, scale=(SIZE, SIZE)) -> DetDataSample:
    pipeline = Compose([dict(type='Resize', scale=scale, keep_ratio=True),
                        dict(type='PackDetInputs', meta_keys=META)])
    with torch.no_grad():
        return model.test_step(pseudo_collate([pipeline(_raw(img))]))[0]


def _tta(model, img, scales, flips, **kwargs) -> DetDataSample:
    tta = SpatialFlowTTAModel(module=model, **kwargs)
    with torch.no_grad():
        return tta.test_step(_tta_data(img, scales, flips))[0]


def _views(model, img, scales, flips):
    """The raw per-view outputs of one image (what merge_views consumes)."""
    data = _tta_data(img, scales, flips)
    views = []
    with torch.no_grad():
        for i in range(len(data['inputs'])):
            batch = model.data_preprocessor(
                {k: v[i] for k, v in data.items()}, False)
            views += model.predict_raw(batch['inputs'], batch['data_samples'])
    return views


def _mirror_boxes(b: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], dim=1)


def test_one_view_equals_plain_predict_exactly(model):
    img = _image()
    plain = _plain(model, img)
    tta = _tta(model, img, scales=[(SIZE, SIZE)], flips=[0])
    pred, ref = tta.pred_instances, plain.pred_instances
    assert len(ref) > 5  # the comparison is not vacuous
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        assert torch.equal(pred[key], ref[key]), key
    pan, pan_ref = tta.pred_panoptic_seg.sem_seg, plain.pred_panoptic_seg.sem_seg
    assert torch.equal(pan, pan_ref)
    assert (pan_ref >= 1000).any()  # things were pasted (INSTANCE_OFFSET = 1000)


def test_rescaled_view_gives_boxes_in_original_pixels(model):
    """One view at 1.4x: the merged boxes are the plain (rescale=True) boxes."""
    img = _image()
    plain = _plain(model, img, scale=(224, 224))
    tta = _tta(model, img, scales=[(224, 224)], flips=[0])
    assert plain.metainfo['scale_factor'] == pytest.approx((1.4, 1.4))
    pred, ref = tta.pred_instances, plain.pred_instances
    assert len(ref) > 5
    torch.testing.assert_close(pred.bboxes, ref.bboxes, rtol=0, atol=1e-4)
    assert torch.equal(pred.scores, ref.scores) and torch.equal(pred.labels, ref.labels)
    assert pred.bboxes.max() <= SIZE and pred.bboxes.min() >= 0
    assert pred.masks.shape[-2:] == (SIZE, SIZE)
    # Mask pasting is bilinear: the 1e-5 box differences may flip a border pixel.
    assert (pred.masks != ref.masks).float().mean() < 1e-3


def test_flipped_view_of_image_is_mirrored_result_of_mirrored_image(model):
    """TTA with the single view "flipped" of I must give the mirror of plain
    inference on mirror(I): the network sees the same pixels, TTA undoes the flip."""
    img = _image()
    mirrored = np.ascontiguousarray(img[:, ::-1])
    ref = _plain(model, mirrored).pred_instances
    views = _views(model, img, scales=[(SIZE, SIZE)], flips=[1])
    assert views[0].sample.metainfo['flip']
    tta = SpatialFlowTTAModel(module=model)
    with torch.no_grad():
        dets = tta.merge_detections(views)
        masks = tta.merge_masks(views, dets.bboxes, dets.labels)
        stuff = tta.merge_stuff(views)
    assert len(ref) > 5
    torch.testing.assert_close(dets.bboxes, _mirror_boxes(ref.bboxes, SIZE),
                               rtol=0, atol=1e-4)
    assert torch.equal(dets.scores, ref.scores) and torch.equal(dets.labels, ref.labels)
    assert (masks != ref.masks.flip(-1)).float().mean() < 1e-3
    # The network's stuff logits of mirror(I), mirrored back.
    with torch.no_grad():
        batch = model.data_preprocessor(pseudo_collate([Compose([
            dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=True),
            dict(type='PackDetInputs', meta_keys=META)])(_raw(mirrored))]), False)
        ref_stuff = model.predict_raw(batch['inputs'], batch['data_samples'])[0]
    torch.testing.assert_close(stuff, ref_stuff.stuff_logits.flip(-1))
    # Without the un-flip the boxes would be on the other side of the image.
    assert not torch.allclose(dets.bboxes, ref.bboxes, atol=1.0)


def test_flip_tta_of_mirrored_image_is_mirrored(model):
    """Views {I, flip} of I and {M, flip} of M = mirror(I) show the network the same
    two images, flagged the other way round: un-flipping correctly, the merged
    result for M must be the mirror of the result for I."""
    # Box fill cuts boxes with int() (official), which is not mirror-symmetric (a
    # fill decision can change by a pixel column): compare without it.
    model = copy.deepcopy(model)
    model.fusion.box_fill_thr = None
    img = _image()
    mirrored = np.ascontiguousarray(img[:, ::-1])
    out = _tta(model, img, scales=[(SIZE, SIZE)], flips=[0, 1])
    out_m = _tta(model, mirrored, scales=[(SIZE, SIZE)], flips=[0, 1])
    a, b = out.pred_instances, out_m.pred_instances
    assert len(a) > 5 and len(a) == len(b)
    torch.testing.assert_close(b.scores, a.scores)
    torch.testing.assert_close(b.bboxes, _mirror_boxes(a.bboxes, SIZE), rtol=0,
                               atol=1e-3)
    assert torch.equal(b.labels, a.labels)
    assert (b.masks != a.masks.flip(-1)).float().mean() < 1e-3
    pan, pan_m = out.pred_panoptic_seg.sem_seg, out_m.pred_panoptic_seg.sem_seg
    assert torch.equal(pan_m, pan.flip(-1))
    assert (pan >= 1000).any()
    # The merged set is not the single view's: the flipped view adds detections.
    one = _tta(model, img, scales=[(SIZE, SIZE)], flips=[0]).pred_instances
    assert not torch.equal(one.bboxes, a.bboxes)


def _fake_view(bboxes, scores, labels, img_shape, scale, flip, logits=None):
    meta = dict(ori_shape=(50, 50), img_shape=img_shape, scale_factor=(scale, scale),
                flip=flip, flip_direction='horizontal' if flip else None)
    cands = InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32),
                         scores=torch.tensor(scores), labels=torch.tensor(labels))
    return SpatialFlowView(DetDataSample(metainfo=meta), cands, logits, ())


def test_merge_detections_maps_back_then_nms(model):
    tta = SpatialFlowTTAModel(module=model, tta_cfg=dict(max_per_img=3))
    views = [
        # 2x view: [20, 20, 60, 60] -> [10, 10, 30, 30] in the 50x50 image.
        _fake_view([[20., 20., 60., 60.], [0., 0., 40., 20.]], [0.9, 0.3], [0, 2],
                   img_shape=(100, 100), scale=2.0, flip=False),
        # 1x flipped view: [20, 10, 40, 30] -> x: 50 - 40, 50 - 20 -> [10, 10, 30, 30]
        # (same box, lower score: suppressed); class 1 on the same box survives.
        _fake_view([[20., 10., 40., 30.], [20., 10., 40., 30.], [1., 1., 5., 5.]],
                   [0.8, 0.7, 0.1], [0, 1, 0], img_shape=(50, 50), scale=1.0,
                   flip=True),
    ]
    dets = tta.merge_detections(views)
    assert dets.bboxes.tolist() == [[10., 10., 30., 30.], [10., 10., 30., 30.],
                                    [0., 0., 20., 10.]]
    assert dets.scores.tolist() == pytest.approx([0.9, 0.7, 0.3])
    assert dets.labels.tolist() == [0, 1, 2]  # max_per_img=3 dropped the 0.1 box


def test_merge_stuff_averages_unflipped_logits(model):
    tta = SpatialFlowTTAModel(module=model)
    a, b = torch.rand(4, 50, 50), torch.rand(4, 50, 50)
    empty = ([[0., 0., 1., 1.]], [0.5], [0])
    views = [_fake_view(*empty, img_shape=(50, 50), scale=1.0, flip=False, logits=a),
             _fake_view(*empty, img_shape=(50, 50), scale=1.0, flip=True, logits=b)]
    torch.testing.assert_close(tta.merge_stuff(views), (a + b.flip(-1)) / 2)


def test_no_detection_gives_valid_map(model):
    img = _image()
    tta = SpatialFlowTTAModel(module=model, tta_cfg=dict(max_per_img=0))
    with torch.no_grad():
        out = tta.test_step(_tta_data(img, [(SIZE, SIZE)], [0, 1]))[0]
    assert len(out.pred_instances) == 0
    assert out.pred_instances.masks.shape == (0, SIZE, SIZE)
    assert not (out.pred_panoptic_seg.sem_seg >= 1000).any()


def test_bad_views_and_configs_are_clear_errors(model, cfg):
    img = _image()
    tta = SpatialFlowTTAModel(module=model)
    data = _tta_data(img, [(SIZE, SIZE)], [1],
                     meta_keys=('img_id', 'ori_shape', 'img_shape', 'scale_factor'))
    with pytest.raises(KeyError, match="lacks \\['flip'\\].*meta_keys"):
        with torch.no_grad():
            tta.test_step(data)
    with pytest.raises(ValueError, match='unknown tta_cfg keys'):
        SpatialFlowTTAModel(module=model, tta_cfg=dict(score_thr=0.1))
    retina = Config.fromfile(osp.join(ROOT, 'configs/demo/retinanet_r18_demo.py'))
    with pytest.raises(TypeError, match='DetTTAModel'):
        SpatialFlowTTAModel(module=retina.model)


def _scales_and_flips(cfg):
    tta = [t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug'][0]
    resize, flip = tta['transforms'][0], tta['transforms'][1]
    scales = [tuple(t['scale']) for t in resize if t['type'] == 'Resize']
    return scales, sorted(t['prob'] for t in flip if t['type'] == 'RandomFlip')


def test_configs_carry_the_tta(cfg):
    official = Config.fromfile(R101_DCN_MS)
    assert official.tta_model.type == 'SpatialFlowTTAModel'
    # Official test_pipeline: MultiScaleFlipAug, img_scale 1500x1000, 1800x1200,
    # 2100x1400 (long, short), flip=True.
    assert _scales_and_flips(official) == (
        [(1500, 1000), (1800, 1200), (2100, 1400)], [0.0, 1.0])
    assert _scales_and_flips(cfg) == ([(160, 160), (224, 224)], [0.0, 1.0])
    # The official views of a 640x480 COCO-like image: keep ratio, the short side
    # limited by 1000 / 1200 / 1400 (long side 1333 / 1600 / 1867), each unflipped
    # and flipped. (The file loading steps are skipped: no image file here.)
    tta = [t for t in official.tta_pipeline if t['type'] == 'TestTimeAug'][0]
    tta = copy.deepcopy(tta)
    tta['transforms'] = [step for step in tta['transforms']
                         if step[0]['type'] != 'LoadPanopticAnnotations']
    views = Compose([tta])(_raw(np.zeros((480, 640, 3), np.uint8)))
    shapes = [(s.img_shape, s.flip) for s in views['data_samples']]
    assert sorted(shapes) == sorted(
        (shape, flip) for shape in [(1000, 1333), (1200, 1600), (1400, 1867)]
        for flip in (False, True))
    tta = MODELS.build(dict(**cfg.tta_model, module=cfg.model))
    assert isinstance(tta, SpatialFlowTTAModel)
    assert tta.nms_cfg == cfg.model.test_cfg.nms  # the model's own NMS, as official


SMALL_TEST = ['test_dataloader.batch_size=2', 'test_dataloader.num_workers=0',
              'test_dataloader.persistent_workers=False',
              'test_dataloader.dataset.indices=4']


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory, cfg):
    """A checkpoint of the demo config (its initial weights; tools/test.py only needs
    the keys to match) in mmengine's format."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = tmp_path_factory.mktemp('spatialflow_tta') / 'demo_init.pth'
    torch.save(dict(meta=dict(iter=0), state_dict=model.state_dict()), path)
    return path


def test_test_tool_tta_end_to_end(demo_checkpoint, tmp_path):
    proc = run_tool(['tools/test.py', DEMO, str(demo_checkpoint), '--tta', '--work-dir',
                     str(tmp_path), '--cfg-options', *SMALL_TEST,
                     # Untrained scores sit at the 0.01 prior: keep detections so
                     # that masks are merged and pasted.
                     'model.test_cfg.score_thr=0.0', 'model.test_cfg.max_per_img=20',
                     'model.test_cfg.panoptic.score_thr=0.0'])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "type='SpatialFlowTTAModel'" in log and 'TestTimeAug' in log
    # The plain checkpoint fills the wrapped model: no missing / unexpected keys.
    assert 'Load checkpoint from' in log and 'do not match exactly' not in log
    found = sorted(glob.glob(str(tmp_path / '*' / '*.json')), key=osp.getmtime)
    with open(found[-1]) as f:
        metrics = json.load(f)
    for key in ('PQ', 'PQ_th', 'PQ_st'):
        assert 0.0 <= metrics[f'coco_panoptic/{key}'] <= 100.0


def test_test_tool_tta_needs_tta_pipeline(tmp_path):
    config = tmp_path / 'no_tta_pipeline.py'
    config.write_text(f"_base_ = '{osp.join(ROOT, 'configs/demo/retinanet_r18_demo.py')}'\n"
                      "tta_model = dict(type='DetTTAModel')\n")
    checkpoint = tmp_path / 'any.pth'
    checkpoint.write_bytes(b'')  # never read: the error comes first
    proc = run_tool(['tools/test.py', str(config), str(checkpoint), '--tta'], timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('mmext: error:')]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr
    assert '--tta needs tta_pipeline in' in errors[0] and 'TestTimeAug' in errors[0]
