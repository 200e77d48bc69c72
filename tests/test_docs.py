"""The docs site (`make docs` = tools/docs.py) and the headless-Chromium helpers (tools/browser.py).

Builds the real site into a temporary folder (the repo's site/ and site_src/ are left alone) and a tiny site with two
study reports; checks pages, figures, tables, hidden cells, API docs and folded tests in the HTML, then opens pages in headless Chromium
(skipped, naming `make browser`, when Chromium is missing).
"""
import base64, importlib.util, io, json, shutil, struct, sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

def _tool(name):
    spec = importlib.util.spec_from_file_location(f"udt_tools_{name}", ROOT/"tools"/f"{name}.py")
    mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
    return mod

docs, browser = _tool("docs"), _tool("browser")

def _src(cell): return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

class _Text(HTMLParser):
    "The visible text of a page (no <script>/<style>), with code spans joined back into code lines."
    def __init__(self): super().__init__(convert_charrefs=True); self.parts, self.skip = [], 0
    def handle_starttag(self, tag, attrs): self.skip += tag in ("script", "style")
    def handle_endtag(self, tag): self.skip -= tag in ("script", "style") and self.skip > 0
    def handle_data(self, data):
        if not self.skip: self.parts.append(data)

def page_text(path) -> str:
    p = _Text(); p.feed(Path(path).read_text(encoding="utf-8")); return "".join(p.parts)

def expected(nb_path, report=False) -> dict:
    "What a page must show: PNG figures and HTML tables in the outputs of the cells the site keeps."
    nb = docs.clean_notebook(json.loads(Path(nb_path).read_text()), report=report)
    outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    return dict(png=sum("image/png" in o.get("data", {}) for o in outs),
                tables=sum("".join(o.get("data", {}).get("text/html", "")).count("<table") for o in outs))

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    home = docs.build(tmp/"site", tmp/"src", strict=True, quiet=True)
    assert home == tmp/"site"/"index.html" and home.exists()
    return home.parent

def test_every_library_notebook_is_a_page(site):
    lib = sorted(ROOT.glob("nbs/[0-9][0-9]*_*.ipynb"))
    assert len(lib) >= 10
    for nb in lib: assert (site/f"{nb.stem}.html").exists(), f"no page for {nb.name}"
    home = (site/"index.html").read_text(encoding="utf-8")
    for nb in lib: assert f'href="{nb.stem}.html"' in home, f"{nb.name} is not in the nav"
    title = docs.title_of(json.loads((ROOT/"nbs"/"index.ipynb").read_text()), "")
    assert title and title in page_text(site/"index.html")
    # no reports committed or run here -> no Reports section (and the build still succeeds)
    assert ("Reports" in page_text(site/"index.html")) == bool(docs.find_pages(ROOT)["reports"])

def test_figures_and_tables_of_the_committed_outputs_are_on_the_pages(site):
    seen = dict(png=0, tables=0)
    for nb in sorted(ROOT.glob("nbs/[0-9][0-9]*_*.ipynb")) + [ROOT/"nbs"/"index.ipynb"]:
        want, page = expected(nb), (site/f"{nb.stem}.html").read_text(encoding="utf-8")
        assert page.count('src="data:image/png;base64,') == want["png"], nb.name
        assert page.count("<table") >= want["tables"], nb.name
        for k in seen: seen[k] += want[k]
    assert seen["png"] >= 1 and seen["tables"] >= 5     # the landscape notebook has figures, several have tables

