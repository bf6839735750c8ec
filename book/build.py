"""Execute the chapters and build the book from the executed notebooks.

    python book/build.py --size small     # what `make book` runs: writes _build/html/index.html
    python book/build.py --size smoke --out _build/smoke

Each chapter's source is notebooks/NN_topic.py (jupytext py:percent). It is read with jupytext and executed by
papermill with SIZE injected into its parameters cell; the executed .ipynb files are staged with the book's
configuration and pages, and Jupyter Book builds the HTML from them without executing anything again. Chapters
execute two at a time in their order (``--at-once N``), so that one chapter's serial cells leave no core idle.

The built site is the whole book as published (book/publish.py): the pages, the reader editions in ``_notebooks/``,
the wheel of mtlutils in ``_wheels/``, and the runs this build used in ``_runs/`` (with ``index.json``), every URL
derived from where the book lives (book/urls.py, ``BOOK_REPOSITORY``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterable

import yaml

import urls
from editions import NOTEBOOKS, ROOT

COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\"']+?\.ipynb")


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


def build(executed_dir: Path, out_dir: Path, strict: bool = True, runs: Iterable[Path] = ()) -> Path:
    """Stage the configuration, the pages and the executed chapters, then build HTML into ``out_dir/_build/html``,
    with the reader editions, the wheel of mtlutils and the run files ``runs`` beside the pages."""
    urls.repository()  # a malformed BOOK_REPOSITORY is refused before anything is built
    staging = out_dir / "_build" / "source"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "notebooks").mkdir(parents=True)
    (staging / "_config.yml").write_text(yaml.safe_dump(urls.jupyter_book_config(), sort_keys=False))
    shutil.copy(ROOT / "_toc.yml", staging / "_toc.yml")
    shutil.copytree(ROOT / "book", staging / "book", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for source in NOTEBOOKS:
        executed = executed_dir / f"{source.stem}.ipynb"
        if not executed.exists():
            raise FileNotFoundError(f"{executed} is missing: execute {source.name} first (python book/build.py).")
        shutil.copy(executed, staging / "notebooks" / executed.name)
    (staging / "book" / "_timings.md").write_text(timings_table(executed_dir))
    (staging / "book" / "_findings.md").write_text(findings(executed_dir))
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(staging), "--path-output", str(out_dir), "--keep-going"]
    if strict:
        command.append("-W")
    subprocess.run(command, check=True)
    html = out_dir / "_build" / "html"
    publish_reader_editions(executed_dir, html)
    build_wheel(html / urls.WHEELS_DIR)
    ship_runs(runs, html / urls.RUNS_DIR)
    return html / "index.html"


def publish_reader_editions(executed_dir: Path, html: Path) -> None:
    """Put each chapter's reader edition (book/reader.py) where the built book hands notebooks out: in
    ``_notebooks/``, as the download button's ``.ipynb``, and behind the Colab button, which opens it from the
    published book's branch."""
    import reader

    for edition in reader.write_all(html / urls.NOTEBOOKS_DIR, executed_dir):
        shutil.copy(edition, html / "_sources" / "notebooks" / edition.name)
        page = html / "notebooks" / f"{edition.stem}.html"
        text, count = COLAB_LINK.subn(urls.colab_url(edition.name), page.read_text())
        if not count:
            raise ValueError(f"{page} has no Colab button to point at the reader edition: check launch_buttons "
                             "in _config.yml.")
        page.write_text(text)


def build_wheel(out_dir: Path) -> Path:
    """The wheel of mtlutils, built from a copy of its sources (so that parallel builds share nothing), in
    ``out_dir``; the reader editions install it from the site (``urls.wheel_url``)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        shutil.copytree(ROOT / "mtlutils", source / "mtlutils", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, source / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(Path(tmp) / "wheel"), str(source)], check=True)
        built = Path(tmp) / "wheel" / urls.wheel_name()
        if not built.exists():
            raise FileNotFoundError(f"pip built {[p.name for p in (Path(tmp) / 'wheel').iterdir()]}, not "
                                    f"{built.name}, which the reader editions install: check pyproject.toml.")
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(built, out_dir / built.name))


def used_runs(cache_dir: Path, since: float) -> list[Path]:
    """The run files of ``cache_dir`` that a build which started at ``since`` (``time.time()``) stored or read: the
    cache updates a file's time whenever it is used."""
    return sorted(path for path in cache_dir.glob("*.json") if path.stat().st_mtime >= since)


def ship_runs(runs: Iterable[Path], out_dir: Path) -> None:
    """Copy the run files ``runs`` into ``out_dir`` with the index of their keys, which a reader's chapter reads
    once before fetching the runs it lacks (``mtlutils.published``)."""
    from mtlutils import published

    shutil.rmtree(out_dir, ignore_errors=True)  # the runs of an earlier build of this site go
    out_dir.mkdir(parents=True)
    runs = list(runs)
    for path in runs:
        shutil.copy(path, out_dir / path.name)
    (out_dir / published.INDEX).write_bytes(published.index([path.stem for path in runs]))


