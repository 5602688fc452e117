"""tools/deployment/export_onnx.py as a user runs it: a verified export, and one
``mmext: error:`` line for each kind of bad input."""
import os
import os.path as osp
import subprocess
import sys

import onnx
import pytest

from tests.tool_runner import ROOT, run_tool

TOOL = 'tools/deployment/export_onnx.py'
SEG = 'configs/demo/seg_lau_demo.py'


def _one_error_line(result, *needles):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if 'mmext: error:' in line]
    assert len(lines) == 1, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_export_and_verify_lau_segmentor(tmp_path):
    out = str(tmp_path / 'seg.onnx')
    result = run_tool([TOOL, SEG, 'none', '--out', out, '--shape', '64', '48',
                       '--verify'])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'seg_logits' in result.stdout and 'max abs diff' in result.stdout
    assert 'verify ok' in result.stdout
    model = onnx.load(out)
    assert {n.domain for n in model.graph.node} <= {'', 'ai.onnx'}
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == \
        [1, 3, 64, 48]


def _detr_config(tmp: str) -> str:
    path = osp.join(tmp, 'detr.py')
    with open(path, 'w') as f:
        f.write("_base_ = 'mmdet::detr/detr_r18_8xb2-500e_coco.py'\n")
    return path


def _bad_input_commands(tmp: str) -> dict:
    missing_ort = ('import runpy, sys; sys.modules["onnxruntime"] = None; '
                   'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")')
    return {
        'shape': [TOOL, SEG, 'none', '--out', osp.join(tmp, 'shape.onnx'),
                  '--shape', '60', '50', '--dynamic'],
        'unsupported': [TOOL, _detr_config(tmp), 'none',
                        '--out', osp.join(tmp, 'unsupported.onnx')],
        'checkpoint': [TOOL, SEG, osp.join(tmp, 'nope.pth'), '--out',
                       osp.join(tmp, 'checkpoint.onnx')],
        # onnxruntime not importable (as on a machine without the deploy extra)
        'onnxruntime': [sys.executable, '-c', missing_ort, osp.join(ROOT, TOOL), SEG,
                        'none', '--out', osp.join(tmp, 'onnxruntime.onnx'), '--verify'],
    }


@pytest.fixture(scope='module')
def bad_input_results(tmp_path_factory):
    """The bad-input runs, started together (each spends its time importing the
    OpenMMLab stack; in parallel the four take about as long as one)."""
    tmp = str(tmp_path_factory.mktemp('bad_input'))
    env = dict(os.environ, PYTHON=sys.executable)
    procs = {}
    for name, args in _bad_input_commands(tmp).items():
        cmd = [sys.executable, *args] if args[0].endswith('.py') else args
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return tmp, results


def test_shape_not_divisible(bad_input_results):
    _one_error_line(bad_input_results[1]['shape'], '--shape 60 50', 'multiples of 8')


def test_unsupported_model(bad_input_results):
    _one_error_line(bad_input_results[1]['unsupported'], 'cannot export a DETR')


def test_missing_checkpoint(bad_input_results):
    _one_error_line(bad_input_results[1]['checkpoint'], 'nope.pth', 'does not exist')


def test_missing_onnxruntime(bad_input_results):
    tmp, results = bad_input_results
    _one_error_line(results['onnxruntime'], "'onnxruntime'", 'deploy')
    assert not osp.exists(osp.join(tmp, 'onnxruntime.onnx'))  # refused before any work
