"""The rendered report (`udt report`, `report.render_report`), checked the way a reader sees it.

1. A real tiny study (random tiny BERT, three methods, one single-task pair, a landscape) runs through the step
   notebooks; `udt report --publish` renders its report; headless Chromium opens the page and every table and figure
   is checked, and a screenshot is taken (kept in the test's temporary folder).
2. The committed artefacts of a two-seed, two-setting study (`tests/data/report-study/`) render Tables 1-4 with
   their spread over seeds, the curves of every stage, the heatmaps and the landscape.
Bad input (no results.csv, no study file) gets an error that says what to run; the readers' own errors are tested in `14_results`.
"""
import importlib.util, shutil, subprocess, sys
from pathlib import Path

import pytest

from studies import ENV, ROOT, TINY_REPORT, UDT
from unified_delta_tuning.report import render_report

FIXTURE = ROOT/"tests"/"data"/"report-study"

spec = importlib.util.spec_from_file_location("udt_tools_browser", ROOT/"tools"/"browser.py")
browser = importlib.util.module_from_spec(spec); sys.modules[spec.name] = browser; spec.loader.exec_module(browser)

def figures(html:str)->int: return html.count('src="data:image/png;base64,')

def need_chromium():
    if browser.find_chromium() is None: pytest.skip("headless Chromium is missing: run `make browser` (apt-get install chromium)")

def check_in_chromium(page:Path, shot:Path, tables:int, figs:int, headings:list[str]):
    need_chromium()
    summary = browser.page_summary(browser.render_dom(page))
    assert summary["tables"] >= tables and summary["png_images"] == figs, summary
    for h in headings: assert any(h in x for x in summary["headings"]), (h, summary["headings"])
    browser.screenshot(page, shot, width=1280, height=4000)
    from PIL import Image
    im = Image.open(shot)
    assert im.size == (1280, 4000) and shot.stat().st_size > 100_000
    colours = im.convert("RGB").getcolors(1 << 24)
    white = max(colours)[0] / (im.size[0] * im.size[1])
    assert len(colours) > 100 and white < 0.98, (len(colours), white)      # text, tables and figures, not a blank page

def test_a_real_tiny_study_renders_and_opens_in_chromium(tmp_path):
    (tmp_path/"s.toml").write_text(TINY_REPORT)
    r = subprocess.run([str(UDT), "study", "run", str(tmp_path/"s.toml"), "--jobs", "2", "--threads", "1", "--runs", str(tmp_path/"runs")],
                       capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([str(UDT), "report", str(tmp_path/"s.toml"), "--runs", str(tmp_path/"runs"), "--publish", str(tmp_path/"reports")],
                       capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    page = tmp_path/"runs"/"tiny-report"/"report.html"
    assert "report (" in r.stdout and str(page) in r.stdout and "Table 1" in r.stdout
    assert (tmp_path/"reports"/"tiny-report.html").read_text() == page.read_text()
    assert (tmp_path/"reports"/"tiny-report.ipynb").is_file()
    html = page.read_text()
    # Tables 1-2 beside the paper's, absolute scores, provenance; figures: heatmap, 3 curve figures, 1 landscape
    for text in ("Table 1: single-task subspace", "Table 2: single-task subspace", "paper: Table 2", "Original-space scores",
                 "A tiny random BERT", "tiny-bert", "git commit", "transformers", "share of square", "batched speed-up"):
        assert text in html, text
    assert "ours: Table 3" not in html and figures(html) == 5
    assert "import " not in html and "skip_exec" not in html and "study_dir =" not in html   # no code, front matter or parameters
    check_in_chromium(page, tmp_path/"report.png", tables=8, figs=5,
                      headings=["Study report: tiny-report", "Table 1", "Table 2", "The transfer matrix", "Training curves", "The landscape"])

def test_two_seeds_two_settings_every_table_and_figure(tmp_path):
    study = tmp_path/"report-study"; shutil.copytree(FIXTURE, study)
    out = render_report(study, tmp_path/"out")
    html = out["html"].read_text()
    for n in (1, 2, 3, 4): assert f"ours: Table {n}" in html and f"paper: Table {n}" in html
    assert "±" in html and "seed 43" in html                  # spread over the two seeds
    assert figures(html) == 1 + 3 + 2                          # heatmaps (one figure), curves of 3 steps, 2 landscapes
    check_in_chromium(out["html"], tmp_path/"report.png", tables=15, figs=6, headings=["Table 3", "Table 4", "Over seeds"])

def test_bad_input_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="udt study run"): render_report(tmp_path)   # before any kernel starts
    r = subprocess.run([str(UDT), "report", str(tmp_path/"nothing.toml")], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert r.returncode == 2 and "no study file" in r.stderr
