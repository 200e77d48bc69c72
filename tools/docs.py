"""Build the docs site without Quarto: the library notebooks (with their committed outputs) and the study reports.

Usage: python tools/docs.py [--out site] [--src site_src] [--strict] [--verbose]

Quarto (which `nbdev-docs` needs) cannot be installed from the registries, so this assembles a MkDocs source folder
and runs `mkdocs build` with the mkdocs-jupyter plugin (the theme and plugin settings are in the repo's mkdocs.yml):

- Home: nbs/index.ipynb.  Library: every nbs/NN_*.ipynb and NNa_*.ipynb, code kept (the notebooks are the docs).
- Reports: every reports/*.ipynb and runs/<study>/report.ipynb (executed report notebooks), shown as a report:
  outputs and prose only, no code, without papermill's `parameters`/`injected-parameters` cells.
  No reports found: no Reports section.
- Like nbdev's docs: cells whose first line is `#| hide` (and `#| default_exp` cells) are left out, `#|` directive
  lines are not shown, `#| echo: false` hides the input, `#| output: false` the outputs, `#| include: false` the cell.
  stderr streams (library warnings) are left out.  Notebooks are never executed: a page shows what is committed.
- A library page reads as documentation (`library_notebook`):
  - API docs, as nbdev's `show_doc` renders them: after each `#| export` cell, a markdown cell per public name the
    cell defines (a top-level `def`/`class` listed in the module's `__all__`): its signature with the annotations,
    defaults and docments (parameter comments), and its docstring.  The module is imported (`#| default_exp` names it).
  - Tests folded: a code cell that is not exported and shows no output (asserts, set-up) is folded into a closed
    `<details>` block ("Tests"), adjacent ones into one block.  Cells with outputs (examples, tables, figures) and
    exported code stay open: the code is part of the documentation.
  - Long lines wrap (nbs/styles.css): nothing scrolls sideways.

The source folder holds docs/ (the copied notebooks) and mkdocs.yml (`INHERIT: <repo>/mkdocs.yml` plus docs_dir,
site_dir and the nav), so building into another folder (tests) never touches the repo's site/ or site_src/.
"""
from __future__ import annotations
import argparse, ast, copy, importlib, inspect, json, os, re, shutil, subprocess, sys, time, tomllib, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT_TAGS = {"parameters", "injected-parameters"}

def _src(cell) -> str: return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def directives(cell) -> dict:
    "The `#| key: value` lines at the top of a code cell, as {key: value} ('' for flags such as `hide`)."
    out = {}
    for line in _src(cell).splitlines():
        m = re.match(r"\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*)$", line)
        if not m:
            if line.strip(): break
            continue
        out[m.group(1).lower()] = m.group(2).strip().lower()
    return out

def _tag(cell, tag):
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags: tags.append(tag)

def clean_notebook(nb: dict, report: bool = False, renames: dict | None = None) -> dict:
    "A copy of `nb` as the site shows it: hidden cells removed, directive lines dropped; a report: no code, no parameters."
    nb, cells = copy.deepcopy(nb), []
    for cell in nb["cells"]:
        kind, src = cell["cell_type"], _src(cell)
        if kind == "raw": continue                                        # front matter (skip_exec) and raw text
        if kind == "markdown":
            for old, new in (renames or {}).items(): src = src.replace(f"]({old}", f"]({new}")
            cell["source"] = src; cells.append(cell); continue
        if report and set(cell.get("metadata", {}).get("tags", [])) & REPORT_TAGS: continue
        d = directives(cell)
        if "hide" in d or "default_exp" in d or d.get("include") == "false": continue
        cell["source"] = "\n".join(l for l in src.splitlines() if not re.match(r"\s*#\s*\|", l)).strip("\n")
        cell["outputs"] = [o for o in cell.get("outputs", [])
                           if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        if d.get("output") == "false": cell["outputs"] = []
        if report or d.get("echo") == "false":
            if not cell["outputs"]: continue                              # nothing to show without the code
            _tag(cell, "hide-input")
        if not _src(cell).strip() and not cell["outputs"]: continue
        cells.append(cell)
    nb["cells"] = cells
    return nb

EXPORTED = "udt-docs-exported"                  # a private cell-metadata mark: the cell is `#| export`

def lib_name(root: Path = ROOT) -> str:
    "The package's import name: `lib_path` in pyproject.toml's [tool.nbdev] (this repository's, if `root` has none)."
    path = root/"pyproject.toml" if (root/"pyproject.toml").exists() else ROOT/"pyproject.toml"
    return tomllib.loads(path.read_text())["tool"]["nbdev"]["lib_path"]

def import_module_of(nb: dict, root: Path = ROOT):
    "The module the notebook's `#| default_exp` exports to, imported; None for a notebook that exports nothing."
    exp = next((directives(c)["default_exp"] for c in nb["cells"] if c["cell_type"] == "code" and "default_exp" in directives(c)), None)
    if exp is None: return None
    lib = lib_name(root)
    if (root/lib).is_dir() and str(root) not in sys.path: sys.path.insert(0, str(root))
    name = lib if exp == "__init__" else f"{lib}.{exp}"
    try: return importlib.import_module(name)
    except Exception as e: raise RuntimeError(f"the API docs need `import {name}`, which failed ({type(e).__name__}: {e}); run nbdev-export and check the package installs") from e

def defined_names(src: str) -> list:
    "Names of the top-level functions and classes that the code `src` defines, in order."
    try: tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
    except SyntaxError: return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]

