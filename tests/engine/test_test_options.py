"""tools/test.py's mmdet/mmseg options on the demo configs: --show-dir, --out (a .pkl
for detection/panoptic, a folder of label PNGs for segmentation), --show, --wait-time.

The checkpoints are untrained models' state dicts: these tests check what the
options write, not how good the predictions are.
"""
import glob
import importlib.util
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from tests.tool_runner import ROOT, run_tool

DET = 'configs/demo/retinanet_r18_demo.py'
PANOPTIC = 'configs/demo/spatialflow_r18_demo.py'
SEG = 'configs/demo/seg_bilinear_demo.py'
NUM_IMAGES = 3  # test_dataloader.dataset.indices: the first 3 val images
IMAGE_SIZE = 160  # the demo images are 160 x 160
SEG_CLASSES = 6
FAST = ['test_dataloader.batch_size=2', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        f'test_dataloader.dataset.indices={NUM_IMAGES}']


def _untrained_checkpoint(config: str, path) -> str:
    """Save the state dict of ``config``'s model, built with seed 0, to ``path``."""
    import mmext  # noqa: F401  (registers the mmext models)
    from mmdet.utils import register_all_modules as register_mmdet
    from mmengine.registry import MODELS, init_default_scope
    from mmseg.utils import register_all_modules as register_mmseg
    register_mmdet(init_default_scope=False)
    register_mmseg(init_default_scope=False)
    cfg = Config.fromfile(osp.join(ROOT, config))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('untrained')
    return {name: _untrained_checkpoint(config, folder / f'{name}.pth')
            for name, config in (('det', DET), ('panoptic', PANOPTIC), ('seg', SEG))}


def _test(config, checkpoint, work_dir, *options, cfg_options=()):
    proc = run_tool(['tools/test.py', config, checkpoint, '--work-dir', str(work_dir),
                     *options, '--cfg-options', *FAST, *cfg_options])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _drawn_sizes(pattern):
    files = sorted(glob.glob(pattern))
    sizes = []
    for path in files:
        with Image.open(path) as image:
            image.load()  # raises on a broken PNG
            sizes.append(image.size)
    return files, sizes


# Both visualisers draw ground truth | prediction side by side when the sample has
# ground truth (the demo val sets do): width 2 x 160, height 160.
DRAWN_SIZE = (2 * IMAGE_SIZE, IMAGE_SIZE)


def test_show_dir_detection_draws_every_image(checkpoints, tmp_path):
    _test(DET, checkpoints['det'], tmp_path, '--show-dir', 'vis',
          cfg_options=['model.test_cfg.score_thr=0.0'])
    files, sizes = _drawn_sizes(str(tmp_path / '*' / 'vis' / '*.png'))
    assert len(files) == NUM_IMAGES
    assert sizes == [DRAWN_SIZE] * NUM_IMAGES


def test_show_dir_segmentation_draws_every_image(checkpoints, tmp_path):
    # mmseg's hook would draw every 50th batch only; --show-dir draws them all.
    _test(SEG, checkpoints['seg'], tmp_path, '--show-dir', 'vis')
    files, sizes = _drawn_sizes(str(tmp_path / 'vis' / 'vis_data' / 'vis_image' / '*.png'))
    assert len(files) == NUM_IMAGES
    assert sizes == [DRAWN_SIZE] * NUM_IMAGES


def _load_pickle(path):
    with open(path, 'rb') as f:
        return pickle.load(f)  # our own file, written just now


def test_out_pkl_detection(checkpoints, tmp_path):
    out = tmp_path / 'results.pkl'
    _test(DET, checkpoints['det'], tmp_path, '--out', str(out),
          cfg_options=['model.test_cfg.score_thr=0.0'])
    results = _load_pickle(out)
    assert isinstance(results, list) and len(results) == NUM_IMAGES
    for result in results:
        pred = result['pred_instances']
        boxes, scores, labels = pred['bboxes'], pred['scores'], pred['labels']
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 0
        assert scores.shape == labels.shape == (len(boxes), )
        assert 'gt_instances' not in result  # DumpDetResults drops the ground truth
    assert len({r['img_id'] for r in results}) == NUM_IMAGES  # one entry per image


def test_out_pkl_panoptic(checkpoints, tmp_path):
    out = tmp_path / 'results.pkl'
    _test(PANOPTIC, checkpoints['panoptic'], tmp_path, '--out', str(out))
    results = _load_pickle(out)
    assert isinstance(results, list) and len(results) == NUM_IMAGES
    for result in results:
        panoptic = result['pred_panoptic_seg']['sem_seg']
        assert tuple(panoptic.shape) == (1, IMAGE_SIZE, IMAGE_SIZE)
        assert 'gt_panoptic_seg' not in result


