"""Every chapter: paired with an output-free .ipynb, parameterised, executed in smoke mode, built into the book."""

import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from tests.fixtures import prepare_data_root

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402

IDS = [p.stem for p in build.NOTEBOOKS]
# Full mode on the data scripts' fixtures: the chapter's own code and data path, with its loops cut short.
FULL_ON_FIXTURES = {
    "01_negative_transfer": {"angles": [0, 90, 180], "seeds": 2, "epochs": 1},
    "02_averaged_vs_alternated": {"toy_steps": 20, "horizon": 1, "lrs": [1e-3], "extend": 1, "seeds": 2,
                                  "tuning_seeds": 1},
    "03_random_grouping": {"horizon": 1, "lrs": [3e-3], "seeds": 2, "tuning_seeds": 1, "group_sizes": [1, 10],
                           "redrawn": [2], "moving_heads": [10]},
    "04_proximal_affinity": {"epochs": {"clusters": 1, "digit_attributes": 2, "celeba": 1}, "seeds": 2, "every": 4,
                             "selective": {"warmup": 2, "regroup_every": 1},
                             "transfer_seeds": {"clusters": 2, "digit_attributes": 2, "celeba": 2},
                             "transfer_tasks": {"clusters": 6, "digit_attributes": 4, "celeba": 4},
                             "dial": {"angles": [0, 90, 180], "bottlenecks": [1], "seeds": 2}},
    "05_selective_group_updates": {
        "horizon": 1, "lrs": [3e-3], "seeds": 2, "tuning_seeds": 1, "most_seeds": 3,
        "selective": {"beta": 1e-2, "warmup": 2, "regroup_every": 1},
        "sweep_epochs": 1, "sweep": {"beta": [1e-1], "warmup": [0], "regroup_every": [4]},
    },
    "06_do_they_help": {
        "horizon": 1, "evaluations": 4, "lrs": [1e-3, 3e-3], "weight_decays": [0.0, 1e-2], "extend": 1, "seeds": 2,
        "tuning_seeds": 1, "tie_seeds": 1, "most_seeds": 3, "weights": [0.2, 0.5, 0.8],
        "selective": {"beta": 1e-2, "warmup": 2, "regroup_every": 1},
    },
}
NEEDS_DATA = {  # chapter -> the data script its full mode needs
    "02_averaged_vs_alternated": "multimnist", "03_random_grouping": "celeba",
    "04_proximal_affinity": "multimnist", "05_selective_group_updates": "celeba", "06_do_they_help": "multimnist",
}


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
    assert values["SIZE"] == "small" and isinstance(values["SEED"], int) and values["OVERRIDES"] == {}


BOOK_COLUMN = 88  # characters of code the book's column shows without scrolling
SHORT_CELL = 15  # non-empty lines: code longer than that belongs in mtlutils


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_code_cells_fit_the_books_column_and_stay_short(source):
    code = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    wide = [line for c in code for line in c.source.splitlines() if len(line) > BOOK_COLUMN]
    assert not wide, f"{len(wide)} code line(s) over {BOOK_COLUMN} characters, e.g. {wide[0]!r}"
    long = [len([l for l in c.source.splitlines() if l.strip()]) for c in code]
    assert max(long) <= SHORT_CELL, f"a code cell of {max(long)} lines: move code into mtlutils"


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_the_page_opens_with_its_question(source):
    """Before the first markdown cell after the title, every code cell but the parameters is folded away."""
    cells = jupytext.read(source).cells
    first_prose = next(i for i, c in enumerate(cells) if i > 0 and c.cell_type == "markdown")
    setup = [c for c in cells[:first_prose] if c.cell_type == "code"]
    assert all({"parameters", "hide-input"} & set(c.metadata.get("tags", [])) for c in setup)


