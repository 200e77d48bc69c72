#!/usr/bin/env bash
# The whole test suite (`make test`): nbdev's three checks, the README check, then pytest.
# Each "leaves git clean" check compares the tree before and after the step, so it also works with local edits.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

snapshot() { git status --porcelain --untracked-files=all -- "$@"; git diff --no-ext-diff -- "$@" | sha1sum; }
unchanged() {  # unchanged "what" cmd... : run cmd, fail if it changed nbs/ or the package
  local what=$1; shift
  local before after
  before=$(snapshot nbs unified_delta_tuning README.md)
  "$@"
  after=$(snapshot nbs unified_delta_tuning README.md)
  if [ "$before" != "$after" ]; then
    echo "FAIL: $what changed files:"; git status --porcelain -- nbs unified_delta_tuning README.md
    exit 1
  fi
}

echo "== nbdev-clean leaves the notebooks unchanged"
unchanged "nbdev-clean (run it and commit the cleaned notebooks)" nbdev-clean
echo "== nbdev-clean leaves the step notebooks unchanged (package data: unified_delta_tuning/experiments/)"
unchanged "nbdev-clean --fname unified_delta_tuning/experiments (run it and commit them)" nbdev-clean --fname unified_delta_tuning/experiments
echo "== nbdev-export leaves the package unchanged"
unchanged "nbdev-export (the package is out of sync with nbs/: run nbdev-export and commit)" nbdev-export
echo "== README.md is in sync with nbs/index.ipynb"
python tools/readme.py --check
# a failing notebook does not stop the run: pytest still runs and reports its counts, and the run fails at the end
set +e
echo "== nbdev-test"
nbdev-test --n-workers 2 --timing
nb_rc=$?
echo "== pytest"
python -m pytest -q tests
rc=$?
set -e
if [ $nb_rc -ne 0 ]; then echo "FAIL: nbdev-test failed (its report is above the pytest run)"; exit $nb_rc; fi
if [ $rc -eq 5 ]; then echo "FAIL: pytest collected no tests"; exit 1; fi
exit $rc
