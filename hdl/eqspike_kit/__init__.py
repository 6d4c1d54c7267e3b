"""The EqSpike core's parts (docs/eqspike.md, "RTL architecture"): each a ``wiring.Component`` in its own
module with a docstring stating its contract and latency, tested on its own against its twin piece
(``tests/test_eqspike_kit_<part>.py``). :class:`hdl.eqspike.EqSpikeCore` wires them together; the
shared arithmetic helpers (rounding, constant products, lane slices) are :mod:`hdl.eqspike_kit.common`.
"""
