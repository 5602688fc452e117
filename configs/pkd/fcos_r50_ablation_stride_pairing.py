# ABLATION (not the authors' recipe): fcos_r50.py with levels paired by stride,
# teacher P3..P6 with student P3..P6 (strides 8, 16, 32, 64: equal sizes, no resize),
# instead of the authors' index pairing (teacher P2..P5 with student P3..P6).
#   python tools/train.py configs/pkd/fcos_r50_ablation_stride_pairing.py
_base_ = './fcos_r50.py'

model = dict(distill=dict(pairing='stride', levels=[8, 16, 32, 64]))
