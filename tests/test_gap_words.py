import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from mtlutils import stats


def test_a_gap_is_named_and_says_when_its_interval_contains_zero():
    wide = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.5, 1.0]})
    gap = stats.paired_gap(wide, "a", "b")
    assert stats.describe_gap(gap, "a", "b", unit=" points") == (
        f"a minus b: {stats.describe_interval(gap, unit=' points')}")
    unclear = {"mean": 0.2, "ci_low": -0.3, "ci_high": 0.7}
    assert stats.describe_gap(unclear, "k=1", "k=10") == (
        "k=1 minus k=10: +0.2% (95% CI -0.3 to +0.7) (the interval contains 0)")


@given(st.floats(-10, 10), st.floats(0.01, 10))
def test_the_words_follow_the_side_of_zero(low, width):
    row = {"mean": low + width / 2, "ci_low": low, "ci_high": low + width}
    text = stats.describe_gap(row, "x", "y", decimals=3)
    assert text.startswith("x minus y: " + stats.describe_interval(row, decimals=3))
    assert text.endswith("(the interval contains 0)") == (stats.sign_of(row) == 0)
