"""Galton part: the balls' random words and the balls in flight (docs/galton.md, "Components"; twin piece
:meth:`golden.domainwall.twin.GaltonTwin.words`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.galton import REG_BITS, GaltonSpec

from ..prng import XorshiftBank, output_word, xorshift_step


class BallSource(wiring.Component):
    """The committed PRNG bank, the lead state of the balls in flight, and their valid bits.

    Contract (twin piece: ``GaltonTwin.reseed(seed)`` then ``words(1)`` per generated ball):

    * ``reseed`` (one cycle; the new seed on ``seed`` from the next cycle on) reloads the committed
      bank (:class:`hdl.prng.XorshiftBank`: load the cycle after, lanes fill, ``ready`` registered),
      then steps it once (priming). ``ready`` (seeded and primed) is high from then on.
    * A ball enters row 0 in a cycle with ``adv & running & enter & ready``; ``words`` are its lane
      words. ``stages`` valid bits follow it through the rows' registers (moving with ``adv``, all
      cleared while ``running`` is low). ``commit`` is high in a cycle with ``adv & running`` and a
      ball leaving the last row (the entering one itself when ``stages = 0``): it is generated, and
      the committed bank steps once. So the n-th generated ball since the reseed has the twin's
      ``words(1)`` n-th row, whatever the stalls and dropped balls: with no ball in flight the lead
      state is the committed bank's, otherwise it has stepped once per ball in flight.

    Latency: ``words`` combinational (the "**" scrambler before row 0); ``commit`` ``stages``
    advancing cycles after the ball entered. ``ready`` rises lanes + 3 cycles after ``reseed``.

    Members
    -------
    seed : In(32). reseed, running, enter, adv : In(1). words : Out(lanes × prng_width).
    ready, commit : Out(1).
    """

    def __init__(self, spec: GaltonSpec, stages: int):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec, self.stages = spec, stages
        self.bank = XorshiftBank(spec.prng_spec())
        super().__init__({"seed": In(REG_BITS), "reseed": In(1), "running": In(1), "enter": In(1), "adv": In(1),
                          "words": Out(spec.lanes * spec.prng_width), "ready": Out(1), "commit": Out(1)})

    def elaborate(self, platform):
        s, m, P, w = self.spec, Module(), self.stages, self.spec.prng_width
        m.submodules.prng = prng = self.bank
        # the bank's control from flip-flops: a SEED write loads it the next cycle, and its ready is
        # registered (so priming and generation start a cycle after the fill, off the bank's paths)
        seed_load, bank_ready, primed = Signal(), Signal(), Signal()
        gen_ok = self.running & self.enter & bank_ready & primed  # a ball may enter row 0
        inject = Signal()
        m.d.comb += [inject.eq(self.adv & gen_ok), self.ready.eq(bank_ready & primed)]
        if P:
            empty = Signal(init=1)  # no ball in flight: the lead state is the committed bank's
            lead = Signal(len(prng.state), reset_less=True)  # datapath: meaningful only with a ball in flight
            cur = Signal(len(prng.state))  # the lane states of the ball entering row 0
            m.d.comb += cur.eq(Mux(empty, prng.state, lead))
            with m.If(inject):
                m.d.sync += lead.eq(Cat(*(xorshift_step(cur[ln * w : (ln + 1) * w], w) for ln in range(s.lanes))))
            # its random words: the lanes' output words (spec.prng.scramble)
            m.d.comb += self.words.eq(Cat(*(output_word(cur[ln * w : (ln + 1) * w], w, prng.spec.output)
                                            for ln in range(s.lanes))))
        else:
            m.d.comb += self.words.eq(prng.out)
        # a ball is generated when it leaves the last row while running; a run's end drops the balls in flight
        valid = [Signal(name=f"valid{st}") for st in range(P)]  # a ball in the register after stage st
        nvalid = [Signal(name=f"nvalid{st}") for st in range(P)]
        m.d.comb += self.commit.eq(self.adv & self.running & (valid[P - 1] if P else gen_ok))
        if P:
            with m.If(~self.running):
                m.d.comb += [nv.eq(0) for nv in nvalid]
            with m.Elif(self.adv):
                m.d.comb += [nvalid[0].eq(gen_ok)] + [nvalid[st].eq(valid[st - 1]) for st in range(1, P)]
            with m.Else():
                m.d.comb += [nv.eq(v) for nv, v in zip(nvalid, valid, strict=True)]
            m.d.sync += [v.eq(nv) for v, nv in zip(valid, nvalid, strict=True)]
            m.d.sync += empty.eq(~Cat(*nvalid).any())
        prime = bank_ready & ~primed & ~seed_load
        m.d.sync += [seed_load.eq(0), bank_ready.eq(prng.ready & ~seed_load)]
        m.d.comb += [prng.en.eq(self.commit | prime), prng.seed.eq(self.seed), prng.load.eq(seed_load)]
        with m.If(prime):
            m.d.sync += primed.eq(1)
        with m.If(self.reseed):
            m.d.sync += [primed.eq(0), seed_load.eq(1)]
        return m