def test_hidden_cells_and_directives_are_not_shown(site):
    checked = 0
    for nb_path in sorted(ROOT.glob("nbs/[0-9][0-9]*_*.ipynb")):
        nb, text = json.loads(nb_path.read_text()), page_text(site/f"{nb_path.stem}.html")
        shown = "\n".join(_src(c) for c in docs.clean_notebook(nb)["cells"])
        for cell in nb["cells"]:
            if cell["cell_type"] != "code" or "hide" not in docs.directives(cell): continue
            for line in _src(cell).splitlines()[1:]:
                if len(line.strip()) > 12 and line not in shown:
                    assert line not in text, f"{nb_path.name}: hidden line {line!r} is on the page"; checked += 1
        assert "#| export" not in text and "#| default_exp" not in text and "#| hide" not in text, nb_path.name
        # code of exported cells stays: it is the documentation (09_finetune shows a method at work and exports nothing)
        export = next((c for c in nb["cells"] if c["cell_type"] == "code" and "export" in docs.directives(c)), None)
        if export is None: continue
        body = [l for l in _src(export).splitlines() if l.strip() and not l.lstrip().startswith("#|")]
        assert body[0] in text, f"{nb_path.name}: exported code is missing"
    assert checked >= 10

def test_clean_notebook():
    code = lambda s, outs=(), tags=(): dict(cell_type="code", source=s, metadata={"tags": list(tags)}, outputs=list(outs))
    out = lambda t: dict(output_type="execute_result", data={"text/plain": t}, metadata={})
    err = dict(output_type="stream", name="stderr", text="TqdmWarning: IProgress not found")
    nb = dict(cells=[dict(cell_type="raw", source="---\nskip_exec: true\n---", metadata={}),
                     code("#| default_exp core"), code("#| hide\nsecret = 1"), code("#|hide\n#| slow\nsecret = 2"),
                     code("#| export\ndef f(): pass"), code("#| echo: false\nshow()", [out("shown")]),
                     code("#| output: false\nquiet()", [out("noise")]), code("#| include: false\ngone()", [out("x")]),
                     code("x = 1", [err]), code("study = 'a'", tags=["parameters"]),
                     code("study = 'b'", tags=["injected-parameters"]),
                     dict(cell_type="markdown", source="# Title `x`\nsee [tasks](01_tasks.ipynb)", metadata={})])
    lib = docs.clean_notebook(nb, renames={"01_tasks.ipynb": "01_tasks.html"})
    srcs = [_src(c) for c in lib["cells"]]      # a library notebook shows its parameters (they document defaults)
    assert srcs == ["def f(): pass", "show()", "quiet()", "x = 1", "study = 'a'", "study = 'b'", "# Title `x`\nsee [tasks](01_tasks.html)"]
    assert lib["cells"][1]["metadata"]["tags"] == ["hide-input"] and lib["cells"][2]["outputs"] == []
    assert lib["cells"][3]["outputs"] == []                                     # stderr dropped
    rep = docs.clean_notebook(nb, report=True)                                  # a report: outputs only
    assert [_src(c) for c in rep["cells"]] == ["show()", "# Title `x`\nsee [tasks](01_tasks.ipynb)"]
    assert "hide-input" in rep["cells"][0]["metadata"]["tags"]
    assert docs.title_of(nb, "x") == "Title x" and docs.title_of(dict(cells=[]), "fallback") == "fallback"
    assert nb["cells"][2]["source"] == "#| hide\nsecret = 1"                    # the input is not modified

