#!/usr/bin/env bash
# One-command GPU check of the LaU op, for a machine with only torch + nvcc + pytest.
#
#   bash tools/gpu_check.sh            # from the repository root (or anywhere)
#
# Steps: environment, build (fresh, into $MMEXT_EXT_DIR), pytest tests/ops
# (parametrised over cpu and cuda), a C++-exception check (throw), compute-sanitizer memcheck on a small case
# (far-outside, +-inf and NaN offsets, every dtype, both CUDA kernel
# families, forward + backward), the benchmark (GB/s against a D2D copy
# measured in the same run), racecheck of the shared-memory (channels-last)
# kernels, and an ncu speed-of-light/memory report of each kernel family.
# Logs go to $LOG_DIR (default: a temp dir), one file per step (at most 8,
# flat: fit for a tool that fetches few files); the build and scratch files
# live elsewhere. A short table is printed at the end.
# Exit status: number of failed steps (0 = all good).
# Env: PYTHON (default python3), MAX_JOBS (default 8), MMEXT_EXT_DIR (default:
#      a temp dir outside LOG_DIR), GPU_CHECK_QUICK=1 (benchmark --quick),
#      GPU_CHECK_STEPS (default "pytest throw memcheck bench racecheck ncu"; env and
#      build always run), GPU_CHECK_STEP_TIMEOUT (seconds per step, default 300).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/lau_gpu_check.XXXXXX)}
mkdir -p "$LOG_DIR"
WORK=$(mktemp -d /tmp/lau_gpu_work.XXXXXX)  # scratch scripts: not in LOG_DIR
export MMEXT_EXT_DIR=${MMEXT_EXT_DIR:-$WORK/ext}
export MAX_JOBS=${MAX_JOBS:-8}
unset MMEXT_LAU_DISABLE
STEPS=" ${GPU_CHECK_STEPS:-pytest throw memcheck bench racecheck ncu} "
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-300}
want() { [[ "$STEPS" == *" $1 "* ]]; }

