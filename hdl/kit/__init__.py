"""The core kit: the parts an accelerator core is assembled from (docs/ep-core.md, "Components").

Each part is a ``wiring.Component`` with a Signature and a docstring stating its contract and
latency; its twin piece lives beside the core's twin (``golden.ep_core``) and its own
Amaranth-simulator test is ``tests/test_kit_<part>.py``. The EP core (:mod:`hdl.ep_core`), its
ternary variant and the EqSpike core share these parts.
"""

from __future__ import annotations

from amaranth.hdl import Mux, unsigned
from amaranth.lib import data


def layout_from_fields(fields: list[tuple[str, int]]) -> data.StructLayout:
    """StructLayout with the spec's field order; consecutive ``name[i]`` fields become an array."""
    members: dict[str, object] = {}
    i = 0
    while i < len(fields):
        name, width = fields[i]
        if name.endswith("[0]"):
            base = name[:-3]
            n = 0
            while i + n < len(fields) and fields[i + n][0] == f"{base}[{n}]":
                assert fields[i + n][1] == width
                n += 1
            members[base] = data.ArrayLayout(unsigned(width), n)
            i += n
        else:
            members[name] = unsigned(width)
            i += 1
    layout = data.StructLayout(members)
    assert layout.size == sum(w for _, w in fields)
    return layout


def bank_base(bank, tiles: int):
    """``bank · tiles`` for a 2-bit ``bank`` (a state memory's four banks of ``tiles`` words) as a
    multiplexer of the four constants: synthesis would otherwise build a multiplier (an ECP5 DSP block,
    slow and far from the memory) for the product."""
    return Mux(bank[1], Mux(bank[0], 3 * tiles, 2 * tiles), Mux(bank[0], tiles, 0))
