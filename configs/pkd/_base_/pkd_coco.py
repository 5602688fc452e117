# What every configs/pkd/*.py shares: mmext registration and the COCO layout hint.
# The model (student + teacher + distill) is in each config: its student is that
# file's own `_base_` model (mmengine: no key in two bases); the pair shows at a glance.
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

dataset_layout_hint = (
    'COCO 2017 (https://cocodataset.org) as data/coco/annotations/'
    'instances_{train,val}2017.json, data/coco/train2017/*.jpg, '
    'data/coco/val2017/*.jpg (or a symlink data/coco -> your copy)')

# The paper's heterogeneous teacher (Mask R-CNN Swin-S 3x, 48.2 box AP), shared by
# retina_r50.py and fcos_r50.py as `teacher={{_base_.swin_s_teacher}}`.
swin_s_teacher = dict(
    config='mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
    checkpoint='checkpoints/mask_rcnn_swin-s-p4-w7_fpn_fp16_ms-crop-3x_coco_'
    '20210903_104808-b92c91f1.pth',
    checkpoint_url='https://download.openmmlab.com/mmdetection/v2.0/swin/'
    'mask_rcnn_swin-s-p4-w7_fpn_fp16_ms-crop-3x_coco/mask_rcnn_swin-s-p4-w7_fpn_'
    'fp16_ms-crop-3x_coco_20210903_104808-b92c91f1.pth',
    # MMRazor's teacher_norm_eval=True: norm layers in eval, Swin's drop-path active
    train_mode='norm_eval')
