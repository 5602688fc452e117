"""Run the user-facing tools the way a user does, from the repo root."""
import os
import os.path as osp
import subprocess
import sys
from typing import List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args: List[str], timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``args`` (a tools/ script and its options) from the repo root."""
    full_env = dict(os.environ, **env)
    cmd = [sys.executable, *args] if args[0].endswith('.py') else args
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
