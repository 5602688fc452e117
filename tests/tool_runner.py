"""Run the user-facing tools the way a user does, from the repo root, or import one
to test its functions."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args: List[str], timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``args`` (a tools/ script and its options) from the repo root."""
    # The launch scripts (dist_*.sh, slurm_*.sh) run the tools with $PYTHON: the
    # interpreter of this test run, i.e. the stack under test.
    full_env = dict(os.environ, PYTHON=sys.executable, **env)
    cmd = [sys.executable, *args] if args[0].endswith('.py') else args
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def load_tool(rel_path: str) -> ModuleType:
    """Import the script ``rel_path`` (e.g. 'tools/convert_distill_checkpoint.py'; tools/
    is not a package) by its path, as a module named after the file."""
    name = osp.splitext(osp.basename(rel_path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
