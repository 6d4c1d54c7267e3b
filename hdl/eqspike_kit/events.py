"""EqSpike part: the step's event queue — the mask list and the address-event scan (docs/eqspike.md, "RTL
architecture", EVT; twin piece: the event order of :meth:`golden.eqspike.twin.EqSpikeTwin._step`,
``np.flatnonzero`` of each layer's spikes, AER events first as
:meth:`~golden.eqspike.twin.EqSpikeTwin.infer_events` takes them)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from .common import check_spec, const_mul, lowest_bit, ubits


def div_const(n: int, d: int) -> tuple[int, int]:
    """(M, s) with ``(j·M) >> s == j // d`` for every 0 ≤ j < n: a division by the constant d as shifts and adds
    (:func:`~hdl.eqspike_kit.common.const_mul`), checked here over the whole range."""
    for s in range(64):
        M = -(-(1 << s) // d)
        if all((j * M) >> s == j // d for j in range(n)):
            return M, s
    raise AssertionError(f"no reciprocal of {d} for {n} values")  # (cannot happen: s = ⌈log2 n⌉ + ⌈log2 d⌉ works)


def aer_addr_bits(spec: EqSpikeSpec) -> int:
    """Width of an AER event's neuron address: 16 bits, or more for an input layer of over 2^16 neurons."""
    return max(16, ubits(spec.layers[0] - 1))


