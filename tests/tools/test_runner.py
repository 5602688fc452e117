"""tools/_runner.py (shared by run_demo.py and the benchmarks) and the benchmarks'
shared Markdown helpers: live progress from a fake tool, the log tail of a failing
one, the short-schedule options, where a run's outputs are read from."""
import importlib.util
import json
import os.path as osp
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(name: str, path: str):
    """Import a tools/ module by path, with its folder on sys.path (as when run)."""
    folder = osp.dirname(osp.join(ROOT, path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load('_runner', 'tools/_runner.py')

TRAIN = ('11/30 05:09:22 - mmengine - INFO - Iter(train) [ 20/300]  lr: 3.9388e-04  '
         'eta: 0:26:47  time: 5.7407  data_time: 0.0199  grad_norm: 8.7230  '
         'loss: 1.4332  loss_rpn_cls: 0.4845  loss_cls: 0.7798  acc: 92.2852\n')
VAL_STEP = ('11/30 04:36:40 - mmengine - INFO - Iter(val) [ 5/13]    eta: 0:00:01  '
            'time: 0.1272  data_time: 0.0100  memory: 812\n')
TEST_END = ('11/30 04:36:50 - mmengine - INFO - Iter(test) [13/13]    aAcc: 91.7000  '
            'mIoU: 54.5000  bIoU@3px: 40.7800  data_time: 0.0991  time: 0.2106\n')
EPOCH = ('11/30 04:36:50 - mmengine - INFO - Epoch(train)  [2][ 40/100]  '
         'lr: 1.0e-03  eta: 0:03:10  time: 0.5  loss: 0.75\n')


def test_progress_line_keeps_iteration_eta_loss_and_final_metrics():
    assert runner.progress_line(TRAIN) == \
        'Iter(train) [20/300]  eta 0:26:47  s/it 5.7407  loss 1.4332'
    assert runner.progress_line(EPOCH) == \
        'Epoch(train) [2][40/100]  eta 0:03:10  s/it 0.5  loss 0.75'
    assert runner.progress_line(VAL_STEP) == 'Iter(val) [5/13]  eta 0:00:01'
    assert runner.progress_line(TEST_END) == \
        'Iter(test) [13/13]  aAcc 91.7000  mIoU 54.5000  bIoU@3px 40.7800'
    for other in ('11/30 05:09:22 - mmengine - INFO - Checkpoints will be saved to x\n',
                  'Traceback (most recent call last):\n', 'loss: 1.0 eta: 0:00:01\n'):
        assert runner.progress_line(other) is None


class _Console:
    """A stdout stand-in that, at the first line it gets, creates ``release``: the
    fake tool waits for that file, so it only exits if lines arrive while it runs."""

    def __init__(self, release: Path) -> None:
        self.release, self.text = release, ''

    def write(self, text: str) -> None:
        self.text += text
        self.release.touch()

    def flush(self) -> None:
        pass


def _fake_tool(tmp_path: Path, body: str) -> str:
    script = tmp_path / 'fake_tool.py'
    script.write_text(textwrap.dedent(body))
    return str(script)


def test_progress_reaches_the_console_while_the_tool_runs(tmp_path):
    release = tmp_path / 'release'
    tool = _fake_tool(tmp_path, f'''
        import os, sys, time
        print("loading the config")  # not a progress line: log only
        print({TRAIN!r}, end="")
        for _ in range(200):  # wait until the parent has shown the line
            if os.path.exists({str(release)!r}):
                break
            time.sleep(0.05)
        else:
            sys.exit(3)  # the line was held back: no live progress
        print({TEST_END!r}, end="", file=sys.stderr)
    ''')
    console = _Console(release)
    log = tmp_path / 'train_stdout.log'
    runner.run_tool([tool], str(log), out=console)
    assert console.text.splitlines() == [
        '    Iter(train) [20/300]  eta 0:26:47  s/it 5.7407  loss 1.4332',
        '    Iter(test) [13/13]  aAcc 91.7000  mIoU 54.5000  bIoU@3px 40.7800']
    assert log.read_text() == 'loading the config\n' + TRAIN + TEST_END


def test_failing_tool_exits_with_the_log_tail(tmp_path, capsys):
    tool = _fake_tool(tmp_path, '''
        import sys
        for i in range(40):
            print(f"line {i}")
        sys.exit(3)
    ''')
    log = tmp_path / 'test_stdout.log'
    with pytest.raises(SystemExit) as info:
        runner.run_tool([tool, '--flag'], str(log), tail_lines=5)
    message = str(info.value.code)
    assert message.startswith(f'failed (exit code 3): {tool} --flag\n')
    assert 'line 35\nline 36\nline 37\nline 38\nline 39\n' in message
    assert 'line 34' not in message
    assert message.endswith(f'(full log: {log})')
    assert len(log.read_text().splitlines()) == 40
    assert capsys.readouterr().out == ''  # no progress lines, nothing echoed


def test_echo_off_prints_nothing(tmp_path, capsys):
    tool = _fake_tool(tmp_path, f'print({TRAIN!r}, end="")')
    runner.run_tool([tool], str(tmp_path / 'log'), echo=False)
    assert capsys.readouterr().out == ''


def test_short_schedule():
    assert runner.short_schedule(200) == [
        'train_cfg.max_iters=200', 'train_cfg.val_interval=200',
        'default_hooks.checkpoint.interval=200', 'param_scheduler.1.end=200']
    assert runner.short_schedule(2, warmup=1) == [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'param_scheduler.0.end=1',
        'param_scheduler.1.begin=1', 'param_scheduler.1.end=2']
    # the main schedule must end after the warm-up (mmengine needs end > begin)
    assert runner.short_schedule(1, warmup=1)[-1] == 'param_scheduler.1.end=2'


def test_bench_pkd_schedule_scales_the_50_iteration_warmup():
    bench = _load('bench_pkd', 'tools/benchmarks/bench_pkd.py')
    assert bench.schedule_options(None) == []
    assert bench.schedule_options(400)[3:] == [
        'param_scheduler.0.end=50', 'param_scheduler.1.begin=50',
        'param_scheduler.1.end=400']
    assert bench.schedule_options(8)[3:] == [
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        'param_scheduler.1.end=8']


def test_run_outputs_are_read_from_the_newest_run(tmp_path):
    import os
    import time
    work = tmp_path / 'work'
    for i, stamp in enumerate(('20240101_000000', '20240101_000100')):
        (work / stamp / 'vis_data').mkdir(parents=True)
        (work / stamp / f'{stamp}.json').write_text(json.dumps({'mIoU': i}))
        (work / stamp / 'vis_data' / 'scalars.json').write_text(
            json.dumps({'loss': 1.0 + i, 'step': 10}) + '\n\n'
            + json.dumps({'mIoU': i, 'step': 10}) + '\n')
        when = time.time() - 100 + 10 * i  # the second run is the newer one
        os.utime(work / stamp / f'{stamp}.json', (when, when))
        os.utime(work / stamp / 'vis_data' / 'scalars.json', (when, when))
    (work / 'last_checkpoint').write_text(f'{work}/iter_10.pth\n')
    path, metrics = runner.read_test_metrics(str(work))
    assert metrics == {'mIoU': 1} and path.endswith('20240101_000100.json')
    assert runner.logged_scalars(str(work)) == [{'loss': 2.0, 'step': 10},
                                               {'mIoU': 1, 'step': 10}]
    assert runner.last_checkpoint(str(work)) == f'{work}/iter_10.pth'
    assert runner.logged_scalars(str(tmp_path)) == []
    with pytest.raises(SystemExit, match='no test metrics json'):
        runner.read_test_metrics(str(tmp_path))


def test_bench_report_mean_std_and_table():
    report = _load('bench_report', 'tools/benchmarks/bench_report.py')
    assert report.mean_std([1.0, 2.0, 3.0], digits=2) == '2.00 ± 1.00'
    assert report.mean_std([0.5]) == '0.500 ± -'  # one value: no std
    assert report.mean_std([0.1, 0.3], signed=True) == '+0.200 ± 0.141'
    assert report.table(['a', 'b'], [[1, 'x'], [2, 'y']]) == [
        '| a | b |', '|---|---|', '| 1 | x |', '| 2 | y |']


def test_train_demo_options_and_final_validation_record(tmp_path, monkeypatch):
    demo_runs = _load('demo_runs', 'tools/benchmarks/demo_runs.py')
    calls = []
    monkeypatch.setattr(demo_runs, 'run_tool', lambda args, log: calls.append(args))
    monkeypatch.setattr(demo_runs, 'logged_scalars', lambda work_dir: [
        {'loss': 1.0, 'lr': 0.1, 'step': 10}, {'mIoU': 40.0, 'step': 0},
        {'loss': 0.5, 'lr': 0.1, 'step': 20}, {'mIoU': 50.0, 'step': 0}])
    config = 'configs/demo/seg_bilinear_demo.py'  # warm-up: 30 iterations
    record = demo_runs.train_demo(config, 3, 200, str(tmp_path), ['a.b=1'])
    assert record == {'mIoU': 50.0, 'step': 0}  # the last validation
    assert calls[-1] == ['tools/train.py', config, '--work-dir', str(tmp_path),
                         '--cfg-options', 'randomness.seed=3',
                         *runner.short_schedule(200), 'a.b=1']  # warm-up kept
    demo_runs.train_demo(config, 0, 20, str(tmp_path))  # shorter than the warm-up
    assert calls[-1][-3:] == ['param_scheduler.0.end=5', 'param_scheduler.1.begin=5',
                              'param_scheduler.1.end=20']
    monkeypatch.setattr(demo_runs, 'logged_scalars', lambda work_dir: [
        {'loss': 1.0, 'lr': 0.1, 'step': 10}])
    with pytest.raises(SystemExit, match='no validation metrics'):
        demo_runs.train_demo(config, 0, 200, str(tmp_path))
