"""8N1 UART receiver and transmitter with ``lib.stream`` byte interfaces (Amaranth 0.5).

Both take ``divisor``, the clock cycles per bit (``round(f_clk / baud)``). The receiver samples
each bit once, in the middle of the bit (half a bit after the start bit's falling edge, then
every ``divisor`` cycles), which tolerates a few percent of baud-rate mismatch.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4


def _check_divisor(divisor) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer >= {MIN_DIVISOR} (clock cycles per bit), not {divisor!r}")
    return divisor


def uart_divisor(clk_freq: float, baud: int, *, tolerance: float = 0.02) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_freq``; refuses a rate error above ``tolerance``.

    Raises
    ------
    ValueError
        If the nearest divisor misses the baud rate by more than ``tolerance`` (relative), or is
        below the UART's minimum.
    """
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    divisor = round(clk_freq / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud {baud} is too fast for a {clk_freq / 1e6:g} MHz clock "
                         f"(divisor {divisor} < {MIN_DIVISOR})")
    error = abs(clk_freq / divisor - baud) / baud
    if error > tolerance:
        raise ValueError(f"baud {baud} at {clk_freq / 1e6:g} MHz: divisor {divisor} gives "
                         f"{clk_freq / divisor:.0f} baud ({error:.1%} off, more than {tolerance:.0%})")
    return divisor


class UARTRx(wiring.Component):
    """8N1 UART receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    rx : In(1)
        The serial line (idle high); synchronised internally.
    data : Out(stream.Signature(8))
        Received bytes. A byte waits in an output register; if the next byte completes while it is
        still not taken, the new byte is dropped and ``overrun`` pulses.
    overrun : Out(1)
        One-cycle pulse: a received byte was lost because ``data`` was not taken in time.
    frame_error : Out(1)
        One-cycle pulse: a stop bit read low (the byte is dropped).
    """

    def __init__(self, *, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "overrun": Out(1),
            "frame_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        valid = Signal()
        m.d.comb += [self.data.valid.eq(valid)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += valid.eq(0)
        m.d.sync += [self.overrun.eq(0), self.frame_error.eq(0)]

        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM(name="rx"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)  # to the middle of the start bit
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(~line):
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
                    with m.Else():  # a glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(line):
                        with m.If(valid & ~self.data.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.data.payload.eq(shreg), valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):  # wait for the line to return high before the next start bit
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 UART transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` is high while the transmitter is idle.
    tx : Out(1)
        The serial line (idle high), driven straight from a flip-flop.
    """

    def __init__(self, *, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        shreg = Signal(10, init=0x3FF)  # line state first; ones shift in behind the stop bit
        bits = Signal(range(11))
        timer = Signal(range(d))
        m.d.comb += [self.tx.eq(shreg[0]), self.data.ready.eq(bits == 0)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))), bits.eq(10), timer.eq(d - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits.eq(bits - 1), timer.eq(d - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
