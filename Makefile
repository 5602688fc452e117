# The two commands of the README. Both create the venv on demand (tools/install.sh).
#   make test                 upstream OpenMMLab stack in .venv (the default)
#   make test STACK=onedl     the OneDL forks in .venv-onedl (same for install / demo)
STACK ?= upstream
ifeq ($(STACK),onedl)
VENV ?= .venv-onedl
else
VENV ?= .venv
endif
export STACK VENV
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test demo data figures clean

install:
	@tools/install.sh

test: install
	@tools/run_tests.sh $(PYTEST_ARGS)

demo: install
	@$(PY) tools/run_demo.py

data: install
	@$(PY) tools/make_demo_data.py

figures: install
	@$(PY) tools/make_figures.py

clean:
	rm -rf work_dirs data/demo
