"""Build (or rebuild) the LaU extension and report what was built.

Usage: ``python -m mmext.ops.build [--rebuild] [--verbose]``. Exit status 1 if
the extension could not be built. Honours MMEXT_EXT_DIR / MMEXT_LAU_DISABLE.
"""
from __future__ import annotations

import argparse
import sys

import torch

from ._extension import default_build_dir, extension_state, load_extension


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmext.ops.build", description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="wipe the cache dir and rebuild")
    parser.add_argument("--verbose", action="store_true", help="show compiler commands")
    args = parser.parse_args(argv)
    ok = load_extension(rebuild=args.rebuild or None, verbose=args.verbose or None)
    st = extension_state()
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, device available: "
          f"{torch.cuda.is_available()})")
    print(f"build dir: {st.build_dir or default_build_dir(torch.cuda.is_available())}")
    print(f"loaded: {ok}; kernels: CPU={ok}, CUDA={st.cuda}; build/load time {st.build_seconds:.1f} s")
    for src in st.sources:
        print(f"  source: {src}")
    if st.error:
        print(f"note: {st.error}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
