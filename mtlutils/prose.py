"""The computed sentences of a chapter, where no MyST renderer fills them in.

In the web book a chapter's prose names its computed values with ``{glue:text}`name``` and ``{glue:md}`name```
(myst-nb). A notebook opened in plain JupyterLab or Colab cannot fill those in, so its reader edition
(book/reader.py) turns each such paragraph into a template that `show` fills in when the cell runs:

- ``{name}`` or ``{name:.1f}`` stands for the value as text, formatted as myst-nb formats ``{glue:text}``;
- ``{name!m}`` stands for the value's Markdown, as ``{glue:md}`` pastes it;
- ``{{`` and ``}}`` are literal braces (LaTeX's, for instance).

`glue` records every value as the chapter computes it, and hands it to myst-nb's own ``glue`` where myst-nb is
installed, so the book is built from the same call.
"""

from __future__ import annotations

import string
from ast import literal_eval
from typing import Any, Mapping

RECORDED: dict[str, dict[str, str]] = {}  # name -> the value's display data, by MIME type, as glued in this kernel
WAITING: list = []  # (template, display handle) of the paragraphs shown before all their values were computed
MISSING = "…"  # what a paragraph shows for a value that a cell below it computes, until that cell runs


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for `show`, and glue it for the web book (myst_nb.glue) where myst-nb is
    installed."""
    from IPython.core.formatters import format_display_data

    RECORDED[name] = format_display_data(value)[0]
    _complete_waiting()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or a bare kernel: nothing builds a book there
        if display:
            from IPython.display import display as show_value

            show_value(value)
        return
    myst_glue(name, value, display=display)


def as_text(plain: str, spec: str = "") -> str:
    """A value's text/plain formatted with ``spec`` as a ``{glue:text}`name:spec``` role shows it: a quoted
    literal loses its quotes, and the spec's type letter says whether the value is read as a number."""
    try:
        value = literal_eval(plain)
    except (SyntaxError, ValueError):
        value = plain
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


class _Filler(string.Formatter):
    def __init__(self, values: Mapping[str, Mapping[str, str]], missing: str | None = None):
        self.values, self.missing = values, missing

    def get_value(self, key, args, kwargs):
        if key in self.values:
            return self.values[key]
        if self.missing is not None:
            return _Markdown(self.missing)
        raise LookupError(f"No value named {key!r} has been computed yet: run the cells above this one first "
                          f"(Run > Run All Cells).")

    def convert_field(self, value, conversion):
        if isinstance(value, _Markdown):
            return value
        if conversion == "m":
            if "text/markdown" not in value:
                raise ValueError(f"the value has no Markdown to paste, only {sorted(value)}")
            return _Markdown(value["text/markdown"])
        if conversion is not None:
            raise ValueError(f"unknown conversion !{conversion}: use !m for a value's Markdown")
        return value

    def format_field(self, value, spec):
        if isinstance(value, _Markdown):
            return str(value)
        if "text/plain" not in value:
            raise ValueError(f"the value has no text to show, only {sorted(value)}")
        return as_text(value["text/plain"], spec)


class _Markdown(str):
    pass


def fill(template: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """``template`` with every ``{name}``, ``{name:spec}`` and ``{name!m}`` replaced from ``values`` (name -> display
    data by MIME type)."""
    return _Filler(values).format(template)


def show(template: str) -> None:
    """Display ``template`` as Markdown, filled in with the values this kernel has glued (`fill`). A value that a
    cell further down computes (the prose may announce a result) shows as ``MISSING`` until `glue` records it; the
    paragraph is then shown again in place, complete."""
    from IPython.display import Markdown, display

    try:
        display(Markdown(fill(template, RECORDED)))
    except LookupError:
        WAITING.append((template, display(Markdown(_Filler(RECORDED, MISSING).format(template)), display_id=True)))


def _complete_waiting() -> None:
    """Show again, complete, every waiting paragraph whose values have all been glued."""
    from IPython.display import Markdown

    for entry in list(WAITING):
        template, handle = entry
        try:
            text = fill(template, RECORDED)
        except LookupError:
            continue
        handle.update(Markdown(text))
        WAITING.remove(entry)
