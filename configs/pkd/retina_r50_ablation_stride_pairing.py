# ABLATION (not the authors' recipe): retina_r50.py with levels paired by stride,
# teacher P3..P6 with student P3..P6 (strides 8, 16, 32, 64: equal sizes, no resize),
# instead of the authors' index pairing (teacher P2..P5 with student P3..P6).
# Untested at COCO scale; on the demo: docs/benchmarks.md (PKD section).
#   python tools/train.py configs/pkd/retina_r50_ablation_stride_pairing.py
_base_ = './retina_r50.py'

model = dict(distill=dict(pairing='stride', levels=[8, 16, 32, 64]))
