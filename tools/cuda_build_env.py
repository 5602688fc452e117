"""Decide how tools/install.sh builds mmcv's and LaU's compiled ops on this machine.

    python tools/cuda_build_env.py     # prints `export NAME=value` lines for the shell

It looks at the installed torch (CPU or CUDA build, its CUDA version, the visible GPUs)
and at nvcc (``$CUDA_HOME/bin/nvcc``, else ``nvcc`` on PATH), and prints what the
build needs:

- CPU torch: nothing to set; mmcv and LaU build their CPU kernels.
- CUDA torch and an nvcc of the same major version: ``FORCE_CUDA=1`` (mmcv then builds
  its CUDA ops even where no GPU is visible, e.g. on a login node), ``CUDA_HOME``,
  and ``TORCH_CUDA_ARCH_LIST``: the visible GPUs' architectures, else a list that nvcc
  supports. A ``TORCH_CUDA_ARCH_LIST`` or ``FORCE_CUDA`` already in the environment wins.
- Anything that would give a build without the CUDA ops a CUDA torch needs (no nvcc,
  a major-version mismatch, a GPU older than nvcc supports) is an error that says
  what to install or set. ``MMEXT_CPU_OPS=1`` accepts a CPU-only build on purpose.

The decision is :func:`plan`, a pure function of those facts, so that it is tested
on machines without a GPU.
"""
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

Version = Tuple[int, int]

# Architectures each nvcc generation compiles for (CUDA 13 dropped sm_70/72;
# CUDA 12.8 added Blackwell sm_100/sm_120).
_DEFAULT_ARCHS: Sequence[Tuple[Version, str]] = (
    ((13, 0), '7.5;8.0;8.6;8.9;9.0;10.0;12.0'),
    ((12, 8), '7.0;7.5;8.0;8.6;8.9;9.0;10.0;12.0'),
    ((11, 8), '7.0;7.5;8.0;8.6;8.9;9.0'),
    ((11, 0), '7.0;7.5;8.0'),
)


class BuildEnvError(RuntimeError):
    """The machine cannot give a build with the ops this torch needs."""


@dataclass
class Plan:
    """What to export before building, and what to tell the user."""

    cuda: bool
    env: Dict[str, str] = field(default_factory=dict)
    messages: List[str] = field(default_factory=list)


def _parse_version(text: str) -> Version:
    major, minor = text.split('.')[:2]
    return int(major), int(minor)


def _oldest_arch(nvcc: Version) -> float:
    for since, archs in _DEFAULT_ARCHS:
        if nvcc >= since:
            return float(archs.split(';')[0])
    return 3.5


def default_arch_list(nvcc: Version) -> str:
    """Architectures to build for when no GPU is visible, as nvcc ``nvcc`` allows."""
    for since, archs in _DEFAULT_ARCHS:
        if nvcc >= since:
            return archs
    return '6.0;7.0'


