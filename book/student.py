"""Write the student edition of every chapter: the exercises stay, and each solution becomes one code cell that
stops with a clear message until the student replaces it with an answer.

    python book/student.py                      # what `make student` runs: writes _build/student/NN_topic.ipynb
    python book/student.py --out handout/

A solution is everything between a ``{solution-start} label`` directive and its ``{solution-end}`` in the chapter's
source, prose and code alike; the directives go too. Where ``mtlutils.exercises`` can check the answer, the
placeholder says how.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jupytext
import nbformat

from editions import NOTEBOOKS, ROOT, split_solutions, write_editions
from mtlutils.exercises import CHECKABLE


def placeholder(label: str) -> nbformat.NotebookNode:
    """The cell that stands for the solution of exercise ``label``."""
    lines = [f"# Exercise {label}: your code here."]
    if label in CHECKABLE:
        lines.append(f'# Check your answer with: from mtlutils.exercises import check; check("{label}", your_answer)')
    lines.append(f'raise NotImplementedError("Exercise {label} is not answered yet: replace this cell with your code.")')
    return nbformat.v4.new_code_cell("\n".join(lines))


def student_edition(source: Path) -> nbformat.NotebookNode:
    """The chapter at ``source`` with every solution replaced by a placeholder cell."""
    notebook = jupytext.read(source)
    cells, inside = [], None
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            if inside is None:
                cells.append(cell)
            continue
        pieces, inside = split_solutions(cell.source, inside)
        for kind, value in pieces:
            if kind == "start":
                cells.append(placeholder(value))
            elif kind == "markdown" and value.strip():
                cells.append(nbformat.v4.new_markdown_cell(value.strip("\n")))
    if inside is not None:
        raise ValueError(f"{source.name}: the solution of {inside} has no {{solution-end}}.")
    notebook.cells = cells
    notebook.metadata.pop("jupytext", None)  # a handout, not paired with the chapter's source
    return notebook


def write_all(out_dir: Path, sources=NOTEBOOKS) -> list[Path]:
    """Write the student edition of every chapter into ``out_dir``; returns the paths."""
    return write_editions(out_dir, student_edition, sources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="output folder")
    for path in write_all(parser.parse_args().out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
