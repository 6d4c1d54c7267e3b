"""Property helpers for the formal harnesses: stream contracts, overflow bounds, one-cycle history."""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Module, Signal, Value


def inline(dut, platform=None):
    """``dut.elaborate()`` for a harness that reads signals the block creates while elaborating (the
    block object itself is then not a submodule: its must-use warning is silenced)."""
    dut._MustUse__silence = True
    return dut.elaborate(platform)


class History:
    """The previous cycle's value of signals (and whether there was a previous cycle).

    ``started`` is low in the first step of a trace (the flip-flops' initial state), high after.
    """

    def __init__(self, m: Module):
        self.m = m
        self.started = Signal(name="hist_started")
        m.d.sync += self.started.eq(1)

    def past(self, value, name: str) -> Signal:
        v = Value.cast(value)
        p = Signal(len(v), name=f"past_{name}")
        self.m.d.sync += p.eq(v)
        return p


def _stream_rule(m: Module, hist: History, port, name: str, stmt) -> None:
    """valid held and payload stable from a beat's first cycle until ready takes it."""
    payload = Value.cast(port.payload)
    pv, pr = hist.past(port.valid, f"{name}_valid"), hist.past(port.ready, f"{name}_ready")
    pp = hist.past(payload, f"{name}_payload")
    with m.If(hist.started & pv & ~pr):
        m.d.comb += [stmt(port.valid, f"{name}: valid dropped before ready"),
                     stmt(payload == pp, f"{name}: payload changed before ready")]


def check_stream_out(m: Module, hist: History, port, name: str) -> None:
    """Assert the lib.stream rules on an output port of the block (2 assertions)."""
    _stream_rule(m, hist, port, name, Assert)


def assume_stream_in(m: Module, hist: History, port, name: str) -> None:
    """Assume the lib.stream rules of an input port (the environment keeps them)."""
    _stream_rule(m, hist, port, name, Assume)


def no_wrap(m: Module, expr, width: int, signed: bool, name: str, when=1) -> None:
    """Assert that ``expr`` (computed at full Amaranth width, so it cannot wrap itself) fits ``width``
    bits: the register the design sizes for it cannot wrap."""
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    e = Value.cast(expr)
    with m.If(when):
        m.d.comb += Assert((e >= lo) & (e <= hi), f"{name}: value outside [{lo}, {hi}] ({width} bits)")


def one_beat_per_request(m: Module, request, port, name: str, gap: int = 1) -> Signal:
    """Assert that ``port`` answers every ``request`` with exactly one beat, in order: with ``got`` =
    beats taken + the beat on offer, ``got ≤ requests ≤ got + gap`` at every cycle.

    Kept as one small difference counter (requests − beats taken) instead of two counters: its
    value stays in ``[0, gap + 1]`` while the property holds and leaves it (firing the assertion)
    before it could wrap, so the property is true for traces of any length and an unbounded proof
    (``abc pdr``) can use it. Returns the counter.
    """
    key = "".join(c if c.isalnum() else "_" for c in name)
    pending = Signal(range(-2, gap + 4), name=f"{key}_pending")
    taken = port.valid & port.ready
    m.d.sync += pending.eq(pending + Value.cast(request) - taken)
    got_extra = pending - port.valid  # requests − got
    m.d.comb += [Assert(got_extra >= 0, f"{name}: a beat without its request"),
                 Assert(got_extra <= gap, f"{name}: a request without its beat")]
    return pending