def timings_table(executed_dir: Path) -> str:
    """The execution time of every chapter in this build, as a Markdown table for the introduction."""
    path = executed_dir / "timings.json"
    if not path.exists():
        return "The execution times of the chapters were not recorded in this build.\n"
    record = json.loads(path.read_text())
    titles = {source.stem: title(source) for source in NOTEBOOKS}
    rows = [f"| {stem[:2]}. {titles.get(stem, stem)} | {seconds / 60:.1f} min |" for stem, seconds in record["seconds"].items()]
    where = f", the runs {record['where']}" if "where" in record else ""
    together = (f", {record['at_once']} chapters at a time (all of them: {record['total'] / 60:.1f} min)"
                if record.get("at_once", 1) > 1 else "")
    return (f"Measured when this book was first built, in {record['size']} mode on {record['cores']} CPU cores{where}"
            f"{together}, starting from an empty run cache (a chapter reuses the runs that an earlier one trained):\n\n"
            "| chapter | time |\n| --- | --- |\n" + "\n".join(rows) + "\n")


FINDING = "finding"  # what a chapter glues as its one-paragraph answer, for the introduction


def glued_markdown(notebook: Path, name: str) -> str | None:
    """The Markdown an executed notebook glued under ``name`` (``mtlutils.glue``), or None."""
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                data = output.get("data", {})
                return data.get("application/papermill.record/text/markdown")
    return None


def findings(executed_dir: Path) -> str:
    """Each chapter's answer in this build (the Markdown it glues as ``FINDING``), as a numbered list for the
    introduction, so that its summary is computed by the chapters it summarises."""
    items = []
    for number, source in enumerate(NOTEBOOKS, start=1):
        text = glued_markdown(executed_dir / f"{source.stem}.ipynb", FINDING)
        link = f"{{doc}}`../notebooks/{source.stem}`"
        items.append(f"{number}. {link}: {text or 'this build recorded no answer for this chapter.'}")
    return "\n".join(items) + "\n"


def title(source: Path) -> str:
    """The first heading of a chapter's source."""
    for line in source.read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return source.stem


def execute_all(sources: list[Path], size: str, out_dir: Path, cache_dir: Path, at_once: int = 2) -> dict[str, float]:
    """Execute the chapters in their order, ``at_once`` at a time: while one chapter runs its serial cells (kernel
    start, imports, figures, statistics), the next one's runs use the idle cores. Returns each chapter's wall time
    in seconds. After a chapter fails no other starts; those running finish (their runs are kept in the cache),
    then the failure is raised."""
    seconds, failures, waiting, running = {}, [], list(sources), {}
    with ProcessPoolExecutor(min(at_once, len(sources)), mp_context=multiprocessing.get_context("spawn")) as pool:
        while running or (waiting and not failures):
            while waiting and not failures and len(running) < at_once:
                source = waiting.pop(0)
                running[pool.submit(_execute_timed, source, size, out_dir, cache_dir)] = source
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                source = running.pop(future)
                try:
                    seconds[source.stem] = future.result()
                except Exception as error:  # noqa: BLE001 - reported with the chapter, after the running ones
                    failures.append(f"{source.name}: {error}")
                    print(f"{source.name} failed; no other chapter will start.", flush=True)
                else:
                    print(f"executed {source.name} ({size}) in {seconds[source.stem]:.0f} s", flush=True)
    if failures:
        raise RuntimeError("A chapter failed to execute (its partial notebook, with the error, is in "
                           f"{out_dir}):\n" + "\n".join(failures))
    return {source.stem: seconds[source.stem] for source in sources}


def _execute_timed(source: Path, size: str, out_dir: Path, cache_dir: Path) -> float:
    start = time.perf_counter()
    try:
        execute(source, size, out_dir, cache_dir=cache_dir)
    except Exception as error:  # papermill's errors do not all survive the way back from a worker process
        raise RuntimeError(f"{type(error).__name__}: {error}") from None
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["smoke", "small", "full"], default="small")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the repository root)")
    parser.add_argument("--no-strict", action="store_true", help="do not turn Sphinx warnings into errors")
    parser.add_argument("--at-once", type=int, default=2, metavar="N",
                        help="chapters executed at the same time (default 2; 1: one after the other)")
    args = parser.parse_args()
    if args.at_once < 1:
        parser.error(f"--at-once must be 1 or more, not {args.at_once}.")
    out_dir = (args.out or ROOT).resolve()
    executed_dir = out_dir / "_build" / f"executed-{args.size}"
    cache_dir = ROOT / "_build" / "cache"
    cold = not any(cache_dir.glob("*.json"))
    started = time.time() - 2  # a file system may round file times down by up to two seconds
    start = time.perf_counter()
    seconds = execute_all(NOTEBOOKS, args.size, executed_dir, cache_dir, args.at_once)
    total = time.perf_counter() - start
    print(f"executed {len(NOTEBOOKS)} chapters in {total:.0f} s, {args.at_once} at a time", flush=True)
    if cold:  # times with cached runs would say nothing about a first build
        from mtlutils import workers

        record = {"size": args.size, "cores": os.cpu_count(), "where": workers.where(), "seconds": seconds,
                  "at_once": args.at_once, "total": total}
        (executed_dir / "timings.json").write_text(json.dumps(record, indent=1))
    index = build(executed_dir, out_dir, strict=not args.no_strict, runs=used_runs(cache_dir, started))
    print(f"The book is at {index}")


if __name__ == "__main__":
    main()