def test_library_page_shows_api_docs_and_folds_tests():
    from unified_delta_tuning import metrics
    nb = json.loads((ROOT/"nbs"/"02_metrics.ipynb").read_text())
    cells = docs.library_notebook(nb)["cells"]
    srcs = [_src(c) for c in cells]
    i = next(i for i, s in enumerate(srcs) if cells[i]["cell_type"] == "code" and "def check_inputs(" in s)
    api = srcs[i + 1]                                   # the API doc follows the exported cell that defines the function
    assert cells[i + 1]["cell_type"] == "markdown" and api.startswith("### check_inputs\n")
    assert "def check_inputs(\n    predictions:Sequence[str], # one predicted string per example" in api   # signature + docments
    assert "*Validate `predictions` against `golds`" in api                                               # the docstring
    exported = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "code" and "export" in docs.directives(c))
    documented = [s.split("\n")[0][4:] for s in srcs if s.startswith("### ")]
    assert documented == [n for n in docs.defined_names(exported) if n in metrics.__all__]   # every public def/class, once
    assert "_mean_best" in exported and "_mean_best" not in documented and "UnknownMetricError" in documented
    test = 'test_fail(lambda: check_inputs([], []), contains="empty")'   # a test cell: folded, no longer a code cell
    fold = next(c for c in cells if test in _src(c))
    assert fold["cell_type"] == "markdown" and _src(fold).startswith('<details class="udt-tests"><summary>Tests')
    for c in cells:                                      # what stays open: exported code and cells with outputs
        if c["cell_type"] == "code": assert c["outputs"] or _src(c) in exported, _src(c)[:80]
    assert any(c["cell_type"] == "code" and c["outputs"] and _src(c).startswith("toy_sets = {") for c in cells)
    assert all("udt-docs-exported" not in c.get("metadata", {}) for c in cells)
    assert docs.defined_names("@dataclass\nclass A: pass\ndef f(): pass\nx = 1\n%time y") == ["A", "f"]

def test_library_pages_show_api_docs_folds_and_wrap(site):
    page = (site/"02_metrics.html").read_text(encoding="utf-8")
    assert 'id="check_inputs"' in page and page.count('<details class="udt-tests">') >= 5
    assert "one predicted string per example" in page_text(site/"02_metrics.html")
    css = (site/"styles.css").read_text()
    assert "pre-wrap" in css and "details.udt-tests" in css

def _png_figure() -> str:
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 3)); ax.plot([0, 1, 2], [1, 3, 2], "o-"); ax.set_title("tiny figure")
    buf = io.BytesIO(); fig.savefig(buf, format="png", dpi=60); plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()

def _report_nb(title, png) -> dict:
    table = "<table class='dataframe'><thead><tr><th>method</th><th>relative</th></tr></thead><tbody><tr><td>lora</td><td>101.5</td></tr></tbody></table>"
    cell = lambda s, outs=(), tags=(): dict(cell_type="code", execution_count=None, id=f"c{abs(hash(s)) % 10**8}",
                                          metadata={"tags": list(tags)}, outputs=list(outs), source=s)
    return dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=dict(name="python3", display_name="python3", language="python")),
                cells=[cell("study = 'studies/default.toml'", tags=["parameters"]),
                       cell("study = '/tmp/secret-study-path.toml'", tags=["injected-parameters"]),
                       dict(cell_type="markdown", id="m1", metadata={}, source=f"# {title}\n\nRelative scores of the tiny study."),
                       cell("import pandas as pd_unique_import_line"),
                       cell("display_the_table_of_results()", [dict(output_type="display_data", metadata={},
                            data={"text/html": table, "text/plain": "method relative"})]),
                       cell("draw_the_landscape_figure()", [dict(output_type="display_data", metadata={},
                            data={"image/png": png, "text/plain": "<Figure>"})])])

