# The two commands of the README. Both create .venv on demand (tools/install.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test demo data clean

install:
	@tools/install.sh

test: install
	@tools/run_tests.sh $(PYTEST_ARGS)

demo: install
	@$(PY) tools/run_demo.py

data: install
	@$(PY) tools/make_demo_data.py

clean:
	rm -rf work_dirs data/demo