def api_doc(obj, name: str) -> str:
    "Markdown for `obj` as nbdev's `show_doc` renders it: a heading, the signature with its docments, the docstring."
    from nbdev.showdoc import MarkdownRenderer
    from fastcore.basics import copy_func
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                    # a builtin signature: nbdev falls back
        try: md = MarkdownRenderer(obj, name=name)._repr_markdown_()
        except NameError:               # an annotation names a type imported only under TYPE_CHECKING: keep it a string
            shown = copy_func(obj)                                          # a copy: the library's function is untouched
            shown.__signature__ = inspect.signature(obj)
            md = MarkdownRenderer(shown, name=name)._repr_markdown_()
    if inspect.isclass(obj):
        if "__init__" in vars(obj) or "__new__" in vars(obj) or "__signature__" in vars(obj):
            md = md.replace(f"def {name}(", f"class {name}(", 1)        # nbdev 3 writes `def` for a class too
        else:                                                           # inherited __init__ (exceptions): the bases
            bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
            md = re.sub(r"^```python\n.*?\n```", f"```python\nclass {name}({bases})\n```" if bases else f"```python\nclass {name}\n```", md, count=1, flags=re.S)
    return f"### {name}\n\n{md}"                                     # nbdev's heading: the name, level 3

def _fold(codes: list) -> dict:
    "One markdown cell: the test cells' code in a closed <details> block."
    blocks = []
    for code in codes:
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", code)), default=0))
        blocks.append(f"{fence}python\n{code}\n{fence}")
    label = "Tests" if len(codes) == 1 else f"Tests ({len(codes)} cells)"
    src = f'<details class="udt-tests"><summary>{label}</summary>\n\n' + "\n\n".join(blocks) + "\n\n</details>"
    return dict(cell_type="markdown", metadata={}, source=src)

def library_notebook(nb: dict, renames: dict | None = None, root: Path = ROOT) -> dict:
    "`clean_notebook` of a library notebook, with the API doc of each exported public name and its tests folded."
    mod, nb = import_module_of(nb, root), copy.deepcopy(nb)
    public = set(getattr(mod, "__all__", [])) if mod else set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code": continue
        meta = cell.setdefault("metadata", {})
        if "export" in directives(cell): meta[EXPORTED] = True
    cells, tests = [], []
    def flush():
        if tests: cells.append(_fold(tests)); tests.clear()
    for cell in clean_notebook(nb, renames=renames)["cells"]:
        meta = cell.get("metadata", {})
        exported = meta.pop(EXPORTED, False)
        if cell["cell_type"] == "code" and not exported and not cell["outputs"] and "hide-input" not in meta.get("tags", []):
            tests.append(_src(cell)); continue
        flush(); cells.append(cell)
        if exported:
            for name in defined_names(_src(cell)):
                if name in public and hasattr(mod, name):
                    cells.append(dict(cell_type="markdown", metadata={}, source=api_doc(getattr(mod, name), name)))
    flush()
    return nb | {"cells": cells}

def title_of(nb: dict, default: str) -> str:
    "The first `# Title` of the notebook's markdown, else `default`."
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown": continue
        m = re.search(r"^#\s+(.+?)\s*#*\s*$", _src(cell), re.M)
        if m: return re.sub(r"[`*]", "", m.group(1)).strip()                # plain text for the nav
    return default

def find_pages(root: Path = ROOT) -> dict:
    "{'home': path, 'library': [paths], 'reports': [(site name, path)]} of what the site shows."
    nbs = root/"nbs"
    if not (nbs/"index.ipynb").exists(): raise FileNotFoundError(f"{nbs/'index.ipynb'} is missing: the site's home page is nbs/index.ipynb")
    library = sorted(p for p in nbs.glob("[0-9][0-9]*_*.ipynb"))
    reports = [(f"reports/{p.name}", p) for p in sorted((root/"reports").glob("*.ipynb"))]
    taken = {n for n, _ in reports}
    for p in sorted((root/"runs").glob("*/report.ipynb")):
        name = f"reports/{p.parent.name}.ipynb"
        if name in taken: name = f"reports/{p.parent.name}-runs.ipynb"   # a committed report of the same study
        reports.append((name, p))
    return dict(home=nbs/"index.ipynb", library=library, reports=reports)

