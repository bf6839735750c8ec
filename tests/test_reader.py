"""Reader editions (book/reader.py): the notebooks the book hands out read right with no MyST renderer."""

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbconvert import HTMLExporter

from mtlutils import prose

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402
import reader  # noqa: E402
import urls  # noqa: E402
from tests.conftest import FORK  # noqa: E402

IDS = [p.stem for p in build.NOTEBOOKS]
# what only a MyST renderer understands: roles, directives and their options
MYST = re.compile(r"\{[a-z][\w:-]*\}`|````|^:(label|class):|\{(glue|cite|exercise|solution|doc|ref|numref|eq)\b", re.M)


def markdown_cells(notebook):
    return [c.source for c in notebook.cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_reader_edition_of_a_source_has_no_myst_and_keeps_every_value_citation_and_exercise(source):
    text = source.read_text()
    edition = reader.reader_edition(jupytext.read(source), source="mtlutils-from-here")
    assert not [m for cell in markdown_cells(edition) for m in MYST.findall(cell)]
    computed = [reader.computed_template(c) for c in edition.cells if reader.computed_template(c) is not None]
    names = set(re.findall(r"\{glue:(?:text|md)\}`(\w+)", text))
    assert names and names == {n for cell in computed for n in re.findall(r"(?<!\{)\{(\w+)[:!}]", cell)}
    keys = {k.strip() for group in re.findall(r"\{cite\}`([^`]+)`", text) for k in group.split(",")}
    prose_text = "\n".join(markdown_cells(edition) + computed)
    for key in keys:
        authors, year = reader.citation_labels()[key]
        assert f"[{authors}, {year}]({urls.references_url()})" in prose_text
    assert len(re.findall(r"^#### Exercise \d+", prose_text, re.M)) == text.count("{exercise}")
    assert prose_text.count("<summary>Solution</summary>") == text.count("{solution-start}")
    assert "mtlutils-from-here" in edition.cells[0].source
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in edition.cells if reader.computed_template(c))


def test_a_citation_of_an_unknown_key_names_the_bibliography():
    with pytest.raises(ValueError, match=r"not in book/references.bib"):
        reader.citations("as {cite}`nobody2099`", "https://example.org/references.html")


def test_a_solution_left_open_is_refused():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "````{solution-start} ex-open\n:class: dropdown\n````\n\nThe answer.")])
    with pytest.raises(ValueError, match="ex-open has no"):
        reader.reader_edition(notebook, source="x")


def test_braces_of_the_prose_stay_literal_around_the_values():
    template = reader.template(r"$\frac{a}{b}$ is {glue:text}`ratio:.2f`, {glue:md}`verdict`")
    values = {"ratio": {"text/plain": "0.123"}, "verdict": {"text/markdown": "**clear**"}}
    assert prose.fill(template, values) == r"$\frac{a}{b}$ is 0.12, **clear**"


@pytest.mark.xdist_group("smoke-book")
@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_reader_edition_renders_with_nbconvert_with_no_myst_and_the_runs_numbers(source, smoke_executed):
    executed = nbformat.read(smoke_executed(source), as_version=4)
    edition = reader.reader_edition(executed, source="x")
    glued = reader.glued_values(executed)
    for cell in (c for c in edition.cells if reader.computed_template(c) is not None):
        template = reader.computed_template(cell)
        assert cell.outputs[0].data["text/markdown"] == prose.fill(template, glued)
    html, _ = HTMLExporter(exclude_input=True).from_notebook_node(edition)
    shown = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    assert not MYST.findall(shown)
    assert "<summary>Solution</summary>" in shown and 'href="' + urls.references_url() in shown
    assert not [o for c in edition.cells for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})]


def test_install_cell_does_nothing_where_mtlutils_is_installed(tmp_path):
    cell = reader.reader_edition(nbformat.v4.new_notebook(), source=str(tmp_path / "no-such-clone")).cells[0].source
    done = subprocess.run([sys.executable, "-c", cell], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and "Installing" not in done.stdout, done.stderr


@pytest.mark.xdist_group("smoke-book")
def test_the_built_book_hands_out_the_reader_editions(smoke_book):
    html = smoke_book.parent
    for source in build.NOTEBOOKS:
        edition = html / "_notebooks" / f"{source.stem}.ipynb"
        assert nbformat.read(edition, as_version=4).cells[0].source.startswith("# mtlutils, the book's package")
        page = (html / "notebooks" / f"{source.stem}.html").read_text()
        assert f"_sources/notebooks/{source.stem}.ipynb" in page  # the download button's .ipynb ...
        assert (html / "_sources" / "notebooks" / edition.name).read_bytes() == edition.read_bytes()  # ... is it
        colab = re.findall(r"https://colab\.research\.google\.com/github/[^\"']+", page)
        assert colab and set(colab) == {urls.colab_url(edition.name, FORK)}
