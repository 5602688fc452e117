#!/usr/bin/env bash
# One-command GPU check of the LaU op, for a machine with only torch + nvcc + pytest.
#
#   bash tools/gpu_check.sh            # from the repository root (or anywhere)
#
# Steps: environment, build (fresh, into $MMEXT_EXT_DIR), pytest tests/ops
# (parametrised over cpu and cuda), compute-sanitizer memcheck on a small case
# (far-outside, +-inf and NaN offsets, every dtype, forward + backward), the
# benchmark. Logs go to $LOG_DIR (default: a temp dir); a short table is
# printed at the end. Exit status: number of failed steps (0 = all good).
# Env: PYTHON (default python3), MAX_JOBS (default 8), MMEXT_EXT_DIR,
#      GPU_CHECK_QUICK=1 (benchmark --quick).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/lau_gpu_check.XXXXXX)}
mkdir -p "$LOG_DIR"
export MMEXT_EXT_DIR=${MMEXT_EXT_DIR:-$LOG_DIR/ext}
export MAX_JOBS=${MAX_JOBS:-8}
unset MMEXT_LAU_DISABLE

ROWS=()
FAILED=0
# run_step NAME CMD...: runs CMD with output in $LOG_DIR/NAME.log, records a row.
run_step() {
  local name=$1; shift
  local t0=$(date +%s)
  echo "== $name: $*"
  "$@" > "$LOG_DIR/$name.log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local note
  note=$(grep -v '^\s*$' "$LOG_DIR/$name.log" | tail -n 1 | cut -c1-90)
  if [[ $rc -eq 0 ]]; then
    ROWS+=("$(printf '%-10s %-6s %5ss  %s' "$name" ok "$dt" "$note")")
  else
    FAILED=$((FAILED + 1))
    ROWS+=("$(printf '%-10s %-6s %5ss  %s' "$name" FAIL "$dt" "rc=$rc; $note")")
    tail -n 40 "$LOG_DIR/$name.log"
  fi
  return $rc
}

run_step env bash -c "$PYTHON -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else \"NO GPU\")'; (command -v nvcc >/dev/null && nvcc --version | tail -n 1) || echo 'nvcc not on PATH'; $PYTHON -c 'import torch; assert torch.cuda.is_available(), \"no CUDA device\"; print(torch.cuda.get_device_name())'"

# Fresh build; fail if the CUDA kernels did not make it in.
run_step build bash -c "$PYTHON -m mmext.ops.build --rebuild && $PYTHON -c 'from mmext.ops import load_extension, extension_state as s; load_extension(); assert s().cuda, s().error or \"CUDA kernels not built\"; print(\"CUDA kernels loaded\")'"

# The real build above already compiled the .cu: skip the compile-only test.
run_step pytest "$PYTHON" -m pytest tests/ops -q -rs -p no:cacheprovider -k "not cuda_kernel_compiles"

SANITIZER=$(command -v compute-sanitizer || true)
for cand in "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" "${CUDA_HOME:-/usr/local/cuda}/compute-sanitizer/compute-sanitizer"; do
  [[ -z "$SANITIZER" && -x "$cand" ]] && SANITIZER=$cand
done
cat > "$LOG_DIR/memcheck_case.py" <<'PY'
# Small LaU case under compute-sanitizer: every dtype, G = 1 / 2 / C, k_h != k_w,
# offsets far outside, +-inf and NaN; forward and backward; sizes with h or w == 1.
import torch
from mmext.ops import location_aware_upsample, load_extension, extension_state
assert load_extension() and extension_state().cuda, extension_state().error
torch.manual_seed(0)
for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
    for (n, c, h, w, kh, kw, g) in ((2, 4, 5, 7, 3, 2, 1), (1, 4, 3, 4, 2, 2, 2), (1, 3, 1, 6, 4, 1, 3), (1, 2, 4, 1, 1, 3, 1)):
        x = torch.randn(n, c, h, w, device="cuda", dtype=dtype, requires_grad=True)
        off = torch.randn(n, 2 * g, kh * h, kw * w, device="cuda") * 3
        off[:, :, ::3, ::2] *= 1e6
        off.view(-1)[::7] = float("inf")
        off.view(-1)[3::11] = -float("inf")
        off.view(-1)[5::13] = float("nan")
        off = off.to(dtype).requires_grad_()
        y = location_aware_upsample(x, off, (kh, kw), backend="extension")
        y.float().nan_to_num().sum().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(off.grad).all()
torch.cuda.synchronize()
print("memcheck case ok")
PY
if [[ -n "$SANITIZER" ]]; then
  # No caching allocator: out-of-bounds accesses inside a cached block would hide.
  run_step memcheck env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SANITIZER" --tool memcheck --error-exitcode 3 "$PYTHON" "$LOG_DIR/memcheck_case.py"
else
  ROWS+=("$(printf '%-10s %-6s %5ss  %s' memcheck SKIP 0 'compute-sanitizer not found')")
fi

BENCH_ARGS=(--device cuda)
[[ "${GPU_CHECK_QUICK:-0}" == 1 ]] && BENCH_ARGS+=(--quick)
run_step bench "$PYTHON" tools/benchmarks/bench_lau.py "${BENCH_ARGS[@]}"

echo
echo "==================== LaU GPU check (logs: $LOG_DIR) ===================="
printf '%-10s %-6s %6s  %s\n' step result time note
for r in "${ROWS[@]}"; do echo "$r"; done
if [[ -f "$LOG_DIR/bench.log" ]]; then
  echo "---- benchmark ----"
  cat "$LOG_DIR/bench.log"
fi
exit $FAILED