class EventQueue(wiring.Component):
    """The step's spike events, one per ``pop``.

    Contract: ``push`` appends the entry (``push_lay``, ``push_wrd``, ``push_mask`` ≠ 0, training: the word's
    Δŝ ``push_d``) to the step's mask list; ``clear`` empties it. ``rewind`` starts a pass over the list (the
    same list again in the next pass); with ``rewind_aer`` the pass first takes this step's AER input events.
    In a cycle with ``pop`` the next event comes out combinationally: ``take`` with the event's layer ``lay``,
    neuron ``j = jw·P + jl`` and (training) its Δŝ ``dj`` — first the ``aer`` beats of the step (a beat per
    pop; ``aer.ready`` only then; an address ≥ N0 is no event and pulses ``aer_bad``; every good one pulses
    ``aer_spike``; the beat with ``last`` ends them, no event), then for each list entry in order its set
    bits, lowest first. ``done`` (with ``pop``): no event is left. No pop while pushing.

    Training (AER training samples, the WUPD pass's replay of the input layer's events): while ``track``, each
    good ``aer`` event's address enters the step's *replay list* the cycle after its pop unless it is already in
    it (a per-neuron ``seen`` bit, transparent: a duplicate right behind is caught too), so the list holds each
    input neuron that spiked in the step once (≤ N0 entries, never written beyond); ``rewind`` with
    ``rewind_replay`` makes the pass take the replay list's events first (layer 0, ``jw``/``jl`` as for a list
    event — the address divided by P with a constant reciprocal as it enters the list —, ``dj`` = 0; each pop
    clears its ``seen`` bit, so the bits are all clear again when the pass has taken them all), then the mask list;
    ``clear`` empties both.

    Latency: 0 cycles from ``pop`` to the event; the list's read port follows the pointer in the same cycle
    (transparent for a push).
    """

    def __init__(self, spec: EqSpikeSpec):
        check_spec(spec)
        self.spec = spec
        L, P, DB = spec.n_layers, spec.lanes, spec.trace_frac + 2
        T = [spec.tiles(k) for k in range(L + 1)]
        # the list holds a word of every layer with targets (all but the output layer of a 2-layer net)
        self.depth = max(1, sum(T[l] for l in range(L + 1) if l < L or l >= 2))
        members = {
            "aer": In(stream.Signature(data.StructLayout({"addr": unsigned(aer_addr_bits(spec)), "last": 1}))),
            "push": In(1), "push_lay": In(range(L + 1)), "push_wrd": In(range(max(T) + 1)), "push_mask": In(P),
            "clear": In(1), "rewind": In(1), "rewind_aer": In(1), "pop": In(1),
            "take": Out(1), "lay": Out(range(L + 1)), "j": Out(range(max(spec.layers) + 1)),
            "jw": Out(range(max(T) + 1)), "jl": Out(range(P)), "done": Out(1), "aer_spike": Out(1), "aer_bad": Out(1),
        }
        if spec.training:
            members |= {"push_d": In(data.ArrayLayout(signed(DB), P)), "dj": Out(signed(DB)), "track": In(1),
                        "rewind_replay": In(1)}
        super().__init__(members)

    def elaborate(self, platform):
        s = self.spec
        L, P, N, TRN = s.n_layers, s.lanes, list(s.layers), s.training
        T = [s.tiles(k) for k in range(L + 1)]
        m = Module()
        lfields = {"lay": ubits(L), "wrd": ubits(max(T)), "mask": P}
        if TRN:
            lfields["d"] = data.ArrayLayout(signed(s.trace_frac + 2), P)
        m.submodules.lmem = lmem = memory.Memory(shape=data.StructLayout(lfields), depth=self.depth, init=[])
        wl = lmem.write_port()
        rl = lmem.read_port(transparent_for=(wl,))
        lcount, lptr = Signal(range(self.depth + 1)), Signal(range(self.depth + 1))
        lptr_next = Signal.like(lptr)
        m.d.comb += [lptr_next.eq(lptr), rl.addr.eq(lptr_next)]
        m.d.sync += lptr.eq(lptr_next)
        mk, mk_lay, mk_wrd = Signal(P), Signal(range(L + 1)), Signal(range(max(T) + 1))
        mk_d = Signal(data.ArrayLayout(signed(s.trace_frac + 2), P)) if TRN else None
        aer_done = Signal()
        with m.If(self.clear):
            m.d.sync += lcount.eq(0)
        with m.If(self.rewind):
            m.d.sync += [mk.eq(0), aer_done.eq(~self.rewind_aer)]
            m.d.comb += lptr_next.eq(0)
        with m.If(self.push):
            m.d.comb += [wl.addr.eq(lcount), wl.data.lay.eq(self.push_lay), wl.data.wrd.eq(self.push_wrd),
                         wl.data.mask.eq(self.push_mask), wl.en.eq(1)]
            if TRN:
                m.d.comb += wl.data.d.eq(self.push_d)
            m.d.sync += lcount.eq(lcount + 1)
        new_d = Signal(data.ArrayLayout(signed(s.trace_frac + 2), P)) if TRN else None
        if TRN:  # the replay list of the step's input events (AER training), one entry per input neuron
            ab0 = ubits(N[0] - 1)
            m.submodules.seen = seen = memory.Memory(shape=1, depth=N[0], init=[])
            sw = seen.write_port()
            sr = seen.read_port(transparent_for=(sw,))
            rfields = data.StructLayout({"jw": ubits(T[0] - 1), "jl": ubits(P - 1)})  # the neuron's word and lane
            m.submodules.rmem = rmem = memory.Memory(shape=rfields, depth=N[0], init=[])
            rw, rr = rmem.write_port(), rmem.read_port()
            rcount, rptr = Signal(range(N[0] + 1)), Signal(range(N[0] + 1))
            rptr_next, rep_on = Signal.like(rptr), Signal()
            pend_v, pend_j = Signal(), Signal(ab0)
            m.d.comb += [rptr_next.eq(rptr), rr.addr.eq(rptr_next), sr.addr.eq(self.aer.payload.addr[:ab0])]
            m.d.sync += [rptr.eq(rptr_next), pend_v.eq(0)]
            M, sh = div_const(N[0], P)
            pend_w = Signal(range(T[0]))
            m.d.comb += pend_w.eq(const_mul(pend_j, M) >> sh)
            with m.If(pend_v & ~sr.data):  # the popped event's neuron is new in this step: into the replay list
                m.d.comb += [sw.addr.eq(pend_j), sw.data.eq(1), sw.en.eq(1), rw.addr.eq(rcount), rw.data.jw.eq(pend_w),
                             rw.data.jl.eq(pend_j - const_mul(pend_w, P)), rw.en.eq(1)]
                m.d.sync += rcount.eq(rcount + 1)
            with m.If(self.clear):
                m.d.sync += rcount.eq(0)
            with m.If(self.rewind):
                m.d.sync += rep_on.eq(self.rewind_replay)
                m.d.comb += rptr_next.eq(0)
        with m.If(self.pop):
            with m.If(~aer_done):
                m.d.comb += self.aer.ready.eq(1)
                with m.If(self.aer.valid):
                    with m.If(self.aer.payload.last):
                        m.d.sync += aer_done.eq(1)
                    with m.Elif(self.aer.payload.addr < N[0]):
                        m.d.comb += [self.lay.eq(0), self.j.eq(self.aer.payload.addr), self.take.eq(1),
                                     self.aer_spike.eq(1)]
                        if TRN:
                            m.d.sync += [pend_v.eq(self.track), pend_j.eq(self.aer.payload.addr)]
                    with m.Else():  # a neuron that does not exist: flagged, never used
                        m.d.comb += self.aer_bad.eq(1)
            if TRN:
                with m.Elif(rep_on & (rptr != rcount)):  # the replay list: an input event, its seen bit cleared
                    m.d.comb += [self.lay.eq(0), self.jw.eq(rr.data.jw), self.jl.eq(rr.data.jl), self.take.eq(1),
                                 self.j.eq(const_mul(rr.data.jw, P) + rr.data.jl), rptr_next.eq(rptr + 1),
                                 sw.addr.eq(self.j), sw.data.eq(0), sw.en.eq(1)]
            with m.Elif(mk != 0):
                m.d.comb += [self.jw.eq(mk_wrd), self.jl.eq(lowest_bit(mk, P)), self.lay.eq(mk_lay), self.take.eq(1),
                             self.j.eq(const_mul(mk_wrd, P) + self.jl)]
                if TRN:
                    m.d.comb += new_d.eq(mk_d)
                m.d.sync += mk.eq(mk & (mk - 1))
            with m.Elif(lptr != lcount):
                d = rl.data
                m.d.comb += [self.jw.eq(d.wrd), self.jl.eq(lowest_bit(d.mask, P)), self.lay.eq(d.lay),
                             self.take.eq(1), self.j.eq(const_mul(d.wrd, P) + self.jl), lptr_next.eq(lptr + 1)]
                m.d.sync += [mk.eq(d.mask & (d.mask - 1)), mk_lay.eq(d.lay), mk_wrd.eq(d.wrd)]
                if TRN:
                    m.d.comb += new_d.eq(d.d)
                    m.d.sync += mk_d.eq(d.d)
            with m.Else():
                m.d.comb += self.done.eq(1)
        if TRN:
            m.d.comb += self.dj.eq(new_d.as_value().word_select(self.jl, s.trace_frac + 2).as_signed())
        return m
