"""Domain-wall Galton board (ALGORITHMS.md §5): float model, exact distributions and the hardware twin.

* :mod:`.model` — p(H) per junction, lattice edits, chirality memory; exact distributions
  (binomial, Poisson-binomial, DP over position / last turn) and a float sampler.
* :mod:`.twin` — :class:`GaltonTwin`, the bit-exact integer model of :class:`hdl.galton.GaltonBoard`.
* :mod:`.stats` — chi-square goodness of fit (regularised incomplete gamma, no scipy).
* ``python -m golden.domainwall`` — ``spec``, ``exact`` and ``histogram`` commands.
"""

from .model import (
    DomainWallBoard,
    binomial_pmf,
    exact_distribution,
    logistic,
    moments,
    poisson_binomial_pmf,
    sample_board,
    threshold_distribution,
)
from .stats import ChiSquare, chi2_sf, chi_square_test, gammaincc
from .twin import GaltonTwin, bins_from_words, check_thresholds, default_thresholds

__all__ = ["ChiSquare", "DomainWallBoard", "GaltonTwin", "binomial_pmf", "bins_from_words", "check_thresholds",
           "chi2_sf", "chi_square_test", "default_thresholds", "exact_distribution", "gammaincc", "logistic",
           "moments", "poisson_binomial_pmf", "sample_board", "threshold_distribution"]
