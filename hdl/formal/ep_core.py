"""EP core: 2-2-2 net, P = 2 (one tile per layer, no padding lanes), 4-bit inputs and states, 6-bit
weights and biases, T1 = T2 = 1, training with the symmetric estimator (floor rounding).

The weight, bias and state memories start with *any* contents (no initial values: the solver picks
the worst case), so the overflow properties hold for every weight the formats allow.

Properties
* streams: ``out``, ``dump``, ``wrsp`` keep valid and payload until ready (6 assertions; ``inp``,
  ``wcmd`` assumed alike); one prediction per sample (``got ≤ samples ≤ got + 1``); one ``wrsp``
  per weight read command (``got ≤ reads ≤ got + 1``);
* no wrap: every sum the spec sizes, each time it is written: lane accumulators ``lsum``, the
  reduce accumulator ``rsum`` and the row's ``final`` sum and ``addend`` within ``acc_bits(layer)``
  (signed), the nudge, and on the update path ``udiff`` and ``delta`` within their registers;
* registers: ``reg_error`` (``REG_STATUS`` bit 1) is set exactly by a refused write
  (:meth:`spec.ep_core.EPCoreSpec.register_write_error`, rebuilt here as logic) and cleared exactly
  by a write of ``REG_STATUS``; a refused T1/T2/BETA_SHIFT/LR_SHIFT write leaves the register as it
  was; T1, T2 ≠ 0 and the shifts ≤ their maxima at all times.
Covers: each kind of sum written (so each no-wrap assertion is exercised: lsum, addend, nudge, rsum,
udiff, delta), a prediction taken, a training sample's prediction taken (after its updates), a dump
beat, a weight read response, ``reg_error`` set and cleared.
One sample (measured in the Amaranth simulator, REG_CYCLES): inference 25 cycles, training 84
cycles from its input beat to its prediction; + 2 cycles for the beat.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Cat, Cover, Module, Signal

from hdl.ep_core import EPCore
from spec.ep_core import (
    CTRL_RANDOM_SIGN,
    CTRL_TRAIN,
    REG_BETA_SHIFT,
    REG_CTRL,
    REG_LR_SHIFT,
    REG_SEED,
    REG_STATUS,
    REG_T1,
    REG_T2,
    EPCoreSpec,
)

from .props import History, assume_stream_in, check_stream_out, inline, no_wrap, one_beat_per_request
from .run import Harness

SPEC = dict(layers=(2, 2, 2), lanes=2, T1=1, T2=1, input_bits=4, state_bits=4, weight_bits=(6,), weight_frac=(4,),
            bias_bits=6, bias_frac=(4,), beta_shift=0, beta_shift_max=1, lr_shift=0, lr_shift_max=2)


def refused(m: Module, spec: EPCoreSpec, addr, wd) -> Signal:
    """``spec.register_write_error(addr, wd) is not None`` as logic (a non-ternary core)."""
    bad = Signal(name="write_refused")
    tmax = 1 << spec.step_bits
    with m.Switch(addr):
        with m.Case(REG_T1, REG_T2):
            m.d.comb += bad.eq((wd == 0) | (wd >= tmax))
        with m.Case(REG_BETA_SHIFT):
            m.d.comb += bad.eq(wd > spec.beta_shift_max)
        with m.Case(REG_LR_SHIFT):
            m.d.comb += bad.eq(wd > spec.lr_shift_max)
        with m.Case(REG_CTRL):
            no_train = 0 if spec.training else CTRL_TRAIN
            no_rsign = 0 if spec.uses_prng else CTRL_RANDOM_SIGN
            m.d.comb += bad.eq((wd >> 4 != 0) | ((wd & (no_train | no_rsign)) != 0))
        with m.Case(REG_SEED, REG_STATUS):
            m.d.comb += bad.eq(0)
        with m.Default():
            m.d.comb += bad.eq(1)
    return bad


def harness() -> Harness:
    spec = EPCoreSpec(**SPEC)
    assert spec.weight_kind == "fixed"
    dut = EPCore(spec)
    m = Module()
    m.submodules.core = inline(dut)
    t = dut.formal_taps
    ports = [dut.inp.valid, dut.inp.payload, dut.wcmd.valid, dut.wcmd.payload, dut.out.ready, dut.dump.ready,
             dut.wrsp.ready, dut.reg.addr, dut.reg.wdata, dut.reg.we]
    hist = History(m)
    for name in ("out", "dump", "wrsp"):
        check_stream_out(m, hist, getattr(dut, name), name)
    for name in ("inp", "wcmd"):
        assume_stream_in(m, hist, getattr(dut, name), name)

    def one_per(request, port, what):
        one_beat_per_request(m, request, port, f"ep_core: {what}")
        m.d.comb += Cover(port.valid & port.ready, f"ep_core: a {what} beat taken")

    assert spec.tiles(0) == 1  # every input beat is a sample's last beat
    one_per(dut.inp.valid & dut.inp.ready, dut.out, "prediction")
    one_per(dut.wcmd.valid & dut.wcmd.ready & ~dut.wcmd.payload.write, dut.wrsp, "weight read")
    m.d.comb += Cover(dut.dump.valid & dut.dump.ready, "ep_core: a dump beat taken")

    covered = set()
    for name, expr, width, when, layer in t["sums"]:
        kind = name.rstrip("0123456789").replace("final", "rsum")  # lanes, and rsum/final, share their write
        if kind not in covered:
            covered.add(kind)
            m.d.comb += Cover(when, f"ep_core: {kind} written")
        if layer is None:
            no_wrap(m, expr, width, True, f"ep_core: {name}", when)
            continue
        with m.Switch(layer):
            for k in range(1, spec.n_layers + 1):
                with m.Case(k):
                    no_wrap(m, expr, spec.acc_bits(k), True, f"ep_core: {name} (layer {k})", when)

    # a whole training sample: a prediction taken after an update write (the last step of a training sample)
    updated = Signal(name="update_seen")
    with m.If(Cat(*[when for name, _, _, when, _ in t["sums"] if name.startswith("delta")]).any()):
        m.d.sync += updated.eq(1)
    m.d.comb += Cover(dut.out.valid & dut.out.ready & updated, "ep_core: a training sample's prediction taken")

    reg = dut.reg
    taken = reg.we & ~t["busy"]
    bad = refused(m, spec, reg.addr, reg.wdata)
    p_err = hist.past(t["reg_error"], "reg_error")
    p_clear = hist.past(taken & (reg.addr == REG_STATUS), "status_write")
    p_bad = hist.past(taken & bad, "refused")
    with m.If(hist.started):
        m.d.comb += Assert(t["reg_error"] == ((p_err & ~p_clear) | p_bad),
                           "ep_core: reg_error not set/cleared as specified")
    for addr, name in ((REG_T1, "T1"), (REG_T2, "T2"), (REG_BETA_SHIFT, "beta_shift"), (REG_LR_SHIFT, "lr_shift")):
        p_val = hist.past(t[name], name)
        p_ref = hist.past(taken & bad & (reg.addr == addr), f"refused_{name}")
        with m.If(hist.started & p_ref):
            m.d.comb += Assert(t[name] == p_val, f"ep_core: refused {name} write changed the register")
    m.d.comb += [Assert((t["T1"] != 0) & (t["T2"] != 0), "ep_core: T1/T2 = 0"),
                 Assert(t["beta_shift"] <= spec.beta_shift_max, "ep_core: beta_shift above its maximum"),
                 Assert(t["lr_shift"] <= spec.lr_shift_max, "ep_core: lr_shift above its maximum"),
                 Cover(hist.started & ~p_err & t["reg_error"], "ep_core: reg_error set"),
                 Cover(hist.started & p_err & ~t["reg_error"], "ep_core: reg_error cleared")]
    return Harness("EP core (2-2-2, P 2, training, T1 = T2 = 1)", m, ports,
                   bmc_depth=28, cover_depth=90, deep_bmc_depth=56, deep_cover_depth=90,
                   what="inference sample 25 + 2 cycles (quick BMC 28); first update writes at 55 (deep BMC 56)",
                   free_memories=["*wmem*", "*bmem"], map_memories=True)
