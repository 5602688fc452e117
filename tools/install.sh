#!/usr/bin/env bash
# Create .venv and install the pinned OpenMMLab stack + mmext (editable).
# Idempotent: a second run checks a stamp and the imports, and returns in seconds.
# The stamp (a hash of pyproject.toml and this script) also re-runs it after either changes.
#   PYTHON=python3.11 tools/install.sh      # choose the interpreter
#   FORCE=1 tools/install.sh                # redo every step
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.mmext-install-stamp"
want=$(cat pyproject.toml tools/install.sh | sha256sum | cut -d' ' -f1)

if [ -z "${FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$VENV/bin/python" -c "import mmext, mmcv.ops, mmdet, mmseg" 2>/dev/null; then
  echo "[install] $VENV is up to date"; exit 0
fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || { echo "[install] creating $VENV with $($PY --version)"; "$PY" -m venv "$VENV"; }
# pip, minus the local index's "Location ... is ignored" noise (exit status kept).
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

# setuptools 80.10.2: still ships pkg_resources (mmcv's build and mmengine import it)
# and satisfies torch 2.13's setuptools>=77.
pip install -q "setuptools==80.10.2" wheel ninja

# Keep whatever torch is already there (e.g. a CUDA build); otherwise the CPU 2.13.0 wheel.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[install] torch 2.13.0"
  pip install -q "torch==2.13.0"
fi
pip install -q "numpy>=1.24,<2" "opencv-python>=4.7,<4.11"

# mmcv 2.1.0 has no wheel for this torch: build it with its compiled ops (~13 min on 2 cores,
# then pip's wheel cache makes it seconds). --no-build-isolation, or it builds without ops.
if ! "$VENV/bin/python" -c "from mmcv.ops import nms, RoIAlign, ModulatedDeformConv2d" 2>/dev/null; then
  echo "[install] building mmcv 2.1.0 with ops (first time: ~13 min on 2 cores)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} pip install -q --no-build-isolation "mmcv==2.1.0"
fi

pip install -q --no-build-isolation -e ".[tests]"
# Teach mmengine the 'mmext::' config prefix in every process of this venv.
"$VENV/bin/python" -c "from mmext.config_scope import write_pth; print('[install] wrote', write_pth())"
echo "$want" > "$STAMP"
echo "[install] done in $(( $(date +%s) - start )) s"
