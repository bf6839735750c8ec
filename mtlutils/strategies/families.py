"""The torchjd methods for two tasks as the book names them, by family, in the order of the book's tables."""

from __future__ import annotations

from .aggregated import AGGREGATOR_LABELS, AGGREGATORS
from .scalarized import SCALARIZER_LABELS, SCALARIZERS
from .split_batch import SPLIT_WEIGHTING_LABELS, SPLIT_WEIGHTINGS

# family -> (strategy name in a configuration, the keyword that names the method, registry, labels)
TORCHJD_FAMILIES = {
    "gradient aggregator": ("aggregated", "aggregator", AGGREGATORS, AGGREGATOR_LABELS),
    "independent batches": ("split_batch_weighted", "weighting", SPLIT_WEIGHTINGS, SPLIT_WEIGHTING_LABELS),
    "loss scalarizer": ("scalarized", "scalarizer", SCALARIZERS, SCALARIZER_LABELS),
}
