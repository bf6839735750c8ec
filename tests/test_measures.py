"""Affinity measures against known groups (mtlutils.measures), on hand-made probe records and one short probe run."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mtlutils import affinity, measures, models, stats, strategies, train
from mtlutils.record import Run

NAMES = ["a", "b", "c", "d"]
GROUPS = [["a", "b"], ["c", "d"]]
BLOCKS = np.kron(np.eye(2), np.ones((2, 2))) - 0.5 * (1 - np.kron(np.eye(2), np.ones((2, 2))))  # +1 within, -0.5 across


def probe_record(steps=20, every=5, matrix=BLOCKS, coded=None, lookahead=None, cosine=None):
    """A probe run's record: the proximal affinity on every step (intended and as-coded stacked), the lookahead and
    the cosine every ``every`` steps; the matrices are the same at every step unless given per step."""
    coded = matrix if coded is None else coded
    measured = [(step, lookahead if lookahead is not None else matrix) for step in range(0, steps, every)]
    cosines = [(step, cosine if cosine is not None else matrix) for step in range(0, steps, every)]
    return Run(history=pd.DataFrame(), evals=pd.DataFrame(), metrics={}, cost={"steps": steps}, task_names=NAMES,
               affinity=[(step, np.stack([matrix, coded])) for step in range(steps)],
               measurements={"lookahead": measured}, cosines=cosines)


def test_series_keeps_the_proximal_affinity_and_smooths_the_sparse_measures():
    rng = np.random.default_rng(0)
    run = probe_record()
    run.measurements["lookahead"] = [(s, rng.normal(size=(4, 4))) for s in range(0, 20, 5)]
    got = measures.series(run, beta=0.05, every=5)
    assert list(got) == measures.MEASURES
    assert [s for s, _ in got[measures.INTENDED]] == list(range(20))
    np.testing.assert_array_equal(got[measures.AS_CODED][3][1], run.affinity[3][1][1])
    expected = affinity.moving_average(run.measurements["lookahead"], 0.25)
    for (step, m), (step_e, m_e) in zip(got[measures.LOOKAHEAD], expected):
        assert step == step_e
        np.testing.assert_allclose(m, m_e)
    # a weight beta * every above 1 is capped: the smoothed series is the raw one
    raw = measures.series(run, beta=0.5, every=5)[measures.LOOKAHEAD]
    for (_, m), (_, m_raw) in zip(raw, run.measurements["lookahead"]):
        np.testing.assert_allclose(m, m_raw)


def test_agreement_rows_find_groups_written_into_every_measure():
    rows = pd.DataFrame(measures.agreement_rows(probe_record(), NAMES, GROUPS, beta=0.2, every=5, points=4,
                                                dataset="toy", seed=3))
    assert set(rows.measure) == set(measures.MEASURES) | set(measures.EXTRA)
    assert (rows.dataset == "toy").all() and (rows.seed == 3).all()
    assert rows.ari.to_numpy() == pytest.approx(1.0)
    assert rows.progress.between(0, 1, inclusive="right").all()
    finals = rows[rows.final].groupby("measure").size()
    assert (finals == 1).all() and len(finals) == len(measures.MEASURES) + len(measures.EXTRA)
    assert rows[rows.measure == measures.INTENDED].progress.max() == 1.0
    assert rows[rows.measure.isin(measures.MEASURES)].groupby("measure").size().max() <= 4
    assert rows[rows.measure == measures.TAG_SELECTION].overlap.tolist() == [False]  # two disjoint blocks


def test_agreement_falls_to_chance_or_below_for_groups_that_cut_across():
    crossed = [["a", "c"], ["b", "d"]]
    rows = pd.DataFrame(measures.agreement_rows(probe_record(), NAMES, crossed, beta=0.2, every=5, points=3))
    assert (rows[rows.measure == measures.INTENDED].ari <= 0).all()


def test_panels_show_the_intended_affinity_three_times_then_the_others_at_the_end():
    cosine = np.eye(4) * 0.3
    shown = measures.panels(probe_record(steps=40, cosine=cosine), beta=1.0, every=5)
    titles = [title for title, _ in shown]
    assert titles[:3] == [f"{measures.INTENDED}\nstep {s} of 40" for s in (5, 21, 40)]
    assert titles[3:] == [f"{m}\nend (moving average)" for m in (measures.LOOKAHEAD, measures.COSINE)]
    np.testing.assert_allclose(shown[0][1], affinity.normalized_affinity(BLOCKS))
    np.testing.assert_allclose(shown[4][1], cosine)  # the cosine is not normalised


def test_mean_affinity_normalises_only_the_proximal_affinity():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    run = probe_record(steps=2, every=1)
    run.affinity = [(0, np.stack([first, first])), (1, np.stack([second, second]))]
    mean = (first + second) / 2
    np.testing.assert_allclose(measures.mean_affinity(run, measures.INTENDED, 1.0, 1),
                               affinity.normalized_affinity(mean))
    np.testing.assert_allclose(measures.mean_affinity(run, measures.AS_CODED, 1.0, 1),
                               affinity.normalized_affinity(mean, as_coded=True))
    np.testing.assert_allclose(measures.mean_affinity(run, measures.COSINE, 1.0, 1), BLOCKS)


def test_a_measure_that_orders_the_pairs_as_their_gains_correlates_perfectly():
    rng = np.random.default_rng(2)
    runs = []
    for _ in range(3):
        matrix = rng.normal(size=(4, 4))
        runs.append(probe_record(steps=5, every=1, matrix=matrix, lookahead=-matrix))
    scores = measures.pair_score_matrix(runs, measures.COSINE, 4, beta=1.0, every=1)
    assert scores.shape == (3, len(list(itertools.combinations(NAMES, 2))))
    rows = {row["measure"]: row for row in measures.transfer_correlations([(runs, 2 * scores + 1)], 4, 1.0, 1)}
    assert list(rows) == measures.MEASURES
    assert rows[measures.COSINE]["spearman"] == pytest.approx(1.0)
    assert rows[measures.LOOKAHEAD]["spearman"] == pytest.approx(-1.0)
    assert rows[measures.COSINE]["seeds"] == 3 and rows[measures.COSINE]["pairs"] == 6
    pooled = measures.transfer_correlations([(runs, scores), (runs, scores + 10)], 4, 1.0, 1)
    cosine = {row["measure"]: row for row in pooled}[measures.COSINE]
    assert cosine["pairs"] == 12 and cosine["spearman"] == pytest.approx(expected_pooled(scores))


def expected_pooled(scores):
    """Spearman's correlation of two blocks of pairs whose gains are their cosine scores, the second's shifted up."""
    means = scores.mean(axis=0)
    return scipy_stats.spearmanr(np.concatenate([means, means]), np.concatenate([means, means + 10])).statistic


def by_seed_table():
    index = pd.MultiIndex.from_product([["clusters"], ["Adam", "SGD"], [0, 1, 2, 3]],
                                       names=["dataset", "optimizer", "seed"])
    good = np.array([0.9, 0.8, 0.85, 0.95, 0.7, 0.75, 0.8, 0.72])
    return pd.DataFrame({"x": good, "y": good - 0.5, "z": good - [0.1, -0.1, 0.05, -0.05] * 2}, index=index)


def test_gaps_by_cell_are_paired_differences_in_each_cell():
    table = by_seed_table()
    gaps = measures.gaps_by_cell(table, "x", "y")
    assert list(gaps) == [("clusters", "Adam"), ("clusters", "SGD")]
    for cell, gap in gaps.items():
        assert gap["mean"] == pytest.approx(0.5) and gap["n"] == 4
        assert gap.equals(stats.paired_gap(table.loc[cell], "x", "y"))
    assert measures.gaps_text(gaps).startswith("clusters with Adam: +0.50 (95% CI")


def test_best_line_names_the_highest_and_the_measures_it_is_not_separated_from():
    wide = by_seed_table().loc[("clusters", "Adam")]
    cell = stats.summarize(wide.melt(var_name="measure"), by=["measure"]).set_index("measure")
    line, gaps = measures.best_line("clusters, Adam", cell, wide)
    assert line.startswith("- clusters, Adam: x has the highest mean ARI over training, +0.88")
    assert line.endswith("the seeds do not separate it from z.") and len(gaps) == 2
    line, _ = measures.best_line("clusters, Adam", cell.drop(index="z"), wide)
    assert line.endswith("it is above every other measure.")


def test_premise_line_reports_each_correlation_and_those_above_zero():
    cell = pd.DataFrame({"seeds": 4, "pairs": 15, "spearman": [0.5, -0.1], "ci_low": [0.2, -0.6],
                         "ci_high": [0.7, 0.4]}, index=["m1", "m2"])
    line = measures.premise_line("clusters", cell)
    assert line.startswith("- clusters (15 pairs, 4 seeds): m1 +0.50 (95% CI +0.20 to +0.70); m2 -0.10")
    assert line.endswith("The highest is m1; the interval lies above zero for m1.")
    flat = cell.assign(spearman=np.nan, ci_low=np.nan, ci_high=np.nan)
    assert measures.premise_line("clusters", flat).endswith("no interval lies above zero.")


def test_steered_row_counts_lone_groups_after_the_warm_up_and_a_lone_group_once(suite):
    alone = [(name,) for name in suite.task_names]
    lone = [tuple(suite.task_names)] * 2  # the official code lists a lone group twice
    names = suite.task_names
    run = Run(history=pd.DataFrame(), evals=pd.DataFrame(), cost={}, task_names=names,
              metrics={"test": {n: {"mse": 1.0} for n in names}}, groups=[alone, alone, lone, alone, lone, lone])
    row = measures.steered_row(run, run, suite, warmup=1)
    assert row["groups"] == 1 and row["lone"] == pytest.approx(75.0)
    assert row["delta"] == pytest.approx(0.0)  # against itself
    assert row["ari"] == pytest.approx(affinity.group_agreement([tuple(names)], suite.meta["groups"]))
    suite.meta.pop("groups")
    assert np.isnan(measures.steered_row(run, run, suite, warmup=1)["ari"])


def test_official_line_compares_the_official_method_with_the_intended_one():
    coded, intended = measures.ATTRIBUTIONS["as_coded"], measures.ATTRIBUTIONS["intended"]
    cell = pd.DataFrame({"method": [coded] * 3 + [intended] * 3, "seed": [0, 1, 2] * 2,
                         "lone": [50.0, 40.0, 60.0, 0.0, 10.0, 20.0], "ari": [0.2, 0.4, 0.3, 0.5, 0.7, 0.6],
                         "delta": [-1.0, 1.0, 0.5, 0.0, 0.0, 0.0]})
    line = measures.official_line("clusters", cell)
    assert line.startswith("- clusters: after the warm-up, 50% of the official run's batches (and 10% of the "
                           "intended one's) had all tasks in one group; ARI of the final groups, official minus "
                           "intended, -0.30 (95% CI -0.30 to -0.30)")
    assert line.endswith(", which the seeds do not tell from zero.")
    no_groups = measures.official_line("clusters", cell.assign(ari=np.nan))
    assert "ARI" not in no_groups


def test_the_measures_of_a_short_probe_run_are_compared_with_the_known_groups(suite):
    net = models.for_suite(suite, seed=0)
    probe = strategies.AffinityProbe(beta=0.1, lookahead_every=2, lookahead_lr=0.05,
                                     optimizer_factory=strategies.adam(3e-3))
    run = train.fit(net, suite, probe, steps=6, batch_size=32, gradient_cosine_every=2, progress=False,
                    device="cpu")
    rows = pd.DataFrame(measures.agreement_rows(run, suite.task_names, suite.meta["groups"], beta=0.1, every=2,
                                                points=3, seed=0))
    assert set(rows.measure) == set(measures.MEASURES) | set(measures.EXTRA)
    assert rows.ari.between(-1, 1).all()
    proximal = rows[rows.measure.isin([measures.INTENDED, measures.AS_CODED])]
    assert proximal[proximal.final].progress.eq(1.0).all()  # recorded at the last step too
    assert len(measures.panels(run, beta=0.1, every=2)) == 5
