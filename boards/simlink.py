"""Transports that run the board's gateware in the Amaranth simulator under :class:`boards.host.EPCoreHost`.

The host driver is synchronous (``write``/``read``); these transports queue written bytes for a
background testbench that feeds them to the design and advance the simulation inside ``read``
until enough bytes have come back. So the *same* host code runs against simulated gateware and
against a board's serial port.

* :class:`StreamSimTransport` drives :class:`boards.top.LinkedCore`'s byte streams (fast), with
  seeded random idles on ``rx`` and stalls on ``tx``. A UART cannot be back-pressured: if ``rx``
  stays not-ready for longer than a UART byte could wait, the transport raises (the host's flow
  control let the receive FIFO overflow).
* :class:`UARTSimTransport` drives :class:`boards.top.UARTLinkedCore`'s serial lines bit by bit.
"""

from __future__ import annotations

import random
from collections import deque

from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.sim import Simulator

CLOCK_PERIOD = 1e-6


class _Resettable(Elaboratable):
    """The design in a sync domain whose reset a testbench can drive (a board's reset button)."""

    def __init__(self, dut):
        self.dut = dut
        self.cd = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.submodules.dut = self.dut
        return m


class _SimTransport:
    """Common part: the simulator, the byte queues and the read loop."""

    def __init__(self, dut, *, max_wait_cycles: int, vcd: str | None = None):
        self.dut = dut
        self.max_wait_cycles = max_wait_cycles
        self.to_device: deque[int] = deque()
        self.from_device = bytearray()
        self.cycles = 0
        self.resets = 0  # device resets asked for (reset_device)
        self._reset_cycles = 0
        self._top = _Resettable(dut)
        self.sim = Simulator(self._top)
        self.sim.add_clock(CLOCK_PERIOD, domain="sync")
        self.sim.add_testbench(self._feeder, background=True)
        self.sim.add_testbench(self._drain, background=True)
        self._time = 0.0
        self._vcd = self.sim.write_vcd(vcd) if vcd else None
        if self._vcd is not None:
            self._vcd.__enter__()

    def close(self) -> None:
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None

    def write(self, data: bytes) -> None:
        self.to_device.extend(data)

    def reset_input_buffer(self) -> None:
        """Drop bytes the device sent that nobody read (pyserial's name: a new session calls it)."""
        self.from_device.clear()

    def wait_device_timeout(self) -> None:
        """Let the link's mid-frame timeout run out (the host's resynchronisation waits for it)."""
        link = getattr(self.dut, "link", None) or getattr(getattr(self.dut, "linked", None), "link", None)
        t = getattr(link, "timeout_cycles", None)
        self.run_cycles(16 + (t if t else 64) * 2)

    def reset_device(self, cycles: int = 3) -> None:
        """Hold the design in reset for ``cycles`` (the board's reset button); memories keep their
        contents, bytes still queued for the device are not touched."""
        self.resets += 1
        self._reset_cycles = cycles
        self.run_cycles(cycles + 2)

    def _drive_reset(self, ctx) -> None:
        """Called once per cycle by a testbench that ticks every cycle (the reset button)."""
        if self._reset_cycles:
            ctx.set(self._top.cd.rst, 1)
            self._reset_cycles -= 1
        else:
            ctx.set(self._top.cd.rst, 0)

    def run_cycles(self, n: int) -> None:
        self._time += n * CLOCK_PERIOD
        self.sim.run_until(self._time)

    def read(self, n: int) -> bytes:
        start = self.cycles
        while len(self.from_device) < n and self.cycles - start < self.max_wait_cycles:
            self.run_cycles(16)
        out = bytes(self.from_device[:n])
        del self.from_device[:n]
        return out

    async def _feeder(self, ctx):  # pragma: no cover - overridden
        raise NotImplementedError

    async def _drain(self, ctx):  # pragma: no cover - overridden
        raise NotImplementedError


