"""Write the reader edition of every chapter: the notebook that the book's download and Colab buttons hand out
and that `make lab` opens. It reads right in JupyterLab, Colab or any Jupyter, with no extension.

    python book/reader.py                     # what `make lab` runs: writes _build/jupyter/NN_topic.ipynb
    python book/reader.py --out handout/

It is made from the chapter as `make book` executed it (``_build/executed-small``), or from the chapter's source,
with no outputs, where the book has not been built. Of the MyST markup that only the web book renders:

- a citation becomes author-year text that links to the book's references page;
- an exercise becomes a heading, and its solution (prose, code and the code's outputs) is folded into one
  ``<details>`` block;
- a paragraph with computed values (``{glue:text}`` and ``{glue:md}``) becomes a code cell with its source hidden
  that fills the values in when it runs (``mtlutils.prose.show``); it carries the output of the book's run, so it
  reads before the notebook runs;
- a first cell installs mtlutils from the wheel the book was built with (on the book's site) where it is missing
  (Colab), and does nothing where it is installed; it points ``MTLUTILS_RUNS_URL`` at the book's runs.
"""

from __future__ import annotations

import argparse
import copy
import re
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import Callable

import jupytext
import nbformat

import urls
from editions import CITE, EXERCISE, GLUE, NOTEBOOKS, ROOT, split_solutions, write_editions
from mtlutils.prose import fill

GLUE_PREFIX = "application/papermill.record/"  # how myst-nb's glue stores a value among a cell's outputs
NAME = re.compile(r"[A-Za-z_]\w*")
COMPUTED = "computed-paragraph"  # the tag of a paragraph's code cell
INSTALL = '''\
# mtlutils, the book's package, as the book was built with it: installed where it is missing (as on Colab), left
# alone where it is there. The book's finished runs are fetched from its site before any is trained here: set
# MTLUTILS_RUNS_URL to "" before this cell to train every run here.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("mtlutils") is None:
    print("Installing mtlutils and what it needs (a few minutes)...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", {source!r}], check=True)
    importlib.invalidate_caches()
os.environ.setdefault("MTLUTILS_RUNS_URL", {runs!r})
from mtlutils import prose  # fills in the computed sentences below'''


@cache
def citation_labels(bib: Path = ROOT / "book" / "references.bib") -> dict[str, tuple[str, str]]:
    """Every reference's (authors, year) as the book's author-year style shows them: "Pascal et al.", "2021"."""
    from pybtex.database import parse_file

    labels = {}
    for key, entry in parse_file(str(bib)).entries.items():
        names = [" ".join(person.last_names).replace("{", "").replace("}", "")
                 for person in entry.persons.get("author", [])]
        authors = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
        labels[key] = (authors, entry.fields.get("year", "n.d."))
    return labels


def citations(text: str, url: str) -> str:
    """``text`` with every ``{cite}`` role as author-year text linking to the references page at ``url``."""
    labels = citation_labels()

    def one(match: re.Match) -> str:
        keys = [k.strip() for k in match.group(2).split(",")]
        unknown = [k for k in keys if k not in labels]
        if unknown:
            raise ValueError(f"{unknown} cited but not in book/references.bib: add the entries there.")
        if match.group(1) == "t":  # textual: Pascal et al. (2021)
            return "; ".join(f"[{labels[k][0]} ({labels[k][1]})]({url})" for k in keys)
        return "(" + "; ".join(f"[{labels[k][0]}, {labels[k][1]}]({url})" for k in keys) + ")"

    return CITE.sub(one, text)


def exercises(text: str, numbers: list[int]) -> str:
    """``text`` with every exercise directive as a numbered heading and its statement; ``numbers`` holds the count of
    exercises so far in the chapter and is updated."""
    def one(match: re.Match) -> str:
        numbers[0] += 1
        title = f": {match.group(1).strip()}" if match.group(1).strip() else ""
        return f"#### Exercise {numbers[0]}{title}\n\n{match.group(3).strip()}\n"

    return EXERCISE.sub(one, text)


