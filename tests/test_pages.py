"""The project's own pages (`nbs/paper.md`, `nbs/assets.md`), which the notebooks cite: present, and the paper's
tables on `paper.md` the same numbers as `transfer.paper_table`, which the reports compare with."""
import re

import pandas as pd

from studies import ROOT

def _tables(md:str)->dict[int, list[list[str]]]:
    "Table n of the page: its rows (cells as text), header and rule left out."
    out = {}
    for n, body in re.findall(r"^### Table (\d)[^\n]*\n\n((?:\|[^\n]*\n)+)", md, flags=re.M):
        out[int(n)] = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines()[2:]]
    return out

def test_paper_page_tables_are_paper_table():
    from unified_delta_tuning.transfer import paper_table
    tables = _tables((ROOT/"nbs"/"paper.md").read_text())
    assert sorted(tables) == [1, 2, 3, 4]
    for n, rows in tables.items():
        t = paper_table(n); k = t.index.nlevels
        assert [r[k - 1] for r in rows] == [i[-1] if k == 2 else i for i in t.index], n    # the same tasks, in order
        assert pd.DataFrame([[float(x) for x in r[k:]] for r in rows]).values.tolist() == t.round(1).values.tolist(), n

def test_cited_pages_exist():
    cited = set()
    for nb in (ROOT/"nbs").glob("*.ipynb"): cited |= set(re.findall(r"`(paper\.md|assets\.md)`", nb.read_text()))
    for page in cited | {"paper.md", "assets.md"}: assert (ROOT/"nbs"/page).is_file(), page
