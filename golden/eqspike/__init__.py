"""Float EqSpike: spike-driven Equilibrium Propagation (Martin et al. 2021; docs/eqspike.md)."""

from .config import EqSpikeConfig
from .network import EqSpikeNet, EventCounts, SpikeState, sigma_delta_

__all__ = ["EqSpikeConfig", "EqSpikeNet", "EventCounts", "SpikeState", "sigma_delta_"]
