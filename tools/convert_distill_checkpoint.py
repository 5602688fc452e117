"""Turn a FeatureDistiller (PKD) checkpoint into a plain student checkpoint.

    python tools/convert_distill_checkpoint.py work_dirs/pkd/iter_N.pth student.pth

Distillation checkpoints already hold the student's weights under the student's own
key names, so ``tools/test.py <student config> <ckpt>`` works on them directly; this
tool additionally drops the adapter weights (``distill_adapters.*``, which the plain
student would report as unexpected keys) and the training state (optimizer,
schedulers, message hub), giving the file to deploy or publish.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmext.engine import check_checkpoint, run_cli  # noqa: E402
from mmext.utils.errors import UserError  # noqa: E402


def convert(src: str, dst: str) -> int:
    """Write the student-only checkpoint of ``src`` to ``dst``; return its tensor count."""
    import torch

    import mmext  # noqa: F401  (checkpoint safe globals)
    from mmext.distill.state_dict_keys import plain_student_state
    from mmext.utils.checkpoint import load_checkpoint_file
    # weights_only load; a bad file is one 'mmext: error:' line naming it.
    checkpoint = load_checkpoint_file(src)
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"'{src}' holds no state_dict")
    student = plain_student_state(state)
    meta = dict(checkpoint.get('meta') or {})
    meta['converted_from'] = osp.abspath(src)
    torch.save({'meta': meta, 'state_dict': student}, dst)
    return len(student)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint written while training a FeatureDistiller')
    parser.add_argument('dst', help='output: student-only checkpoint')
    args = parser.parse_args()
    check_checkpoint(args.src)
    count = convert(args.src, args.dst)
    print(f'wrote {args.dst}: {count} student tensors')


if __name__ == '__main__':
    run_cli(main)
