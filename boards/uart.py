"""8N1 UART receiver and transmitter with ``lib.stream`` byte interfaces (Amaranth 0.5).

Both take ``divisor``, the clock cycles per bit (``round(f_clk / baud)``). The receiver samples
each bit once, in the middle of the bit (half a bit after the start bit's falling edge, then
every ``divisor`` cycles), which tolerates a few percent of baud-rate mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4


def _check_divisor(divisor) -> int:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer >= {MIN_DIVISOR} (clock cycles per bit), not {divisor!r}")
    return divisor


@dataclass(frozen=True)
class Bridge:
    """A USB-UART bridge's baud-rate generator (FTDI's scheme): ``ref_hz / (n + k/8)`` for integer
    ``n >= 2`` and ``k`` in 0 … 7, plus two special divisors: 0 gives ``ref_hz`` and 1 gives
    ``2/3 · ref_hz``; nothing between them. The driver sets the achievable rate nearest to the one
    asked for.

    FT231X (ULX3S): 48 MHz / 16 = 3 MHz reference, so at most 3 Mbaud (FTDI's knowledge base,
    "What baud rates are achievable?"). FT2232H (iCEBreaker): the hi-speed parts divide 120 MHz by
    10 instead (the 2.5 pre-divider off), 12 MHz reference, at most 12 Mbaud (FT2232H data sheet
    DS_FT2232H §1; Linux ``ftdi_sio`` commit 094c2e6db4be).
    """

    name: str
    ref_hz: int

    @property
    def max_baud(self) -> int:
        return self.ref_hz

    def divisor8(self, baud: float) -> int:
        """The driver's divisor for ``baud`` in eighths (0 and 8 stand for the special divisors 0, 1)."""
        if baud >= self.ref_hz * 5 / 6:  # nearer to ref than to 2/3 ref
            return 0
        if baud >= self.ref_hz * (1 / 3 + 1 / 4):  # between 2/3 ref and ref/2: the nearer one
            return 8 if abs(baud - self.ref_hz * 2 / 3) <= abs(baud - self.ref_hz / 2) else 16
        return max(16, min(8 * 16384 + 7, round(8 * self.ref_hz / baud)))

    def rate(self, divisor8: int) -> Fraction:
        if divisor8 == 0:
            return Fraction(self.ref_hz)
        if divisor8 == 8:
            return Fraction(2 * self.ref_hz, 3)
        return Fraction(8 * self.ref_hz, divisor8)

    def nearest(self, baud: float) -> Fraction:
        """The rate the bridge actually runs at when asked for ``baud``."""
        return self.rate(self.divisor8(baud))


FT231X = Bridge("FT231X", 3_000_000)
FT2232H = Bridge("FT2232H", 12_000_000)
BRIDGES = {"ulx3s": FT231X, "icebreaker": FT2232H}


def bridge_for_platform(platform) -> Bridge | None:
    """The USB-UART bridge of an amaranth-boards platform (``None`` for one this module does not know)."""
    names = " ".join(c.__name__ for c in type(platform).__mro__).lower()
    for board, bridge in BRIDGES.items():
        if board in names:
            return bridge
    return None


def uart_divisor(clk_freq: float, baud: int, *, tolerance: float = 0.02, bridge: Bridge | None = None) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_freq``; refuses a rate error above ``tolerance``.

    With ``bridge``, the FPGA's rate ``clk_freq / divisor`` is compared with the rate the bridge
    really makes for ``baud`` (:meth:`Bridge.nearest`), and a ``baud`` above the bridge's maximum
    is refused.

    Raises
    ------
    ValueError
        If the nearest divisor misses the baud rate by more than ``tolerance`` (relative), is
        below the UART's minimum, or the bridge cannot run that fast.
    """
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    if bridge is not None and baud > bridge.max_baud * (1 + tolerance):
        raise ValueError(f"baud {baud} is above the {bridge.name} USB-UART bridge's maximum of {bridge.max_baud} "
                         f"(the fastest rate this board makes exactly: {default_baud(clk_freq, bridge)})")
    divisor = round(clk_freq / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud {baud} is too fast for a {clk_freq / 1e6:g} MHz clock "
                         f"(divisor {divisor} < {MIN_DIVISOR})")
    fpga = clk_freq / divisor
    if bridge is not None:
        other = float(bridge.nearest(baud))
        error = abs(fpga - other) / other
        if error > tolerance:
            raise ValueError(f"baud {baud} at {clk_freq / 1e6:g} MHz: the FPGA's UART makes {fpga:.0f} baud "
                             f"(divisor {divisor}), the {bridge.name} {other:.0f} baud: {error:.1%} apart, more "
                             f"than {tolerance:.0%} (the fastest exact rate here: "
                             f"{default_baud(clk_freq, bridge)})")
        return divisor
    error = abs(fpga - baud) / baud
    if error > tolerance:
        raise ValueError(f"baud {baud} at {clk_freq / 1e6:g} MHz: divisor {divisor} gives "
                         f"{fpga:.0f} baud ({error:.1%} off, more than {tolerance:.0%})")
    return divisor


def exact_bauds(clk_freq: float, bridge: Bridge, *, at_least: int = 9600) -> list[int]:
    """Rates (fastest first, ``>= at_least``) that both the FPGA (``clk_freq / d``, integer ``d >= 4``)
    and the bridge make exactly."""
    clk = Fraction(clk_freq).limit_denominator(1000)
    out = []
    d = MIN_DIVISOR
    while clk / d >= at_least:
        b = clk / d
        if b <= bridge.max_baud and bridge.nearest(float(b)) == b and b.denominator == 1:
            out.append(int(b))
        d += 1
    return out


def default_baud(clk_freq: float, bridge: Bridge | None) -> int:
    """The fastest rate both sides make exactly (115 200 without a known bridge, or when none is exact)."""
    if bridge is None:
        return 115200
    rates = exact_bauds(clk_freq, bridge)
    return rates[0] if rates else 115200


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
