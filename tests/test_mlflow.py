"""A study's `[logging] mlflow = true` (`05b_tracking`): a finished run's curves land in the study's MLflow store and read
back with MLflow's own client. MLflow is not a dependency (it is large), so this test runs only where it is installed
(`pip install mlflow`): `python -m pytest tests/test_mlflow.py`."""
import shutil, warnings
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")   # MLflow's SQLite store (in `mlflow`; `mlflow-skinny` needs it added)

from unified_delta_tuning import tracking
from unified_delta_tuning.core import read_json

FIXTURE = Path(__file__).resolve().parent/"data"/"report-study"

def test_a_runs_curves_read_back_from_the_studys_mlflow_store(tmp_path):
    run = next(p for p in sorted(FIXTURE.iterdir()) if p.name.startswith("s0-") and (p/"history.json").is_file())
    study = tmp_path/"tiny"; shutil.copytree(run, study/run.name)
    (study/"study.toml").write_text('name = "tiny"\n[logging]\ntensorboard = false\nmlflow = true\n')
    history, metrics = read_json(run/"history.json"), read_json(run/"metrics.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # a writer that fails warns: here that is a failure
        assert tracking.log_run(study/run.name, history, metrics) == ["mlflow"]
    scalars = tracking.run_scalars(history, metrics, "stage0")
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking.mlflow_uri(study))
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_name for r in runs] == [run.name] and runs[0].data.tags["stage"] == "stage0"
    got = {(tag, m.step, m.value) for tag in {t for t, _, _ in scalars} for m in client.get_metric_history(runs[0].info.run_id, tag)}
    assert sorted(got) == sorted((t, s, float(v)) for t, v, s in scalars) and len(got) == len(scalars)   # every scalar, exactly
