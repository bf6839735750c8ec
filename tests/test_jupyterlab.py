"""A chapter's reader edition in the project's own JupyterLab, in headless Chromium: before it runs and after "Run
All" in smoke mode, its computed sentences show their numbers, its citations and exercises are rendered, and no
MyST markup is left on the page. A screenshot is saved to _build/screenshots/.

Skipped, saying why, without Chromium and ChromeDriver (tests/chromium.py).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from mtlutils import prose
from tests import chromium

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402
import reader  # noqa: E402
import urls  # noqa: E402

pytestmark = [chromium.needed, pytest.mark.xdist_group("smoke-book")]
CHAPTER = build.NOTEBOOKS[0]  # it has computed sentences, citations and exercises, and runs in seconds
TOKEN = "reader-edition-test"
SETTINGS = {  # every cell rendered at once (no windowing), and no news or update checks from the network
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
NOTEBOOK_TEXT = "return document.querySelector('.jp-NotebookPanel .jp-Notebook').innerText"
RUN_ALL = """const done = arguments[arguments.length - 1];
window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => done('ran'), e => done('failed: ' + e));"""
ERRORS = """const notebook = window.jupyterapp.shell.currentWidget.content.model, errors = [];
for (let i = 0; i < notebook.cells.length; i++) {
  const cell = notebook.cells.get(i);
  if (cell.type === 'code') for (const o of cell.outputs.toJSON()) if (o.output_type === 'error') errors.push(o.ename);
}
return errors;"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shown_values(edition, glued) -> list[str]:
    """The computed values that the edition's paragraphs show, as they read on the page: those with a number in
    them and long enough not to occur by chance, with no maths or markup to be rendered."""
    static, values = "\n".join(c.source for c in edition.cells), set()  # a value also in a source is no evidence
    for template in filter(None, map(reader.computed_template, edition.cells)):
        for name, spec, markdown in re.findall(r"(?<!\{)\{(\w+)(?::([^}!]*))?(!m)?\}", template):
            value = (glued[name]["text/markdown"].replace("**", "") if markdown
                     else prose.as_text(glued[name]["text/plain"], spec))
            if (re.search(r"\d", value) and len(value) >= 5 and value not in static
                    and not re.search(r"[$`*_\[\\<]", value)):
                values.add(value)
    return sorted(values)


@pytest.fixture(scope="module")
def lab(smoke_executed, smoke_cache, tmp_path_factory):
    """The project's JupyterLab on 127.0.0.1, serving the reader edition of the first chapter as executed in smoke
    mode, with SIZE = "smoke" in its parameters cell; yields the notebook's URL, the edition and the values that
    the smoke run glued."""
    folder = tmp_path_factory.mktemp("lab")
    executed = nbformat.read(smoke_executed(CHAPTER), as_version=4)
    edition = reader.reader_edition(executed, source="x")
    parameters = next(c for c in edition.cells if c.source.startswith("SIZE = "))
    parameters.source = re.sub(r'^SIZE = "small"', 'SIZE = "smoke"', parameters.source)
    nbformat.write(edition, folder / f"{CHAPTER.stem}.ipynb")
    settings = folder / "settings"
    for name, values in SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port = free_port()
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
           "MTLUTILS_CACHE": str(smoke_cache), "MTLUTILS_FIGURES": str(folder / "figures"), "MTLUTILS_WORKERS": "1",
           "MTLUTILS_RUNS_URL": ""}  # the chapter trains here what the smoke cache lacks
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        yield f"{base}/lab/tree/{CHAPTER.stem}.ipynb?token={TOKEN}", edition, reader.glued_values(executed)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium.start(tmp_path_factory.mktemp("chromium"), window="1400,1100")
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(300)
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds=120, what="the page"):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come within {seconds} s")


def rendered_text(driver, values: list[str], labels: list[str]) -> str:
    """The notebook's text once every value and label is on it, or after two minutes: outputs (Markdown above all)
    render a moment after their cells appear."""
    def text():
        return driver.execute_script(NOTEBOOK_TEXT) or ""
    try:
        wait_for(driver, lambda: all(s in text() for s in (*values, *labels)), what="the computed values")
    except AssertionError:
        pass  # check_reads_right then says which one is missing
    return text()


def check_reads_right(text: str, values: list[str], labels: list[str]) -> None:
    for raw in ("{glue", "{cite}", "{exercise}", "{solution", "````", ":label:"):
        assert raw not in text, f"raw MyST {raw!r} on the page"
    for value in values:
        assert value in text, f"computed value {value!r} not on the page"
    for label in labels:
        assert label in text, f"citation {label!r} not on the page"
    assert re.search(r"Exercise 1\b", text) and "Solution" in text


def test_a_chapter_reads_right_in_jupyterlab_before_and_after_run_all(lab, browser):
    url, edition, glued = lab
    values = shown_values(edition, glued)
    markdown = "".join(c.source for c in edition.cells if c.cell_type == "markdown")
    labels = sorted({f"{a}, {y}" for a, y in reader.citation_labels().values() if f"[{a}, {y}]" in markdown})
    assert len(values) >= 5 and labels
    browser.get(url)
    wait_for(browser, lambda: browser.execute_script(
        "const n = document.querySelector('.jp-NotebookPanel .jp-Notebook');"
        "return n && n.querySelectorAll('.jp-Cell').length > 20"), what="the notebook")
    check_reads_right(rendered_text(browser, values, labels), values, labels)  # before it runs: the book's run
    links = f"return document.querySelectorAll('.jp-Notebook a[href=\"{urls.references_url()}\"]').length"
    assert browser.execute_script(links) >= len(labels)

    browser.execute_script("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    wait_for(browser, lambda: not any(v in browser.execute_script(NOTEBOOK_TEXT) for v in values),
             what="clearing the outputs")
    assert browser.execute_async_script(RUN_ALL) == "ran"
    assert browser.execute_script(ERRORS) == []
    check_reads_right(rendered_text(browser, values, labels), values, labels)  # after "Run All" in smoke mode: this kernel's values, the same ones

    chromium.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("[...document.querySelectorAll('.jp-Notebook .jp-Cell')].find(c => "
                           "c.innerText.includes('worst angle')).scrollIntoView()")
    time.sleep(1)
    browser.save_screenshot(str(chromium.SCREENSHOTS / f"jupyterlab-{CHAPTER.stem}.png"))