@pytest.mark.xdist_group("smoke-book")
@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_chapter_runs_in_smoke_mode(source, smoke_executed):
    start = time.perf_counter()
    executed = smoke_executed(source)
    print(f"{source.name} ran in smoke mode in {time.perf_counter() - start:.1f} s")
    notebook = nbformat.read(executed, as_version=4)
    assert not [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


@pytest.fixture(scope="module")
def full_data(tmp_path_factory):
    """A data root prepared by the data scripts from files in the real formats (tests.fixtures.prepare_data_root)."""
    return prepare_data_root(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_chapter_runs_in_full_mode_on_prepared_fixture_data(source, full_data, tmp_path, monkeypatch):
    assert source.stem in FULL_ON_FIXTURES, f"add {source.stem} to FULL_ON_FIXTURES"
    monkeypatch.setenv("MTLUTILS_DATA", str(full_data))
    executed = build.execute(source, "full", tmp_path / "executed", cache_dir=tmp_path / "cache",
                             parameters={"OVERRIDES": FULL_ON_FIXTURES[source.stem]})
    notebook = nbformat.read(executed, as_version=4)
    assert not [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


@pytest.mark.parametrize("stem", sorted(NEEDS_DATA))
def test_full_mode_without_its_data_stops_with_the_data_script(stem, tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_DATA", str(tmp_path / "nothing-here"))
    source = ROOT / "notebooks" / f"{stem}.py"
    with pytest.raises(PapermillExecutionError, match=rf"python -m data_scripts\.{NEEDS_DATA[stem]} --root") as error:
        build.execute(source, "full", tmp_path / "executed", cache_dir=tmp_path / "cache")
    assert error.value.ename == "DataNotPrepared"
    assert not (tmp_path / "executed" / f"{stem}.ipynb").exists()  # no half-run notebook is left as if finished


HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"


def test_chapters_execute_two_at_a_time_and_a_failure_starts_no_other(tmp_path):
    """Two chapters run side by side (each waits until the other has started); when one fails, the one running
    finishes, the next never starts, and the error names the chapter that failed."""
    def waits_for(other):
        return (f'end = time.time() + 60\nwhile not os.path.exists("{tmp_path}/{other}.started") and time.time() < end:\n'
                f'    time.sleep(0.1)\nbeside = os.path.exists("{tmp_path}/{other}.started")\n')
    body = {"a": waits_for("b") + "time.sleep(3)",
            "b": waits_for("a") + "raise ValueError('b broke' if beside else 'a did not run beside b')", "c": ""}
    sources = []
    for name, code in body.items():
        source = tmp_path / f"{name}.py"
        source.write_text(f'{HEADER}# %% tags=["parameters"]\nSIZE = "small"\n\n# %%\nimport os, time\n'
                          f'open("{tmp_path}/{name}.started", "w").close()\n{code}\n')
        sources.append(source)
    with pytest.raises(RuntimeError, match=r"(?s)b\.py: PapermillExecutionError.*ValueError: b broke"):
        build.execute_all(sources, "smoke", tmp_path / "executed", tmp_path / "cache", at_once=2)
    assert (tmp_path / "executed" / "a.ipynb").exists() and not (tmp_path / "executed" / "b.ipynb").exists()
    assert not (tmp_path / "c.started").exists()


@pytest.mark.xdist_group("smoke-book")
def test_book_builds_strictly_with_every_figure(smoke_book):
    index = smoke_book
    assert index.exists()
    html = index.parent
    for source in build.NOTEBOOKS:
        page = (html / "notebooks" / f"{source.stem}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        assert images, f"{source.stem}: no figures on the page"
        for src in images:
            assert (html / "notebooks" / src).resolve().exists(), f"{source.stem}: figure {src} is missing"
        assert "{glue" not in page, f"{source.stem}: an unresolved glue reference"


@pytest.mark.xdist_group("smoke-book")
def test_the_introduction_lists_every_chapter_s_computed_answer(smoke_book, smoke_executed):
    staged = (smoke_book.parent.parent / "source" / "book" / "_findings.md").read_text()
    for number, source in enumerate(build.NOTEBOOKS, start=1):
        finding = build.glued_markdown(smoke_executed(source), build.FINDING)
        assert finding, f"{source.stem} glues no {build.FINDING!r}"
        assert f"{number}. {{doc}}`../notebooks/{source.stem}`: {finding}" in staged
    assert "What the book finds" in (smoke_book.parent / "book" / "intro.html").read_text()
