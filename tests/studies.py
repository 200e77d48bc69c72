"""The tiny studies the end-to-end tests run, spelled once.

`TINY` is `tests/data/tiny.toml` (also read by the notebooks `10_study`–`16_cli`): a random tiny BERT, Adapter and
LoRA, one single-task pair (sms -> nyt): 7 runs, about half a minute with two jobs. `TINY_REPORT` adds Prefix and a
landscape, for the report's figures.
"""
import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UDT = Path(sys.executable).parent/"udt"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false"}

TINY = (ROOT/"tests"/"data"/"tiny.toml").read_text()
TINY_REPORT = (TINY.replace('name = "tiny"', 'name = "tiny-report"\ndescription = "A tiny random BERT: three methods, one single-task pair, its landscape."')
               .replace('methods = ["adapter", "lora"]', 'methods = ["adapter", "lora", "prefix"]') + '\n[landscape]\ntasks = ["nyt"]\nn = 3\n')

def fake_notebooks(folder:Path, # the folder to write them into (made if missing): a study's `notebooks`
                   first:str="", # code each runs before it writes, e.g. a failure on one task or a wait
                  )->Path: # `folder`
    "Fake step notebooks for the runner's bookkeeping: a kernel that imports nothing heavy writes the run's output and metrics (~2 s a run)."
    import nbformat
    from unified_delta_tuning.layout import CODE, METRICS, SOLUTION, SUBSPACE
    folder.mkdir(parents=True, exist_ok=True)
    for step, out in (("stage0", SOLUTION), ("stage1", SUBSPACE), ("stage2", CODE)):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
        nb.cells = [nbformat.v4.new_code_cell("run_dir = None\nseed = 0", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(f"import json, pathlib, time\n{first}pathlib.Path({out!r}).write_bytes(b'x' * 100)\n"
                                              f"pathlib.Path({METRICS!r}).write_text(json.dumps({{'test': 0.5, 'seed': seed}}))\n")]
        nbformat.write(nb, folder/f"{step}.ipynb")
    return folder
