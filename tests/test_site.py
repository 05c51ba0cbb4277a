"""The offline documentation site builds from the project's notebooks (slow: ~1-1.5 min on a loaded 2-core machine).

Every notebook gets a page, the figures saved in a notebook are embedded in its page, and no page loads a
script or stylesheet from outside the site. The MathJax/require.js/widget assets are checked when they could
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
EXTERNAL = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["\']?(?:https?:)?//', re.I)


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


def test_figures_are_embedded(site):
    out, summary = site
    for src, page in summary["pages"].items():
        expected = _png_outputs(NBS / src)
        assert (out / page).read_text().count("data:image/png;base64,") >= expected, f"{page}: fewer embedded PNGs than {src} saves"


def test_no_page_loads_anything_from_outside(site):
    out, summary = site
    for page in summary["pages"].values():
        text = (out / page).read_text()
        assert not EXTERNAL.findall(text), f"{page} loads {EXTERNAL.findall(text)}"
        assert '<span class="c1">#|' not in text, f"{page} shows nbdev directive lines in its code cells"


def test_assets_vendored_or_reported(site):
    out, summary = site
    if summary["asset_problems"]:
        pytest.skip(f"offline assets could not be vendored: {summary['asset_problems']}")
    for _, url in ASSET_URLS.values():
        assert (out / url.split("?")[0]).is_file(), url
    assert (out / "assets/mathjax/config/TeX-AMS_CHTML-full.js").is_file()
    assert 'src="assets/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"' in (out / summary["pages"]["index.ipynb"]).read_text()
