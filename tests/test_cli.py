"""The `udt` commands that need no model answer without importing torch (issue 13: `udt --help`, `udt study status`,
`--dry-run` and bad input in under 2 s; `benchmarks/cli_start.py` measures the time, this checks the cause)."""
import json, subprocess, sys

from studies import ENV, ROOT

HEAVY = ("torch", "transformers", "sklearn", "scipy")
PROBE = """
import contextlib, io, json, sys
from unified_delta_tuning.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: main(argv); codes.append([0, out.getvalue()[-200:], err.getvalue()[-300:]])
        except SystemExit as e: codes.append([e.code, out.getvalue()[-200:], err.getvalue()[-300:]])
print(json.dumps({"codes": codes, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(%r))}))
""" % (HEAVY,)

def test_commands_that_need_no_model_import_no_torch(tmp_path):
    argvs = [["--help"], ["study", "status", "studies/default.toml", "--runs", str(tmp_path)],
             ["study", "run", "studies/default.toml", "--dry-run", "--runs", str(tmp_path)],
             ["study", "status", str(tmp_path/"no-such.toml")], ["study", "run", "studies/default.toml", "--jobs", "x"]]
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.splitlines()[-1])
    codes = [c[0] for c in got["codes"]]
    assert codes == [0, 0, 0, 2, 2], got["codes"]
    assert " todo" in got["codes"][1][1] and "missing inputs" in got["codes"][2][1], got["codes"][1:3]
    assert "no study file" in got["codes"][3][2] and "invalid int value: 'x'" in got["codes"][4][2], got["codes"]
    assert got["heavy"] == [], f"these commands imported {got['heavy']}; import them inside the functions that need them"

def test_python_m_runs_the_command():
    r = subprocess.run([sys.executable, "-m", "unified_delta_tuning.cli", "study", "run", "--help"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "--threads" in r.stdout and "OMP_NUM_THREADS" in r.stdout and "--progress-every" in r.stdout, r.stdout + r.stderr
