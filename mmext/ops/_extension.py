"""Loader of the compiled LaU extension (cached JIT build).

The C++/CUDA sources under ``mmext/ops/csrc`` are compiled on first use with
``torch.utils.cpp_extension.load(..., is_python_module=False)``; loading the
shared library runs its ``TORCH_LIBRARY`` blocks, which define
``torch.ops.mmext.lau_forward`` / ``lau_backward`` (CUDA builds also define the
test/benchmark-only ``torch.ops.mmext_testing.lau_forward_impl`` /
``lau_backward_impl``). The fake (meta) kernels and the autograd formula are
then registered here, once, with ``torch.library``.

Build cache: ``$MMEXT_EXT_DIR`` or ``~/.cache/mmext/lau_<torch version>_<cpu|cuda>``.
torch's JIT build hashes sources and flags, so edited sources rebuild by
themselves and an unchanged cache loads in about a second. A compile (first
use, or edited sources) is announced on stderr with its expected and its
measured duration; loading from the cache prints nothing.

Environment variables:
    MMEXT_EXT_DIR=path    build/cache directory.
    MMEXT_LAU_REBUILD=1   wipe the cache directory and rebuild (once per process).
    MMEXT_LAU_DISABLE=1   never build/load; use the pure-PyTorch reference.
    MMEXT_LAU_VERBOSE=1   print the compiler commands.
    MMEXT_LAU_EXTRA_LDFLAGS="..."  extra linker flags (space-separated).
    MAX_JOBS=n            parallel compile jobs (torch's own variable).

Only ``torch`` is imported, so this works on machines with torch + nvcc alone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import torch

_CSRC = Path(__file__).resolve().parent / "csrc"
_LOCK = threading.Lock()


@dataclass
class ExtensionState:
    """What the loader found. ``error`` holds why the extension is unavailable."""

    attempted: bool = False
    loaded: bool = False
    cuda: bool = False  # CUDA kernels compiled into the loaded library
    disabled: bool = False  # MMEXT_LAU_DISABLE=1
    error: Optional[str] = None
    build_dir: Optional[str] = None
    build_seconds: float = 0.0
    sources: List[str] = field(default_factory=list)


# Typical compile time of a fresh build, for the first-use message: CPU
# sources 8-30 s on a 2-core x86_64 VM (ninja log of the cache dir); with the
# CUDA source 27-35 s on a 16-core H200 machine (docs/benchmarks_lau_op.md),
# more on fewer cores.
_TYPICAL_BUILD_S = {False: 30, True: 60}

_STATE = ExtensionState()
_REGISTERED = False  # fake kernels + autograd registered (must happen once per process)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _cuda_wanted() -> Tuple[bool, str]:
    """CUDA kernels are built when a GPU is visible and nvcc can be found."""
    if torch.version.cuda is None:
        return False, "torch is a CPU-only build"
    if not torch.cuda.is_available():
        return False, "no CUDA device visible"
    from torch.utils.cpp_extension import CUDA_HOME

    if CUDA_HOME is None or not (Path(CUDA_HOME) / "bin" / "nvcc").exists():
        return False, "nvcc not found (set CUDA_HOME)"
    return True, ""


def default_build_dir(with_cuda: bool) -> Path:
    """``$MMEXT_EXT_DIR`` or ``~/.cache/mmext/lau_<torch version>_<cpu|cuda>``."""
    env = os.environ.get("MMEXT_EXT_DIR")
    if env:
        return Path(env).expanduser()
    tag = torch.__version__.replace("+", "_")
    return Path.home() / ".cache" / "mmext" / f"lau_{tag}_{'cuda' if with_cuda else 'cpu'}"


def _libstdcxx_ldflags() -> List[str]:
    """Link libstdc++ dynamically where the toolchain would link it statically.

    Without the ``libstdc++.so`` development link, ``-lstdc++`` falls back to
    ``libstdc++.a``: the extension then carries its own copy of libstdc++ next
    to the process's shared one. Seen on a GPU machine (Ubuntu 24.04 g++ 13.3,
    torch 2.11): formatting a number into a TORCH_CHECK message (iostreams,
    locale facets of two different copies) segfaulted instead of raising.
    Naming the shared runtime library explicitly links it dynamically.
    """
    cxx = os.environ.get("CXX", "c++")

    def find(name: str) -> Optional[str]:
        try:
            out = subprocess.run(
                [cxx, f"-print-file-name={name}"], capture_output=True, text=True, timeout=60
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        return out if os.path.isabs(out) and os.path.exists(out) else None

    if find("libstdc++.so") is not None:
        return []  # -lstdc++ resolves to the shared library
    runtime = find("libstdc++.so.6")
    return [runtime] if runtime else []


def _build_one(with_cuda: bool, rebuild: bool, verbose: bool) -> None:
    from torch.utils.cpp_extension import load

    build_dir = default_build_dir(with_cuda)
    if rebuild and build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [str(_CSRC / "lau.cpp"), str(_CSRC / "cpu" / "lau_cpu.cpp")]
    if with_cuda:
        sources.append(str(_CSRC / "cuda" / "lau_cuda.cu"))
    _STATE.build_dir = str(build_dir)
    _STATE.sources = sources
    name = "mmext_lau_cuda" if with_cuda else "mmext_lau_cpu"
    why = "rebuild requested" if rebuild else _compile_reason(build_dir / f"{name}.so")
    if why:
        what = "C++/CUDA" if with_cuda else "C++"
        _note(f"compiling the LaU {what} extension ({why}, ~{_TYPICAL_BUILD_S[with_cuda]} s) "
              f"into {build_dir} ...")
    start = time.perf_counter()
    ok = False
    try:
        load(
            name=name,
            sources=sources,
            extra_include_paths=[str(_CSRC)],
            extra_cflags=["-O3"],
            extra_cuda_cflags=["-O3", "--expt-relaxed-constexpr"] if with_cuda else None,
            extra_ldflags=_libstdcxx_ldflags() + os.environ.get("MMEXT_LAU_EXTRA_LDFLAGS", "").split(),
            build_directory=str(build_dir),
            is_python_module=False,  # load as a plain library: TORCH_LIBRARY registers the ops
            verbose=verbose,
        )
        ok = True
    finally:
        _STATE.build_seconds = time.perf_counter() - start
        if why:
            _note(f"LaU extension done in {_STATE.build_seconds:.1f} s" if ok else
                  f"LaU extension compile failed after {_STATE.build_seconds:.1f} s")


def _compile_reason(library: Path) -> Optional[str]:
    """Why ``load`` is about to compile, or None when it will load the cache.

    Decided like ninja decides: by file times (the library missing, or a source
    or header under csrc/ newer than it). A change of compiler flags alone is
    not seen here; ninja then rebuilds without this note.
    """
    if not library.exists():
        return "first use"
    built = library.stat().st_mtime
    if any(p.stat().st_mtime > built for p in _CSRC.rglob("*") if p.is_file()):
        return "sources changed"
    return None


def _note(message: str) -> None:
    """One progress line on stderr (a compile takes long enough to need saying)."""
    print(f"mmext: {message}", file=sys.stderr, flush=True)


def _build(rebuild: bool, verbose: bool) -> None:
    """Build CPU(+CUDA) kernels; if the CUDA build fails, fall back to CPU only."""
    with_cuda, why_not = _cuda_wanted()
    notes = [] if with_cuda or not torch.cuda.is_available() else [f"CUDA kernels not built: {why_not}"]
    if with_cuda:
        try:
            _build_one(True, rebuild, verbose)
            return
        except Exception as exc:  # keep the CPU kernels usable
            notes.append(f"CUDA build failed ({type(exc).__name__}: {exc}); built CPU kernels only")
    _build_one(False, rebuild, verbose)
    if notes:
        _STATE.error = "; ".join(notes)


def load_extension(rebuild: Optional[bool] = None, verbose: Optional[bool] = None) -> bool:
    """Build (if needed) and load the extension once per process.

    Returns True when ``torch.ops.mmext.lau_forward`` has compiled kernels.
    Never raises for build failures: they are recorded in :func:`extension_state`.
    """
    if _STATE.attempted and not rebuild:
        return _STATE.loaded
    with _LOCK:
        if _STATE.attempted and not rebuild:
            return _STATE.loaded
        _STATE.attempted = True
        if _env_flag("MMEXT_LAU_DISABLE"):
            _STATE.disabled = True
            _STATE.error = "disabled by MMEXT_LAU_DISABLE=1"
            return False
        rebuild = _env_flag("MMEXT_LAU_REBUILD") if rebuild is None else rebuild
        verbose = _env_flag("MMEXT_LAU_VERBOSE") if verbose is None else verbose
        try:
            if not _ops_defined():
                _build(rebuild, verbose)
            _register_python_side()
            _STATE.loaded = True
            # Ask the dispatcher rather than trusting the build flags.
            _STATE.cuda = torch._C._dispatch_has_kernel_for_dispatch_key("mmext::lau_forward", "CUDA")
        except Exception as exc:  # build tools missing, compiler error, ABI mismatch...
            _STATE.loaded = False
            _STATE.error = f"{type(exc).__name__}: {exc}"
        return _STATE.loaded


def _ops_defined() -> bool:
    """True if another copy of the library already registered the ops."""
    try:
        torch.ops.mmext.lau_forward  # noqa: B018  (attribute lookup resolves the op)
        return True
    except (AttributeError, RuntimeError):
        return False


def extension_state() -> ExtensionState:
    """The loader's state (does not trigger a build)."""
    return _STATE


