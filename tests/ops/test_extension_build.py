"""The LaU loader says on stderr when it compiles, and nothing when it loads the cache."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmext.ops import _extension

REPO = Path(__file__).resolve().parents[2]
LOAD = (
    "from mmext.ops import load_extension, extension_state\n"
    "print('loaded', load_extension(), extension_state().error)\n"
)
FIRST_USE = re.compile(r"mmext: compiling the LaU C\+\+(/CUDA)? extension \(first use, ~\d+ s\) into ")
DONE = re.compile(r"mmext: LaU extension done in \d+\.\d s")


def _load_in_child(ext_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Load the extension in a fresh process whose build cache is ``ext_dir``."""
    unset = ("MMEXT_LAU_DISABLE", "MMEXT_LAU_REBUILD", "MMEXT_LAU_VERBOSE")
    child_env = {k: v for k, v in os.environ.items() if k not in unset}
    child_env.update(MMEXT_EXT_DIR=str(ext_dir), **env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", LOAD], cwd=REPO, env=child_env, capture_output=True, text=True, timeout=900
    )


def test_first_load_announces_the_compile_and_the_cached_load_is_silent(lau_ext, tmp_path):
    state = _extension.extension_state()
    if state.build_dir is None or state.error:
        pytest.skip(f"no clean build of this process to copy ({state.error or 'ops were preloaded'})")
    # A copy of this session's build without the library: the child's load is a
    # first use (ninja only relinks the up-to-date objects, so it stays quick).
    ext_dir = tmp_path / "ext"
    shutil.copytree(state.build_dir, ext_dir)
    library = ext_dir / ("mmext_lau_cuda.so" if state.cuda else "mmext_lau_cpu.so")
    library.unlink()

    first = _load_in_child(ext_dir)
    assert first.returncode == 0 and "loaded True None" in first.stdout, first.stdout + first.stderr
    assert FIRST_USE.search(first.stderr), first.stderr
    assert DONE.search(first.stderr), first.stderr
    assert library.exists()

    second = _load_in_child(ext_dir)
    assert second.returncode == 0 and "loaded True None" in second.stdout, second.stdout + second.stderr
    assert "mmext:" not in second.stderr, second.stderr


def test_disabled_extension_prints_nothing(tmp_path):
    proc = _load_in_child(tmp_path / "never_built", MMEXT_LAU_DISABLE="1")
    assert proc.returncode == 0 and "loaded False disabled" in proc.stdout, proc.stdout + proc.stderr
    assert "mmext:" not in proc.stderr, proc.stderr
    assert not (tmp_path / "never_built").exists()


def test_compile_reason_follows_file_times(tmp_path):
    lib = tmp_path / "mmext_lau_cpu.so"
    assert _extension._compile_reason(lib) == "first use"
    lib.write_bytes(b"")
    newest_source = max(p.stat().st_mtime for p in _extension._CSRC.rglob("*") if p.is_file())
    os.utime(lib, (time.time(), newest_source - 10))
    assert _extension._compile_reason(lib) == "sources changed"
    os.utime(lib, (time.time(), newest_source + 10))
    assert _extension._compile_reason(lib) is None
