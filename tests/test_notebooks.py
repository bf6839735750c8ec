"""Every chapter: paired with an output-free .ipynb, parameterised, executed in smoke mode, built into the book."""

import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402

SMOKE = ROOT / "_build" / "executed-smoke"
IDS = [p.stem for p in build.NOTEBOOKS]


def test_there_are_chapters():
    assert build.NOTEBOOKS, "no notebooks/NN_topic.py found"


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_paired_ipynb_is_in_sync_and_has_no_outputs(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `make sync`"
    text, notebook = jupytext.read(source), jupytext.read(paired)
    cells = lambda nb: [(c.cell_type, c.source) for c in nb.cells]  # noqa: E731
    assert cells(text) == cells(notebook), f"{paired.name} is out of sync with {source.name}: run `make sync`"
    raw = nbformat.read(paired, as_version=4)
    code = [c for c in raw.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{paired.name} has outputs: run `make sync`"


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_the_parameters_cell(source):
    first = next(c for c in jupytext.read(source).cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    values = {}
    exec(first.source, values)
    assert values["SIZE"] == "small" and isinstance(values["SEED"], int)


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_chapter_runs_in_smoke_mode(source, tmp_path):
    start = time.perf_counter()
    executed = build.execute(source, "smoke", SMOKE, cache_dir=tmp_path / "cache")
    print(f"{source.name} ran in smoke mode in {time.perf_counter() - start:.1f} s")
    notebook = nbformat.read(executed, as_version=4)
    assert not [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def test_book_builds_strictly_with_every_figure(tmp_path):
    for source in build.NOTEBOOKS:
        if not (SMOKE / f"{source.stem}.ipynb").exists():
            build.execute(source, "smoke", SMOKE, cache_dir=tmp_path / "cache")
    index = build.build(SMOKE, ROOT / "_build" / "smoke-book", strict=True)
    assert index.exists()
    html = index.parent
    for source in build.NOTEBOOKS:
        page = (html / "notebooks" / f"{source.stem}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        assert images, f"{source.stem}: no figures on the page"
        for src in images:
            assert (html / "notebooks" / src).resolve().exists(), f"{source.stem}: figure {src} is missing"
        assert "{glue" not in page, f"{source.stem}: an unresolved glue reference"
