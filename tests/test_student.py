"""Student editions: every exercise kept, no solution text left, and each runs until its first exercise."""

import re
import sys
from pathlib import Path

import pytest
from papermill.exceptions import PapermillExecutionError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402
import student  # noqa: E402

IDS = [p.stem for p in build.NOTEBOOKS]


def solution_lines(source: Path) -> tuple[list[str], str]:
    """The substantial lines between each solution's start and end in the chapter's py:percent text, and the text
    outside the solutions."""
    lines, outside, inside = [], [], False
    for line in source.read_text().splitlines():
        if "{solution-start}" in line:
            inside = True
        elif "{solution-end}" in line:
            inside = False
        elif inside:
            text = line.removeprefix("# ").strip()
            if len(text) > 15 and not text.startswith(("%%", "````", ":class:")):
                lines.append(text)
        else:
            outside.append(line)
    return lines, "\n".join(outside)


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_the_student_edition_keeps_the_exercises_and_no_solution(source):
    text = "\n".join(cell.source for cell in student.student_edition(source).cells)
    labels = re.findall(r":label: (ex-\S+)", source.read_text())
    assert len(labels) >= 3 and all(f":label: {label}" in text for label in labels)
    assert text.count("raise NotImplementedError(") == len(labels)
    assert "solution-start" not in text and "solution-end" not in text
    solutions, elsewhere = solution_lines(source)
    leftovers = [line for line in solutions if line in text and line not in elsewhere]
    assert solutions and not leftovers, f"solution text left in the student edition: {leftovers[:3]}"


@pytest.mark.parametrize("source", build.NOTEBOOKS, ids=IDS)
def test_the_student_edition_runs_until_its_first_exercise(source, tmp_path, smoke_cache):
    (path,) = student.write_all(tmp_path / "student", [source])
    first = re.search(r":label: (ex-\S+)", source.read_text()).group(1)
    with pytest.raises(PapermillExecutionError) as error:
        build.execute(path, "smoke", tmp_path / "executed", cache_dir=smoke_cache)
    assert error.value.ename == "NotImplementedError" and first in error.value.evalue


def test_an_unclosed_solution_is_refused(tmp_path):
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %% [markdown]\n# ````{exercise}\n# :label: ex-x\n# Do it.\n# ````\n#\n"
                      "# ````{solution-start} ex-x\n# :class: dropdown\n# ````\n\n# %%\nprint('answer')\n")
    with pytest.raises(ValueError, match="ex-x has no"):
        student.student_edition(broken)
