"""End to end in a real browser: Voilà serves a traversal notebook on 127.0.0.1, headless Chromium moves a slider;
and the docs site, opened from disk with every request outside it refused, shows its landing figure, finds
"InfoMEC" with its search box, links to no placeholder host, and draws the Play widget's icons.

Needs Debian's `chromium` (/usr/bin/chromium) and the pip packages `playwright` (its Python driver only; no
browser download) and `voila`. Skips with the reason when one is missing. Slow: ~10-20 s for the widget, plus
a build of the site (minutes the first time; executed notebooks are cached in `_proc/_site/`).
"""
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time

from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from nbdev.config import get_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
NOTEBOOK = """\
from vaenb.data.toy import ToySquares
from vaenb.train import train
from vaenb.models.vae import create_model
from vaenb.viz.widgets import TraversalExplorer

data = ToySquares()
model = create_model("betavae", backbone="mlp", image_size=8, latent_dim=4, hidden_dim=64, lr=5e-3, seed=0)
model = train(model, data, steps=100, batch_size=64, progress=False).model.eval()
TraversalExplorer(model, data, index=30)"""

pytestmark = pytest.mark.slow


def _missing() -> list[str]:
    missing = [] if os.access(CHROMIUM, os.X_OK) else ["chromium (apt-get install -y chromium)"]
    missing += [f"{m} (pip install {m})" for m in ("playwright", "voila") if importlib.util.find_spec(m) is None]
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila_server(tmp_path):
    if _missing(): pytest.skip(f"browser test needs {', '.join(_missing())}")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "traversal.ipynb")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for var, sub in (("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "rt"),
                     ("IPYTHONDIR", "ipy"), ("MPLCONFIGDIR", "mpl")):
        env[var] = str(tmp_path / sub)
    port = _free_port()
    log = open(tmp_path / "voila.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "voila", str(tmp_path / "traversal.ipynb"), f"--port={port}", "--no-browser",
                               "--Voila.ip=127.0.0.1"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None: pytest.fail(f"voila exited: {(tmp_path / 'voila.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError: time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        try: server.wait(10)
        except subprocess.TimeoutExpired: server.kill()
        log.close()


def test_moving_a_slider_changes_the_decoded_image(voila_server, tmp_path):
    from playwright.sync_api import sync_playwright
    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
            page.goto(voila_server, timeout=120_000)
            image = page.locator(".vaenb-decoded")
            image.wait_for(timeout=120_000)
            page.wait_for_function("!!document.querySelector('.vaenb-decoded').src", timeout=30_000)
            before = image.get_attribute("src")
            page.screenshot(path=tmp_path / "before.png")
            handle = page.locator(".vaenb-latent-0 .noUi-handle")
            handle.focus()
            for _ in range(8): handle.press("ArrowRight")
            page.wait_for_function(f"document.querySelector('.vaenb-decoded').src !== {before!r}", timeout=30_000)
            page.screenshot(path=tmp_path / "after.png")
        finally:
            browser.close()
    assert (tmp_path / "after.png").stat().st_size > 0
    # Font Awesome's stylesheet is the one request Voilà makes outside the machine (icons only)
    assert all("font-awesome" in u or "fontawesome" in u for u in outside), outside


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory):
    if _missing(): pytest.skip(f"browser test needs {', '.join(_missing())}")
    from vaenb.site import build_site
    out = tmp_path_factory.mktemp("site")
    return out, build_site(out, quiet=True)


def _offline_page(browser, outside: list):
    "A page whose requests outside file: and data: URLs are refused, and recorded in `outside`."
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")): r.continue_()
        else: outside.append(r.request.url); r.abort()
    page.route("**/*", route)
    return page


def _placeholder_hosts() -> list[str]:
    cfg = get_config()
    return [urlsplit(u).netloc + urlsplit(u).path.rstrip("/") for u in (cfg.git_url, cfg.doc_host) if u]


LINKS_JS = "Array.from(document.querySelectorAll('[href],[src]')).map(e => e.getAttribute('href') || e.getAttribute('src'))"
BROKEN_IMAGES_JS = "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80))"

ICONS_JS = """async () => { await document.fonts.ready; const i = document.querySelector('.widget-play .fa-play');
  return {family: getComputedStyle(i).fontFamily,
          status: Array.from(document.fonts).filter(f => f.family.includes('FontAwesome')).map(f => f.status)}; }"""


def test_docs_site_offline(docs_site, tmp_path):
    from playwright.sync_api import sync_playwright
    out, summary = docs_site
    outside, hosts = [], _placeholder_hosts()
    assert "github.com/vaenb/vaenb" in hosts, hosts   # settings.ini as committed: the placeholder repository
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = _offline_page(browser, outside)
            page.goto((out / "index.html").as_uri(), wait_until="load")
            figures = page.evaluate("Array.from(document.querySelectorAll('main img, .jp-Cell img')).map(i => i.naturalWidth)")
            assert figures and all(w > 0 for w in figures), f"the landing page's figures do not load: widths {figures}"
            assert not page.evaluate(BROKEN_IMAGES_JS), page.evaluate(BROKEN_IMAGES_JS)
            links = page.evaluate(LINKS_JS)
            page.fill("#vaenb-search", "InfoMEC")
            page.wait_for_selector("#vaenb-results a", timeout=10_000)
            hits = page.eval_on_selector_all("#vaenb-results a", "as => as.map(a => [a.textContent, a.getAttribute('href')])")
            assert any("InfoMEC" in text and href.startswith(summary["pages"]["54_infomec.ipynb"]) for text, href in hits), hits[:5]
            page.screenshot(path=tmp_path / "search.png")
            page.click("#vaenb-results a")
            page.wait_for_load_state("load")
            assert Path(urlsplit(page.url).path).name == summary["pages"]["54_infomec.ipynb"], page.url
            links += page.evaluate(LINKS_JS)
            if not summary["asset_problems"]:   # the saved widgets render only with the vendored widget manager
                page.goto((out / summary["pages"]["61_widgets.ipynb"]).as_uri(), wait_until="load")
                page.wait_for_selector(".widget-play .fa-play", timeout=60_000)
                icons = page.evaluate(ICONS_JS)
                page.screenshot(path=tmp_path / "widgets.png")
                assert "FontAwesome" in icons["family"] and "loaded" in icons["status"], icons
                links += page.evaluate(LINKS_JS)
        finally:
            browser.close()
    assert not [u for u in links if any(h in u for h in hosts)], [u for u in links if any(h in u for h in hosts)][:5]
    assert not outside, f"the site requested {outside[:5]} from outside"
