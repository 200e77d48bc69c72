"""The rendered report (`udt report`, `report.render_report`), checked the way a reader sees it.

1. A real tiny study (random tiny BERT, three methods, one single-task pair over two seeds on one shared stage 0, a random
   control, a landscape) whose
   learned subspace is in fact random (stage 1 at lr 1e-12 leaves the projections at their random initialisation)
   runs through the step notebooks; `udt report --publish` renders its report, whose verdict for claim 1 must not be
   "supported"; headless Chromium opens the page and every table and figure is checked, and a screenshot is taken
   (kept in the test's temporary folder).
2. The committed artefacts of a two-seed study with every setting and control (`tests/data/report-study/`) render
   the claims, Tables 1-4 with baselines, controls and intervals, the four-method tables, the curves of every stage,
   the heatmaps and the landscape.
Bad input (no results.csv, no study file) gets an error that says what to run; the readers' own errors are tested in `14_results`.
"""
import importlib.util, re, shutil, subprocess, sys
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

def test_a_tiny_study_with_a_random_learned_subspace_is_not_supported_and_renders(tmp_path):
    random_learned = (TINY_REPORT.replace("[stage1]\nlr = 0.01", "[stage1]\nlr = 1e-12") + "\n[controls]\nrandom = true\npca = true\nmean = true\n")
    random_learned = (random_learned.replace("seeds = [42]", "seeds = [42, 43]").replace("steps = 10", "steps = 10\nseed = 42")   # two chains on one stage 0
                      .replace("[landscape]\n", "[landscape]\nseeds = [42]\n"))
    assert "lr = 1e-12" in random_learned and "seed = 42" in random_learned and "seeds = [42, 43]" in random_learned
    (tmp_path/"s.toml").write_text(random_learned)
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
    from unified_delta_tuning.evidence import study_arms
    from unified_delta_tuning.claims import study_claims
    from unified_delta_tuning.results import read_results
    folder = tmp_path/"runs"/"tiny-report"; res = read_results(folder)
    verdicts = study_claims(folder, res).verdict
    assert verdicts.loc[1].tolist() != ["supported"] and verdicts.loc[1].tolist() != [], verdicts   # a random "learned" subspace decides nothing for claim 1
    assert sorted(res[res.step == "stage0"].seed.unique()) == [42] and sorted(res[res.step == "stage2"].seed.unique()) == [42, 43]
    assert sorted(study_arms(folder, res)[0].query("kind == 'init'").seed.unique()) == [42, 43]   # each chain paired with the shared stage 0
    html = page.read_text()
    # the claims, Tables 1-2 beside the paper's, baselines, provenance; figures: gains, heatmap, 3 curve figures, 1 landscape
    for text in ("claims, tested", "Table 1: single-task subspace", "Table 2: single-task subspace", "paper: Table 2",
                 "θ_init (untrained start)", "Avg., random subspace", "majority class", "Original-space scores",
                 "A tiny random BERT", "tiny-bert", "git commit", "transformers", "share of square", "batched speed-up",
                 "stage 0 shared", "the intervals hold the spread of stages 1–3 over seeds"):
        assert text in html, text
    assert verdicts.loc[1].iloc[0] in html
    assert verdicts.loc[5].tolist() and "learned against PCA and mean" in html   # the field's question has its own row
    for text in ("Avg., PCA subspace of the source solutions", "Avg., mean source solution (no training)", "Avg., random code, learned subspace"):
        assert text in html, text   # the closed-form baselines and claim 2's random code, as planned controls
    assert "ours: Table 3" not in html and figures(html) == 6
    assert "import " not in html and "skip_exec" not in html and "study_dir =" not in html   # no code, front matter or parameters
    # a stage-0 run whose metrics.json is damaged: udt report names it and the command that redoes it
    s0 = next(p for p in folder.iterdir() if p.name.startswith("s0-nyt-lora")); (s0/"metrics.json").write_text("[1, 2, 3]")
    r = subprocess.run([str(UDT), "report", str(tmp_path/"s.toml"), "--runs", str(tmp_path/"runs"), "--no-html"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert r.returncode == 2 and f"1 run(s) are 1 corrupt (e.g. {s0.name})" in r.stderr and "`udt study run` redoes them" in r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    check_in_chromium(page, tmp_path/"report.png", tables=9, figs=6,
                      headings=["Study report: tiny-report", "claims, tested", "Table 1", "Table 2", "The transfer matrix", "Training curves", "The landscape"])

def test_every_setting_control_table_and_figure(tmp_path):
    study = tmp_path/"report-study"; shutil.copytree(FIXTURE, study)
    toml = (study/"study.toml").read_text()   # the study's own text is shown as text, never run as HTML
    (study/"study.toml").write_text(re.sub(r'description = "[^"]*"', 'description = "<script>alert(1)</script> <img src=x onerror=alert(2)>"', toml, count=1))
    out = render_report(study, tmp_path/"out")
    html = out["html"].read_text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the fixture's multi-task subspace did not form (a random tiny BERT) and its multi-task, four-method and landscape settings have one seed
    for text in ("not tested: stage 1 diverged (error", "not tested (1 seed)", "not tested (2 seeds)", "Did the subspaces form?", "subspaces diverged"):
        assert text in html, text
    for n in (1, 2, 3, 4): assert f"ours: Table {n}" in html and f"paper: Table {n}" in html
    for text in ("Avg., random subspace", "Avg., permuted subspace", "Avg., unrelated task", "θ_init (untrained start)",
                 "learned − random", "42, 43", "±"):              # controls, baselines, the verdicts' numbers, both seeds, their spread
        assert text in html, text
    text_only = re.sub(r'src="data:image/png;base64,[^"]*"', "", html)
    assert ">NaN<" not in text_only and ">nan<" not in text_only and "NaN [" not in text_only
    assert figures(html) == 1 + 1 + 3 + 1                      # gains, heatmaps (one figure), curves of 3 steps, 1 landscape
    check_in_chromium(out["html"], tmp_path/"report.png", tables=20, figs=6,
                      headings=["claims, tested", "Table 3", "Table 4", "Fine-tuning in the subspace"])

def test_a_study_with_only_stage_0_finished_renders(tmp_path):
    import pandas as pd
    study = tmp_path/"report-study"; shutil.copytree(FIXTURE, study)
    r = pd.read_csv(study/"results.csv"); r[r.step == "stage0"].to_csv(study/"results.csv", index=False)
    html = render_report(study, tmp_path/"out")["html"].read_text()
    for text in ("No stage-1 run has finished yet", "No stage-2 run has finished yet", "Original-space scores", "not tested"): assert text in html, text
    assert "Traceback" not in html and "ValueError" not in html

def test_bad_input_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="udt study run"): render_report(tmp_path)   # before any kernel starts
    r = subprocess.run([str(UDT), "report", str(tmp_path/"nothing.toml")], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert r.returncode == 2 and "no study file" in r.stderr


def test_a_read_only_study_is_reported_from_its_results(tmp_path, monkeypatch, capsys):
    import errno
    import unified_delta_tuning.results as results
    from unified_delta_tuning.cli import main
    study = tmp_path/"report-study"; shutil.copytree(FIXTURE, study)
    def read_only(folder): raise OSError(errno.EROFS, "Read-only file system", str(folder/"results.csv"))
    monkeypatch.setattr(results, "write_results", read_only)   # root ignores chmod: the storage says it cannot be written
    main(["report", str(study), "--no-html"])
    out = capsys.readouterr().out
    assert "cannot be written (Read-only file system): its results.csv is read as it is" in out and "The paper's claims" in out, out
    with pytest.raises(SystemExit) as e: main(["report", str(study)])
    assert e.value.code == 2 and "give another folder with --out" in capsys.readouterr().err

def test_a_folder_with_some_shards_says_which_seeds_are_missing(tmp_path):
    from unified_delta_tuning.results import run_seed
    study = tmp_path/"report-study"; shutil.copytree(FIXTURE, study)
    for d in list(study.iterdir()):
        if d.is_dir() and run_seed(d.name) == 43: shutil.rmtree(d)         # only seed 42's shard was published
    r = subprocess.run([str(UDT), "report", str(study), "--out", str(tmp_path/"out"), "--previous", str(FIXTURE)],   # beside both seeds' verdicts
                       capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "published" in r.stdout and "corrupt" not in r.stdout, r.stdout     # small artefacts without vectors read as published
    assert "seeds complete: 42; missing: 43 (`udt study run" in r.stdout, r.stdout
    verdicts = r.stdout.split("The paper's claims")[1].split("Stage 0 (the denominators")[0]
    assert "not tested (1 seed)" in verdicts and " supported" not in verdicts.replace("not supported", ""), verdicts
    html = (tmp_path/"out"/"report.html").read_text()
    assert "missing: 43" in html and "Traceback" not in html
    assert "Against the previously published verdicts" in html and "report-study</code> (an earlier run" in html

def test_publishing_one_shard_beside_others_renders_the_whole_published_report(tmp_path):
    "Shards run apart: `--publish` merges this folder's runs with the published ones and renders the report from them."
    from unified_delta_tuning.results import publish_runs, run_seed
    def shard(seed):   # a runs folder holding one seed's runs of the fixture's study
        f = tmp_path/f"runs{seed}"/"report-study"; shutil.copytree(FIXTURE, f)
        for d in list(f.iterdir()):
            if d.is_dir() and run_seed(d.name) not in (None, seed): shutil.rmtree(d)
        return f
    publish_runs(shard(43), tmp_path/"reports"/"report-study")   # seed 43, published from another machine
    here = shard(42)
    r = subprocess.run([str(UDT), "report", str(here), "--publish", str(tmp_path/"reports")],
                       capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seeds complete: 42, 43" in r.stdout and "rendered from" in r.stdout, r.stdout
    assert "missing: 43" in (here/"report.html").read_text()   # this folder's report: its own seed only
    published = (tmp_path/"reports"/"report-study.html").read_text()
    assert "missing: 43" not in published and "seeds complete: 42, 43" in published and "Traceback" not in published

def test_the_y_dose_curve_reads_one_folder_per_y(tmp_path):
    "`tools/y_dose.py`: per y and stage, the learned gain over seeds with its interval, and the figure (here on the fixture, twice)."
    spec = importlib.util.spec_from_file_location("udt_tools_y_dose", ROOT/"tools"/"y_dose.py")
    y_dose = importlib.util.module_from_spec(spec); spec.loader.exec_module(y_dose)
    assert y_dose.overrides(8) == ["single_task.stage1.y=8", "name=y-dose-y8"]
    curve = y_dose.dose_curve({2: FIXTURE, 8: FIXTURE}, B=50)
    assert curve[["y", "stage"]].values.tolist() == [[2, "stage2"], [2, "stage3"], [8, "stage2"], [8, "stage3"]]
    assert (curve.seeds == 2).all() and (curve["gain lo"] <= curve.gain).all() and (curve.gain <= curve["gain hi"]).all()
    assert curve[curve.y == 2].drop(columns="y").values.tolist() == curve[curve.y == 8].drop(columns="y").values.tolist()   # same runs, same numbers
    y_dose.plot_curve(curve, tmp_path/"curve.png")
    assert (tmp_path/"curve.png").read_bytes()[:4] == b"\x89PNG"