def _write_nb(nb, dest: Path):
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

def assemble(src: Path, root: Path = ROOT) -> list:
    "Write the cleaned notebooks (and styles.css) into `src`/docs; return the nav."
    pages, docs = find_pages(root), src/"docs"
    if docs.exists(): shutil.rmtree(docs)
    docs.mkdir(parents=True)
    renames = {p.name: p.with_suffix(".html").name for p in pages["library"]} | {"index.ipynb": "index.html"}
    load = lambda p: json.loads(p.read_text(encoding="utf-8"))
    shutil.copy(root/"nbs"/"styles.css", docs/"styles.css")                 # shared with Quarto's _quarto.yml
    home = load(pages["home"])
    _write_nb(clean_notebook(home, renames=renames), docs/"index.ipynb")
    nav = [{"Home": "index.ipynb"}]
    lib = []
    for p in pages["library"]:
        nb = load(p)
        _write_nb(library_notebook(nb, renames=renames, root=root), docs/p.name)
        lib.append({title_of(nb, p.stem): p.name})
    if lib: nav.append({"Library": lib})
    reps = []
    for name, p in pages["reports"]:
        nb = load(p)
        _write_nb(clean_notebook(nb, report=True), docs/name)
        label = title_of(nb, Path(name).stem)
        study = p.parent.name if p.name == "report.ipynb" else Path(name).stem
        reps.append({f"{label} ({study})" if study.lower() not in label.lower() else label: name})
    if reps: nav.append({"Reports": reps})
    return nav

def write_config(src: Path, out: Path, nav: list, root: Path = ROOT) -> Path:
    "`src`/mkdocs.yml: the repo's mkdocs.yml with this build's folders and nav (JSON is valid YAML)."
    cfg = {"INHERIT": str(root/"mkdocs.yml"), "docs_dir": str((src/"docs").resolve()),
           "site_dir": str(out.resolve()), "nav": nav,
           "plugins": {"mkdocs-jupyter": {"cache_dir": str((src/".cache"/"mkdocs-jupyter").resolve())}}}
    path = src/"mkdocs.yml"
    path.write_text(json.dumps(cfg, indent=1) + "\n")
    return path

def build(out: Path = ROOT/"site", src: Path = ROOT/"site_src", strict: bool = False, root: Path = ROOT,
          quiet: bool = False, verbose: bool = False) -> Path:
    "Assemble `src` and run `mkdocs build` into `out`; return the home page, `out`/index.html."
    out, src = Path(out).resolve(), Path(src).resolve()
    for what, d in (("--out", out), ("--src", src)):
        if d == root.resolve() or d in root.resolve().parents: raise ValueError(f"{what} {d} would replace the repository: pick a folder such as site/")
    if out.is_dir() and any(out.iterdir()) and not (out/"sitemap.xml").exists():   # mkdocs --clean empties it
        raise ValueError(f"--out {out} is a non-empty folder that holds no built site: pick a new or a site folder")
    src.mkdir(parents=True, exist_ok=True)
    cfg = write_config(src, out, assemble(src, root), root)
    cmd = [sys.executable, "-m", "mkdocs", "build", "--clean", "-f", str(cfg)] + (["--strict"] if strict else []) + (["-q"] if quiet else [])
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}                     # mkdocs-material's end-of-life banner
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    log = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    if r.returncode: raise RuntimeError(f"mkdocs build failed (rc {r.returncode}); command: {' '.join(cmd)}\n" + "\n".join(log))
    shown = log if verbose else [l for l in log if not l.startswith("INFO")]
    if shown and not quiet: print("\n".join(shown))
    return out/"index.html"

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT/"site"), help="site folder (default: site/)")
    ap.add_argument("--src", default=str(ROOT/"site_src"), help="assembled source folder (default: site_src/)")
    ap.add_argument("--strict", action="store_true", help="fail on any MkDocs warning")
    ap.add_argument("--verbose", action="store_true", help="show MkDocs' INFO lines too")
    a = ap.parse_args(argv)
    t0 = time.time()
    home = build(Path(a.out), Path(a.src), strict=a.strict, verbose=a.verbose)
    print(f"docs site built in {time.time() - t0:.1f} s: {home}")

if __name__ == "__main__":
    try: main()
    except (RuntimeError, ValueError, FileNotFoundError) as e: sys.exit(f"tools/docs.py: {e}")
