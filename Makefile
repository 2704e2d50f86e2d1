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

.PHONY: all install git-filter test report lab tensorboard pdf-tools clean-reports help
all: help

help:
	@echo "make report   run the study and write reports/$(PROFILE)/report.{html,pdf} (PROFILE=demo|full|smoke; EXECUTOR=ray|local)"
	@echo "make test     run the tests on CPU"
	@echo "make lab      open JupyterLab at the project root on the project's environment"
	@echo "make tensorboard   serve TensorBoard on runs/ (PROFILE=p: runs/p; PORT=n, default 6006)"

# (Re)install when the venv is missing or pyproject.toml changed. On this machine pip resolves
# torch/torchvision to the local 2.14.1/0.29.1 wheels, which satisfy pyproject's ranges. The
# notebooks' kernel gets TENSORBOARD_BINARY, so that `%tensorboard` finds the venv's TensorBoard
# without an activated venv; git-filter (below) keeps notebook outputs out of commits.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cityseg)" \
	  --env TENSORBOARD_BINARY "$(abspath $(BIN))/tensorboard" >/dev/null
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) git-filter
	@touch $(STAMP)

install: $(STAMP)

# Notebook outputs never reach a commit: .gitattributes sends *.ipynb through the `nbstripout`
# filter, defined here in this clone's .git/config with the venv's nbstripout (--keep-id: cell ids
# stay). Outside a git work tree, without git, or where git config cannot be written (CI) it only
# says so: git ignores a filter it does not know.
NBSTRIPOUT = "$(abspath $(BIN))/python" -m nbstripout --keep-id
git-filter:
	@if command -v git >/dev/null 2>&1 && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  { git config filter.nbstripout.clean '$(NBSTRIPOUT)' && git config filter.nbstripout.smudge cat && \
	    git config filter.nbstripout.required true && git config diff.ipynb.textconv '$(NBSTRIPOUT) -t'; } \
	  || echo "note: could not set up the nbstripout git filter (git config failed)"; \
	else echo "note: not a git work tree: no nbstripout git filter"; fi

# The PDF tests need Chromium: installed here where we are root (CI), else they are skipped.
test: $(STAMP)
	@$(MAKE) --no-print-directory pdf-tools || echo "note: Chromium could not be installed: the PDF tests are skipped"
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# PDF: nbconvert's webpdf needs Chromium; `make pdf-tools` installs Debian's chromium (as root).
pdf-tools:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "PDF needs Chromium: sudo apt-get install chromium (or xelatex for nbconvert --to pdf)"; fi; }

# Where the study's runs train: ray (default) runs two single-threaded runs at once on a 2-core
# machine, every GPU of a box, or a cluster ($$RAY_ADDRESS), and independent notebooks side by side;
# EXECUTOR=local trains in each notebook's kernel, one run after another (same results).
EXECUTOR ?= ray
report: $(STAMP) pdf-tools
	$(BIN)/cityseg report --profile $(PROFILE) --executor $(EXECUTOR)

# At the project root (README, params/, runs/, notebooks/ all in the file browser); kernels still
# start in their notebook's folder. Local only (jupyter's default ip is localhost).
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)"$(if $(filter 0,$(shell id -u)), --allow-root)

# TensorBoard on runs/, or on runs/PROFILE when PROFILE is given (make tensorboard PROFILE=demo).
PORT ?= 6006
tensorboard: $(STAMP)
	$(BIN)/cityseg tensorboard $(if $(filter command line environment,$(origin PROFILE)),--profile $(PROFILE)) --port $(PORT)

clean-reports:
	rm -rf reports/$(PROFILE)
