# amaranth: UnusedElaboratable=no
"""Kit part: the sample sequencer (:mod:`hdl.kit.sequencer`) == its twin piece
(:func:`golden.ep_core.sequence.phase_plan`).

The sequencer runs samples against a model of its surroundings: a sweep engine whose ``run`` stays
high 1–3 cycles after each ``start``, a pipeline that drains 0–3 cycles later, a dump that takes
random time and an output that is taken after random stalls. Asserted (``==``): the sweeps in
order (``c1``, T1 free steps, T2 steps per nudged phase of :func:`phase_plan`, the update), each
step's β sign and phase, ``rd_zero`` in the first free step only, ``last_free`` in the last free
step only; with a model of the four state banks: every step reads what the previous step wrote
(a nudged phase's first step the free phase's last), each dump shows its phase's last bank, and
the update's ``bank_a``/``bank_b`` hold :func:`phase_plan`'s (a, b) phases. Latency: ``c1``
starts in the ``load`` cycle, no sweep starts while ``run`` is high, a drain entry waits for the
pipeline, and ``cycles`` counts ``load`` → prediction handshake (``samples`` +1 per sample).
"""

from __future__ import annotations

import itertools
import random

import pytest
from amaranth.sim import Simulator

from golden.ep_core.sequence import BETA_SIGN, phase_plan
from hdl.ep_core import EPCore
from hdl.kit.sequencer import Sequencer
from spec.ep_core import PHASE_FREE, EPCoreSpec

SPEC = EPCoreSpec(layers=(9, 6, 5, 3), lanes=2, training=True, estimator="random-sign")
BSIGN = {0: 0, +1: 1, -1: 2}  # β sign → the sequencer's bsign


def run_samples(dut: Sequencer, samples: list[dict], seed: int) -> list[dict]:
    """Run ``samples`` (register values, ``neg``: the random-sign draw) back to back; per sample the
    started sweeps with their bank signals, the dumps, the update banks and cycle figures."""
    rnd = random.Random(seed)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    out: list[dict] = []

    async def bench(ctx):
        cyc = 0
        for smp in samples:
            for name in ("train", "symmetric", "dump", "random_sign", "T1", "T2"):
                ctx.set(getattr(dut, name), smp[name])
            ctx.set(dut.sign_bit, smp["neg"])
            rec = {"starts": [], "dumps": [], "draws": 0, "upd_banks": set()}
            run_left = drain_left = dump_left = ready_wait = 0
            in_dump = False
            assert ctx.get(dut.idle) and not ctx.get(dut.busy)
            ctx.set(dut.load, 1)
            load_cyc = cyc
            while True:
                ctx.set(dut.run, run_left > 0)
                ctx.set(dut.pipe_busy, run_left > 0 or drain_left > 0)
                ctx.set(dut.dump_done, in_dump is True and dump_left == 0)
                ctx.set(dut.out_ready, ready_wait == 0)
                if cyc > load_cyc:
                    assert ctx.get(dut.busy) and not ctx.get(dut.idle)
                rec["draws"] += ctx.get(dut.draw_sign)
                if ctx.get(dut.start):
                    assert run_left == 0, "a sweep started while the engine runs"
                    rec["starts"].append({n: ctx.get(getattr(dut, n)) for n in
                                          ("index", "rd_bank", "wr_bank", "rd_zero", "bsign", "phase", "last_free",
                                           "bank_a", "bank_b")})
                    rec["starts"][-1]["drained"] = drain_left == 0
                    run_left = rnd.randint(1, 3)
                elif run_left:
                    run_left -= 1
                    drain_left = rnd.randint(0, 3) if run_left == 0 else 0
                elif drain_left:
                    drain_left -= 1
                if in_dump == "started":  # the bank and phase are read from the cycle after dump_start on
                    rec["dumps"].append((ctx.get(dut.dump_bank), ctx.get(dut.phase)))
                    in_dump = True
                if ctx.get(dut.dump_start):
                    assert not in_dump
                    in_dump, dump_left = "started", rnd.randint(1, 4)
                elif in_dump:
                    if dump_left == 0:
                        in_dump = False
                    else:
                        dump_left -= 1
                done = False
                if ctx.get(dut.out_valid):
                    if ready_wait == 0:
                        done = True
                    elif ready_wait is not None:
                        ready_wait -= 1
                await ctx.tick()
                ctx.set(dut.load, 0)
                cyc += 1
                if cyc == load_cyc + 1:
                    ready_wait = rnd.randint(0, 3)
                if done:
                    break
            rec["cycles"], rec["samples"] = ctx.get(dut.cycles), ctx.get(dut.samples)
            rec["expect_cycles"] = cyc - 1 - load_cyc
            out.append(rec)
            for _ in range(rnd.randint(0, 2)):
                await ctx.tick()
                cyc += 1

    sim.add_testbench(bench)
    sim.run()
    return out


