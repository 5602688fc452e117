#!/usr/bin/env bash
# Create a venv with one OpenMMLab stack and mmext (editable) in it. `make install` runs it.
#   STACK=upstream (default)  OpenMMLab's last releases: mmcv 2.1.0, mmdet 3.3, mmseg 1.2,
#                             numpy 1                                       -> .venv
#   STACK=onedl               the maintained OneDL forks: onedl-mmcv 2.3, mmdet 3.5,
#                             mmseg 1.4, numpy 2                            -> .venv-onedl
# mmcv is built from source when pip has no wheel for it (7 min on an idle 2-core VM,
# up to 17 min on a busy one; then pip's wheel cache makes it seconds). On a CUDA
# machine (a CUDA torch in the venv and nvcc) it is built with its CUDA ops;
# tools/cuda_build_env.py decides the flags.
# Idempotent: a second run checks a stamp and the imports, and returns in seconds.
#   PYTHON=python3.11 tools/install.sh       # choose the interpreter
#   FORCE=1 tools/install.sh                 # redo every step
#   TORCH_CUDA_ARCH_LIST=9.0 tools/install.sh  # CUDA: build for these GPUs only
set -euo pipefail
cd "$(dirname "$0")/.."
STACK=${STACK:-upstream}
case "$STACK" in
  upstream) VENV=${VENV:-.venv}; MMCV="mmcv==2.1.0" ;;
  onedl) VENV=${VENV:-.venv-onedl}; MMCV="onedl-mmcv==2.3.6" ;;
  *) echo "mmext: error: STACK must be 'upstream' or 'onedl', not '$STACK'" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
STAMP="$VENV/.mmext-install-stamp"
want=$( (cat pyproject.toml tools/install.sh tools/cuda_build_env.py; echo "$STACK") \
        | sha256sum | cut -d' ' -f1)
say() { echo "[install:$STACK] $*"; }

if [ -z "${FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$VENV/bin/python" -c "import mmext, mmcv.ops, mmdet, mmseg, onnxruntime" 2>/dev/null; then
  say "$VENV is up to date"; exit 0
fi
start=$SECONDS
[ -x "$VENV/bin/python" ] || { say "creating $VENV with $($PY --version)"; "$PY" -m venv "$VENV"; }
# pip, minus the local index's "Location ... is ignored" noise (exit status kept).
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

# setuptools 80.10.2: still ships pkg_resources (removed in 82; the mmcv build and
# mmengine import it) and satisfies torch's setuptools>=77.
pip install -q "setuptools==80.10.2" wheel ninja
# Keep whatever torch is already there (e.g. a CUDA build); otherwise the CPU 2.13.0 wheel.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  say "torch 2.13.0"
  pip install -q "torch==2.13.0"
fi
if [ "$STACK" = upstream ]; then
  pip install -q "numpy>=1.24,<2" "opencv-python>=4.7,<4.11"
else
  pip install -q "numpy>=2,<3"
fi

# CPU or CUDA ops: FORCE_CUDA, TORCH_CUDA_ARCH_LIST, CUDA_HOME, MMEXT_BUILD_CUDA.
exports=$("$VENV/bin/python" tools/cuda_build_env.py) || exit 2
eval "$exports"

# The pip output of a source build goes to a log; the console gets a line per tenth of
# the compiled files (ninja's "[k/n]" counter) and the time so far.
build_progress() {
  local log=$1 shown=-1 t0=$SECONDS line k n
  : > "$log"
  while IFS= read -r line; do
    printf '%s\n' "$line" >> "$log"
    if [[ $line =~ \[([0-9]+)/([0-9]+)\] ]]; then
      k=${BASH_REMATCH[1]}; n=${BASH_REMATCH[2]}
      if (( n > 0 && k * 10 / n != shown )); then
        shown=$(( k * 10 / n )); say "  mmcv: $k/$n files compiled, $(( SECONDS - t0 )) s"
      fi
    fi
  done
}
mmcv_ok() {
  "$VENV/bin/python" - "$MMEXT_BUILD_CUDA" <<'EOF' 2>/dev/null
import sys
from mmcv.ops import ModulatedDeformConv2d, RoIAlign, get_compiling_cuda_version, nms  # noqa
cuda_wanted = sys.argv[1] == '1'
sys.exit(0 if not cuda_wanted or get_compiling_cuda_version() != 'not available' else 1)
EOF
}
if ! mmcv_ok; then
  log="$VENV/mmcv-build.log"
  cache=()
  # A wheel cached by an earlier CPU build would come back without the CUDA ops.
  [ "$MMEXT_BUILD_CUDA" = 1 ] && cache=(--no-cache-dir --force-reinstall --no-deps)
  say "building $MMCV with its $( [ "$MMEXT_BUILD_CUDA" = 1 ] && echo CUDA+CPU || echo CPU ) ops" \
      "(first time 7-17 min on 2 cores, then cached; full log: $log)"
  t=$SECONDS
  if ! MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$VENV/bin/python" -m pip \
       --disable-pip-version-check install -v --no-build-isolation "${cache[@]}" "$MMCV" \
       2>&1 | build_progress "$log"; then
    say "the mmcv build failed; the last lines of $log:"; tail -n 30 "$log"; exit 1
  fi
  mmcv_ok || { say "mmcv installed but its ops do not import; see $log"; exit 1; }
  say "$MMCV ready in $(( SECONDS - t )) s"
fi

say "mmdet, mmseg, mmext and the ONNX deploy tools (onnx, onnxruntime, onnxscript)"
pip install -q --no-build-isolation -e ".[tests,deploy,$STACK]"
if [ "$STACK" = onedl ]; then
  # panopticapi (mmdet's panoptic metric) pins numpy<2 in its metadata only.
  pip install -q --no-deps "panopticapi-lite>=0.1"
fi
# Earlier versions wrote the 'mmext::' start-up hook by default; it is opt-in now
# (python -m mmext config-scope enable).
# (run as a script: standard library only, so it does not import mmdet/mmseg)
"$VENV/bin/python" mmext/config_scope.py disable >/dev/null

# Build the LaU extension now rather than at the first use (CUDA kernels too on a GPU machine).
t=$SECONDS
say "compiling the LaU extension"
"$VENV/bin/python" -m mmext.ops.build | sed "s/^/[install:$STACK]   /"
say "LaU extension ready in $(( SECONDS - t )) s"
echo "$want" > "$STAMP"
say "done in $(( SECONDS - start )) s"
