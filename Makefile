# cityseg: the two commands of the README, and a few helpers.
#   make report   generate the demo data (if needed) and build reports/$(PROFILE)/ (default PROFILE=demo)
#   make test     run the test suite on CPU
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= demo
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: all install test report lab pdf-tools clean-reports help
all: help

help:
	@echo "make report   run the study and write reports/$(PROFILE)/report.{html,pdf} (PROFILE=demo|full|smoke)"
	@echo "make test     run the tests on CPU"
	@echo "make lab      open JupyterLab on the project's environment"

# (Re)install when the venv is missing or pyproject.toml changed. On this machine pip resolves
# torch/torchvision to the local 2.14.1/0.29.1 wheels, which satisfy pyproject's ranges.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cityseg)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# PDF: nbconvert's webpdf needs Chromium; `make pdf-tools` installs Debian's chromium (as root).
pdf-tools:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "PDF needs Chromium: sudo apt-get install chromium (or xelatex for nbconvert --to pdf)"; fi; }

report: $(STAMP) pdf-tools
	$(BIN)/cityseg report --profile $(PROFILE)

lab: $(STAMP)
	cd notebooks && ../$(BIN)/jupyter lab

clean-reports:
	rm -rf reports/$(PROFILE)
