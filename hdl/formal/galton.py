"""Galton board: 2 rows (one pipeline register), 1 board, 4-bit probabilities, 16-bit xorshift,
2-bit histogram counters and a 3-bit ball counter (so both saturate within the depth).

Properties: ``out`` and ``rsp`` keep valid and payload until ready (4 assertions; ``cmd`` assumed
alike); no ball beat lost or duplicated: the beats delivered on ``out`` (taken, or waiting) equal the
balls generated outside histogram-only mode, in every cycle; one response per read command
(``got ≤ reads ≤ got + 1``); the ball counter ``REG_DONE`` never decreases except by CLEAR (it starts
from any value: its saturation is in reach); every histogram increment writes back ``old + 1`` or,
at 2^bin_bits − 1, the same value (no wrap). The host drives the register port freely (START, STOP,
CLEAR, SEED, BALLS at any time). Covers: a beat taken, two beats, a histogram-only ball, a read
response, DONE reaching its maximum, a saturated histogram counter incremented.
One ball: 8 cycles of threshold-copy initialisation after reset, seeding and priming, START, then
the 2-cycle pipeline ≈ 14 cycles; four balls in one bin (saturation) ≈ 20.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Cat, Cover, Module, Signal

from hdl.galton import GaltonBoard
from spec.galton import CMD_CLEAR, REG_BALLS, REG_CMD, REG_CTRL, REG_STATUS, WRITABLE_REGS, GaltonSpec

from .props import History, assume_stream_in, check_stream_out, inline, one_beat_per_request
from .run import Harness


def harness() -> Harness:
    spec = GaltonSpec(rows=2, boards=1, prob_bits=4, prng_width=16, bin_bits=2, count_bits=3)
    dut = GaltonBoard(spec)
    m = Module()
    m.submodules.galton = inline(dut)
    t = dut.formal_taps
    ports = [dut.out.ready, dut.cmd.valid, dut.cmd.payload, dut.rsp.ready, dut.reg.addr, dut.reg.wdata, dut.reg.we]
    hist = History(m)
    check_stream_out(m, hist, dut.out, "out")
    check_stream_out(m, hist, dut.rsp, "rsp")
    assume_stream_in(m, hist, dut.cmd, "cmd")

    # out beats (taken or waiting) = balls generated outside histogram-only mode: one small difference
    # counter (it leaves {0, 1} before it could wrap), so the property holds at any depth
    owed = Signal(range(-2, 4), name="balls_owed")
    m.d.sync += owed.eq(owed + (t["commit"] & ~t["hist_only"]) - (dut.out.valid & dut.out.ready))
    m.d.comb += Assert(owed == dut.out.valid, "galton: out beats != balls generated")
    one_beat_per_request(m, dut.cmd.valid & dut.cmd.ready & ~dut.cmd.payload.write, dut.rsp, "galton: read response")
    beats = Signal(2, name="beats_taken")  # out beats taken, saturating at 3 (for the covers)
    with m.If(dut.out.valid & dut.out.ready & (beats != 3)):
        m.d.sync += beats.eq(beats + 1)

    prev_done = hist.past(t["done"], "done")
    cleared = hist.past(dut.reg.we & (dut.reg.addr == REG_CMD) & (dut.reg.wdata & CMD_CLEAR).any(), "clear")
    with m.If(hist.started & ~cleared):
        m.d.comb += Assert(t["done"] >= prev_done, "galton: DONE decreased (wrapped)")
    # out-of-range register writes (spec.register_write_error, rebuilt here as logic) are refused and
    # flagged: BALLS/CTRL keep their values and REG_STATUS bit 4 is set; a STATUS write clears it
    we, addr, wd = dut.reg.we, dut.reg.addr, dut.reg.wdata
    bad = we & (((addr == REG_BALLS) & (wd[spec.count_bits:] != 0)) | ((addr == REG_CTRL) & (wd[2:] != 0))
                | ((addr == REG_CMD) & (wd[3:] != 0)) | ~Cat(*[addr == a for a in WRITABLE_REGS]).any())
    p_bad, p_thr = hist.past(bad, "reg_refused"), hist.past(t["thr_refused"], "thr_refused")
    p_clr = hist.past(we & (addr == REG_STATUS), "status_written")
    p_balls, p_ctrl = hist.past(t["balls"], "balls"), hist.past(t["ctrl"], "ctrl")
    with m.If(hist.started & p_bad):
        m.d.comb += [Assert(t["write_refused"], "galton: a refused register write is not flagged"),
                     Assert((t["balls"] == p_balls) & (t["ctrl"] == p_ctrl),
                            "galton: a refused write changed BALLS/CTRL")]
    with m.If(hist.started & p_thr):
        m.d.comb += Assert(t["write_refused"], "galton: a refused threshold write is not flagged")
    with m.If(hist.started & p_clr & ~p_thr):
        m.d.comb += Assert(~t["write_refused"], "galton: a STATUS write did not clear the flag")
    m.d.comb += [Cover(hist.started & p_bad & (addr == REG_BALLS), "galton: a refused write flagged"),
                 Cover(hist.started & p_thr, "galton: a refused threshold write flagged")]
    hmax, dmax = spec.counter_max, (1 << spec.count_bits) - 1
    for b, (old, new) in enumerate(t["hist"]):
        with m.If(t["h_wr"] & ~t["clearing"]):
            m.d.comb += Assert((new == old + 1) | ((old == hmax) & (new == hmax)),
                               f"galton: histogram {b} increment wrapped")
        m.d.comb += Cover(t["h_wr"] & ~t["clearing"] & (old == hmax), f"galton: saturated bin {b} incremented")
    m.d.comb += [Cover(dut.out.valid & dut.out.ready, "galton: a beat taken"),
                 Cover(dut.out.valid & dut.out.ready & (beats == 1), "galton: two beats taken"),
                 Cover(t["commit"] & t["hist_only"], "galton: a histogram-only ball"),
                 Cover(dut.rsp.valid & dut.rsp.ready, "galton: a read response taken"),
                 Cover(hist.started & (prev_done == dmax - 1) & (t["done"] == dmax), "galton: DONE at its maximum")]
    return Harness("Galton board (2 rows, 1 board, k 4, w 16)", m, ports,
                   bmc_depth=20, cover_depth=24, deep_bmc_depth=40, deep_cover_depth=30,
                   what="one ball ≈ 14 cycles after reset; a saturated bin ≈ 20",
                   free_init=["w:galton.done"])
