"""Fault experiments on a ternary core's twin: set the memory's fault registers as a host would.

A host sets the mode, error kind, PCSA supply and the two injector thresholds derived from the
mean error rate p and the zero fraction p0 of the stored weights (:func:`spec.ternary.rate_thresholds`),
reseeds, and — for static faults — programs the weights again so that the faults are drawn while
programming. :func:`configure` does exactly that on an :class:`~golden.ep_core.twin.EPCoreTwin`;
:func:`fault_writes` lists the same register writes for an RTL bench.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spec.ep_core import REG_SEED, REG_TCTRL, REG_TRATE_NONZERO, REG_TRATE_ZERO, EPCoreSpec
from spec.ternary import ctrl_value, rate_thresholds

from .twin import EPCoreTwin, pack_memory


def zero_fraction(spec: EPCoreSpec, weights: dict[str, np.ndarray]) -> float:
    """p0: the fraction of zero weights over every ``w{l}`` (padding cells excluded)."""
    ws = [weights[f"w{l}"] for l in range(spec.n_layers)]
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.size for w in ws))


def fault_writes(spec: EPCoreSpec, weights: dict[str, np.ndarray], p: float, mode: str, kind: str = "adjacent",
                 supply: str = "near-threshold", seed: int = 1) -> tuple[list[tuple[int, int]], dict[str, Any]]:
    """The register writes (core address, value) of a fault setting, and its description."""
    if spec.weight_kind != "ternary" or not spec.fault_injection:
        raise ValueError("fault experiments need a spec with weight_kind='ternary' and fault_injection=true")
    p0 = zero_fraction(spec, weights)
    rz, rnz = rate_thresholds(p, p0, kind)
    writes = [(REG_TCTRL, ctrl_value(mode, kind, supply)), (REG_TRATE_ZERO, rz), (REG_TRATE_NONZERO, rnz),
              (REG_SEED, seed)]
    return writes, {"p": p, "p0": p0, "mode": mode, "kind": kind, "supply": supply, "seed": seed,
                    "rate_zero": rz, "rate_nonzero": rnz}


def configure(twin: EPCoreTwin, weights: dict[str, np.ndarray], p: float, mode: str, kind: str = "adjacent",
              supply: str = "near-threshold", seed: int = 1) -> dict[str, Any]:
    """Apply a fault setting to ``twin`` (static: re-program ``weights``, drawing the faults)."""
    writes, info = fault_writes(twin.spec, weights, p, mode, kind, supply, seed)
    for a, v in writes:
        if a == REG_SEED:
            twin.reseed(v)
        else:
            twin.write_memory_reg(a, v)
    if mode == "static":
        twin.program(0, pack_memory(twin.spec, weights))
    return info
