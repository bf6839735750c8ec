"""Execute the chapters and build the book from the executed notebooks.

    python book/build.py --size small     # what `make book` runs: writes _build/html/index.html
    python book/build.py --size smoke --out _build/smoke

Each chapter's source is notebooks/NN_topic.py (jupytext py:percent). It is read with jupytext and executed by
papermill with SIZE injected into its parameters cell; the executed .ipynb files are staged with the book's
configuration and pages, and Jupyter Book builds the HTML from them without executing anything again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from editions import NOTEBOOKS, ROOT

COLAB_LINK = re.compile(r"(https://colab\.research\.google\.com/github/[^\"']+?/blob/)[^\"']+?\.ipynb")


def execute(source: Path, size: str, out_dir: Path, cache_dir: Path, parameters: dict | None = None) -> Path:
    """Run one chapter with ``SIZE=size`` (and any other ``parameters`` of its parameters cell) and write the
    executed notebook to ``out_dir``; returns its path."""
    import jupytext
    import nbformat
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.ipynb"
    partial = out_dir / f"{source.stem}.partial.ipynb"
    notebook = jupytext.read(source)
    previous = os.environ.get("MTLUTILS_CACHE")
    os.environ["MTLUTILS_CACHE"] = str(cache_dir)  # inherited by the kernel
    try:
        papermill.execute_notebook(
            notebook, str(partial), parameters={"SIZE": size, **(parameters or {})}, kernel_name="python3", cwd=str(source.parent),
            progress_bar=False,
        )
    finally:
        if previous is None:
            del os.environ["MTLUTILS_CACHE"]
        else:
            os.environ["MTLUTILS_CACHE"] = previous
    executed = nbformat.read(partial, as_version=4)
    for cell in executed.cells:  # the book shows the parameters cell; papermill's copy of it would repeat it
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"].append("remove-cell")
    nbformat.write(executed, partial)
    os.replace(partial, target)  # a failed run leaves no executed notebook behind
    return target


def build(executed_dir: Path, out_dir: Path, strict: bool = True) -> Path:
    """Stage the configuration, the pages and the executed chapters, then build HTML into ``out_dir/_build/html``."""
    staging = out_dir / "_build" / "source"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "notebooks").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, staging / name)
    shutil.copytree(ROOT / "book", staging / "book", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for source in NOTEBOOKS:
        executed = executed_dir / f"{source.stem}.ipynb"
        if not executed.exists():
            raise FileNotFoundError(f"{executed} is missing: execute {source.name} first (python book/build.py).")
        shutil.copy(executed, staging / "notebooks" / executed.name)
    (staging / "book" / "_timings.md").write_text(timings_table(executed_dir))
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output", str(out_dir), "--keep-going"]
    if strict:
        command.append("-W")
    subprocess.run(command, check=True)
    html = out_dir / "_build" / "html"
    publish_reader_editions(executed_dir, html)
    return html / "index.html"


def publish_reader_editions(executed_dir: Path, html: Path) -> None:
    """Put each chapter's reader edition (book/reader.py) where the built book hands notebooks out: in
    ``_notebooks/``, as the download button's ``.ipynb``, and behind the Colab button, which opens it from the
    published book's branch."""
    import reader

    for edition in reader.write_all(html / "_notebooks", executed_dir):
        shutil.copy(edition, html / "_sources" / "notebooks" / edition.name)
        page = html / "notebooks" / f"{edition.stem}.html"
        text, count = COLAB_LINK.subn(rf"\g<1>{reader.PUBLISHED_BRANCH}/_notebooks/{edition.name}", page.read_text())
        if not count:
            raise ValueError(f"{page} has no Colab button to point at the reader edition: check launch_buttons "
                             "in _config.yml.")
        page.write_text(text)


def timings_table(executed_dir: Path) -> str:
    """The execution time of every chapter in this build, as a Markdown table for the introduction."""
    path = executed_dir / "timings.json"
    if not path.exists():
        return "The execution times of the chapters were not recorded in this build.\n"
    record = json.loads(path.read_text())
    titles = {source.stem: title(source) for source in NOTEBOOKS}
    rows = [f"| {stem[:2]}. {titles.get(stem, stem)} | {seconds / 60:.1f} min |" for stem, seconds in record["seconds"].items()]
    where = f", the runs {record['where']}" if "where" in record else ""
    return (f"Measured when this book was first built, in {record['size']} mode on {record['cores']} CPU cores{where}, "
            "starting from an empty run cache (a chapter reuses the runs that an earlier one trained):\n\n"
            "| chapter | time |\n| --- | --- |\n" + "\n".join(rows) + "\n")


def title(source: Path) -> str:
    """The first heading of a chapter's source."""
    for line in source.read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return source.stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["smoke", "small", "full"], default="small")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the repository root)")
    parser.add_argument("--no-strict", action="store_true", help="do not turn Sphinx warnings into errors")
    args = parser.parse_args()
    out_dir = (args.out or ROOT).resolve()
    executed_dir = out_dir / "_build" / f"executed-{args.size}"
    cache_dir = ROOT / "_build" / "cache"
    cold = not any(cache_dir.glob("*.json"))
    seconds = {}
    for source in NOTEBOOKS:
        start = time.perf_counter()
        execute(source, args.size, executed_dir, cache_dir=cache_dir)
        seconds[source.stem] = time.perf_counter() - start
        print(f"executed {source.name} ({args.size}) in {seconds[source.stem]:.0f} s", flush=True)
    if cold:  # times with cached runs would say nothing about a first build
        from mtlutils import workers

        record = {"size": args.size, "cores": os.cpu_count(), "where": workers.where(), "seconds": seconds}
        (executed_dir / "timings.json").write_text(json.dumps(record, indent=1))
    index = build(executed_dir, out_dir, strict=not args.no_strict)
    print(f"The book is at {index}")


if __name__ == "__main__":
    main()
