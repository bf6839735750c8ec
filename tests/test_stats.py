import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scipy import stats as scipy_stats

from mtlutils import stats

eighths = st.integers(-40, 40).map(lambda k: k / 8)  # exact in binary: differences are exactly what was drawn


@st.composite
def wide_tables(draw, min_methods=1, max_methods=8):
    """Rows: seeds; columns: a reference and some methods, each the reference plus a shift and noise."""
    n, m = draw(st.integers(2, 12)), draw(st.integers(min_methods, max_methods))
    base = np.array(draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n)), dtype=float)
    columns = {"ref": base}
    for k in range(m):
        noise = np.array(draw(st.lists(st.integers(-8, 8), min_size=n, max_size=n))) / 8
        columns[f"m{k}"] = base + draw(eighths) + noise
    return pd.DataFrame(columns)


@settings(max_examples=60, deadline=None)
@given(wide_tables())
def test_the_p_value_is_below_five_percent_exactly_when_the_interval_leaves_out_zero(wide):
    table = stats.paired_differences(wide, reference="ref")
    for _, row in table.iterrows():
        if abs(row.p_value - 0.05) > 1e-9:  # exactly at the edge, rounding decides
            assert (row.p_value < 0.05) == (stats.sign_of(row) != 0)


@settings(max_examples=60, deadline=None)
@given(wide_tables(), st.sampled_from([0.01, 0.05, 0.1]))
def test_the_correction_keeps_the_smallest_p_values_under_the_benjamini_hochberg_line(wide, rate):
    table = stats.corrected(stats.paired_differences(wide, reference="ref"), rate)
    p = table.p_value.to_numpy()
    assert (table.p_adjusted.to_numpy() >= p - 1e-12).all()
    order, m = np.argsort(p, kind="stable"), len(p)
    lines = np.arange(1, m + 1) / m * rate  # the step-up rule, from its definition: the k smallest p-values, k the
    under = np.flatnonzero(p[order] <= lines)  # largest rank whose p-value lies on or under its line
    assume(not np.isclose(p[order], lines, rtol=0, atol=1e-12).any())  # on the line, rounding decides
    kept = set(order[:under.max() + 1]) if under.size else set()
    assert set(np.flatnonzero(table.survives.to_numpy())) == kept


@settings(max_examples=40, deadline=None)
@given(wide_tables())
def test_survivors_are_separated_and_one_comparison_is_not_corrected(wide):
    table = stats.corrected(stats.paired_differences(wide, reference="ref"))
    above, below = stats.separated(table)
    assert set(table.index[table.survives]) <= set(above) | set(below)
    single = stats.corrected(stats.paired_differences(wide[["ref", "m0"]], reference="ref"))
    assert single.p_adjusted.iloc[0] == pytest.approx(single.p_value.iloc[0])


def test_differences_without_spread_have_the_p_value_of_their_interval():
    wide = pd.DataFrame({"ref": [1.0, 2.0, 3.0], "same": [1.0, 2.0, 3.0], "shifted": [2.0, 3.0, 4.0]})
    table = stats.paired_differences(wide, reference="ref")
    assert table.loc["same", "p_value"] == 1.0 and table.loc["shifted", "p_value"] == 0.0


def test_the_sentence_counts_separations_and_names_the_survivors():
    rng = np.random.default_rng(0)
    base = rng.normal(size=10)
    wide = pd.DataFrame({"ref": base, "big": base + 3 + 0.1 * rng.normal(size=10),
                         **{f"noise{k}": base + rng.normal(size=10) for k in range(5)}})
    sentence = stats.surviving(stats.paired_differences(wide, reference="ref"))
    assert sentence.startswith("Of 6 comparisons, ") and sentence.endswith("1 survives the correction for their "
                                                                          "number (Benjamini-Hochberg, "
                                                                          "false-discovery rate 5%): big.")
    alike = stats.surviving(stats.paired_differences(wide[["ref", "noise0", "noise1"]], reference="ref"))
    assert alike.endswith("none survives the correction for their number (Benjamini-Hochberg, false-discovery "
                          "rate 5%).")


def test_a_correction_needs_two_seeds_and_a_rate_between_zero_and_one():
    one_seed = stats.paired_differences(pd.DataFrame({"ref": [1.0], "a": [2.0]}), reference="ref")
    with pytest.raises(ValueError, match="two paired seeds"):
        stats.corrected(one_seed)
    two = stats.paired_differences(pd.DataFrame({"ref": [1.0, 2.0], "a": [2.0, 2.5]}), reference="ref")
    with pytest.raises(ValueError, match="must lie in"):
        stats.corrected(two, rate=5)


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12), st.floats(0.2, 3), st.integers(12, 60))
def test_the_seeds_asked_for_are_the_fewest_whose_interval_would_be_within_the_target(differences, target, most):
    n = stats.seeds_for(differences, target, most)
    spread = np.std(differences, ddof=1)

    def half_width(k):
        return scipy_stats.t.ppf(0.975, k - 1) * spread / np.sqrt(k)

    assert len(differences) <= n <= most
    assert n == most or half_width(n) <= target  # enough, unless it asks for the most there may be
    assert n == len(differences) or half_width(n - 1) > target  # and no fewer would do
    if half_width(len(differences)) <= target:
        assert n == len(differences)  # resolved already: no seed more
    with pytest.raises(ValueError, match="at least two differences"):
        stats.seeds_for(differences[:1], target, most)
