"""Where the time of a cold book build goes, chapter by chapter.

    .venv/bin/python benchmarks/book_profile.py                 # small mode, a fresh run cache, this checkout
    .venv/bin/python benchmarks/book_profile.py --size smoke --out /tmp/profile
    .venv/bin/python benchmarks/book_profile.py --chapters 02 06     # only these chapters (each from an empty cache)

Each chapter is executed as `make book` executes it (book/build.py), with a kernel start-up file that times, inside
the kernel, dataset preparation (``data.load``), the run grids (``run_grid`` and ``run``, wall time, whether their
runs train in the kernel or in worker processes), training and evaluation when they happen in the kernel itself
(``fit`` and ``evaluate``), and figures (``mtlutils.plots`` and the rendering of every figure at the end of a cell).
Kernel start and imports is the chapter's wall time less the time of its cells, plus the imports the start-up file
makes first. The book build (Jupyter Book over the executed chapters) is timed last. The cache starts empty, so
every run is trained once, in the chapter that first asks for it, as in a first `make book`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

STARTUP = r'''
import json, os, time
_times, _depth = {}, {}

def _timed(owner, name, category):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        outer = _depth.get(category, 0) == 0  # a call inside a call of the same category counts once
        _depth[category] = _depth.get(category, 0) + 1
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _depth[category] -= 1
            if outer:
                _times[category] = _times.get(category, 0.0) + time.perf_counter() - start
    setattr(owner, name, wrapper)

import matplotlib_inline.backend_inline as _inline
_timed(_inline, "flush_figures", "figures")  # before pyplot registers it to run after every cell
_start = time.perf_counter()
import torch, numpy, pandas, matplotlib.pyplot, seaborn, sklearn, myst_nb  # noqa: F401
import mtlutils.experiments, mtlutils.plots, mtlutils.train, mtlutils.data  # noqa: F401
_times["imports"] = time.perf_counter() - _start
_timed(mtlutils.data, "load", "data")
_timed(mtlutils.experiments, "run_grid", "run_grids")
_timed(mtlutils.experiments, "run", "run_grids")
_timed(mtlutils.train, "fit", "fit_in_kernel")
_timed(mtlutils.experiments, "fit", "fit_in_kernel")
_timed(mtlutils.train, "evaluate", "evaluate_in_kernel")
for _name in [n for n in dir(mtlutils.plots) if not n.startswith("_") and callable(getattr(mtlutils.plots, n))]:
    if getattr(getattr(mtlutils.plots, _name), "__module__", "") == "mtlutils.plots":
        _timed(mtlutils.plots, _name, "figures")
get_ipython().events.register(  # noqa: F821 - after every cell, so that nothing waits for the kernel's exit
    "post_execute", lambda: open(os.environ["BOOK_PROFILE_FILE"], "w").write(json.dumps(_times)))
'''

COLUMNS = ["kernel + imports", "data", "run grids", "of which fit", "of which evaluate", "figures", "other cells",
           "chapter"]


def profile_chapter(build, source: Path, size: str, out: Path, cache: Path) -> dict:
    record = out / f"{source.stem}.json"
    os.environ["BOOK_PROFILE_FILE"] = str(record)
    start = time.perf_counter()
    executed = build.execute(source, size, out / "executed", cache_dir=cache)
    wall = time.perf_counter() - start
    times = json.loads(record.read_text())
    cells = sum(c.metadata.get("papermill", {}).get("duration") or 0.0
                for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code")
    measured = times.get("data", 0.0) + times.get("run_grids", 0.0) + times.get("figures", 0.0)
    return {
        "kernel + imports": wall - cells + times["imports"], "data": times.get("data", 0.0),
        "run grids": times.get("run_grids", 0.0), "of which fit": times.get("fit_in_kernel", 0.0),
        "of which evaluate": times.get("evaluate_in_kernel", 0.0), "figures": times.get("figures", 0.0),
        "other cells": cells - measured, "chapter": wall,
    }


def markdown(rows: dict[str, dict], book_seconds: float) -> str:
    lines = ["| chapter | " + " | ".join(COLUMNS) + " |", "| --- " * (len(COLUMNS) + 1) + "|"]
    for name, row in [*rows.items(), ("all chapters", {c: sum(r[c] for r in rows.values()) for c in COLUMNS})]:
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.0f} s" for c in COLUMNS) + " |")
    lines.append(f"\nBook build (Jupyter Book over the executed chapters): {book_seconds:.0f} s; "
                 f"total {sum(r['chapter'] for r in rows.values()) + book_seconds:.0f} s.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["smoke", "small"], default="small")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose chapters and book/build.py are profiled (default: this one)")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers (default: every chapter)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the executed chapters and the records")
    args = parser.parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="book-profile-"))).resolve()
    ipython = out / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True, exist_ok=True)
    (ipython / "profile_default" / "startup" / "00-profile.py").write_text(STARTUP)
    os.environ["IPYTHONDIR"] = str(ipython)
    sys.path.insert(0, str(args.root / "book"))
    import build

    rows = {}
    chosen = [s for s in build.NOTEBOOKS if args.chapters is None or s.stem[:2] in args.chapters]
    for source in chosen:
        cache = out / "cache" if args.chapters is None else out / f"cache-{source.stem[:2]}"
        rows[source.stem[:2]] = profile_chapter(build, source, args.size, out, cache)
        print(f"{source.name}: " + ", ".join(f"{c} {v:.0f} s" for c, v in rows[source.stem[:2]].items()), flush=True)
    start = time.perf_counter()
    if args.chapters is None:
        build.build(out / "executed", out / "book", strict=False)
    table = markdown(rows, time.perf_counter() - start)
    (out / "profile.md").write_text(table + "\n")
    print(table)
    print(f"(written to {out / 'profile.md'})")


if __name__ == "__main__":
    main()
