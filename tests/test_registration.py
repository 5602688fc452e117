"""`import mmext` registers its modules; configs with custom_imports build."""
import os.path as osp

from mmengine.config import Config


def test_import_registers_modules():
    import mmext
    from mmdet.registry import DATASETS as DET_DATASETS
    from mmengine.registry import MODEL_WRAPPERS
    from mmseg.registry import DATASETS as SEG_DATASETS

    assert mmext.HAS_OPENMMLAB
    assert DET_DATASETS.get('DemoCocoDataset') is not None
    assert SEG_DATASETS.get('DemoSegDataset') is not None
    assert MODEL_WRAPPERS.get('CPUDistributedDataParallel') is not None


def test_demo_config_builds_model(repo_root):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    cfg = Config.fromfile(osp.join(repo_root, 'configs/demo/retinanet_r18_demo.py'))
    assert cfg.custom_imports.imports == ['mmext']
    register_all_modules()
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'RetinaNet'
    assert model.bbox_head.num_classes == 3

