"""Ternary weight memory: depth 4, P = 2, fault injection and the update port (every path present).

Properties: ``rsp`` keeps valid and payload until ready (2 assertions; ``cmd`` assumed alike); one
response per raw read-back: with ``reads`` read-backs accepted and ``got`` responses delivered (taken
or waiting), ``got ≤ reads ≤ got + 1``; the three saturating counters (injected, illegal, reads) never
decrease unless cleared through their register (so they never wrap; they start from any value, so
the saturation at 2^32 − 1 is in reach). The environment issues no read or update while ``busy``.
Covers: a response taken, a second read-back answered, a PCSA read, an update write, each counter
reaching its maximum. Register writes: every value is defined (CTRL mode 3 reads as off, rates are
masked to 25 bits by the RTL and the twin alike), so nothing is out of range.
One transaction: seeding (P + 1 cycles after reset) then a read-back and its response ≈ 6 cycles.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Module, Signal

from hdl.ternary_mem import TernaryWeightMemory
from spec.ternary import COUNTER_MAX, REG_ILLEGAL, REG_INJECTED, REG_READS, TernaryMemorySpec

from .props import History, assume_stream_in, check_stream_out, inline, one_beat_per_request
from .run import Harness


def harness() -> Harness:
    spec = TernaryMemorySpec(depth=4, lanes=2, fault_injection=True, update_port=True)
    dut = TernaryWeightMemory(spec)
    m = Module()
    m.submodules.mem = inline(dut)  # elaborated here: the harness reads its counters
    ports = [dut.rd_addr, dut.rd_en, dut.rd_raw, dut.up_en, dut.up_addr, dut.up_data, dut.up_mask,
             dut.cmd.valid, dut.cmd.payload, dut.rsp.ready, dut.reg.addr, dut.reg.wdata, dut.reg.we]
    hist = History(m)
    assume_stream_in(m, hist, dut.cmd, "cmd")
    check_stream_out(m, hist, dut.rsp, "rsp")
    m.d.comb += Assume(~(dut.busy & (dut.rd_en | dut.up_en)))

    pending = one_beat_per_request(m, dut.cmd.valid & dut.cmd.ready & ~dut.cmd.payload.write, dut.rsp,
                                   "ternary_mem: read-back")
    # where the read-back is: its data on the read port (raw_pending), or the response register. A
    # true invariant of the block, asserted so that the k-induction can use it (without it an
    # induction step may start from a state no trace reaches)
    raw = dut.formal_taps["raw_pending"]
    m.d.comb += Assert((pending == raw + dut.rsp.valid) & ~(raw & dut.rsp.valid),
                       "ternary_mem: a read-back is in exactly one place")
    taken = Signal(2, name="rsp_taken")  # responses taken, saturating at 3 (for the covers)
    with m.If(dut.rsp.valid & dut.rsp.ready & (taken != 3)):
        m.d.sync += taken.eq(taken + 1)
    m.d.comb += [Cover(dut.rsp.valid & dut.rsp.ready, "ternary_mem: response taken"),
                 Cover(dut.rsp.valid & dut.rsp.ready & (taken == 1), "ternary_mem: second response taken"),
                 Cover(dut.rd_en & ~dut.rd_raw, "ternary_mem: PCSA read"),
                 Cover(dut.up_en, "ternary_mem: update write")]
    clear = {"injected": REG_INJECTED, "illegal": REG_ILLEGAL, "reads": REG_READS}
    for name in clear:
        counter = dut.formal_taps[name]
        prev = hist.past(counter, f"cnt_{name}")
        cleared = hist.past(dut.reg.we & (dut.reg.addr == clear[name]), f"clr_{name}")
        with m.If(hist.started & ~cleared):
            m.d.comb += Assert(counter >= prev, f"ternary_mem: counter {name} decreased (wrapped)")
        m.d.comb += Cover(hist.started & (prev == COUNTER_MAX - 1) & (counter == COUNTER_MAX),
                          f"ternary_mem: counter {name} reaches its maximum")
    return Harness("ternary memory (depth 4, P 2, faults, update port)", m, ports,
                   bmc_depth=16, cover_depth=16, deep_bmc_depth=40, deep_cover_depth=30,
                   what="seeding (P + 1 cycles) + read-back and response ≈ 6 cycles",
                   free_init=["w:mem.injected", "w:mem.illegal", "w:mem.reads"],
                   prove_engine="k-induction", prove_depth=4)  # abc pdr: no answer in 7 min
