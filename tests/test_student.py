"""Student editions for nbgrader: every solution in a solution region, every checked answer autograded, nothing of
the solutions released, and nbgrader's own autograde gives full marks to a solved edition and not to a blank one."""

import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402
import student  # noqa: E402

IDS = [p.stem for p in build.NOTEBOOKS]


def solution_lines(source: Path) -> list[str]:
    """The substantial lines of code between each solution's start and end in the chapter's py:percent text that
    the chapter has nowhere else."""
    lines, outside, inside = [], set(), False
    for line in source.read_text().splitlines():
        if "{solution-start}" in line:
            inside = True
        elif "{solution-end}" in line:
            inside = False
        elif inside and len(line.strip()) > 15 and not line.startswith("#"):
            lines.append(line.strip())
        elif not inside:
            outside.add(line.strip())
    return [line for line in lines if line not in outside]


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """The course folder of every chapter in smoke mode, made by book/student.py and nbgrader generate_assignment."""
    folder = tmp_path_factory.mktemp("course")
    student.make_course(folder, "smoke")
    return folder


def notebook(course: Path, kind: str, stem: str) -> nbformat.NotebookNode:
    return nbformat.read(course / kind / stem / f"{stem}.ipynb", as_version=4)


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_the_source_edition_puts_every_solution_in_a_region_and_tests_every_checked_answer(source):
    edition = student.source_edition(source, "smoke")
    labels = re.findall(r":label: (ex-\S+)", source.read_text())
    regions = [c for c in edition.cells if c.metadata.get("nbgrader", {}).get("solution")]
    tests = [c for c in edition.cells if c.metadata.get("nbgrader", {}).get("grade")]
    region_ids = [c.metadata.nbgrader.grade_id for c in regions]  # a label, or label-N for a solution of N cells
    assert len(labels) >= 3 and {i if i in labels else i.rsplit("-", 1)[0] for i in region_ids} == set(labels)
    assert all(c.source.startswith("### BEGIN SOLUTION\n") and c.source.endswith("\n### END SOLUTION") for c in regions)
    checked = re.findall(r'^check\("(ex-[\w-]+)"', source.read_text(), re.M)
    assert checked and [t.metadata.nbgrader.grade_id.split("-test-")[0] for t in tests] == checked
    assert all("### BEGIN HIDDEN TESTS\nassert check(" in t.source and t.metadata.nbgrader.points == 1 for t in tests)
    text = "\n".join(c.source for c in edition.cells)
    assert "{exercise}" not in text and "{solution-" not in text and "{cite" not in text
    assert 'SIZE = "smoke"' in next(c.source for c in edition.cells if "parameters" in c.metadata.get("tags", []))


@pytest.mark.xdist_group("smoke-book")
@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_the_released_edition_keeps_the_exercises_and_no_solution_or_hidden_test(source, course):
    released = notebook(course, "release", source.stem)
    text = "\n".join(c.source for c in released.cells)
    labels = re.findall(r":label: (ex-\S+)", source.read_text())
    assert text.count("#### Exercise ") == len(labels)
    assert text.count("raise NotImplementedError()") == len(
        [c for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")]) >= len(labels)
    released_lines = {line.strip() for line in text.splitlines()}
    leftovers = [line for line in solution_lines(source) if line in released_lines]
    assert not leftovers, f"solution code left in the student edition: {leftovers[:3]}"
    assert "HIDDEN TESTS" not in text and "assert check(" not in text and "assert well_formed(" in text


@pytest.mark.xdist_group("smoke-book")
@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_nbgrader_autograde_gives_full_marks_to_the_solved_edition_and_not_to_the_blank_one(
        source, course, smoke_cache, smoke_executed, monkeypatch):
    smoke_executed(source)  # the chapter's runs are in the run cache, so grading trains only what the answers add
    stem = source.stem
    solutions = {c.metadata.nbgrader.grade_id: c.source for c in notebook(course, "source", stem).cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    solved = notebook(course, "release", stem)
    for cell in solved.cells:  # a student who answers every exercise as the book does
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = solutions[cell.metadata.nbgrader.grade_id]
    for who in ("solved", "blank"):
        (course / "submitted" / who / stem).mkdir(parents=True)
    nbformat.write(solved, course / "submitted" / "solved" / stem / f"{stem}.ipynb")
    shutil.copy(course / "release" / stem / f"{stem}.ipynb", course / "submitted" / "blank" / stem)
    monkeypatch.setenv("MTLUTILS_CACHE", str(smoke_cache))
    student.nbgrader(course, "autograde", stem)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "multi-task-optimization") as gradebook:
        right, blank = (gradebook.find_submission(stem, who) for who in ("solved", "blank"))
        assert right.max_score >= 1 and right.score == right.max_score
        assert blank.score == 0
    graded = notebook(course / "autograded", "blank", stem)
    errors = [o for c in graded.cells for o in c.get("outputs", []) if o.output_type == "error"]
    first = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("solution"))
    assert errors and errors[0] in first.outputs and errors[0].ename == "NotImplementedError"


def test_a_solution_with_prose_between_its_code_cells_is_refused():
    cell = nbformat.v4.new_code_cell("answer = 1")
    with pytest.raises(ValueError, match="ex-x has prose"):
        student.graded("ex-x", [cell, "Now the second part.", cell])
