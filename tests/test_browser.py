"""The built book in a real headless browser: every page of the table of contents loads, its figures load, its
internal links lead somewhere, and its maths renders. A screenshot of the first chapter is saved.

Skipped, saying why, without Chromium and ChromeDriver (tests/chromium.py).
"""

import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
import yaml

from tests import chromium

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [chromium.needed, pytest.mark.xdist_group("smoke-book")]


def toc_pages() -> list[str]:
    """The HTML path of every page in _toc.yml, root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for entry in toc.get("chapters", []) + [e for part in toc.get("parts", []) for e in part["chapters"]]:
        files.append(entry["file"])
    return [f"{f}.html" for f in files]


@pytest.fixture(scope="module")
def site(smoke_book):
    """The built book served on localhost (as a reader's browser would load it); yields its base URL."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(smoke_book.parent))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", smoke_book.parent
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium.start(tmp_path_factory.mktemp("chromium"))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


MATHS_DONE = """
const done = arguments[arguments.length - 1];
const ready = window.MathJax && MathJax.startup && MathJax.startup.promise;
(ready ? MathJax.startup.promise : Promise.resolve()).then(() => done({
  mathjax: Boolean(window.MathJax && MathJax.version),
  maths: document.querySelectorAll('.math').length,
  rendered: document.querySelectorAll('mjx-container').length,
  errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error') || e.textContent),
  images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
  title: document.title,
}));
"""


def _target_exists(root: Path, page_url: str, href: str, base: str) -> str | None:
    """None when an internal link resolves to a file (and its anchor to an id there); otherwise the problem."""
    url, fragment = urldefrag(urljoin(page_url, href))
    if not url.startswith(base):
        return None  # external: not checked offline
    path = root / unquote(urlparse(url).path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    if not path.exists():
        return f"{href}: no such file"
    if fragment and path.suffix == ".html":
        ids = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
        if unquote(fragment) not in ids:
            return f"{href}: no element with id {fragment!r}"
    return None


@pytest.mark.parametrize("page", toc_pages())
def test_every_page_of_the_contents_renders(page, site, browser):
    base, root = site
    assert (root / page).exists(), f"{page} is in _toc.yml but was not built"
    browser.set_script_timeout(60)
    browser.get(base + page)
    state = browser.execute_async_script(MATHS_DONE)
    assert "404" not in state["title"], f"{page}: not found"
    assert not state["images"], f"{page}: figures that did not load: {state['images']}"
    assert state["mathjax"] or not state["maths"], f"{page}: MathJax did not load"
    assert state["rendered"] >= state["maths"], f"{page}: {state['maths'] - state['rendered']} formulas not rendered"
    assert not state["errors"], f"{page}: maths errors {state['errors']}"
    broken = [p for p in (_target_exists(root, base + page, h, base) for h in state["links"]) if p]
    assert not broken, f"{page}: broken internal links: {broken}"
    first_chapter = next(p for p in toc_pages() if p.startswith("notebooks/"))
    if page in (toc_pages()[0], first_chapter):
        chromium.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(chromium.SCREENSHOTS / f"{Path(page).stem}.png"))