ROWS=()
FAILED=0
# run_step NAME CMD...: runs CMD with output in $LOG_DIR/NAME.log, records a row.
run_step() {
  local name=$1; shift
  local t0=$(date +%s)
  echo "== $name: $*"
  timeout -k 10 "$STEP_TIMEOUT" "$@" > "$LOG_DIR/$name.log" 2>&1
  local rc=$?
  [[ $rc -eq 124 ]] && echo "TIMEOUT after ${STEP_TIMEOUT}s" >> "$LOG_DIR/$name.log"
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


# Environment, then a fresh build; fail without a GPU or if the CUDA kernels
# did not make it in. (One log for both: the fetch tool takes few files.)
ENV_CMD="$PYTHON -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else \"NO GPU\")'; (command -v nvcc >/dev/null && nvcc --version | tail -n 1) || echo 'nvcc not on PATH'; echo \"c++: \$(c++ --version | head -n 1)\"; $PYTHON -c 'import torch; assert torch.cuda.is_available(), \"no CUDA device\"; print(torch.cuda.get_device_name())'"
run_step build bash -c "$ENV_CMD && $PYTHON -m mmext.ops.build --rebuild && $PYTHON -c 'from mmext.ops import load_extension, extension_state as s; load_extension(); assert s().cuda, s().error or \"CUDA kernels not built\"; print(\"CUDA kernels loaded\")'"

# The real build above already compiled the .cu: skip the compile-only test.
# --confcutdir: tests/conftest.py (the OpenMMLab suites' fixtures) imports
# mmengine; the op's tests need torch alone. pytest-xdist, where installed,
# spreads the tests over 8 workers.
XDIST=()
"$PYTHON" -c 'import xdist' 2>/dev/null && XDIST=(-n 8)
want pytest && run_step pytest "$PYTHON" -m pytest tests/ops -q -rs -p no:cacheprovider --confcutdir=tests/ops ${XDIST[@]+"${XDIST[@]}"} -k "not cuda_kernel_compiles"

# C++ argument checks (TORCH_CHECK) must reach Python as RuntimeError, on the
# CPU and the CUDA kernels, in a child process so that a crash is reported
# here rather than killing pytest. On a crash: the toolchains involved, a
# native backtrace (cuda-gdb debugs host code too) and a minimal load_inline
# extension that throws, to tell this op's code from the toolchain.
cat > "$WORK/throw_case.py" <<'PY'
import sys
import torch
from mmext.ops import extension_state, load_extension
assert load_extension(), extension_state().error
dev = sys.argv[1]
x = torch.randn(1, 2, 3, 3, device=dev)
try:
    torch.ops.mmext.lau_forward(x, torch.randn(1, 2, 5, 6, device=dev), 2, 2)
except RuntimeError as exc:
    print(f"{dev}: RuntimeError reached Python: {str(exc).splitlines()[0][:90]}")
else:
    raise SystemExit(f"{dev}: no error raised")
PY
cat > "$WORK/throw_inline.py" <<'PY'
import sys
import torch
from torch.utils.cpp_extension import load_inline
src = r"""
#include <torch/extension.h>
#include <torch/library.h>
void boom() { TORCH_CHECK(false, "boom from a pybind function"); }
at::Tensor boom_op(const at::Tensor& x) { TORCH_CHECK(false, "boom from a TORCH_LIBRARY op"); return x; }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("boom", &boom); }
TORCH_LIBRARY(throwtest, m) { m.def("boom(Tensor x) -> Tensor"); }
TORCH_LIBRARY_IMPL(throwtest, CPU, m) { m.impl("boom", &boom_op); }
"""
mod = load_inline(name="throwtest", cpp_sources=[src], build_directory=sys.argv[1], extra_cflags=["-O2"])
which = sys.argv[2]
try:
    mod.boom() if which == "pybind" else torch.ops.throwtest.boom(torch.zeros(1))
except RuntimeError as exc:
    print(f"inline {which}: RuntimeError reached Python: {exc}".splitlines()[0])
PY
throw_check() {
  local rc=0 dev r so
  echo "c++ -print-file-name: libstdc++.so -> $(c++ -print-file-name=libstdc++.so), libstdc++.so.6 -> $(c++ -print-file-name=libstdc++.so.6)"
  for so in "$MMEXT_EXT_DIR"/*.so; do
    echo "$(basename "$so"): $(ldd "$so" | grep -cE 'libstdc\+\+') dynamic libstdc++ link(s); $(nm -D --defined-only "$so" 2>/dev/null | grep -c ' _ZNSo9_M_insert') ostream::_M_insert definitions inside"
  done
  for dev in cpu cuda; do
    "$PYTHON" "$WORK/throw_case.py" $dev; r=$?
    [[ $r -ne 0 ]] && { echo "$dev: exit status $r"; rc=1; }
  done
  [[ $rc -eq 0 ]] && return 0
  echo "--- toolchain"
  echo "c++: $(command -v c++) $(c++ --version | head -n 1)"
  "$PYTHON" -c 'import torch; print(torch.__config__.show())' | grep -iE "gcc|clang|compiler|abi" | cut -c1-300
  "$PYTHON" -c 'import torch; print("cxx11 abi", torch.compiled_with_cxx11_abi())'
  echo "--- minimal load_inline extension (built by the same c++)"
  mkdir -p "$WORK/inline"
  for kind in pybind library; do
    timeout 240 "$PYTHON" "$WORK/throw_inline.py" "$WORK/inline" $kind; echo "inline $kind: exit status $?"
  done
  echo "--- this op's extension built without CUDA objects (CPU only)"
  CUDA_VISIBLE_DEVICES= MMEXT_EXT_DIR="$WORK/ext_cpu" timeout 240 "$PYTHON" "$WORK/throw_case.py" cpu
  echo "cpu-only build: exit status $?"
  echo "--- the same, linked with the shared libstdc++ named explicitly"
  CUDA_VISIBLE_DEVICES= MMEXT_EXT_DIR="$WORK/ext_cpu2" MMEXT_LAU_EXTRA_LDFLAGS="$(c++ -print-file-name=libstdc++.so.6)" \
    timeout 240 "$PYTHON" "$WORK/throw_case.py" cpu
  echo "cpu-only build, explicit libstdc++.so.6: exit status $?"
  local GDB
  GDB=$(command -v cuda-gdb || true)
  if [[ -n "$GDB" ]]; then
    echo "--- native backtrace (cpu case)"
    timeout 150 "$GDB" -q -batch -ex run -ex bt --args "$PYTHON" "$WORK/throw_case.py" cpu 2>&1 \
      | grep -vE "^\[(New|Thread|Detaching)|^warning:" | tail -n 45
  fi
  return $rc
}
export -f throw_check
export PYTHON WORK
want throw && run_step throw bash -c throw_check

SANITIZER=$(command -v compute-sanitizer || true)
for cand in "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" "${CUDA_HOME:-/usr/local/cuda}/compute-sanitizer/compute-sanitizer"; do
  [[ -z "$SANITIZER" && -x "$cand" ]] && SANITIZER=$cand
done
cat > "$WORK/sanitizer_case.py" <<'PY'
# Small LaU cases under compute-sanitizer: every dtype (memcheck; racecheck:
# float32 and float64), G = 1 / 2 / C, k_h != k_w, channel counts below, at and
# above one 32-lane chunk, H*W not a multiple of the 32-pixel tile, offsets far
# outside, +-inf and NaN; forward and backward of the public op (autograd) and
# of each kernel family (impl 1 = per-pixel, 2 = channels-last); h or w == 1.
import sys
import torch
from mmext.ops import location_aware_upsample, load_extension, extension_state
assert load_extension() and extension_state().cuda, extension_state().error
race = len(sys.argv) > 1 and sys.argv[1] == "race"
torch.manual_seed(0)
dtypes = (torch.float32, torch.float64) if race else (torch.float32, torch.float64, torch.float16, torch.bfloat16)
cases = ((2, 4, 5, 7, 3, 2, 1), (1, 4, 3, 4, 2, 2, 2), (1, 3, 1, 6, 4, 1, 3), (1, 2, 4, 1, 1, 3, 1),
         (1, 40, 5, 7, 3, 2, 1), (2, 36, 3, 4, 2, 2, 2), (1, 33, 1, 6, 4, 1, 1), (1, 64, 4, 1, 1, 3, 2))
for dtype in dtypes:
    for (n, c, h, w, kh, kw, g) in cases:
        x = torch.randn(n, c, h, w, device="cuda", dtype=dtype, requires_grad=True)
        off = torch.randn(n, 2 * g, kh * h, kw * w, device="cuda") * 3
        off[:, :, ::3, ::2] *= 1e6
        off.view(-1)[::7] = float("inf")
        off.view(-1)[3::11] = -float("inf")
        off.view(-1)[5::13] = float("nan")
        off = off.to(dtype).requires_grad_()
        y = location_aware_upsample(x, off, (kh, kw), backend="extension")
        gy = torch.randn_like(y)
        y.backward(gy)
        assert torch.isfinite(x.grad).all() and torch.isfinite(off.grad).all()
        for impl in (1, 2):
            yi = torch.ops.mmext_testing.lau_forward_impl(x.detach(), off.detach(), kh, kw, impl)
            gxi, goi = torch.ops.mmext_testing.lau_backward_impl(gy, x.detach(), off.detach(), kh, kw, impl)
            assert torch.isfinite(gxi).all() and torch.isfinite(goi).all()
            assert torch.equal(torch.isnan(yi), torch.isnan(y))
torch.cuda.synchronize()
print(("racecheck" if race else "memcheck") + " case ok")
PY
if [[ -z "$SANITIZER" ]]; then
  for t in memcheck racecheck; do
    want $t && ROWS+=("$(printf '%-10s %-6s %5ss  %s' $t SKIP 0 'compute-sanitizer not found')")
  done
fi
if [[ -n "$SANITIZER" ]] && want memcheck; then
  # No caching allocator: out-of-bounds accesses inside a cached block would hide.
  run_step memcheck env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SANITIZER" --tool memcheck --error-exitcode 3 "$PYTHON" "$WORK/sanitizer_case.py"
fi

BENCH_ARGS=(--device cuda)
[[ "${GPU_CHECK_QUICK:-0}" == 1 ]] && BENCH_ARGS+=(--quick)
want bench && run_step bench "$PYTHON" tools/benchmarks/bench_lau.py "${BENCH_ARGS[@]}"

# The channels-last kernels stage tiles in shared memory: check for races.
if [[ -n "$SANITIZER" ]] && want racecheck; then
  run_step racecheck "$SANITIZER" --tool racecheck --racecheck-report all --error-exitcode 3 "$PYTHON" "$WORK/sanitizer_case.py" race
fi

# Hardware counters of each kernel family (C=150 float32, 64->256, k=4):
# speed of light (DRAM / L1 / L2 / SM %) and the memory tables (sectors and
# wavefronts per request, atomics). Second launch of each kernel only (-s 4).
NCU=$(command -v ncu || true)
if want ncu; then
  if [[ -n "$NCU" ]]; then
    run_step ncu "$NCU" --clock-control none -k regex:lau_ -s 4 -c 4 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
      --section Occupancy --print-details all "$PYTHON" tools/benchmarks/bench_lau.py --profile
  else
    ROWS+=("$(printf '%-10s %-6s %5ss  %s' ncu SKIP 0 'ncu not found')")
  fi
fi

echo
echo "==================== LaU GPU check (logs: $LOG_DIR) ===================="
printf '%-10s %-6s %6s  %s\n' step result time note
for r in "${ROWS[@]}"; do echo "$r"; done
if [[ -f "$LOG_DIR/bench.log" ]]; then
  echo "---- benchmark ----"
  cat "$LOG_DIR/bench.log"
fi
exit $FAILED
