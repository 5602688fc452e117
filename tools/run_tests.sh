#!/usr/bin/env bash
# Run the test-suite in $VENV (default .venv; what `make test` and CI call).
# pytest exits 5 when it collects no tests: that is a failure here, with a message.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# Which stack this run tests, on the first line of the log.
"$VENV/bin/python" - <<'EOF'
import mmcv, mmdet, mmengine, mmseg, numpy, torch
print('run_tests: ' + ', '.join(f'{m.__name__} {m.__version__}'
                                for m in (torch, numpy, mmengine, mmcv, mmdet, mmseg)))
EOF
# One pytest worker per core (pytest-xdist), a test file per worker at a time
# (--dist loadfile: a file's module fixtures, e.g. a trained checkpoint, are built
# once), one torch thread per worker so the workers do not fight for the cores.
# PYTEST_WORKERS=1 runs in this process, without xdist.
WORKERS=${PYTEST_WORKERS:-$(nproc)}
if [ "$WORKERS" -gt 1 ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  set -- -n "$WORKERS" --dist loadfile "$@"
else
  set -- -p no:xdist "$@"
fi
echo "run_tests: $WORKERS worker(s)"
# No path given: pyproject.toml's testpaths (tests/) apply.
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run_tests: pytest collected no tests (exit 5): treating it as a failure" >&2
fi
exit $rc
