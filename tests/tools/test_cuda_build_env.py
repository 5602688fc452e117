"""The flags tools/install.sh builds mmcv and LaU with, for each torch/nvcc/GPU case."""
import importlib.util
import os
import subprocess
import sys

import pytest

from tests.tool_runner import ROOT

_spec = importlib.util.spec_from_file_location(
    'cuda_build_env', os.path.join(ROOT, 'tools', 'cuda_build_env.py'))
cbe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cbe)

NVCC = '/opt/cuda-13.0/bin/nvcc'


def test_cpu_torch_sets_nothing():
    result = cbe.plan(None, NVCC, '13.0', [], {})
    assert not result.cuda and result.env == {}


def test_cpu_torch_with_force_cuda_is_an_error():
    with pytest.raises(cbe.BuildEnvError, match='CPU build'):
        cbe.plan(None, None, None, [], {'FORCE_CUDA': '1'})


def test_cuda_torch_and_gpu_build_for_that_gpu():
    result = cbe.plan('13.0', NVCC, '13.0', [(9, 0), (9, 0)], {})
    assert result.cuda
    assert result.env == {'FORCE_CUDA': '1', 'MMCV_WITH_OPS': '1',
                          'CUDA_HOME': '/opt/cuda-13.0', 'TORCH_CUDA_ARCH_LIST': '9.0'}


def test_two_gpu_kinds_are_both_built_sorted():
    result = cbe.plan('12.4', NVCC, '12.6', [(8, 6), (7, 5), (8, 6)], {})
    assert result.env['TORCH_CUDA_ARCH_LIST'] == '7.5;8.6'


def test_user_arch_list_wins():
    result = cbe.plan('13.0', NVCC, '13.0', [(9, 0)], {'TORCH_CUDA_ARCH_LIST': '8.0+PTX'})
    assert result.env['TORCH_CUDA_ARCH_LIST'] == '8.0+PTX'


@pytest.mark.parametrize('nvcc,expected', [
    ('13.0', '7.5;8.0;8.6;8.9;9.0;10.0;12.0'),
    ('12.8', '7.0;7.5;8.0;8.6;8.9;9.0;10.0;12.0'),
    ('12.1', '7.0;7.5;8.0;8.6;8.9;9.0'),
])
def test_no_visible_gpu_builds_what_nvcc_supports(nvcc, expected):
    result = cbe.plan(f'{nvcc[:2]}.0', NVCC, nvcc, [], {})
    assert result.env['FORCE_CUDA'] == '1'  # a login node without GPU still gets CUDA ops
    assert result.env['TORCH_CUDA_ARCH_LIST'] == expected


def test_cuda_torch_without_nvcc_is_an_error_unless_cpu_ops_are_wanted():
    with pytest.raises(cbe.BuildEnvError, match='no nvcc was found.*CUDA_HOME'):
        cbe.plan('13.0', None, None, [(9, 0)], {})
    result = cbe.plan('13.0', None, None, [(9, 0)], {'MMEXT_CPU_OPS': '1'})
    assert not result.cuda and result.env == {}


def test_major_version_mismatch_is_an_error():
    with pytest.raises(cbe.BuildEnvError, match='major version'):
        cbe.plan('12.8', NVCC, '13.0', [(9, 0)], {})


def test_gpu_older_than_nvcc_supports_is_an_error():
    with pytest.raises(cbe.BuildEnvError, match='sm_70'):
        cbe.plan('13.0', NVCC, '13.0', [(7, 0)], {})


def test_finds_nvcc_under_cuda_home_and_reads_its_release(tmp_path):
    # A stand-in nvcc printing what nvcc 13.0 prints (no toolkit needed for the test).
    nvcc = tmp_path / 'cuda' / 'bin' / 'nvcc'
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release 13.0, V13.0.88"\n')
    nvcc.chmod(0o755)
    assert cbe.find_nvcc({'CUDA_HOME': str(tmp_path / 'cuda')}) == (str(nvcc), '13.0')
    assert cbe.find_nvcc({'CUDA_HOME': str(tmp_path / 'none')}) == (None, None)


def test_cli_prints_shell_exports_for_this_torch():
    proc = subprocess.run([sys.executable, 'tools/cuda_build_env.py'], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    import torch
    expected = '1' if torch.version.cuda else '0'
    assert proc.stdout.strip().splitlines()[-1] == f'export MMEXT_BUILD_CUDA={expected}'
