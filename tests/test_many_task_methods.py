import pytest

from mtlutils import config, strategies
from mtlutils.experiments import many_task_methods

BASE = dict(dataset="digit_attributes", size="smoke", epochs=1, batch_size=64)
SELECTIVE = dict(beta=5e-2, warmup=4, regroup_every=2)


def test_every_method_is_a_valid_configuration_on_top_of_the_base():
    methods = many_task_methods(BASE, SELECTIVE)
    assert list(methods) == ["Averaged", "Alternated (k=1)", "RandomGroups (k=2)", "SelectiveGroups", "PCGrad",
                             "UPGrad"]
    for configuration in methods.values():
        assert {k: configuration[k] for k in BASE} == BASE
        assert isinstance(config.build_strategy(config.complete(configuration)), strategies.Strategy)
    keys = {config.config_key(c) for c in methods.values()}
    assert len(keys) == len(methods)  # no two labels train the same runs


def test_the_configurations_are_the_ones_written_out():
    """The same cache keys as the configurations spelled out by hand, so runs trained from them are reused."""
    written = {
        "Averaged": {**BASE, "strategy": "averaged"},
        "Alternated (k=1)": {**BASE, "strategy": "random_groups", "strategy_kwargs": {"group_size": 1}},
        "RandomGroups (k=2)": {**BASE, "strategy": "random_groups", "strategy_kwargs": {"group_size": 2}},
        "SelectiveGroups": {**BASE, "strategy": "selective_groups", "strategy_kwargs": SELECTIVE},
        "PCGrad": {**BASE, "strategy": "aggregated", "strategy_kwargs": {"aggregator": "pcgrad"}},
        "UPGrad": {**BASE, "strategy": "aggregated", "strategy_kwargs": {"aggregator": "upgrad"}},
    }
    methods = many_task_methods(BASE, SELECTIVE)
    assert {n: config.config_key(c) for n, c in methods.items()} == {n: config.config_key(c)
                                                                    for n, c in written.items()}


def test_the_group_size_and_aggregators_are_chosen_and_labelled():
    methods = many_task_methods(BASE, SELECTIVE, group_size=5, aggregators=["mgda", "cagrad", "upgrad"])
    assert methods["RandomGroups (k=5)"]["strategy_kwargs"] == {"group_size": 5}
    aggregated = [n for n, c in methods.items() if c["strategy"] == "aggregated"]
    assert aggregated == [strategies.AGGREGATOR_LABELS[a] for a in ("mgda", "cagrad", "upgrad")]
    assert len(many_task_methods(BASE, SELECTIVE, aggregators=())) == 4
    with pytest.raises(KeyError):
        many_task_methods(BASE, SELECTIVE, aggregators=["no such aggregator"])


def test_the_selective_options_are_copied_not_shared():
    selective = dict(SELECTIVE)
    methods = many_task_methods(BASE, selective)
    selective["beta"] = 0.5
    assert methods["SelectiveGroups"]["strategy_kwargs"] == SELECTIVE
