"""Helpers of the EqSpike part tests (tests/test_eqspike_kit_*.py): lanes packed into a memory word and back,
and a combinational part driven by random inputs in an async testbench."""

from __future__ import annotations

from amaranth.sim import Simulator


def pack(vals, bits: int) -> int:
    """Lane i of ``bits`` bits at bit i·bits (two's complement)."""
    return sum((int(v) & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(vals))


def unpack(word: int, bits: int, n: int, signed: bool) -> list[int]:
    out = [(word >> (i * bits)) & ((1 << bits) - 1) for i in range(n)]
    return [v - (1 << bits) if signed and v >> (bits - 1) else v for v in out]


def run_comb(dut, check, n: int) -> None:
    """``check(ctx)`` n times (it sets the inputs and asserts the outputs in the same instant: latency 0)."""
    async def bench(ctx):
        for _ in range(n):
            check(ctx)
            await ctx.delay(1e-6)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
