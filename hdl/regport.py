"""The register port shared by the hardware blocks (EP core, Galton board, the boards' mock core)."""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import REG_BITS  # the width every block's registers share (spec.galton uses the same)

REG_ADDR_BITS = 4


class RegSignature(wiring.Signature):
    """A small register port from the host's view: it drives ``addr``/``wdata``/``we`` and reads
    ``rdata`` (combinational: the value of register ``addr`` in the same cycle)."""

    def __init__(self):
        super().__init__({"addr": Out(REG_ADDR_BITS), "wdata": Out(REG_BITS), "we": Out(1), "rdata": In(REG_BITS)})