def has_kernel_for(device: torch.device) -> bool:
    """Whether the loaded extension has a kernel for tensors on ``device``."""
    if not _STATE.loaded:
        return False
    if device.type in ("cpu", "meta"):  # meta: served by the registered fake kernel
        return True
    if device.type == "cuda":
        return _STATE.cuda
    return False


def _register_python_side() -> None:
    """Fake kernels (for FakeTensor / torch.compile / export) and autograd."""
    global _REGISTERED
    if _REGISTERED:
        return

    @torch.library.register_fake("mmext::lau_forward")
    def _lau_forward_fake(x: torch.Tensor, offsets: torch.Tensor, k_h: int, k_w: int) -> torch.Tensor:
        torch._check(x.dim() == 4 and offsets.dim() == 4, lambda: "lau_forward: 4-D inputs expected")
        torch._check(offsets.shape[2] == k_h * x.shape[2] and offsets.shape[3] == k_w * x.shape[3])
        return x.new_empty((x.shape[0], x.shape[1], k_h * x.shape[2], k_w * x.shape[3]))

    @torch.library.register_fake("mmext::lau_backward")
    def _lau_backward_fake(
        grad_out: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, k_h: int, k_w: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return x.new_empty(x.shape), offsets.new_empty(offsets.shape)

    def _setup_context(ctx, inputs, output) -> None:
        x, offsets, k_h, k_w = inputs
        ctx.save_for_backward(x, offsets)
        ctx.k = (k_h, k_w)

    def _backward(ctx, grad_out: torch.Tensor):
        x, offsets = ctx.saved_tensors
        grad_x, grad_off = torch.ops.mmext.lau_backward(grad_out, x, offsets, *ctx.k)
        need_x, need_off = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        return (grad_x if need_x else None, grad_off if need_off else None, None, None)

    torch.library.register_autograd("mmext::lau_forward", _backward, setup_context=_setup_context)
    _REGISTERED = True


def _reset_for_tests() -> None:
    """Forget the load attempt (the loaded library and registrations stay)."""
    _STATE.attempted = False
    _STATE.loaded = False
    _STATE.disabled = False
    _STATE.error = None
