"""Open a page in headless Chromium: the DOM after its scripts ran, a screenshot, and a summary of what it shows.

Usage: python tools/browser.py PAGE.html [--screenshot out.png] [--width 1280] [--height 2000]
       prints the page summary as JSON: {"tables": n, "images": n, "png_images": n, "other_images": n,
       "svg_images": n, "svg_icons": n, "headings": [...]}

Importable (tests load it from tools/): find_chromium(), render_dom(page), screenshot(page, png), page_summary(dom).
Chromium is Debian's `chromium` (`make browser` installs it). It runs with no network at all (every host name
resolves to nothing), so a page that needs a CDN shows it.  Standard library only: no dependency on the project.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTALL_HINT = "run `make browser` (installs Debian's chromium: apt-get install chromium), or set CHROMIUM=/path/to/chromium"

class ChromiumMissing(FileNotFoundError): pass

def find_chromium() -> str | None:
    "Path of a Chromium/Chrome executable ($CHROMIUM first), or None."
    env = os.environ.get("CHROMIUM")
    if env: return env if Path(env).is_file() and os.access(env, os.X_OK) else shutil.which(env)
    for name in CANDIDATES:
        if path := shutil.which(name): return path
    return None

def _url(page) -> str:
    s = str(page)
    if "://" in s or s.startswith(("file:", "data:", "about:")): return s
    p = Path(s)
    if not p.exists(): raise FileNotFoundError(f"{p} does not exist: give an HTML file or a URL")
    return p.resolve().as_uri()

def _run(args: list, page, timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None: raise ChromiumMissing(f"no headless Chromium found: {INSTALL_HINT}")
    url = _url(page)
    with tempfile.TemporaryDirectory(prefix="udt-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--mute-audio",
               "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",  # offline
               f"--user-data-dir={profile}", *args, url]
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=profile)
        except subprocess.TimeoutExpired as e:
            raise TimeoutError(f"chromium did not finish {url} within {timeout:.0f} s (raise timeout=...)") from e
    if r.returncode:
        err = r.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"chromium failed on {url} (rc {r.returncode}): {err}")
    return r

def render_dom(page, timeout: float = 60, budget_ms: int = 3000) -> str:
    "The serialised DOM of `page` (an HTML file or URL) after its scripts ran (`chromium --headless --dump-dom`)."
    r = _run(["--dump-dom", f"--virtual-time-budget={budget_ms}"], page, timeout)
    dom = r.stdout.decode("utf-8", errors="replace")
    if "<html" not in dom.lower(): raise RuntimeError(f"chromium returned no DOM for {page}: {r.stderr.decode(errors='replace')[-1000:]}")
    return dom

def screenshot(page, png_path, width: int = 1280, height: int = 2000, timeout: float = 60, budget_ms: int = 3000) -> Path:
    "Write a `width`x`height` PNG screenshot of `page` (HTML file or URL) to `png_path`; return the path."
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists(): png.unlink()
    r = _run([f"--screenshot={png}", f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}"], page, timeout)
    if not png.exists() or png.read_bytes()[:8] != PNG_SIGNATURE:
        raise RuntimeError(f"chromium wrote no PNG screenshot of {page} to {png}: {r.stderr.decode(errors='replace')[-1000:]}")
    return png

def _num(v) -> float:
    m = re.match(r"\s*([0-9.]+)", v or "")
    return float(m.group(1)) if m else 0.0

def _svg_is_figure(attrs: dict) -> bool:
    "An inline <svg> is a figure, not an icon: not aria-hidden and bigger than 48 units (width/height or viewBox)."
    if attrs.get("aria-hidden") == "true": return False
    box = [_num(x) for x in (attrs.get("viewbox") or "").split()[2:4]]
    return max([_num(attrs.get("width")), _num(attrs.get("height")), *box]) > 48

class _Summary(HTMLParser):
    "Counts tables, images and inline SVG figures (icons and nested <svg>s are not counted) and collects headings."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables = self.png = self.other_img = self.svg = self.icons = 0
        self.headings, self._h, self._skip, self._svg_depth = [], None, 0, 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs); src = a.get("src") or ""
        if tag in ("script", "style"): self._skip += 1
        elif tag == "table": self.tables += 1
        elif tag == "img":
            if src.startswith("data:image/png;base64,"): self.png += 1
            else: self.other_img += 1
        elif tag == "svg":
            if not self._svg_depth:
                if _svg_is_figure(a): self.svg += 1
                else: self.icons += 1
            self._svg_depth += 1
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"): self._h = [tag, ""]
    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "svg": self.handle_endtag(tag)
    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip: self._skip -= 1
        elif tag == "svg" and self._svg_depth: self._svg_depth -= 1
        elif self._h and tag == self._h[0]:
            text = " ".join(self._h[1].replace("¶", "").split())
            if text: self.headings.append(text)
            self._h = None
    def handle_data(self, data):
        if self._h and not self._skip: self._h[1] += data

def page_summary(dom: str) -> dict:
    "Counts of tables and images (base64 PNG <img>, other <img>, inline <svg> figures) and the headings of `dom`."
    p = _Summary(); p.feed(dom); p.close()
    return dict(tables=p.tables, images=p.png + p.other_img + p.svg, png_images=p.png, other_images=p.other_img,
                svg_images=p.svg, svg_icons=p.icons, headings=p.headings)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", help="HTML file or URL")
    ap.add_argument("--screenshot", help="also write a PNG screenshot here")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args(argv)
    summary = page_summary(render_dom(a.page, timeout=a.timeout))
    if a.screenshot:
        png = screenshot(a.page, a.screenshot, a.width, a.height, timeout=a.timeout)
        summary["screenshot"] = dict(path=str(png), bytes=png.stat().st_size)
    print(json.dumps(summary, indent=1, ensure_ascii=False))

if __name__ == "__main__":
    try: main()
    except (FileNotFoundError, RuntimeError, TimeoutError) as e: sys.exit(f"tools/browser.py: {e}")
