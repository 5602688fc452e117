"""tools/make_figures.py on tiny synthetic inputs: the maths (Pearson r, linear
probe), the log reader, the colouring, the figure files (PNG, pixel size, < 200 KB,
same bytes twice) and the one-line error for a missing checkpoint."""
import importlib.util
import json
import os.path as osp
import struct
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAX_BYTES = 200 * 1024


@pytest.fixture(scope='module')
def mf():
    spec = importlib.util.spec_from_file_location(
        'make_figures', osp.join(ROOT, 'tools', 'make_figures.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules['make_figures'] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def png_size(path: str):
    """(width, height) from the IHDR chunk; fails if the file is not a PNG."""
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', path
    assert head[12:16] == b'IHDR'
    return struct.unpack('>II', head[16:24])


def check_png(path, expected_size):
    assert osp.isfile(path)
    assert png_size(path) == expected_size
    assert osp.getsize(path) < MAX_BYTES


# ------------------------------------------------------------------ maths
def test_pearson_r_identical_scaled_negated_independent(mf):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 5, 16, 16, generator=g)
    assert torch.allclose(mf.pearson_r(a, a), torch.ones(5), atol=1e-5)
    # invariant to a per-channel scale and shift (what PKD relies on)
    scale = torch.tensor([0.1, 2.0, 30.0, 1.0, 5.0]).view(1, 5, 1, 1)
    assert torch.allclose(mf.pearson_r(a * scale + 7.0, a), torch.ones(5), atol=1e-5)
    assert torch.allclose(mf.pearson_r(-a, a), -torch.ones(5), atol=1e-5)
    b = torch.randn(4, 5, 16, 16, generator=g)  # independent: r ~ N(0, 1/1024)
    r = mf.pearson_r(a, b)
    assert r.abs().max() < 0.12 and r.abs().mean() < 0.06
    # a known correlation: b' = 0.6 a + 0.8 noise has r = 0.6
    big_a = torch.randn(8, 3, 64, 64, generator=g)
    mixed = 0.6 * big_a + 0.8 * torch.randn(8, 3, 64, 64, generator=g)
    assert torch.allclose(mf.pearson_r(mixed, big_a), torch.full((3, ), 0.6), atol=0.02)
    with pytest.raises(ValueError, match='shapes differ'):
        mf.pearson_r(a, a[:, :4])


def test_linear_probe_r_finds_a_1x1_map_and_nothing_in_noise(mf):
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(6, 3, generator=g)  # 3 student channels -> 6 teacher channels

    def teacher_of(s, noise=0.0):
        t = torch.einsum('nchw,dc->ndhw', s, weight) + 2.0
        return t + noise * torch.randn(t.shape, generator=g)

    fit_s, eval_s = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    r = mf.linear_probe_r(fit_s, teacher_of(fit_s), eval_s, teacher_of(eval_s))
    assert r.shape == (6, ) and torch.all(r > 0.999)
    # teacher independent of the student: held-out r ~ 0
    r = mf.linear_probe_r(fit_s, torch.randn(4, 6, 8, 8, generator=g), eval_s,
                          torch.randn(4, 6, 8, 8, generator=g))
    assert r.abs().mean() < 0.1


# ------------------------------------------------------------------ logs
def test_training_curves_reads_losses_val_step0_and_test_json(mf, tmp_path):
    run = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    records = [
        {'loss': 3.0, 'loss_cls': 1.0, 'loss_pkd_fpn0': 2.0, 'iter': 10, 'step': 10},
        {'loss': 2.0, 'loss_cls': 1.5, 'loss_pkd_fpn0': 0.5, 'iter': 20, 'step': 20},
        {'mIoU': 40.0, 'step': 0},  # mmengine: validation of an iter loop at step 0
        {'loss': 1.0, 'iter': 30, 'step': 30},
        {'mIoU': 50.0, 'step': 0},
    ]
    (run / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    losses, vals = mf.training_curves(str(tmp_path / 'run'), 'mIoU')
    assert losses == [(10, 1.0), (20, 1.5), (30, 1.0)]  # distillation terms removed
    assert vals == [(20, 40.0), (30, 50.0)]

    # no validation during training: the newest test run's metric at the last iter
    (run / 'scalars.json').write_text(json.dumps(records[0]) + '\n')
    test_dir = tmp_path / 'run' / '20260101_000100'
    test_dir.mkdir()
    (test_dir / '20260101_000100.json').write_text(json.dumps({'mIoU': 42.5}) + '\n')
    assert mf.training_curves(str(tmp_path / 'run'), 'mIoU') == ([(10, 1.0)], [(10, 42.5)])


# ------------------------------------------------------------------ colouring
def test_panoptic_to_rgb_colours_instances_and_edges(mf):
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    inst = np.zeros_like(labels)
    inst[:2, 3] = 1  # a second instance of class 1 on the right column
    palette = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    rgb = mf.panoptic_to_rgb(labels, inst, palette, void_label=2)
    assert tuple(rgb[0, 0]) == (200, 0, 0)   # class 0 inside (no edge below/right)
    assert tuple(rgb[3, 3]) == (0, 0, 0)     # void is black
    assert tuple(rgb[1, 1]) == (255, 255, 255)  # edge: class 0 above void
    assert tuple(rgb[0, 3]) == (0, 150, 0)   # second instance of class 1: darker
    assert tuple(rgb[0, 2]) == (255, 255, 255)  # edge between the two instances


# ------------------------------------------------------------------ figures
def _scene(seed: int, size: int = 32):
    rng = np.random.RandomState(seed)
    labels = np.zeros((size, size), np.int64)
    labels[size // 2:] = 1
    labels[4:12, 4:12] = 2
    image = rng.randint(0, 255, (size, size, 3)).astype(np.uint8)
    return image, labels


def test_figures_are_small_pngs_of_the_expected_size_and_reproducible(mf, tmp_path):
    palette = [(220, 20, 60), (70, 130, 180), (107, 142, 35)]
    classes = ['thing', 'sky', 'grass']
    dpi = mf.DPI

    rows = []
    for seed in range(2):
        image, labels = _scene(seed)
        rgb = mf.panoptic_to_rgb(labels, np.zeros_like(labels), palette, void_label=3)
        rows.append(mf.PanopticRow(f'{seed}.png', image, rgb, rgb))
    path = mf.plot_panoptic_panel(rows, classes, palette, str(tmp_path / 'pan.png'), 't')
    check_png(path, (round(6.3 * dpi), round((2.05 * 2 + 0.75) * dpi)))

    seg_rows = []
    for seed in range(2):
        image, labels = _scene(seed)
        grid = np.linspace(-2, 2, 16 * 16).reshape(16, 16)
        seg_rows.append(mf.SegRow(f'{seed}.png', image, labels, labels, labels,
                                  grid, grid.T))
    path = mf.plot_lau_panel(seg_rows, classes, palette, str(tmp_path / 'lau.png'), 't')
    check_png(path, (round(9.4 * dpi), round((2.05 * 2 + 0.7) * dpi)))

    bars = {'plain': [0.5, 0.6], 'pkd': [0.7, 0.8]}
    path = mf.plot_pkd_panel(['fpn0', 'fpn1'], bars, str(tmp_path / 'pkd.png'), 't')
    check_png(path, (round(6.4 * dpi), round(3.3 * dpi)))
    first = open(path, 'rb').read()
    mf.plot_pkd_panel(['fpn0', 'fpn1'], bars, str(tmp_path / 'pkd.png'), 't')
    assert open(path, 'rb').read() == first  # no timestamp / version in the file

    curves = {'A': {'run': ([(10, 2.0), (20, 1.0)], [(20, 5.0)])},
              'B': {'x': ([(1, 1.0)], []), 'y': ([], [(1, 0.5)])}}
    path = mf.plot_curves(curves, {'A': 'mIoU', 'B': 'PQ'}, str(tmp_path / 'c.png'), 't')
    check_png(path, (round(3.1 * 2 * dpi), round(4.6 * dpi)))


def test_committed_figures_exist_and_are_small():
    for name in ('spatialflow_panel', 'lau_panel', 'pkd_pearson', 'demo_curves'):
        path = osp.join(ROOT, 'docs', 'images', f'{name}.png')
        width, height = png_size(path)
        assert 300 < width < 1200 and 200 < height < 1000, (name, width, height)
        assert osp.getsize(path) < MAX_BYTES


# ------------------------------------------------------------------ errors
def test_missing_checkpoint_is_one_line_naming_it_and_the_command(mf, tmp_path, capsys,
                                                                  monkeypatch):
    from mmext.engine.errors import run_cli
    from mmext.utils.errors import UserError

    done = tmp_path / 'done'
    done.mkdir()
    (done / 'iter_5.pth').write_bytes(b'x')
    # an absolute path from another machine: found by its name in the work dir
    (done / 'last_checkpoint').write_text('/elsewhere/work_dirs/done/iter_5.pth')
    assert mf.checkpoint_of(str(done)) == str(done / 'iter_5.pth')
    missing = tmp_path / 'missing'
    run = mf.Run('x', 'configs/demo/seg_lau_demo.py', str(missing), 'mIoU')
    source = mf.Source('python tools/run_demo.py lau',
                       {'a': mf.Run('y', 'c.py', str(done), 'mIoU'), 'b': run})
    with pytest.raises(UserError, match=r'no checkpoint in .*missing/ .*create it with '
                       r'`python tools/run_demo.py lau` \(part of `make demo`\)$'):
        mf.pick_source('lau', [source])

    monkeypatch.setitem(mf.SOURCES, 'lau', [source])
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: mf.main(['--only', 'lau', '--out', str(tmp_path / 'out')]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('mmext: error: lau figure: no checkpoint in')
    assert str(missing) in err[0] and 'make demo' in err[0]
    assert not (tmp_path / 'out').exists()  # nothing drawn
