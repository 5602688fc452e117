"""Turn a distillation checkpoint (mmext's FeatureDistiller or MMRazor's) into a
plain student checkpoint.

    python tools/convert_distill_checkpoint.py work_dirs/pkd/iter_N.pth student.pth
    python tools/convert_distill_checkpoint.py pkd_fpn_mask_rcnn_swin_retina_r50_2x_coco_20220925_142555-edec7433.pth student.pth

mmext's checkpoints hold the student's weights under the student's own key names;
this tool drops the adapter weights (``distill_adapters.*``) and the training state
(optimizer, schedulers, message hub), giving the file to deploy or publish.
MMRazor's (``architecture.<student>`` + ``teacher.<teacher>``, e.g. the published
PKD models of configs/pkd/README.md) become the student's keys without the prefix,
teacher dropped, as MMRazor's own convert_kd_ckpt_to_student.py does. The output
loads strictly into the plain student config:

    python tools/test.py mmdet::retinanet/retinanet_r50_fpn_2x_coco.py student.pth
"""
import argparse
import os.path as osp
import sys
from typing import Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmext.engine import check_checkpoint, run_cli  # noqa: E402
from mmext.utils.errors import UserError  # noqa: E402


def convert(src: str, dst: str) -> Tuple[int, str]:
    """Write the student-only checkpoint of ``src`` to ``dst``; return its tensor
    count and the layout it was read as (``distillation_layout`` or 'plain')."""
    import torch

    import mmext  # noqa: F401  (checkpoint safe globals)
    from mmext.distill.state_dict_keys import distillation_layout, plain_student_state
    from mmext.utils.checkpoint import load_checkpoint_file
    # weights_only load; a bad file is one 'mmext: error:' line naming it.
    checkpoint = load_checkpoint_file(src)
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"'{src}' holds no state_dict")
    layout = distillation_layout(state) or 'plain'
    student = plain_student_state(state)
    if not student:
        raise UserError(f"'{src}' holds no student weights")
    meta = dict(checkpoint.get('meta') or {})
    meta['converted_from'] = osp.abspath(src)
    torch.save({'meta': meta, 'state_dict': student}, dst)
    return len(student), layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint written while training a FeatureDistiller')
    parser.add_argument('dst', help='output: student-only checkpoint')
    args = parser.parse_args()
    check_checkpoint(args.src)
    count, layout = convert(args.src, args.dst)
    source = {'mmrazor': "MMRazor's architecture./teacher. layout, teacher dropped",
              'modules': 'FeatureDistiller module names, student. prefix removed',
              'mmext': 'mmext FeatureDistiller, adapters dropped',
              'plain': 'no distillation keys, copied'}[layout]
    print(f'wrote {args.dst}: {count} student tensors ({source})')


if __name__ == '__main__':
    run_cli(main)