class StreamSimTransport(_SimTransport):
    """Feed :class:`LinkedCore`'s ``rx`` byte stream and drain its ``tx`` stream.

    Parameters
    ----------
    dut : LinkedCore
    seed : int — seeds the idles and stalls.
    idle_prob : float — chance of an idle cycle before each byte offered on ``rx``.
    stall_prob : float — chance that ``tx.ready`` is low on a cycle.
    overflow_grace : int — cycles ``rx`` may stay not-ready before the byte counts as lost
        (a UART delivers a byte every 10·divisor cycles at most, so a FIFO that frees a slot within a
        few cycles loses nothing).
    """

    def __init__(self, dut, *, seed: int = 0, idle_prob: float = 0.0, stall_prob: float = 0.0,
                 overflow_grace: int = 4, max_wait_cycles: int = 200_000, vcd: str | None = None,
                 lossy: bool = False):
        self.rng = random.Random(seed)
        self.idle_prob, self.stall_prob = idle_prob, stall_prob
        self.overflow_grace = overflow_grace
        self.lossy = lossy  # a byte that finds the FIFO full is dropped (as a UART would), not an error
        self.lost = 0
        super().__init__(dut, max_wait_cycles=max_wait_cycles, vcd=vcd)

    async def _feeder(self, ctx):
        rx = self.dut.rx
        while True:
            if not self.to_device or (self.idle_prob and self.rng.random() < self.idle_prob):
                await ctx.tick()
                continue
            ctx.set(rx.payload, self.to_device.popleft())
            ctx.set(rx.valid, 1)
            waited = 0
            while not ctx.get(rx.ready):
                waited += 1
                if waited > self.overflow_grace:
                    if self.lossy:
                        self.lost += 1
                        break
                    raise AssertionError("the link's receive FIFO stayed full: on a UART this byte would be "
                                         "lost (the host sent more than its credit)")
                await ctx.tick()
            await ctx.tick()
            ctx.set(rx.valid, 0)

    async def _drain(self, ctx):
        tx = self.dut.tx
        while True:
            self._drive_reset(ctx)
            stall = bool(self.stall_prob) and self.rng.random() < self.stall_prob
            ctx.set(tx.ready, 0 if stall else 1)
            _clk, _rst, valid, payload = await ctx.tick().sample(tx.valid, tx.payload)
            self.cycles += 1
            if valid and not stall:
                self.from_device.append(int(payload))


class UARTSimTransport(_SimTransport):
    """Drive :class:`UARTLinkedCore`'s ``rx`` line and decode its ``tx`` line (8N1, ``dut.divisor``).

    ``gap_prob``: chance of an extra idle bit time between bytes sent to the device. ``fault``
    records whether the device's sticky ``fault`` output was seen high (checked between bytes).
    """

    def __init__(self, dut, *, seed: int = 0, gap_prob: float = 0.0, max_wait_cycles: int = 400_000,
                 vcd: str | None = None):
        self.rng = random.Random(seed)
        self.gap_prob = gap_prob
        self.fault = False  # dut.fault was seen high (a byte lost, a bad stop bit, a protocol error)
        super().__init__(dut, max_wait_cycles=max_wait_cycles, vcd=vcd)

    # plain ticks only: a background coroutine suspended inside ``repeat()``/``until()`` cannot be
    # closed cleanly when the simulator is discarded mid-run
    async def _ticks(self, ctx, n: int) -> None:
        for _ in range(n):
            await ctx.tick()

    async def _feeder(self, ctx):
        d = self.dut.divisor
        ctx.set(self.dut.rx, 1)
        while True:
            if not self.to_device or (self.gap_prob and self.rng.random() < self.gap_prob):
                await self._ticks(ctx, d)
                continue
            b = self.to_device.popleft()
            for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                ctx.set(self.dut.rx, bit)
                await self._ticks(ctx, d)

    async def _drain(self, ctx):
        d = self.dut.divisor
        tx = self.dut.tx

        async def tick():
            self._drive_reset(ctx)
            _clk, _rst, line, fault = await ctx.tick().sample(tx, self.dut.fault)
            self.cycles += 1
            self.fault |= bool(fault)
            return line

        while True:
            if await tick():
                continue
            # start bit seen: sample the middle of every bit
            for _ in range(d // 2):
                line = await tick()
            assert not line, "glitch on the device's tx line"
            byte = 0
            for i in range(9):
                for _ in range(d):
                    line = await tick()
                if i < 8:
                    byte |= int(line) << i
            assert line, "framing error on the device's tx line"
            self.from_device.append(byte)
