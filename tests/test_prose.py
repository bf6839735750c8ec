"""mtlutils.prose: computed sentences filled in as the web book fills them in."""

import pytest
from hypothesis import given, strategies as st
from myst_nb.core.variables import format_plain_text

from mtlutils import prose

SPECS = ["", ".0f", ".1f", ".2f", ".3g", "+.1f", ".1%", "d", "s", ",d"]


@given(value=st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-10**6, 10**6),
                       st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=12)),
       spec=st.sampled_from(SPECS))
def test_a_value_reads_as_the_web_book_shows_it(value, spec):
    plain = repr(value)
    try:
        expected = format_plain_text(plain, spec)
    except (TypeError, ValueError):
        with pytest.raises((TypeError, ValueError)):
            prose.as_text(plain, spec)
        return
    assert prose.as_text(plain, spec) == expected


def test_fill_puts_text_and_markdown_in_and_keeps_doubled_braces_literal():
    values = {"acc": {"text/plain": "91.234"}, "name": {"text/plain": "'MultiMNIST'"},
              "verdict": {"text/plain": "<Markdown>", "text/markdown": "sharing **helps**"}}
    filled = prose.fill(r"On {name}, {acc:.1f}%: {verdict!m}; $\frac{{1}}{{2}}$", values)
    assert filled == r"On MultiMNIST, 91.2%: sharing **helps**; $\frac{1}{2}$"


def test_fill_says_which_value_is_missing_and_what_to_run():
    with pytest.raises(LookupError, match=r"'acc' has been computed yet: run the cells above"):
        prose.fill("{acc:.1f}", {})


def test_fill_refuses_markdown_of_a_value_that_has_none():
    with pytest.raises(ValueError, match="no Markdown"):
        prose.fill("{acc!m}", {"acc": {"text/plain": "1.0"}})
    with pytest.raises(ValueError, match="unknown conversion !r"):
        prose.fill("{acc!r}", {"acc": {"text/plain": "1.0"}})


def test_glue_records_the_value_that_show_fills_in(monkeypatch):
    monkeypatch.setattr(prose, "RECORDED", {})
    prose.glue("rate", 0.8125)
    assert prose.RECORDED["rate"]["text/plain"] == "0.8125"
    assert prose.fill("{rate:.0%}", prose.RECORDED) == "81%"


def test_a_paragraph_shown_before_its_value_is_computed_is_completed_in_place_when_it_is():
    import nbclient
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('from mtlutils import prose\nprose.show("Accuracy {acc:.1f}%, on {data}.")'),
        nbformat.v4.new_code_cell('prose.glue("acc", 91.25)'),
        nbformat.v4.new_code_cell('prose.show("Now {acc:.0f}%.")\nprose.glue("data", "MultiMNIST")'),
    ])
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=60).execute()
    shown = [[o.data["text/markdown"] for o in cell.outputs if "text/markdown" in o.get("data", {})]
             for cell in notebook.cells]
    assert shown == [["Accuracy 91.2%, on MultiMNIST."], [], ["Now 91%."]]


def test_a_value_not_computed_yet_shows_as_missing_until_then():
    assert prose._Filler({}, prose.MISSING).format("{acc:.1f} and {verdict!m}") == "… and …"
