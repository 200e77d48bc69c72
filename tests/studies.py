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
