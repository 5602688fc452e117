# What every configs/pkd/*.py shares: mmext registration and the COCO layout hint.
# The model itself (student + teacher + distill) is written in each config, so that a
# config shows its pair at a glance; swap `_base_` (student) or `teacher` to change it.
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

dataset_layout_hint = (
    'COCO 2017 (https://cocodataset.org) as data/coco/annotations/'
    'instances_{train,val}2017.json, data/coco/train2017/*.jpg, '
    'data/coco/val2017/*.jpg (or a symlink data/coco -> your copy)')
