"""UART loopback: UARTTx → line → UARTRx, divisor 4 (the minimum).

Properties: the receiver's ``data`` output keeps valid and payload until ready (2 assertions); the
transmitter's ``data`` input is assumed to do the same. Beats: with ``acc`` bytes taken by the
transmitter and ``got`` bytes delivered by the receiver (taken or waiting in its output register)
plus ``dropped`` overruns (counted from the overrun pulse's cycle), ``got + dropped ≤ acc ≤ got +
dropped + 1`` (no beat invented or duplicated, at
most one in flight); the byte delivered as number ``tag`` (any index, a free input held constant)
is the byte taken as number ``tag`` when no overrun came before; a clean line never gives a frame
error. Covers: a byte delivered, the tagged byte compared, two bytes back to back, an overrun.
One byte takes 10 bits × 4 cycles + 2 (synchroniser) + 2 (start, output register) ≈ 44 cycles.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Module, Signal

from boards.uart import UARTRx, UARTTx

from .props import History, assume_stream_in, check_stream_out
from .run import Harness

DIVISOR = 4


def harness() -> Harness:
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor=DIVISOR)
    m.submodules.rx = rx = UARTRx(divisor=DIVISOR)
    m.d.comb += rx.rx.eq(tx.tx)
    in_valid, in_data, out_ready = Signal(name="in_valid"), Signal(8, name="in_data"), Signal(name="out_ready")
    tag = Signal(4, name="tag")
    m.d.comb += [tx.data.valid.eq(in_valid), tx.data.payload.eq(in_data), rx.data.ready.eq(out_ready)]
    hist = History(m)
    assume_stream_in(m, hist, tx.data, "tx.data")
    check_stream_out(m, hist, rx.data, "rx.data")
    past_tag = hist.past(tag, "tag")  # (outside the If: the history register runs every cycle)
    with m.If(hist.started):
        m.d.comb += Assume(tag == past_tag)

    acc, taken, lost = Signal(8, name="acc"), Signal(8, name="taken"), Signal(8, name="lost")
    with m.If(tx.data.valid & tx.data.ready):
        m.d.sync += acc.eq(acc + 1)
    with m.If(rx.data.valid & rx.data.ready):
        m.d.sync += taken.eq(taken + 1)
    with m.If(rx.overrun):
        m.d.sync += lost.eq(lost + 1)
    got = taken + rx.data.valid
    dropped = lost + rx.overrun  # the overrun pulse comes one cycle after the byte was dropped
    m.d.comb += [Assert(got + dropped <= acc, "uart: more bytes out than in"),
                 Assert(acc <= got + dropped + 1, "uart: more than one byte in flight (a byte was lost)"),
                 Assert(~rx.frame_error, "uart: frame error on a clean line")]
    rec, rec_ok = Signal(8, name="rec"), Signal(name="rec_ok")
    with m.If(tx.data.valid & tx.data.ready & (acc == tag)):
        m.d.sync += [rec.eq(tx.data.payload), rec_ok.eq(1)]
    check = rx.data.valid & (taken == tag) & (lost == 0)
    with m.If(check):
        m.d.comb += [Assert(rec_ok, "uart: tagged byte out before it went in"),
                     Assert(rx.data.payload == rec, "uart: tagged byte changed on the way")]
    m.d.comb += [Cover(rx.data.valid & rx.data.ready, "uart: a byte delivered"),
                 Cover(check & (tag == 1), "uart: the second byte compared"),
                 Cover(rx.data.valid & rx.data.ready & (taken == 1), "uart: two bytes delivered"),
                 Cover(rx.overrun, "uart: overrun")]
    return Harness("uart loopback (UARTTx → UARTRx, divisor 4)", m, [in_valid, in_data, out_ready, tag],
                   bmc_depth=48, cover_depth=96, deep_bmc_depth=100, deep_cover_depth=100,
                   what="one byte ≈ 44 cycles; quick BMC 48 (one byte), deep 100 (two bytes, an overrun at 83)",
                   prove=False)  # the tagged-byte check counts bytes (8-bit counters): a bounded property