def paragraphs(text: str) -> list[str]:
    """``text`` split at blank lines that are outside fenced code and display maths."""
    blocks, current, fenced = [], [], False
    for line in text.split("\n"):
        if line.strip().startswith("```") or line.count("$$") % 2:
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                blocks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def template(text: str) -> str:
    """A Markdown paragraph with glue roles as an `mtlutils.prose.fill` template: ``{name}``, ``{name:spec}`` or
    ``{name!m}`` for each role, every other brace doubled."""
    out, position = [], 0
    for match in GLUE.finditer(text):
        out.append(text[position : match.start()].replace("{", "{{").replace("}", "}}"))
        kind, key = match.groups()
        name, _, spec = key.partition(":")
        if not NAME.fullmatch(name) or (kind == "md" and spec):
            raise ValueError(f"glue role {match.group(0)} is not supported here: use a plain name, with a format spec "
                             "for {glue:text} only.")
        out.append(f"{{{name}!m}}" if kind == "md" else f"{{{name}{':' + spec if spec else ''}}}")
        position = match.end()
    out.append(text[position:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def computed_cell(text: str, glued: dict) -> nbformat.NotebookNode:
    """The code cell that shows the paragraph ``text`` with its computed values filled in, its source hidden, with the
    output of the run ``glued`` comes from where it has every value."""
    filled = template(text)
    if '"""' in filled or filled.endswith("\\"):
        raise ValueError(f"this paragraph cannot be quoted in a code cell: {text[:80]!r}")
    cell = nbformat.v4.new_code_cell(f'# this paragraph, with the values computed above\nprose.show(r"""\n{filled}\n""")')
    cell.metadata.update({"jupyter": {"source_hidden": True}, "tags": [COMPUTED, "hide-input"]})
    try:
        shown = fill(f"\n{filled}\n", glued)
    except LookupError:
        return cell  # not executed: the cell fills itself in when it runs
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": shown, "text/plain": shown})]
    return cell


def computed_template(cell: nbformat.NotebookNode) -> str | None:
    """The `mtlutils.prose.fill` template of a computed paragraph's cell (None for any other cell)."""
    if COMPUTED not in cell.metadata.get("tags", []):
        return None
    return cell.source.split('prose.show(r"""', 1)[1].removesuffix('""")')


def glued_values(notebook: nbformat.NotebookNode) -> dict[str, dict[str, str]]:
    """Every value the executed ``notebook`` glued: name -> its display data by MIME type."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                values[name] = {k.removeprefix(GLUE_PREFIX): v for k, v in output.get("data", {}).items()}
    return values


def _code_as_markdown(cell: nbformat.NotebookNode) -> str:
    """A solution's code cell, and its text and image outputs, as Markdown to fold."""
    parts = [f"```python\n{cell.source}\n```"]
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(f"```text\n{output.text.rstrip()}\n```")
        elif "image/png" in output.get("data", {}):
            parts.append(f'<img src="data:image/png;base64,{output.data["image/png"].strip()}" alt="output">')
        elif "text/plain" in output.get("data", {}) and output.output_type == "execute_result":
            parts.append(f"```text\n{output.data['text/plain'].rstrip()}\n```")
    return "\n\n".join(parts)


def _shown_outputs(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a code cell without the outputs the book leaves out: progress bars (stderr) and glued values."""
    cell = copy.deepcopy(cell)
    cell.outputs = [o for o in cell.get("outputs", [])
                    if not (o.output_type == "stream" and o.name == "stderr")
                    and "scrapbook" not in o.get("metadata", {})]
    return cell


def folded(label: str, parts: list) -> list[nbformat.NotebookNode]:
    """How the reader edition shows the solution of exercise ``label``: its ``parts`` (code cells with their outputs,
    and prose) folded into one ``<details>`` block."""
    body = "\n\n".join(part if isinstance(part, str) else _code_as_markdown(part) for part in parts if part)
    return [nbformat.v4.new_markdown_cell(f"<details>\n<summary>Solution</summary>\n\n{body}\n\n</details>")]


def reader_edition(notebook: nbformat.NotebookNode, source: str | None = None,
                   solution: Callable[[str, list], list] = folded) -> nbformat.NotebookNode:
    """The reader edition of a chapter's ``notebook`` (executed or not); ``source`` is what its first cell installs
    mtlutils from (default: the wheel on the book's site); ``solution(label, parts)`` gives the cells that stand for
    a solution (default: `folded`)."""
    url, glued, numbers = urls.references_url(), glued_values(notebook), [0]
    cells = [nbformat.v4.new_code_cell(INSTALL.format(source=source or urls.wheel_url(), runs=urls.runs_url()))]
    label, parts, inside = None, None, None  # the solution being collected, its parts, and the one still open

    def markdown(text: str) -> None:
        blocks = paragraphs(citations(exercises(text, numbers), url))
        for computed, run in groupby(blocks, key=lambda block: bool(GLUE.search(block))):
            text = "\n\n".join(run)
            if computed:
                cells.append(computed_cell(text, glued))
            elif cells[-1].cell_type == "markdown":
                cells[-1].source += "\n\n" + text
            else:
                cells.append(nbformat.v4.new_markdown_cell(text))

    for cell in notebook.cells:
        if "remove-cell" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            if inside is None:
                cells.append(_shown_outputs(cell))
            else:
                parts.append(cell)
            continue
        pieces, inside = split_solutions(cell.source, inside)
        for kind, text in pieces:
            if kind == "start":
                label, parts = text, []
            elif kind == "solution":
                parts.append(citations(text, url).strip())
            else:
                if parts is not None:  # the solution ended just before this piece
                    cells.extend(solution(label, parts))
                    parts = None
                if text.strip():
                    markdown(text.strip("\n"))
    if inside is not None:
        raise ValueError(f"the solution of {inside} has no {{solution-end}}.")
    edition = nbformat.v4.new_notebook(cells=cells, metadata={k: v for k, v in notebook.metadata.items()
                                                             if k in ("kernelspec", "language_info")})
    edition.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return edition


def write_all(out_dir: Path, executed_dir: Path | None = None, source: str | None = None,
              sources=NOTEBOOKS) -> list[Path]:
    """Write the reader edition of every chapter into ``out_dir``, from its executed notebook in ``executed_dir``
    where there is one, else from its source; returns the paths."""
    def edition_of(chapter: Path) -> nbformat.NotebookNode:
        executed = executed_dir / f"{chapter.stem}.ipynb" if executed_dir else None
        notebook = nbformat.read(executed, as_version=4) if executed and executed.exists() else jupytext.read(chapter)
        return reader_edition(notebook, source)

    return write_editions(out_dir, edition_of, sources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "jupyter", help="output folder")
    parser.add_argument("--executed", type=Path, default=ROOT / "_build" / "executed-small",
                        help="the executed chapters to take outputs from, where they are")
    args = parser.parse_args()
    for path in write_all(args.out, args.executed):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
