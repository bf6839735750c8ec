"""Student editions of the chapters, for nbgrader: a course folder whose assignments are the chapters.

    python book/student.py                          # what `make student` runs: the course folder _build/course
    python book/student.py --size smoke --course DIR

Each chapter becomes nbgrader's *source* notebook, ``COURSE/source/NN_topic/NN_topic.ipynb``: the chapter's reader
edition (book/reader.py: no MyST markup left), with every solution in nbgrader's solution regions and, for every
exercise that has one right answer, an autograded test cell. The test checks the form of the answer in the open and
its value in a hidden test, from the ``check("ex-...", answer, ...)`` line that ends the exercise's solution in the
chapter (``mtlutils.exercises``). Then nbgrader's own ``generate_assignment`` writes what the students get,
``COURSE/release/NN_topic/NN_topic.ipynb``. Collecting and grading are nbgrader's too (``nbgrader autograde
NN_topic`` in the course folder); the book's "For teachers" page says how.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

from editions import NOTEBOOKS, ROOT, write_editions
from reader import reader_edition

# a solution's last line, check("ex-label", answer, given=...): how its answer is checked
CHECK = re.compile(r'^check\((?P<arguments>"ex-[\w-]+", (?P<answer>[A-Za-z_]\w*)(?:, .*)?)\)[ \t]*$', re.M)
SIZE = re.compile(r'^SIZE = "\w+"', re.M)
CONFIG = '''\
c = get_config()  # noqa: F821 (nbgrader's configuration)
c.CourseDirectory.course_id = "multi-task-optimization"
c.Execute.timeout = 1800  # seconds per cell: a chapter's cells train networks, far past nbgrader's 30 s
'''


def _nbgrader(cell: nbformat.NotebookNode, grade_id: str, solution: bool, points: int | None = None):
    """``cell`` marked for nbgrader: a solution region, or, with ``points``, a locked autograded test."""
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": points is not None,
                                 "locked": not solution, "task": False, "schema_version": 3}
    if points is not None:
        cell.metadata["nbgrader"]["points"] = points
    return cell


def graded(label: str, parts: list) -> list[nbformat.NotebookNode]:
    """The cells that stand for the solution of exercise ``label`` in nbgrader's source notebook: each code cell of
    the solution as a solution region, then a test cell for each answer the solution checks."""
    if any(isinstance(part, str) and part for part in parts):
        raise ValueError(f"the solution of {label} has prose between its code cells, which nbgrader cannot hide: "
                         "write it as comments in the code.")
    code = [part for part in parts if not isinstance(part, str)]
    cells, checks = [], []
    for number, cell in enumerate(code, start=1):
        checks += [(match["arguments"], match["answer"]) for match in CHECK.finditer(cell.source)]
        body = CHECK.sub("", cell.source).strip("\n")
        grade_id = label if len(code) == 1 else f"{label}-{number}"
        cells.append(_nbgrader(nbformat.v4.new_code_cell(f"### BEGIN SOLUTION\n{body}\n### END SOLUTION"), grade_id, True))
    for number, (arguments, name) in enumerate(checks, start=1):
        test = (f"# The test of exercise {label}: the form of `{name}` here, its value in a hidden test.\n"
                "from mtlutils.exercises import check, well_formed\n\n"
                f'assert well_formed({arguments}), "`{name}` does not have the form that exercise {label} asks for"\n'
                f"### BEGIN HIDDEN TESTS\nassert check({arguments})\n### END HIDDEN TESTS")
        cells.append(_nbgrader(nbformat.v4.new_code_cell(test), f"{label}-test-{number}", False, points=1))
    return cells


def source_edition(chapter: Path, size: str = "small") -> nbformat.NotebookNode:
    """nbgrader's source notebook of ``chapter``, set to run in ``size`` mode."""
    notebook = reader_edition(jupytext.read(chapter), solution=graded)
    parameters = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    parameters.source = SIZE.sub(f'SIZE = "{size}"', parameters.source)
    if not any("points" in cell.metadata.get("nbgrader", {}) for cell in notebook.cells):
        raise ValueError(f"{chapter.name} has no exercise whose solution ends with check(...): nbgrader would have "
                         "nothing to grade.")
    return notebook


def nbgrader(course: Path, *arguments: str) -> None:
    """Run one of nbgrader's commands in the course folder, with this environment's commands on the PATH (nbgrader
    calls alembic to set up its gradebook)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run([sys.executable, "-m", "nbgrader", *arguments, "--log-level=WARN"], cwd=course, check=True,
                   env={**os.environ, "PATH": path})


def make_course(course: Path, size: str = "small", sources=NOTEBOOKS) -> list[Path]:
    """Write the course folder: nbgrader's configuration and every chapter's source notebook, then the students'
    notebooks by ``nbgrader generate_assignment``; returns the paths of the students' notebooks."""
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG)
    released = []
    for chapter in sources:
        write_editions(course / "source" / chapter.stem, lambda path: source_edition(path, size), [chapter])
        nbgrader(course, "generate_assignment", chapter.stem, "--force")
        released.append(course / "release" / chapter.stem / f"{chapter.stem}.ipynb")
    return released


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=ROOT / "_build" / "course", help="the course folder")
    parser.add_argument("--size", choices=["smoke", "small", "full"], default="small",
                        help="the mode the students' notebooks run in")
    args = parser.parse_args()
    for path in make_course(args.course.resolve(), args.size):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
