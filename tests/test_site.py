"""The offline documentation site builds from the project's notebooks, executing them (slow: several minutes
on a loaded 2-core machine the first time, then the executed notebooks are cached in `_proc/_site/`).

Every notebook gets a page and executes without error, the figures a notebook makes (or saves) are embedded
in its page, and no page loads a script or stylesheet from outside the site. The MathJax/require.js/widget assets are checked when they could
be vendored (the npm cache or registry was reachable); otherwise the build must say why.
"""
import re
from pathlib import Path

import nbformat
import pytest
from nbdev.config import get_config

from vaenb.site import ASSET_URLS, build_site, notebook_sources

pytestmark = pytest.mark.slow
NBS = Path(get_config().nbs_path)
REFERENCE = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["\']?([^"\'\s>]+)', re.I)
FIGURE = re.compile(r'<img[^>]+src="data:image/png;base64,')   # the template's CSS holds a data: PNG too: count <img> only
FIGURE_NOTEBOOKS = [  # notebooks whose (fast) cells draw figures: the committed notebooks save none of them
    "40_viz.ipynb", "02_dsprites.ipynb",
    "14_betavae_dsprites.ipynb",
    "experiments/train_eval.ipynb",
]


def _png_outputs(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    return out, build_site(out, quiet=True)


def test_every_notebook_has_a_page(site):
    out, summary = site
    sources = [str(p.relative_to(NBS)) for p in notebook_sources(NBS)]
    assert sorted(summary["pages"]) == sorted(sources)
    for page in summary["pages"].values():
        assert (out / page).is_file() and (out / page).stat().st_size > 1000, page
    index = (out / "index.html").read_text()
    for page in summary["pages"].values():
        if page != "index.html": assert f'href="{page}"' in index, f"{page} missing from the contents of index.html"


def test_every_notebook_executes(site):
    _, summary = site
    assert not summary["execution_failures"], f"notebooks failing at build time: {summary['execution_failures']}"


def test_saved_figures_are_embedded(site):
    out, summary = site
    for src, page in summary["pages"].items():
        expected, found = _png_outputs(NBS / src), len(FIGURE.findall((out / page).read_text()))
        assert found >= expected, f"{page}: {found} embedded PNG figures, fewer than the {expected} that {src} saves"


@pytest.mark.parametrize("src", FIGURE_NOTEBOOKS)
def test_executed_figures_are_embedded(site, src):
    out, summary = site
    assert FIGURE.search((out / summary["pages"][src]).read_text()), f"{summary['pages'][src]} shows no figure of {src}"


def test_no_page_loads_anything_from_outside(site):
    out, summary = site
    for page in summary["pages"].values():
        text = (out / page).read_text()
        for url in REFERENCE.findall(text):   # every script and stylesheet is a file of the site
            target = (out / url.split("?")[0].split("#")[0]).resolve()
            assert ":" not in url and not url.startswith("/") and target.is_relative_to(out.resolve()), f"{page} loads {url}"
            assert target.is_file(), f"{page} loads {url}, which the site lacks"
        assert '<span class="c1">#|' not in text, f"{page} shows nbdev directive lines in its code cells"


def test_assets_vendored_or_reported(site):
    out, summary = site
    if summary["asset_problems"]:
        pytest.skip(f"offline assets could not be vendored: {summary['asset_problems']}")
    for _, url in ASSET_URLS.values():
        assert (out / url.split("?")[0]).is_file(), url
    assert (out / "assets/mathjax/config/TeX-AMS_CHTML-full.js").is_file()
    assert 'src="assets/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"' in (out / summary["pages"]["index.ipynb"]).read_text()