def test_out_dir_segmentation_writes_label_pngs(checkpoints, tmp_path):
    out = tmp_path / 'preds'
    proc = _test(SEG, checkpoints['seg'], tmp_path, '--out', str(out))
    assert 'mIoU' in proc.stdout + proc.stderr  # evaluation still ran
    files = sorted(glob.glob(str(out / '*.png')))
    assert len(files) == NUM_IMAGES
    images = sorted(glob.glob(osp.join(ROOT, 'data/demo/images/val/*.png')))[:NUM_IMAGES]
    # One PNG per image, named after it (as mmseg's IoUMetric names them).
    assert [osp.basename(f) for f in files] == [osp.basename(f) for f in images]
    for path in files:
        labels = np.asarray(Image.open(path))
        assert labels.shape == (IMAGE_SIZE, IMAGE_SIZE) and labels.dtype == np.uint8
        assert labels.max() < SEG_CLASSES


def _one_error_line(proc):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('mmext: error:')]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


@pytest.mark.parametrize('config,out,expected', [
    (DET, 'preds', 'give a name ending in .pkl'),
    (SEG, 'preds.pkl', 'not a pickle'),
])
def test_out_of_the_wrong_kind_is_one_line(checkpoints, tmp_path, config, out, expected):
    name = 'det' if config == DET else 'seg'
    line = _one_error_line(run_tool(['tools/test.py', config, checkpoints[name],
                                     '--work-dir', str(tmp_path), '--out', out]))
    assert expected in line and f"'{out}'" in line


def test_show_without_a_display_is_one_line(checkpoints, tmp_path):
    env = {'DISPLAY': '', 'WAYLAND_DISPLAY': ''}
    line = _one_error_line(run_tool(['tools/test.py', DET, checkpoints['det'],
                                     '--work-dir', str(tmp_path), '--show',
                                     '--wait-time', '0.5'], timeout=120, **env))
    assert '--show needs a display' in line and '--show-dir' in line
    assert not list(tmp_path.iterdir())  # refused before anything ran


def _test_tool():
    spec = importlib.util.spec_from_file_location('mmext_tools_test',
                                                  osp.join(ROOT, 'tools/test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('config,hook_type', [(DET, 'DetVisualizationHook'),
                                              (SEG, 'SegVisualizationHook')])
def test_show_and_wait_time_reach_the_built_hook(checkpoints, tmp_path, monkeypatch,
                                                 config, hook_type):
    """--show --wait-time 0.5 as a user types it, up to the hook the Runner builds."""
    from mmengine.registry import HOOKS, VISUALIZERS, init_default_scope
    tool = _test_tool()
    monkeypatch.setenv('DISPLAY', ':0')  # check_display passes; nothing is shown
    name = 'det' if config == DET else 'seg'
    monkeypatch.setattr('sys.argv', ['test.py', osp.join(ROOT, config), checkpoints[name],
                                     '--work-dir', str(tmp_path), '--show',
                                     '--wait-time', '0.5'])
    cfg = tool.build_test_config(tool.parse_args())
    hook_cfg = cfg.default_hooks.visualization
    assert hook_cfg.type == hook_type
    init_default_scope(cfg.default_scope)
    VISUALIZERS.build(dict(cfg.visualizer, name=f'test-{name}'))
    hook = HOOKS.build(dict(hook_cfg))
    assert (hook.draw, hook.show, hook.wait_time) == (True, True, 0.5)


def test_wait_time_defaults_to_two_seconds_as_mmdet(monkeypatch):
    tool = _test_tool()
    monkeypatch.setattr('sys.argv', ['test.py', 'c.py', 'c.pth'])
    assert tool.parse_args().wait_time == 2


def test_enable_drawing_without_show_keeps_the_hook_quiet():
    tool = _test_tool()
    cfg = Config.fromfile(osp.join(ROOT, DET))
    cfg.work_dir = '/tmp/x'
    tool.enable_drawing(cfg, show=False, show_dir='vis', wait_time=5)
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.test_out_dir == 'vis'
    assert hook.get('show', False) is False and 'wait_time' not in hook


def test_check_display():
    tool = _test_tool()
    with pytest.raises(Exception, match='needs a display'):
        tool.check_display({}, 'linux')
    tool.check_display({'DISPLAY': ':1'}, 'linux')
    tool.check_display({'WAYLAND_DISPLAY': 'wayland-0'}, 'linux')
    tool.check_display({}, 'darwin')  # macOS / Windows always have a window system
