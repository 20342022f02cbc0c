"""``[graph]`` configuration: how tables become a graph."""

from __future__ import annotations

from dataclasses import dataclass

from cxgraph.params import Params


@dataclass(frozen=True)
class GraphParams(Params):
    """Dataset naming and neuPrint's thresholds."""

    dataset: str = "cxgraph"  # Meta.dataset
    neuron_min_pre: int = 2  # a current body is a :Neuron with >= this many pre synapses ...
    neuron_min_post: int = 10  # ... or >= this many post synapses (neuPrint hemibrain rule)
    post_high_accuracy_threshold: float = 0.0  # ConnectsTo.weight: posts with confidence >= this
    post_hp_threshold: float = 0.0  # Meta.postHPThreshold (neuPrint field)
    check_after_load: bool = True  # run the consistency checks at the end of `cxgraph load`
