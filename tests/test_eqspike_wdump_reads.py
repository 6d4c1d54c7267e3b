"""The ``wdump`` block read-back reads each memory word exactly once (issue 13): a beat waiting for
``wdump.ready`` holds its data instead of re-reading its word, so a ternary core's PCSA read counter
(the cell memory's REG_READS through REG_TMEM) grows by exactly the memory's depth per dump, whatever the
back-pressure; the dump and the digest == the twin's."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from test_eqspike_core_ternary import TernaryHost, make_spec, ternary_weights  # noqa: I001  (tests/ is on sys.path)

from golden.eqspike.ternary import configure_faults
from golden.eqspike.twin import EqSpikeTwin
from hdl.eqspike import REG_DIGEST, EqSpikeCore, dump_word_count
from hdl.eqspike_host import dump_to_weights
from spec import ternary as tm
from spec.ternary import ctrl_value


@pytest.mark.parametrize("name", ["20-12-5-P4", "24-9-7-4-P3"])
def test_dump_reads_each_word_once_under_stalls(name):
    """Three dumps on one ternary core with static faults: no stalls, stall probability 0.5 and 0.9; after
    each, READS (cleared before) == the cell memory's depth (one PCSA read per word), the dump == the twin's
    stored weights and biases (padding lanes 0), DIGEST == the twin's digest."""
    spec = make_spec(name, fault_injection=True)
    weights = ternary_weights(spec, 5)
    twin = EqSpikeTwin(spec, weights)
    info = configure_faults(twin, weights, 0.2, "static", "adjacent", seed=9)
    faults = (ctrl_value("static", "adjacent"), info["rate_zero"], info["rate_nonzero"], 9)
    depth = spec.ternary_memory_spec().depth
    dut = EqSpikeCore(spec, dump=True)
    got: list = []

    async def bench(ctx):
        host = TernaryHost(dut, spec, seed=3)
        ctrl, rz, rnz, fseed = faults
        for a, v in ((tm.REG_CTRL, ctrl), (tm.REG_RATE_ZERO, rz), (tm.REG_RATE_NONZERO, rnz), (tm.REG_SEED, fseed)):
            await host.write_tmem(ctx, a, v)
        await host.write_tmem(ctx, tm.REG_INJECTED, 0)
        await host.program(ctx, weights)
        got.append(await host.read_tmem(ctx, tm.REG_INJECTED))
        for p in (0.0, 0.5, 0.9):
            host.stall_prob = p
            await host.write_tmem(ctx, tm.REG_READS, 0)
            beats = await host.read_dump(ctx)
            got.append((beats, await host.read_tmem(ctx, tm.REG_READS), await host.read_reg(ctx, REG_DIGEST)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = twin.weights
    assert got[0] == info["injected"] > 0
    for p, (beats, reads, digest) in zip((0.0, 0.5, 0.9), got[1:], strict=True):
        assert len(beats) == dump_word_count(spec)
        back, pad = dump_to_weights(spec, beats)
        assert pad == 0, p
        for k in want:
            if not k.startswith("v"):
                assert np.array_equal(back[k], want[k]), (p, k)
        assert reads == depth, f"stall probability {p}: {reads} PCSA reads for a {depth}-word memory"
        assert digest == twin.digest(), p
