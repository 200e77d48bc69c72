"""Publish a study folder's small artefacts (JSON, CSV, the study file; no vectors, notebooks or logs) into another folder.

`results.publish_runs` does it (the same as `udt report --publish`): the finished runs of the study's current plan
(`plan.json`) are added or replaced, runs already there from another shard are kept, runs of an earlier plan are
removed, and DST's results.csv is rebuilt (its runs read as `published`).

`python tools/small_artefacts.py /tmp/runs/report-study tests/data/report-study` refreshes the report's test
fixture; the same publishes a study's report inputs without its vectors.
"""
import sys
from pathlib import Path

from unified_delta_tuning.results import coverage_note, publish_runs, seed_coverage

if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    n = publish_runs(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{n['copied']} runs copied, {n['kept']} kept, {n['removed']} removed; {coverage_note(seed_coverage(sys.argv[2], n['results']))}")