CASES = [dict(train=t, symmetric=s, dump=d, random_sign=r, neg=n, T1=T1, T2=T2)
         for (t, s, r, n), d, (T1, T2) in itertools.product(
             [(0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0), (1, 0, 1, 0), (1, 0, 1, 1), (1, 1, 1, 1)],
             [0, 1], [(3, 2), (1, 1)])]


@pytest.mark.parametrize("seed", [1, 2])
def test_sequencer_walks_the_phase_plan(seed):
    table, step, named = EPCore(SPEC).sweeps()
    L = SPEC.n_layers
    updates = [named["dpass"]] + [named[f"upw{l}"] for l in range(L)] + [named[f"upb{l}"] for l in range(L)]
    dut = Sequencer(named["c1"], step, updates, SPEC.step_bits, random_sign=True)
    cases = random.Random(seed).sample(CASES, len(CASES))
    recs = run_samples(dut, cases, seed)
    relax = [i for i in step if i >= 0]
    for n, (case, rec) in enumerate(zip(cases, recs, strict=True)):
        ctx = f"sample {n}: {case}"
        neg = bool(case["random_sign"] and not case["symmetric"] and case["neg"] and case["train"])
        phases, ab = phase_plan(bool(case["train"]), bool(case["symmetric"]), neg)
        assert rec["draws"] == int(bool(case["train"] and case["random_sign"] and not case["symmetric"])), ctx
        starts = rec["starts"]
        assert starts[0]["index"] == named["c1"], ctx
        steps = [case["T1"] if ph == PHASE_FREE else case["T2"] for ph in phases]
        n_relax = sum(steps) * len(relax)
        assert [s["index"] for s in starts[1:1 + n_relax]] == relax * sum(steps), ctx
        assert [s["index"] for s in starts[1 + n_relax:]] == (updates if ab else []), ctx
        # a drain entry (-1) and the update's second sweep start only with the pipeline empty
        k = 1
        for _ in range(sum(steps)):
            pos = 0
            for e in step:
                if e < 0:
                    assert starts[k + pos]["drained"], ctx
                else:
                    pos += 1
            k += len(relax)
        if ab:
            assert starts[1 + n_relax + 1]["drained"], ctx
        # the banks: every step reads what the previous one wrote; dumps and the update see the phases' ends
        bank: dict[int, tuple[int, int]] = {}
        last: dict[int, int] = {}
        k, dumps = 1, iter(rec["dumps"])
        for ph, T in zip(phases, steps, strict=True):
            for st in range(T):
                grp = starts[k:k + len(relax)]
                k += len(relax)
                sig = {(g["rd_bank"], g["wr_bank"], g["rd_zero"], g["bsign"], g["phase"], g["last_free"]) for g in grp}
                assert len(sig) == 1, ctx  # constant through the step
                rd, wr, zero, bsign, phase, lf = sig.pop()
                assert (phase, bsign) == (ph, BSIGN[BETA_SIGN[ph]]), ctx
                assert zero == (ph == PHASE_FREE and st == 0), ctx
                assert lf == (ph == PHASE_FREE and st == T - 1), ctx
                assert rd != wr, ctx
                if not zero:
                    want = (ph, st - 1) if st else (PHASE_FREE, case["T1"] - 1)
                    assert bank.get(rd) == want, f"{ctx}: phase {ph} step {st} reads bank {rd}"
                bank[wr] = (ph, st)
            last[ph] = T - 1
            if case["dump"]:
                dbank, dphase = next(dumps)
                assert dphase == ph and bank[dbank] == (ph, T - 1), ctx
        assert next(dumps, None) is None, ctx
        if ab:
            pa, pb = ab
            u = starts[1 + n_relax]
            assert bank[u["bank_a"]] == (pa, last[pa]) and bank[u["bank_b"]] == (pb, last[pb]), ctx
            assert u["bsign"] == 0, ctx
        assert rec["cycles"] == rec["expect_cycles"] and rec["samples"] == n + 1, ctx


def test_phase_plan_and_bad_parameters():
    assert phase_plan(False, True) == ([PHASE_FREE], None)
    with pytest.raises(ValueError, match="negative=True needs"):
        phase_plan(True, True, True)
    with pytest.raises(ValueError, match="sweep entries"):
        Sequencer(0, [1, -2], [], 4)
    with pytest.raises(ValueError, match="step_bits"):
        Sequencer(0, [1], [], 0)
    with pytest.raises(ValueError, match="updates must"):
        Sequencer(0, [1], [2], 4)
