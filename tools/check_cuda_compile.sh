#!/usr/bin/env bash
# Compile-only check of the LaU CUDA kernel (mmext/ops/csrc/cuda/lau_cuda.cu).
#
# Needs nvcc and CUDA-enabled torch headers; runs no GPU code. Exits 0 with
# "skipped: ..." when nvcc (or CUDA torch headers) are missing, 0 with "ok" on
# success and non-zero, with the compiler output, on a compile error.
#
# Headers: the installed torch's headers when it is a CUDA build; otherwise
# only torch/include/* is unzipped from a CUDA torch wheel (MMEXT_TORCH_CUDA_WHEEL,
# default: the newest /opt/pypi-more/files/torch-*.whl) into a cache dir.
# Env: PYTHON (default python3), MMEXT_CUDA_ARCH (default 90),
#      MMEXT_CUDA_STD (default c++20: torch 2.14 headers demand it; the code is
#      also C++17 clean), MMEXT_CACHE (default ~/.cache/mmext).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=mmext/ops/csrc/cuda/lau_cuda.cu
PYTHON=${PYTHON:-python3}

NVCC=$(command -v nvcc || true)
if [[ -z "$NVCC" && -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then NVCC="$CUDA_HOME/bin/nvcc"; fi
if [[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [[ -z "$NVCC" ]]; then
  echo "skipped: nvcc not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin)"
  exit 0
fi

INC=""
# 1) installed torch, if it ships the generated CUDA config header.
TORCH_INC=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null || true)
if [[ -n "$TORCH_INC" && -f "$TORCH_INC/c10/cuda/impl/cuda_cmake_macros.h" ]]; then
  INC="$TORCH_INC"
else
  # 2) headers of a CUDA torch wheel on disk.
  WHEEL=${MMEXT_TORCH_CUDA_WHEEL:-$(ls -1 /opt/pypi-more/files/torch-*.whl 2>/dev/null | sort -V | tail -n 1 || true)}
  if [[ -z "$WHEEL" || ! -f "$WHEEL" ]]; then
    echo "skipped: nvcc found but no CUDA torch headers (installed torch is CPU-only and no wheel; set MMEXT_TORCH_CUDA_WHEEL)"
    exit 0
  fi
  CACHE="${MMEXT_CACHE:-$HOME/.cache/mmext}/torch_headers_$(basename "$WHEEL" .whl)"
  if [[ ! -f "$CACHE/torch/include/c10/cuda/impl/cuda_cmake_macros.h" ]]; then
    mkdir -p "$CACHE"
    "$PYTHON" - "$WHEEL" "$CACHE" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("torch/include/")])
PY
  fi
  INC="$CACHE/torch/include"
  if [[ ! -f "$INC/c10/cuda/impl/cuda_cmake_macros.h" ]]; then
    echo "skipped: $WHEEL is not a CUDA torch wheel (no c10/cuda/impl/cuda_cmake_macros.h)"
    exit 0
  fi
fi

ARCH=${MMEXT_CUDA_ARCH:-90}
STD=${MMEXT_CUDA_STD:-c++20}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "nvcc: $NVCC ($("$NVCC" --version | tail -n 1))"
echo "torch headers: $INC"
START=$(date +%s)
# Same defines torch.utils.cpp_extension passes, so the check sees what a real build sees.
set +e
"$NVCC" -c "$SRC" -o "$OUT/lau_cuda.o" -std="$STD" \
  -I"$INC" -I"$INC/torch/csrc/api/include" \
  -gencode "arch=compute_${ARCH},code=sm_${ARCH}" --expt-relaxed-constexpr \
  -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
  -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
  -DTORCH_EXTENSION_NAME=mmext_lau_check -Xcompiler -fPIC -O2 2>&1
RC=$?
set -e
END=$(date +%s)
if [[ $RC -ne 0 ]]; then
  echo "FAILED: nvcc could not compile $SRC (exit $RC)" >&2
  exit $RC
fi
echo "ok: compiled $SRC for sm_${ARCH} with -std=$STD in $((END - START)) s"
