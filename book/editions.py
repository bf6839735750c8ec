"""What the reader and student editions of the chapters share: the chapters, their MyST markup as the editions take
it apart, and writing an edition whole."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))

# a solution runs from its start directive to its end directive, across cells (sphinx-exercise's gated solutions)
SOLUTION_START = re.compile(r"^````\{solution-start\}\s+(\S+)[ \t]*\n(?:[ \t]*:[^\n]*\n)*````[ \t]*$", re.M)
SOLUTION_END = re.compile(r"^````\{solution-end\}[ \t]*\n````[ \t]*$", re.M)
EXERCISE = re.compile(r"^````\{exercise\}[ \t]*([^\n]*)\n((?:[ \t]*:[^\n]*\n)*)(.*?)^````[ \t]*$", re.M | re.S)
CITE = re.compile(r"\{cite(?::(p|t))?\}`([^`]+)`")
GLUE = re.compile(r"\{glue:(text|md)\}`([^`]+)`")
ROLE = re.compile(r"\{[a-z][\w:-]*\}`")  # any role left over, e.g. {glue:text}`name` or {doc}`page`


def split_solutions(text: str, inside: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """The pieces of a Markdown cell: ("markdown", text) outside solutions, ("solution", text) inside one, and
    ("start", label) where a solution starts; and the label of the solution still open at the end of the cell
    (None when outside any). ``inside`` is the label of the solution open at the start of the cell."""
    pieces, position = [], 0
    while True:
        if inside is None:
            match = SOLUTION_START.search(text, position)
            pieces.append(("markdown", text[position : match.start() if match else len(text)]))
            if not match:
                return pieces, None
            inside = match.group(1)
            pieces.append(("start", inside))
        else:
            match = SOLUTION_END.search(text, position)
            pieces.append(("solution", text[position : match.start() if match else len(text)]))
            if not match:
                return pieces, inside
            inside = None
        position = match.end()


def write_editions(out_dir: Path, edition_of: Callable[[Path], nbformat.NotebookNode], sources=NOTEBOOKS) -> list[Path]:
    """Write ``edition_of(chapter)`` for every chapter source into ``out_dir`` as ``NN_topic.ipynb``, each written
    whole or not at all; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in sources:
        path = out_dir / f"{source.stem}.ipynb"
        tmp = path.with_name(path.name + ".tmp")
        nbformat.write(edition_of(source), tmp)
        tmp.replace(path)
        paths.append(path)
    return paths
