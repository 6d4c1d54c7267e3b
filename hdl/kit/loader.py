"""Kit part: the EP core's input loader (docs/ep-core.md, "Components"; twin piece
:func:`golden.ep_core.sequence.input_tiles`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


class InputLoader(wiring.Component):
    """Takes a sample's input beats (P codes each, the label on the last) into the input memory.

    Contract (twin piece: :func:`golden.ep_core.sequence.input_tiles`, the memory's words):

    * ``inp.ready`` is ``ok``. Beat t (t = 0 … ``tiles − 1``, counted over taken beats) is written
      in the cycle it is taken: ``wr_en`` high, ``wr_addr`` t, ``wr_data`` its P codes, the lanes past
      ``inputs`` (the last beat's padding) 0.
    * ``load`` is high in the cycle the last beat is taken; ``label`` holds that beat's label from
      the next cycle on (until the next sample's last beat), and the beat count starts again at 0.

    Latency: 0 cycles (the write and ``load`` come in the handshake's cycle). Back-pressure: ``ok``
    low holds ``inp.ready`` low (the core is busy, or not ready to start a sample).

    Parameters
    ----------
    layout : the ``inp`` payload (``pixels`` array of P codes and ``label``). inputs : int — codes per
    sample (``layers[0]``). tiles : int — beats per sample (``ceil(inputs / P)``).

    Members
    -------
    inp : In(stream). ok : In(1). load, wr_en : Out(1). wr_addr : Out(range(tiles)).
    wr_data : Out(P × code bits). label : Out(label bits).
    """

    def __init__(self, layout: data.StructLayout, inputs: int, tiles: int):
        P = layout.members["pixels"].length if "pixels" in layout.members else 0
        if P < 1 or "label" not in layout.members:
            raise ValueError(f"layout must have a 'pixels' array and a 'label', not {layout!r}")
        if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1 \
                or isinstance(inputs, bool) or not isinstance(inputs, int) or not (tiles - 1) * P < inputs <= tiles * P:
            raise ValueError(f"inputs and tiles must satisfy (tiles − 1)·P < inputs <= tiles·P (P = {P}), "
                             f"not inputs={inputs!r}, tiles={tiles!r}")
        self.P, self.inputs, self.tiles = P, inputs, tiles
        ib = layout.members["pixels"].elem_shape.width
        super().__init__({
            "inp": In(stream.Signature(layout)), "ok": In(1), "load": Out(1), "wr_en": Out(1),
            "wr_addr": Out(range(max(2, tiles))), "wr_data": Out(P * ib), "label": Out(layout.members["label"]),
        })

    def elaborate(self, platform):
        m = Module()
        P, T = self.P, self.tiles
        ib = len(self.wr_data) // P
        beat = Signal(range(T + 1))
        m.d.comb += [self.inp.ready.eq(self.ok), self.wr_addr.eq(beat)]
        with m.If(self.inp.valid & self.inp.ready):
            m.d.comb += self.wr_en.eq(1)
            for i in range(P):
                real = (beat * P + i) < self.inputs  # padding lanes of the last beat hold zero
                m.d.comb += self.wr_data[i * ib:(i + 1) * ib].eq(Mux(real, self.inp.payload.pixels[i], 0))
            with m.If(beat == T - 1):
                m.d.comb += self.load.eq(1)
                m.d.sync += [beat.eq(0), self.label.eq(self.inp.payload.label)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