@pytest.fixture(scope="module")
def report_site(tmp_path_factory):
    "A repo with one library notebook, a committed report (reports/) and a study run's report (runs/<study>/)."
    root = tmp_path_factory.mktemp("repo")
    for f in ["mkdocs.yml", "nbs/index.ipynb", "nbs/styles.css", "nbs/02_metrics.ipynb"]:
        (root/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy(ROOT/f, root/f)
    png = _png_figure()
    for path, title in [("reports/paper.ipynb", "Paper tables"), ("runs/tiny/report.ipynb", "Study report")]:
        (root/path).parent.mkdir(parents=True, exist_ok=True)
        (root/path).write_text(json.dumps(_report_nb(title, png)))
    home = docs.build(root/"site", root/"site_src", strict=True, quiet=True, root=root)
    return root, home.parent

def test_reports_show_outputs_without_code(report_site):
    root, site = report_site
    assert [n for n, _ in docs.find_pages(root)["reports"]] == ["reports/paper.ipynb", "reports/tiny.ipynb"]
    nav = page_text(site/"index.html")
    assert "Reports" in nav and "Paper tables" in nav and "Study report (tiny)" in nav
    for name in ["paper", "tiny"]:
        page = site/"reports"/f"{name}.html"
        raw, text = page.read_text(encoding="utf-8"), page_text(page)
        assert raw.count('src="data:image/png;base64,') == 1 and raw.count("<table") == 1
        assert "101.5" in text and "Relative scores of the tiny study." in text
        for code in ["display_the_table_of_results", "draw_the_landscape_figure", "pd_unique_import_line",
                     "secret-study-path", "studies/default.toml"]:
            assert code not in text, f"{code} is on the report page {name}"

def test_page_summary_counts_content_not_icons():
    dom = ('<html><body><h1>Report¶</h1><svg viewBox="0 0 24 24"><path/></svg>'
           '<svg aria-hidden="true" height="200" width="200"></svg>'
           '<svg width="460pt" height="345pt" viewBox="0 0 460 345"><g><svg width="300"></svg></g></svg>'
           '<img src="data:image/png;base64,iVBORw0KGgo="><img src="plot.png"/><table><tr><td>1</td></tr></table>'
           '<h2>Table <code>1</code></h2><script>var s = "<h3>not a heading</h3><table>";</script></body></html>')
    s = browser.page_summary(dom)
    assert (s["tables"], s["png_images"], s["other_images"], s["svg_images"], s["svg_icons"], s["images"]) == (1, 1, 1, 1, 2, 3)
    assert s["headings"] == ["Report", "Table 1"]

def test_missing_chromium_names_make_browser(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMIUM", str(tmp_path/"no-such-chromium"))
    assert browser.find_chromium() is None
    with pytest.raises(browser.ChromiumMissing, match="make browser"): browser.render_dom(ROOT/"README.md")

def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == browser.PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])

def _distinct_colours(path) -> int:
    from PIL import Image                                           # matplotlib's dependency
    with Image.open(path) as im: return len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])

@pytest.fixture(scope="module")
def chromium():
    exe = browser.find_chromium()
    if exe is None: pytest.skip("headless Chromium is missing: run `make browser` (apt-get install chromium)")
    return exe

@pytest.mark.parametrize("page", ["index", "LANDSCAPE"])
def test_pages_in_headless_chromium(site, chromium, page, tmp_path):
    if page == "LANDSCAPE":   # the library page with the most figures in its committed outputs
        page = max((nb.stem for nb in ROOT.glob("nbs/[0-9][0-9]*_*.ipynb")), key=lambda s: expected(ROOT/"nbs"/f"{s}.ipynb")["png"])
    want = expected(ROOT/"nbs"/f"{page}.ipynb")
    s = browser.page_summary(browser.render_dom(site/f"{page}.html"))
    assert s["png_images"] == want["png"] and s["tables"] >= want["tables"], s
    assert s["headings"] and s["headings"][0] == docs.title_of(json.loads((ROOT/"nbs"/f"{page}.ipynb").read_text()), "")
    png = browser.screenshot(site/f"{page}.html", tmp_path/f"{page}.png", width=1280, height=1600)
    assert _png_size(png) == (1280, 1600) and png.stat().st_size > 30_000
    assert _distinct_colours(png) > 50, "the screenshot is blank"

def test_report_in_headless_chromium(report_site, chromium, tmp_path):
    _, site = report_site
    s = browser.page_summary(browser.render_dom(site/"reports"/"tiny.html"))
    assert (s["tables"], s["png_images"]) == (1, 1) and "Study report" in s["headings"]
    png = browser.screenshot(site/"reports"/"tiny.html", tmp_path/"tiny.png", height=900)
    assert _png_size(png) == (1280, 900) and _distinct_colours(png) > 50
