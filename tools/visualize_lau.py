"""Look at what LaU learned: one PNG row per image with

    image | ground truth (if found) | bilinear prediction | LaU prediction | offset field

The offset field is the learned (dy, dx) at the LaU output resolution as a colour
wheel (hue = direction, brightness = length; black = no offset) with arrows on a
grid (lengths in input pixels, exaggerated by --arrow-scale). A legend states the
largest offset.

"bilinear prediction" is, by default, the same LaU model with its learned offsets set
to zero (plain interpolation of the same logits): what LaU changes. Give
--bilinear-config/--bilinear-checkpoint to show a separately trained baseline instead.

    python tools/visualize_lau.py configs/demo/seg_lau_demo.py work_dirs/.../iter_200.pth \
        --images data/demo/images/val/000001.png data/demo/images/val/000002.png \
        --out lau_offsets.png
    python tools/visualize_lau.py LAU_CFG LAU_CKPT --num 4 \
        --bilinear-config configs/demo/seg_bilinear_demo.py --bilinear-checkpoint B.pth
"""
import argparse
import glob
import os
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='LaU model config')
    parser.add_argument('checkpoint', help='LaU model checkpoint')
    parser.add_argument('--images', nargs='+', help='image files')
    parser.add_argument('--num', type=int, default=4,
                        help='without --images: the first NUM images of the config\'s '
                        'test set')
    parser.add_argument('--bilinear-config', help='a separately trained baseline')
    parser.add_argument('--bilinear-checkpoint')
    parser.add_argument('--out', default='lau_visualization.png', help='output PNG')
    parser.add_argument('--scale', type=int, default=2, help='upscale small images')
    parser.add_argument('--arrow-step', type=int, default=10,
                        help='one arrow every N LaU-output pixels')
    parser.add_argument('--arrow-scale', type=float, default=1.0,
                        help='arrow length = offset (input px) x this')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args()


def _test_images(cfg, num: int) -> List[str]:
    ds = cfg.test_dataloader.dataset
    root = ds.get('data_root', '')
    folder = osp.join(root, ds.get('data_prefix', {}).get('img_path', ''))
    if ds.get('type') == 'DemoSegDataset':
        from mmext.datasets.demo_data import ensure_demo_data
        ensure_demo_data(root or 'data/demo')
    files = sorted(glob.glob(osp.join(folder, '*.png')) + glob.glob(osp.join(folder, '*.jpg')))
    if not files:
        raise SystemExit(f'no images under {folder}; pass --images')
    return files[:num]


def _label_for(cfg, img_path: str) -> Optional[np.ndarray]:
    """The ground-truth map of an image of the config's test set, if it is one."""
    ds = cfg.test_dataloader.dataset
    root = ds.get('data_root', '')
    prefix = ds.get('data_prefix', {})
    img_dir = osp.normpath(osp.join(root, prefix.get('img_path', '')))
    if osp.normpath(osp.dirname(img_path)) != img_dir or 'seg_map_path' not in prefix:
        return None
    stem = osp.splitext(osp.basename(img_path))[0]
    for suffix in (ds.get('seg_map_suffix', '.png'), '.png'):
        path = osp.join(root, prefix['seg_map_path'], stem + suffix)
        if osp.isfile(path):
            return cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return None


def colorize(label: np.ndarray, palette) -> np.ndarray:
    out = np.zeros((*label.shape, 3), np.uint8)  # ignore / unknown: black
    for i, colour in enumerate(palette):
        out[label == i] = colour
    return out