def plan(torch_cuda: Optional[str], nvcc_path: Optional[str], nvcc_version: Optional[str],
         gpus: Sequence[Version], environ: Mapping[str, str]) -> Plan:
    """Choose the build flags.

    Args:
        torch_cuda: ``torch.version.cuda`` ("13.0"), None for a CPU torch.
        nvcc_path: nvcc found on this machine, or None.
        nvcc_version: its release ("13.0"), or None.
        gpus: compute capabilities of the visible GPUs, e.g. ``[(9, 0)]``.
        environ: the user's environment (its settings win).
    """
    cpu_ok = environ.get('MMEXT_CPU_OPS') == '1'
    if torch_cuda is None:
        if environ.get('FORCE_CUDA') == '1':
            raise BuildEnvError('FORCE_CUDA=1 but the installed torch is a CPU build: '
                                'install a CUDA torch first, or unset FORCE_CUDA.')
        return Plan(False, messages=['CPU torch: mmcv and LaU build their CPU kernels'])
    if nvcc_path is None or nvcc_version is None:
        if cpu_ok:
            return Plan(False, messages=[f'CUDA {torch_cuda} torch, no nvcc, MMEXT_CPU_OPS=1: '
                                         'building CPU-only ops'])
        raise BuildEnvError(
            f'torch is built for CUDA {torch_cuda} but no nvcc was found, so mmcv would '
            "build without its CUDA ops. Install the CUDA toolkit's nvcc "
            f'{torch_cuda.split(".")[0]}.x and set CUDA_HOME (or put nvcc on PATH); '
            'MMEXT_CPU_OPS=1 builds CPU-only ops on purpose.')
    torch_v, nvcc_v = _parse_version(torch_cuda), _parse_version(nvcc_version)
    if torch_v[0] != nvcc_v[0]:
        raise BuildEnvError(
            f'nvcc {nvcc_version} ({nvcc_path}) and torch (CUDA {torch_cuda}) differ in '
            'major version; torch refuses to build extensions with it. Point CUDA_HOME '
            f'at a CUDA {torch_v[0]}.x toolkit or install a torch built for CUDA {nvcc_v[0]}.')
    env = {'FORCE_CUDA': environ.get('FORCE_CUDA', '1'), 'MMCV_WITH_OPS': '1',
           'CUDA_HOME': os.path.dirname(os.path.dirname(os.path.abspath(nvcc_path)))}
    messages = [f'CUDA {torch_cuda} torch, nvcc {nvcc_version} at {nvcc_path}']
    if environ.get('TORCH_CUDA_ARCH_LIST'):
        env['TORCH_CUDA_ARCH_LIST'] = environ['TORCH_CUDA_ARCH_LIST']
        messages.append(f'architectures from your TORCH_CUDA_ARCH_LIST: {env["TORCH_CUDA_ARCH_LIST"]}')
    elif gpus:
        too_old = [g for g in gpus if g[0] + g[1] / 10 < _oldest_arch(nvcc_v)]
        if too_old:
            raise BuildEnvError(
                f'GPU sm_{too_old[0][0]}{too_old[0][1]} is older than nvcc {nvcc_version} '
                'supports; use an older CUDA toolkit and torch.')
        env['TORCH_CUDA_ARCH_LIST'] = ';'.join(f'{a}.{b}' for a, b in sorted(set(gpus)))
        messages.append(f'architectures of the visible GPUs: {env["TORCH_CUDA_ARCH_LIST"]}')
    else:
        env['TORCH_CUDA_ARCH_LIST'] = default_arch_list(nvcc_v)
        messages.append('no GPU visible: building for every architecture nvcc '
                        f'{nvcc_version} supports ({env["TORCH_CUDA_ARCH_LIST"]}); set '
                        'TORCH_CUDA_ARCH_LIST to build for fewer (faster)')
    return Plan(True, env, messages)


def find_nvcc(environ: Mapping[str, str]) -> Tuple[Optional[str], Optional[str]]:
    """Path and release of nvcc: ``$CUDA_HOME/bin/nvcc``, else the one on PATH."""
    home = environ.get('CUDA_HOME') or environ.get('CUDA_PATH')
    path = os.path.join(home, 'bin', 'nvcc') if home else shutil.which('nvcc')
    if not path or not os.path.exists(path):
        return None, None
    out = subprocess.run([path, '--version'], capture_output=True, text=True).stdout
    match = re.search(r'release (\d+\.\d+)', out)
    return path, match.group(1) if match else None


def main() -> int:
    import torch
    gpus = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())] \
        if torch.version.cuda and torch.cuda.is_available() else []
    nvcc_path, nvcc_version = find_nvcc(os.environ)
    try:
        result = plan(torch.version.cuda, nvcc_path, nvcc_version, gpus, os.environ)
    except BuildEnvError as exc:
        print(f'mmext: error: {exc}', file=sys.stderr)
        return 2
    for message in result.messages:
        print(f'[install] {message}', file=sys.stderr)
    for name, value in result.env.items():
        print(f"export {name}='{value}'")
    print(f"export MMEXT_BUILD_CUDA={int(result.cuda)}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
