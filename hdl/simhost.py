"""The stream and register primitives of the Amaranth-simulator hosts (:mod:`hdl.ep_core_host`,
:mod:`hdl.eqspike_host`): one beat out or in on a ``lib.stream`` port with optional seeded random
stalls, and a register write/read on a ``RegSignature`` port, as async helpers for
``Simulator.add_testbench``."""

from __future__ import annotations

import random


class StreamHost:
    """Drive a core's streams with optional seeded random stalls.

    ``idle_prob``: probability that the host leaves ``valid`` low for a cycle before a beat;
    ``stall_prob``: probability that it holds ``ready`` low on a cycle while receiving.
    """

    def __init__(self, dut, spec, *, seed: int | None = None, idle_prob: float = 0.0, stall_prob: float = 0.0):
        self.dut, self.spec = dut, spec
        self.rng = random.Random(seed)
        self.idle_prob, self.stall_prob = idle_prob, stall_prob

    async def _idle(self, ctx):
        while self.idle_prob and self.rng.random() < self.idle_prob:
            await ctx.tick()

    async def put(self, ctx, stream, word: int) -> None:
        """Send one beat: ``valid`` (after random idle cycles) until ``ready`` takes it."""
        await self._idle(ctx)
        ctx.set(stream.payload.as_value(), word)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def recv(self, ctx, stream) -> int:
        """Receive one beat: ready (with random stalls) until a handshake happens."""
        while True:
            stall = bool(self.stall_prob) and self.rng.random() < self.stall_prob
            ctx.set(stream.ready, 0 if stall else 1)
            _clk, _rst, word, valid = await ctx.tick().sample(stream.payload.as_value(), stream.valid)
            if valid and not stall:
                ctx.set(stream.ready, 0)
                return int(word)

    async def write_reg(self, ctx, addr: int, value: int) -> None:
        ctx.set(self.dut.reg.addr, addr)
        ctx.set(self.dut.reg.wdata, value)
        ctx.set(self.dut.reg.we, 1)
        await ctx.tick()
        ctx.set(self.dut.reg.we, 0)

    async def read_reg(self, ctx, addr: int) -> int:
        ctx.set(self.dut.reg.addr, addr)
        return int(ctx.get(self.dut.reg.rdata))
