"""Update strategies: how one batch updates the parameters of a multi-task network.

A strategy owns its optimizer(s), built by ``optimizer_factory(params)`` when ``setup`` first sees the network,
and ``step(net, batch)`` returns a StepRecord with the losses, the groups updated and the cost of the step.

Submodules: ``optimizers`` (the optimizer factories ``adam`` and ``sgd``), ``base`` (Strategy, StepRecord,
``task_losses`` and the checks of a strategy's options), ``plain`` (SingleTask, Averaged), ``grouped`` (sequential
group updates: Alternated, RandomGroups, CountMatchedGroups), ``selective`` (SelectiveGroups, AffinityProbe),
``torchjd_module`` (what the strategies around a torchjd module share), ``aggregated`` (gradient aggregators),
``scalarized`` (loss scalarizers), ``split_batch`` (weightings from independent parts of a batch) and ``families``
(the torchjd methods by family, with the book's labels).
"""

from .aggregated import AGGREGATOR_LABELS, AGGREGATORS, COVERED_BY_AVERAGED, NOT_APPLICABLE, Aggregated
from .base import NonFiniteLossError, StepRecord, Strategy, task_losses
from .families import TORCHJD_FAMILIES
from .grouped import Alternated, CountMatchedGroups, GroupedUpdates, RandomGroups
from .optimizers import FusedAdam, FusedAdamW, OptimizerFactory, adam, sgd
from .plain import Averaged, SingleTask
from .scalarized import SCALARIZER_LABELS, SCALARIZERS, Scalarized
from .selective import AffinityProbe, SelectiveGroups
from .split_batch import SPLIT_PARTS, SPLIT_WEIGHTING_LABELS, SPLIT_WEIGHTINGS, SplitBatchWeighted

__all__ = [
    "AGGREGATORS", "AGGREGATOR_LABELS", "COVERED_BY_AVERAGED", "NOT_APPLICABLE", "SCALARIZERS", "SCALARIZER_LABELS",
    "SPLIT_PARTS", "SPLIT_WEIGHTINGS", "SPLIT_WEIGHTING_LABELS", "TORCHJD_FAMILIES",
    "OptimizerFactory", "FusedAdam", "FusedAdamW", "adam", "sgd",
    "StepRecord", "NonFiniteLossError", "task_losses", "Strategy",
    "SingleTask", "Averaged", "GroupedUpdates", "Alternated", "RandomGroups", "CountMatchedGroups",
    "SelectiveGroups", "AffinityProbe", "Aggregated", "Scalarized", "SplitBatchWeighted",
]