def offset_wheel(dy: np.ndarray, dx: np.ndarray, max_len: float) -> np.ndarray:
    """RGB colour wheel: hue = direction, value = length / max_len."""
    angle = (np.degrees(np.arctan2(dy, dx)) % 360) / 2  # OpenCV hue: 0..180
    length = np.sqrt(dy ** 2 + dx ** 2)
    value = np.clip(length / max(max_len, 1e-6), 0, 1) * 255
    hsv = np.stack([angle, np.full_like(angle, 255), value], -1).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def draw_arrows(canvas: np.ndarray, dy: np.ndarray, dx: np.ndarray, px: float,
                step: int, scale: float) -> None:
    """Arrows from each grid point along (dx, dy); px: canvas pixels per map pixel."""
    h, w = dy.shape
    for i in range(step // 2, h, step):
        for j in range(step // 2, w, step):
            x0, y0 = (j + 0.5) * px, (i + 0.5) * px
            x1, y1 = x0 + dx[i, j] * scale, y0 + dy[i, j] * scale
            if abs(x1 - x0) + abs(y1 - y0) < 0.5:
                cv2.circle(canvas, (int(x0), int(y0)), 1, (255, 255, 255), -1)
                continue
            cv2.arrowedLine(canvas, (int(x0), int(y0)), (int(round(x1)), int(round(y1))),
                            (255, 255, 255), 1, tipLength=0.3)


def _titled(img: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((18, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, img], 0)


def main() -> None:
    args = parse_args()
    import torch
    import mmext  # noqa: F401
    from mmengine.dataset import Compose
    from mmseg.apis import init_model, inference_model

    from mmext.seg import LaUHead

    model = init_model(args.config, args.checkpoint, device=args.device)
    head = model.decode_head
    if not isinstance(head, LaUHead):
        raise SystemExit(f'{args.config}: the decode head is {type(head).__name__}, not '
                         "a LaU head (dict(type='LaUHead', ...))")
    baseline = None
    if args.bilinear_config:
        baseline = init_model(args.bilinear_config, args.bilinear_checkpoint,
                              device=args.device)
    images = args.images or _test_images(model.cfg, args.num)
    palette = (model.dataset_meta or {}).get('palette') or \
        np.random.RandomState(0).randint(0, 255, (head.num_classes, 3)).tolist()

    # The config's test pipeline without its label loading, as mmseg's
    # inference_model prepares an image (we need the features, not only the result).
    pipeline = Compose([t for t in model.cfg.test_pipeline
                        if t.get('type') != 'LoadAnnotations'])
    rows, max_len = [], 0.0
    fields = []
    for path in images:
        img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        with torch.no_grad():
            item = pipeline(dict(img_path=path))
            data = model.data_preprocessor(
                dict(inputs=[item['inputs']], data_samples=[item['data_samples']]), False)
            metas = [s.metainfo for s in data['data_samples']]
            up, plain, ctx = head.predict_offsets(model.extract_feat(data['inputs']))
            lau_pred = head.head.predict_by_feat(up, metas).argmax(1)[0]
            plain_pred = head.head.predict_by_feat(plain, metas).argmax(1)[0]
            if baseline is not None:
                plain_pred = inference_model(baseline, path).pred_sem_seg.data[0]
        h, w = img.shape[:2]
        lau_pred = cv2.resize(lau_pred.numpy().astype(np.uint8), (w, h),
                              interpolation=cv2.INTER_NEAREST)
        plain_pred = cv2.resize(plain_pred.numpy().astype(np.uint8), (w, h),
                                interpolation=cv2.INTER_NEAREST)
        # Learned offsets of group 0 (G=1: the only one), in input pixels, relative
        # to the head's base grid (the paper's i/k by default).
        off = ctx.offsets[0, :2].float().numpy()
        stride = h / up.shape[-2]  # input px per LaU output px
        low_stride = stride * ctx.scale_factor  # input px per logit px (offset unit)
        dy, dx = off[0] * low_stride, off[1] * low_stride
        max_len = max(max_len, float(np.sqrt(dy ** 2 + dx ** 2).max()))
        fields.append((dy, dx))
        label = _label_for(model.cfg, path)
        rows.append((osp.basename(path), img, label, plain_pred, lau_pred))

    s = args.scale
    out_rows = []
    for (name, img, label, plain_pred, lau_pred), (dy, dx) in zip(rows, fields):
        h, w = img.shape[:2]
        big = (w * s, h * s)

        def up_nn(a):
            return cv2.resize(a, big, interpolation=cv2.INTER_NEAREST)

        wheel = cv2.resize(offset_wheel(dy, dx, max_len), big,
                           interpolation=cv2.INTER_NEAREST)
        draw_arrows(wheel, dy, dx, big[1] / dy.shape[0], args.arrow_step,
                    args.arrow_scale * s)
        panels = [_titled(cv2.resize(img, big, interpolation=cv2.INTER_LINEAR), name)]
        if label is not None:
            panels.append(_titled(up_nn(colorize(label, palette)), 'ground truth'))
        bil_title = 'bilinear baseline' if baseline is not None else \
            'bilinear (offsets = 0)'
        panels.append(_titled(up_nn(colorize(plain_pred, palette)), bil_title))
        panels.append(_titled(up_nn(colorize(lau_pred, palette)), 'LaU'))
        changed = int((plain_pred != lau_pred).sum())
        panels.append(_titled(wheel, f'offsets (max {max_len:.1f}px) d={changed}'))
        sep = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
        row = panels[0]
        for p in panels[1:]:
            if p.shape[0] != row.shape[0]:
                continue
            row = np.concatenate([row, sep, p], 1)
        out_rows.append(row)
    width = max(r.shape[1] for r in out_rows)
    out_rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                for r in out_rows]
    canvas = np.concatenate(out_rows, 0)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    print(f'wrote {args.out} ({len(rows)} images; largest learned offset '
          f'{max_len:.2f} input px; "d=" counts pixels whose class LaU changed)')


if __name__ == '__main__':
    from mmext.engine import run_cli
    run_cli(main)
