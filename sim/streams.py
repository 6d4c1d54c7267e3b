"""cocotb 2.x drivers for ``amaranth.lib.stream`` ports and the project's register port.

An Amaranth stream member ``inp`` flattens to ``inp__valid``, ``inp__ready`` and ``inp__payload``
in the generated Verilog (TOOLCHAIN.md gotcha 4); a struct payload is one vector, field 0 in the
low bits, packed and unpacked with :func:`pack_fields` / :func:`unpack_fields` (re-exported from
:mod:`spec.ep_core`).

Timing discipline, shared by every coroutine here:

* Inputs of the DUT change only just after a rising clock edge, and every coroutine returns just
  after a rising edge, in a phase where the caller may write again.
* Handshakes are decided on values sampled in the ``ReadOnly`` phase after that edge (when the
  DUT's registers and any combinational ``ready``/``valid`` paths have settled), so the beat moves
  on the *next* rising edge. This behaves the same on Icarus (writes applied at the ReadWrite
  sync) and Verilator (inertial writes).
* Event-driven waiting: while the DUT holds ``ready`` (source) or ``valid`` (sink) low — an
  accelerator computing for tens of thousands of cycles — the coroutine sleeps on the rising edge
  of that signal instead of waking every clock; it steps cycle by cycle only while a transfer is
  possible or a random idle/stall cycle was drawn. With the C clock of :func:`start_clock`, the
  simulator then runs free between beats with no Python at all.
* Idle cycles (sources) and stalls (sinks) are drawn from a ``random.Random(seed)`` per driver, so
  a run is reproducible and identical on both simulators.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import cocotb
from cocotb.clock import Clock
from cocotb.task import Task
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from spec.ep_core import pack_fields, unpack_fields

__all__ = [
    "RegPort",
    "StreamSink",
    "StreamSource",
    "pack_fields",
    "reset",
    "start_clock",
    "unpack_fields",
]


def start_clock(clk, period_ns: int = 10, *, impl: str = "gpi") -> Task:
    """Start a free-running clock on ``clk`` (first rising edge at time 0).

    ``impl="gpi"`` toggles the clock in the simulator interface's C++ code: no Python runs per
    cycle, which is what makes event-driven waiting pay off (the ``"py"`` clock, cocotb's default
    on Icarus, wakes Python twice a period).
    """
    return Clock(clk, period_ns, unit="ns", impl=impl).start()


async def reset(dut, clk=None, cycles: int = 2) -> None:
    """Hold Amaranth's synchronous ``rst`` high for ``cycles`` rising edges, then release it;
    returns just after the first edge that sees ``rst`` low."""
    clk = dut.clk if clk is None else clk
    dut.rst.value = 1
    await ClockCycles(clk, cycles)
    dut.rst.value = 0
    await RisingEdge(clk)


def _prob(name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), not {p!r}")
    return float(p)


def _port(dut, prefix: str, member: str):
    try:
        return getattr(dut, f"{prefix}__{member}")
    except AttributeError:
        raise AttributeError(f"{dut._name} has no port {prefix}__{member} (Amaranth flattens stream members "
                             f"to <name>__valid/__ready/__payload)") from None


def _undefined(signal, value, other) -> str:
    # An X/Z handshake makes the transfer undefined (and simulators disagree about it): fail loudly.
    return (f"{signal._name} is {value} while {other._name} is high: the handshake is undefined "
            f"(an uninitialised or undriven signal in the DUT?)")


class StreamSource:
    """Drives ``<prefix>__valid`` and ``<prefix>__payload`` of a stream into the DUT.

    Parameters
    ----------
    dut:
        cocotb handle of the top level.
    prefix:
        Name of the stream member (``"inp"`` for ports ``inp__valid`` …).
    clk:
        Clock handle; default ``dut.clk``.
    seed:
        Seed of the idle-cycle generator.
    idle_prob:
        Probability of an idle cycle (``valid`` low) before each beat, drawn repeatedly.

    Attributes
    ----------
    beats:
        Beats transferred so far.
    """

    def __init__(self, dut, prefix: str, clk=None, *, seed: int | None = None, idle_prob: float = 0.0):
        self.dut, self.prefix = dut, prefix
        self.clk = dut.clk if clk is None else clk
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready")
        self.payload = _port(dut, prefix, "payload")
        self.seed, self.idle_prob = seed, _prob("idle_prob", idle_prob)
        self.rng = random.Random(seed)
        self.beats = 0
        self.valid.value = 0

    async def send(self, payloads: Iterable[int]) -> None:
        """Send every payload (ints, or anything ``int()`` takes), one beat each, in order; returns
        just after the edge that transferred the last one, with ``valid`` low again."""
        clk_edge, ready_rise, settled = RisingEdge(self.clk), RisingEdge(self.ready), ReadOnly()
        for word in payloads:
            if self.idle_prob:
                while self.rng.random() < self.idle_prob:
                    self.valid.value = 0
                    await clk_edge
            self.payload.value = int(word)
            self.valid.value = 1
            while True:
                await settled
                ready = self.ready.value
                if ready == 1:
                    await clk_edge  # the handshake edge
                    break
                if not ready.is_resolvable:
                    raise RuntimeError(_undefined(self.ready, ready, self.valid))
                await ready_rise  # the DUT is busy: sleep until it can take the beat
            self.beats += 1
        self.valid.value = 0

    async def send_fields(self, fields: list[tuple[str, int]], records: Iterable[dict[str, int]]) -> None:
        """Send struct payloads given as ``{field: value}`` dicts (``fields`` ordered, bit 0 first)."""
        await self.send(pack_fields(fields, r) for r in records)


class StreamSink:
    """Drives ``<prefix>__ready`` of a stream out of the DUT and collects its payloads.

    Parameters
    ----------
    dut, prefix, clk, seed:
        As for :class:`StreamSource`.
    stall_prob:
        Probability that ``ready`` is low in a cycle (drawn per cycle while a beat is offered or
        awaited). With 0, ``ready`` stays high while receiving and the sink sleeps until ``valid``.

    Attributes
    ----------
    received:
        Payloads taken by the background collector (:meth:`start`).
    beats:
        Beats transferred so far.
    """

    def __init__(self, dut, prefix: str, clk=None, *, seed: int | None = None, stall_prob: float = 0.0):
        self.dut, self.prefix = dut, prefix
        self.clk = dut.clk if clk is None else clk
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready")
        self.payload = _port(dut, prefix, "payload")
        self.seed, self.stall_prob = seed, _prob("stall_prob", stall_prob)
        self.rng = random.Random(seed)
        self.beats = 0
        self.received: list[int] = []
        self._task: Task | None = None
        self._busy = False
        self.ready.value = 0

    async def _take(self, n: int | None, on_beat: Callable[[int], None]) -> None:
        if self._busy:
            raise RuntimeError(f"stream {self.prefix!r} already has a receiver running")
        self._busy = True
        try:
            clk_edge, valid_rise, settled = RisingEdge(self.clk), RisingEdge(self.valid), ReadOnly()
            got = 0
            while n is None or got < n:
                stall = bool(self.stall_prob) and self.rng.random() < self.stall_prob
                self.ready.value = 0 if stall else 1
                await settled
                valid = self.valid.value
                if valid != 1:
                    if not (stall or valid.is_resolvable):
                        raise RuntimeError(_undefined(self.valid, valid, self.ready))
                    await valid_rise  # nothing offered: sleep until the DUT has a beat
                elif stall:
                    await clk_edge  # offered, refused on purpose this cycle
                else:
                    word = int(self.payload.value)
                    await clk_edge  # the handshake edge
                    got += 1
                    self.beats += 1
                    on_beat(word)
            self.ready.value = 0
        finally:
            self._busy = False

    async def recv(self, n: int = 1) -> list[int]:
        """Receive ``n`` payloads (ints); returns just after the edge that transferred the last one,
        with ``ready`` low again."""
        out: list[int] = []
        await self._take(n, out.append)
        return out

    async def recv_fields(self, fields: list[tuple[str, int]], n: int = 1) -> list[dict[str, int]]:
        """Receive ``n`` struct payloads as ``{field: value}`` dicts."""
        return [unpack_fields(fields, w) for w in await self.recv(n)]

    def start(self, callback: Callable[[int], None] | None = None) -> Task:
        """Collect payloads in the background into :attr:`received` (and pass each to ``callback``)
        until :meth:`stop`."""
        if self._task is not None and not self._task.done():
            raise RuntimeError(f"stream {self.prefix!r} collector already running")

        def on_beat(word: int) -> None:
            self.received.append(word)
            if callback is not None:
                callback(word)

        self._task = cocotb.start_soon(self._take(None, on_beat))
        return self._task

    def stop(self) -> None:
        """Stop the background collector and drop ``ready`` (call it from a writable phase)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._busy = False
        self.ready.value = 0


class RegPort:
    """A register port: ``<prefix>__addr``, ``__wdata``, ``__we`` into the DUT and ``__rdata``, a
    combinational read of the addressed register, out of it. A write takes effect on the rising
    edge after ``write`` sets ``we``; each access takes one clock cycle."""

    def __init__(self, dut, prefix: str = "reg", clk=None):
        self.dut, self.prefix = dut, prefix
        self.clk = dut.clk if clk is None else clk
        self.addr = _port(dut, prefix, "addr")
        self.wdata = _port(dut, prefix, "wdata")
        self.we = _port(dut, prefix, "we")
        self.rdata = _port(dut, prefix, "rdata")
        self.we.value = 0
        self.addr.value = 0
        self.wdata.value = 0

    async def write(self, addr: int, value: int) -> None:
        self.addr.value = addr
        self.wdata.value = value
        self.we.value = 1
        await RisingEdge(self.clk)
        self.we.value = 0

    async def read(self, addr: int) -> int:
        self.addr.value = addr
        await ReadOnly()
        value = int(self.rdata.value)
        await RisingEdge(self.clk)  # leave the read-only phase: the caller may write at once
        return value
