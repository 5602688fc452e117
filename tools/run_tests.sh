#!/usr/bin/env bash
# Run the test-suite in .venv (what `make test` and CI call).
# pytest exits 5 when it collects no tests: that is a failure here, with a message.
set -uo pipefail
cd "$(dirname "$0")/.."
# No path given: pyproject.toml's testpaths (tests/) apply.
.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run_tests: pytest collected no tests (exit 5): treating it as a failure" >&2
fi
exit $rc
