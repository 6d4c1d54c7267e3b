# amaranth: UnusedElaboratable=no
"""EqSpike part: the pass sequencer (:mod:`hdl.eqspike_kit.sequencer`) == the sample's program and the cycle
model (tests/test_eqspike_core.py ``sweep_cycles``, docs/eqspike.md): the cycles from the count's start to
``out_valid`` are the EVT/WUPD cycles + the word sweeps, exactly; the passes come in the twin's order (free
phase, scan, then for a training sample save / +β / restore / −β, WUPD in nudged phases only); every sweep
visits its layers' words in order (stage 1 one cycle after its word); AER input skips the input layer's
encoders; random stalls on ``inp_valid``, ``evt_done`` and ``upd_busy``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.eqspike_kit.sequencer import EqSpikeSequencer
from spec.eqspike import EqSpikeSpec


def sweep_cycles(spec: EqSpikeSpec, T: int, first: int = 0) -> int:
    """tests/test_eqspike_core.py's cycle model of an inference sample beyond its EVT cycles (each EVT pass's
    last cycle, ``evt_done``, counted there): per step ENC over layers ``first`` … L, UPD over 1 … L, 3 pass
    changes; per sample INIT over 0 … L and the scan (first = 1: AER input skips the input encoders)."""
    L = spec.n_layers
    t_enc = sum(spec.tiles(k) for k in range(first, L + 1))
    t_all = sum(spec.tiles(k) for k in range(L + 1))
    return T * (t_enc + (t_all - spec.tiles(0)) + 3) + t_all + spec.tiles(L) + 1


CASES = {"inference": (dict(training=False), False, False), "aer": (dict(training=False), False, True),
         "symmetric": (dict(training=True), True, False), "one-sided": (dict(training=True, estimator="one-sided"),
                                                                         True, False)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sequencer_matches_the_program(name):
    kw, train, aer = CASES[name]
    s = EqSpikeSpec(layers=(7, 5, 4), lanes=2, T1=3, T2=2, **kw)
    L, T = s.n_layers, [s.tiles(k) for k in range(s.n_layers + 1)]
    dut = EqSpikeSequencer(s)
    rng = np.random.default_rng(len(name))
    log = {"labels": [], "evt": 0, "cycles": None, "sweeps": []}

    async def bench(ctx):
        for port, v in ((dut.can_start, 1), (dut.ctrl_aer, aer), (dut.aer_valid, 1), (dut.T1, s.T1),
                        (dut.T2, s.T2), (dut.train, train), (dut.out_ready, 1)):
            ctx.set(port, v)
        count, evt_left, words = None, None, []
        for _ in range(2000):
            ctx.set(dut.inp_valid, rng.random() < 0.7)
            evt, upd_mode = ctx.get(dut.evt), ctx.get(dut.upd_mode)
            if evt and evt_left is None:
                evt_left = int(rng.integers(0, 6))
            ctx.set(dut.evt_done, evt and evt_left == 0)
            ctx.set(dut.upd_busy, rng.random() < 0.5)
            label = ("L" if ctx.get(dut.load) else "I" if ctx.get(dut.init) else ("W" if upd_mode else "E") if evt
                     else "O" if ctx.get(dut.out_valid) else "")
            for strobe, ch in ((dut.enc_v1, "N"), (dut.upd_v1, "U"), (dut.scan_v1, "S"), (dut.copy_v1, "C")):
                if ctx.get(strobe):
                    label += ch
                    words.append((ch, ctx.get(dut.lay1), ctx.get(dut.wrd1)))
            if label:
                log["labels"].append(label + (str(ctx.get(dut.phase)) if label in "WN" else ""))
            if evt:
                log["evt"] += 1
                evt_left = None if evt_left == 0 else evt_left - 1
            if count is not None and ctx.get(dut.busy) and not ctx.get(dut.out_valid):
                count += 1
            if ctx.get(dut.cycles_clear):
                count = 0
            if ctx.get(dut.out_valid):
                log["cycles"] = count
                break
            await ctx.tick()
        log["sweeps"] = words

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    first = 1 if aer else 0
    enc_words = [(l, w) for l in range(first, L + 1) for w in range(T[l])]
    upd_words = [(l, w) for l in range(1, L + 1) for w in range(T[l])]
    all_words = [(l, w) for l in range(L + 1) for w in range(T[l])]
    passes = [k for k, _ in itertools.groupby(x.rstrip("0123456789") for x in log["labels"])]

    def steps(n, nudged):
        return (["N", "E"] + (["W"] if nudged else []) + ["U"]) * n

    want = ([] if aer else ["L"]) + ["I"] + steps(s.T1, False) + ["S"]
    if train:
        want += (["C"] if s.symmetric else []) + steps(s.T2, True)
        want += (["C"] + steps(s.T2, True)) if s.symmetric else []
    assert passes == want + ["O"]
    # every sweep visits its words in order
    runs = [(ch, [(l, w) for _, l, w in grp]) for ch, grp in itertools.groupby(log["sweeps"], key=lambda x: x[0])]
    for ch, ws in runs:
        assert ws == {"N": enc_words, "U": upd_words, "S": [(L, w) for w in range(T[L])], "C": all_words}[ch]
    if not train:  # the cycle model, exactly
        assert log["cycles"] == log["evt"] + sweep_cycles(s, s.T1, first)
    phases = {x[-1] for x in log["labels"] if x[0] == "W"}  # WUPD in the nudged phases: +β, and −β if symmetric
    assert phases == (set() if not train else {"1", "2"} if s.symmetric else {"1"})
