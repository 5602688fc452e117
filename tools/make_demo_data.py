"""Generate mmext's synthetic demo data set (COCO / panoptic / seg / Cityscapes).

    python tools/make_demo_data.py                       # -> <repo>/data/demo
    python tools/make_demo_data.py --root /tmp/demo --num-train 50 --force

Without ``--force`` an existing, complete set made with the same arguments is
kept as is (that is what demo configs do on first use).
"""
import argparse
import importlib.util
import os.path as osp
import sys
import time
from pathlib import Path
from types import ModuleType

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load_demo_data() -> ModuleType:
    """Import ``mmext.datasets.demo_data`` from this clone or the install.

    Falls back to loading the ``demo_data`` package from its folder when the
    ``mmext.datasets`` package itself cannot be imported (it pulls in mmdet /
    mmseg, which the generator does not need; ``demo_data`` imports nothing
    outside itself).
    """
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    try:
        from mmext.datasets import demo_data
        return demo_data
    except ImportError:
        folder = osp.join(REPO_ROOT, 'mmext', 'datasets', 'demo_data')
        # submodule_search_locations: load it as a package, so that its relative
        # imports (.constants, .writers, ...) resolve inside the folder
        spec = importlib.util.spec_from_file_location(
            'mmext_demo_data', osp.join(folder, '__init__.py'),
            submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--root',
        default=osp.join(REPO_ROOT, 'data', 'demo'),
        help='output folder (default: <repo>/data/demo)')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--image-size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate even if a complete set already exists')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    dd = _load_demo_data()
    kwargs = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=args.image_size,
        seed=args.seed)
    start = time.perf_counter()
    if not args.force and dd.is_demo_data_complete(args.root, **kwargs):
        print(f'Demo data already complete in {Path(args.root).absolute()} '
              '(use --force to regenerate)')
        return 0
    root = dd.generate_demo_data(
        args.root, progress=not args.no_progress, **kwargs)
    elapsed = time.perf_counter() - start
    num_files = sum(1 for p in root.rglob('*') if p.is_file())
    print(f'Wrote {args.num_train} train + {args.num_val} val images '
          f'({args.image_size} px, seed {args.seed}) to {root} '
          f'in {elapsed:.1f} s ({num_files} files):')
    for rel in ('images/{train,val}/', 'annotations/instances_{train,val}.json',
                'annotations/panoptic_{train,val}.json + panoptic_{train,val}/',
                'seg/{train,val}/', 'cityscapes/leftImg8bit/{train,val}/demo/',
                'cityscapes/gtFine/{train,val}/demo/',
                'cityscapes/gtFine/cityscapes_panoptic_{train,val}.json + '
                'cityscapes_panoptic_{train,val}/'):
        print(f'  {rel}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
