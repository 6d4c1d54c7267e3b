"""EqSpike part: the weight port — element writes and reads of the weights and biases, the digest sweep and
the block read-back (docs/eqspike.md, "Weight port"; twin pieces :func:`spec.eqspike.weight_digest`,
:func:`spec.eqspike.digest_words`, :meth:`golden.eqspike.twin.EqSpikeTwin.weights`)."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from spec.eqspike import DIGEST_ADD, DIGEST_LANE_ROT, DIGEST_ROT, EqSpikeSpec

from .common import check_spec, const_mul, lanes, named, ubits


def wcmd_fields(spec: EqSpikeSpec) -> dict[str, int]:
    """Bit widths of a ``wcmd`` beat (the host's view; fields in this order from bit 0)."""
    L, P = spec.n_layers, spec.lanes
    tb = ubits(max(spec.tiles(k) for k in range(L + 1)) - 1)
    if spec.ternary_training:  # arrays 2L … 3L−1: the latent weights v{l}
        return {"read": 1, "array": ubits(3 * L - 1), "i_word": tb, "i_lane": ubits(P - 1), "j_word": tb,
                "j_lane": ubits(P - 1), "data": max(*spec.weight_bits, *spec.latent_bits, spec.bias_bits)}
    return {"read": 1, "array": ubits(2 * L - 1), "i_word": tb, "i_lane": ubits(P - 1), "j_word": tb,
            "j_lane": ubits(P - 1), "data": max(max(spec.weight_bits), spec.bias_bits)}


def dump_bits(spec: EqSpikeSpec) -> int:
    """Bits of one lane of a ``wdump`` beat: the widest weight or bias (lanes are sign-extended to it)."""
    return max([*spec.weight_bits, spec.bias_bits])


class WeightPort(wiring.Component):
    """The weight port of :class:`hdl.eqspike.EqSpikeCore` and its access to the weight and bias memories.

    Contract: while ``seq_idle`` (no sample running) and no sweep is requested, a ``wcmd`` beat is taken in
    the cycle it is valid (``ready`` = 1). A write of ``w{l}[i, j]`` (array l < L) goes to lane i of
    ``wup{l}`` word ``j·tiles(l+1) + i_word`` and lane j of ``wdn{l}`` word ``i·tiles(l) + j_word`` (l ≥ 1);
    of ``b{l}[i]`` (array L + l) to lane i of ``b{l}`` word ``i_word``; in a ternary training core, of the latent
    weight ``v{l}[i, j]`` (array 2L + l) to ``vup{l}`` and ``vdn{l}`` as ``w{l}`` to ``wup{l}`` and ``wdn{l}``
    (reads from ``vup{l}``; not in the digest sweep). A command for an element that does not exist writes
    nothing and pulses ``cmd_error`` (a read of it answers 0). A read answers on ``wrsp``
    (the element sign-extended) 2 cycles after it is taken and holds until ``wrsp.ready``. ``idle`` is high
    while nothing is in flight or waiting. ``digest_start`` (``dump_start``: also every word out on
    ``wdump``) requests a sweep: every word of ``wup{0..L-1}`` then ``b{0..L-1}``, one per cycle, folded into
    ``digest`` as :func:`spec.eqspike.weight_digest` defines it (padding lanes masked); a dump beat waiting for
    ``wdump.ready`` holds the sweep and its data (a register: the word is read once per sweep whatever the
    back-pressure, so a ternary core's PCSA read count is the memory's depth). ``active`` is high from the
    request to the last word's fold.

    Memory access: ``*_raddr`` with ``*_rsel`` high drives a memory's read address (else the core's own
    address holds); ``*_rdata`` is the word read (1 cycle after its address); a write is ``*_wen`` (one bit per
    lane) with ``*_waddr``/``*_wdata`` (the element in every lane).
    """

    def __init__(self, spec: EqSpikeSpec, *, dump: bool = False):
        check_spec(spec)
        self.spec, self.dump = spec, bool(dump)
        L, P, N = spec.n_layers, spec.lanes, spec.layers
        T = [spec.tiles(k) for k in range(L + 1)]
        wf = wcmd_fields(spec)
        members = {
            "wcmd": In(stream.Signature(data.StructLayout(
                {k: (signed(v) if k == "data" else unsigned(v)) for k, v in wf.items()}))),
            "wrsp": Out(stream.Signature(data.StructLayout({"data": signed(wf["data"])}))),
            "seq_idle": In(1), "digest_start": In(1), "idle": Out(1), "active": Out(1), "digest": Out(32),
            "cmd_error": Out(1),
        }
        if self.dump:
            members |= {"dump_start": In(1), "wdump": Out(stream.Signature(data.StructLayout(
                {"data": data.ArrayLayout(signed(dump_bits(spec)), P)})))}
        mems = [(f"wup{l}", spec.weight_bits[l], N[l] * T[l + 1], True) for l in range(L)]
        mems += [(f"wdn{l}", spec.weight_bits[l], N[l + 1] * T[l], False) for l in range(1, L)]
        mems += [(f"b{l}", spec.bias_bits, T[l + 1], True) for l in range(L)]
        if spec.ternary_training:  # the latent weights, in the layouts of wup{l} / wdn{l}
            mems += [(f"vup{l}", spec.latent_bits[l], N[l] * T[l + 1], True) for l in range(L)]
            mems += [(f"vdn{l}", spec.latent_bits[l], N[l + 1] * T[l], False) for l in range(1, L)]
        for name, bits, depth, read in mems:
            ab = max(1, ceil_log2(depth))
            members |= {f"{name}_waddr": Out(ab), f"{name}_wdata": Out(P * bits), f"{name}_wen": Out(P)}
            if read:
                members |= {f"{name}_raddr": Out(ab), f"{name}_rsel": Out(1), f"{name}_rdata": In(P * bits)}
        super().__init__(members)
        ports = ("raddr", "rsel", "rdata", "waddr", "wdata", "wen")
        self.mem = {name: SimpleNamespace(**{p: getattr(self, f"{name}_{p}") for p in ports
                                            if hasattr(self, f"{name}_{p}")}) for name, *_ in mems}
        self.sweep_depth = [N[l] * T[l + 1] for l in range(L)] + [T[l + 1] for l in range(L)]

    def elaborate(self, platform):
        s, m = self.spec, Module()
        P, L, N = s.lanes, s.n_layers, list(s.layers)
        T = [s.tiles(k) for k in range(L + 1)]
        WB, BB = list(s.weight_bits), s.bias_bits
        cmd = self.wcmd.payload
        i_idx = const_mul(cmd.i_word, P) + cmd.i_lane
        j_idx = const_mul(cmd.j_word, P) + cmd.j_lane
        n_arr = 3 * L if s.ternary_training else 2 * L
        r_arr, r_lane, r_bad = Signal(range(n_arr + 1)), Signal(range(P)), Signal()
        rsp = Signal(signed(len(cmd.data)))
        m.d.comb += self.wrsp.payload.data.eq(rsp)

        def in_layer(word, lane_, layer):
            return (word < T[layer]) & (lane_ < P) & ((word != T[layer] - 1) | (lane_ < N[layer] - (T[layer] - 1) * P))

        sw = self._sweep(m)
        take = Signal()  # a command is taken this cycle
        i_ok = [in_layer(cmd.i_word, cmd.i_lane, l + 1) for l in range(L)]  # the element exists: w{l}[i, j], b{l}[i]
        ok = named(m, Cat(*[(cmd.array == l) & i_ok[l] & in_layer(cmd.j_word, cmd.j_lane, l) for l in range(L)],
                          *[(cmd.array == L + l) & i_ok[l] & (cmd.j_word == 0) & (cmd.j_lane == 0)
                            for l in range(L)],
                          *[(cmd.array == 2 * L + l) & i_ok[l] & in_layer(cmd.j_word, cmd.j_lane, l)
                            for l in range(L) if s.ternary_training]).any(), "ok")
        if s.weight_kind == "ternary":  # weights are programmed as cells (``tcmd``): element writes of w{l} refused
            ok = named(m, ok & (cmd.read | (cmd.array >= L)), "ok_t")
        write = named(m, take & ok & ~cmd.read, "write")  # (into both copies of a weight)
        m.d.comb += self.cmd_error.eq(take & ~ok)
        # the sweep's read: the next word (its array ``arr``), once (a waiting dump beat holds its data)
        sw_read, sw_arr, sw_addr = Signal(), Signal.like(sw.arr), Signal.like(sw.addr)
        m.d.comb += [sw_arr.eq(sw.arr), sw_addr.eq(sw.addr)]
        # addresses and data driven always; the selects and write enables say when they count
        for l in range(L):
            for name, bits, addr, arr, lane in (
                    (f"wup{l}", WB[l], const_mul(j_idx, T[l + 1]) + cmd.i_word, l, cmd.i_lane),
                    (f"wdn{l}", WB[l], const_mul(i_idx, T[l]) + cmd.j_word, l, cmd.j_lane),
                    (f"b{l}", BB, cmd.i_word, L + l, cmd.i_lane),
                    (f"vup{l}", 0, const_mul(j_idx, T[l + 1]) + cmd.i_word, 2 * L + l, cmd.i_lane),
                    (f"vdn{l}", 0, const_mul(i_idx, T[l]) + cmd.j_word, 2 * L + l, cmd.j_lane)):
                if name in self.mem:
                    bits = bits or s.latent_bits[l]
                    latent = name.startswith("v")  # (not in the digest sweep)
                    mp, is_arr = self.mem[name], named(m, cmd.array == arr, f"{name}_cmd")
                    m.d.comb += [mp.waddr.eq(addr), mp.wdata.eq(Cat(*[cmd.data[:bits]] * P)),
                                 mp.wen.eq(Mux(write & is_arr, Const(1, P) << lane, 0))]
                    if hasattr(mp, "raddr"):
                        m.d.comb += [mp.raddr.eq(mp.waddr if latent else Mux(self.active, sw_addr, mp.waddr)),
                                     mp.rsel.eq((take & is_arr) if latent else
                                                ((take & is_arr) | (sw_read & (sw_arr == arr))))]
        with m.FSM(name="wport") as wfsm:
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(~self.wcmd.valid & ~sw.req)
                with m.If(sw.req):
                    m.d.sync += [sw.req.eq(0), sw.arr.eq(0), sw.addr.eq(0), sw.t.eq(0), self.digest.eq(0)]
                    if self.dump:
                        m.d.sync += sw.dump.eq(sw.dump_req)
                    m.next = "DIGEST"
                with m.Elif(self.seq_idle):
                    m.d.comb += [self.wcmd.ready.eq(1), take.eq(self.wcmd.valid)]
                    with m.If(self.wcmd.valid & cmd.read):
                        m.d.sync += [r_arr.eq(cmd.array), r_lane.eq(cmd.i_lane), r_bad.eq(~ok)]
                        m.next = "READ"
            with m.State("READ"):
                for l in range(L):
                    with m.If(r_arr == l):
                        m.d.sync += rsp.eq(self.mem[f"wup{l}"].rdata.word_select(r_lane, WB[l]).as_signed())
                    with m.If(r_arr == L + l):
                        m.d.sync += rsp.eq(self.mem[f"b{l}"].rdata.word_select(r_lane, BB).as_signed())
                    if s.ternary_training:
                        with m.If(r_arr == 2 * L + l):
                            m.d.sync += rsp.eq(self.mem[f"vup{l}"].rdata.word_select(
                                r_lane, s.latent_bits[l]).as_signed())
                with m.If(r_bad):
                    m.d.sync += rsp.eq(0)
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.wrsp.valid.eq(1)
                with m.If(self.wrsp.ready):
                    m.next = "IDLE"
            with m.State("DIGEST"):  # issue one word's read per cycle; stage 1 (sw.v1) folds it
                if self.dump:
                    m.d.comb += sw_read.eq(sw.adv)
                    with m.If(sw.adv):
                        self._issue(m, sw)
                else:
                    m.d.comb += sw_read.eq(1)
                    self._issue(m, sw)
            with m.State("DIGEST_END"):  # stage 1 folds (and a dump sends) the last word
                if self.dump:
                    with m.If(sw.adv):
                        m.next = "IDLE"
                else:
                    m.next = "IDLE"
        m.d.comb += self.active.eq(sw.req | wfsm.ongoing("DIGEST") | wfsm.ongoing("DIGEST_END"))
        return m

    def _words(self):
        """(memory name, lane bits, read data, neurons in the memory's last word) of every swept memory."""
        s, L, P = self.spec, self.spec.n_layers, self.spec.lanes
        for a in range(2 * L):
            l = a % L
            name, bits = (f"wup{l}", s.weight_bits[l]) if a < L else (f"b{l}", s.bias_bits)
            yield a, name, bits, self.mem[name].rdata, s.layers[l + 1] - (s.tiles(l + 1) - 1) * P

    def _sweep(self, m):
        """The sweep's state and its stage 1: the fold into ``digest`` (and the dump beat)."""
        s, L = self.spec, self.spec.n_layers
        T = [s.tiles(k) for k in range(L + 1)]
        sw = SimpleNamespace(req=Signal(), arr=Signal(range(2 * L + 1)), arr1=Signal(range(2 * L + 1)),
                             addr=Signal(range(max(self.sweep_depth) + 1)), t=Signal(range(max(T) + 1)),
                             v1=Signal(), last1=Signal())
        if self.dump:
            sw.dump_req, sw.dump = Signal(), Signal()
            with m.If(self.digest_start | self.dump_start):
                m.d.sync += [sw.req.eq(1), sw.dump_req.eq(self.dump_start)]
            sw.adv = Signal()  # stage 1's word is taken this cycle (unless its dump beat waits for wdump.ready)
            m.d.comb += [sw.adv.eq(~sw.dump | ~sw.v1 | self.wdump.ready), self.wdump.valid.eq(sw.dump & sw.v1)]
            # stage 1's word: the memory's read data in its first cycle, then held while its beat waits
            live, held = (Signal(data.ArrayLayout(signed(dump_bits(s)), s.lanes)) for _ in range(2))
            held_v = Signal()
            sw.word = Signal.like(live)
            with m.Switch(sw.arr1):
                for a, _name, bits, rdata, n_last in self._words():
                    with m.Case(a):
                        for p_, v in enumerate(lanes(rdata, bits, True, s.lanes)):
                            m.d.comb += live[p_].eq(Mux(sw.last1, 0, v) if p_ >= n_last else v)
            m.d.comb += [sw.word.eq(Mux(held_v, held, live)), self.wdump.payload.data.eq(sw.word)]
            with m.If(sw.v1 & ~sw.adv):
                m.d.sync += [held.eq(sw.word), held_v.eq(1)]
            with m.If(sw.adv):
                m.d.sync += [sw.v1.eq(0), held_v.eq(0)]
        else:
            with m.If(self.digest_start):
                m.d.sync += sw.req.eq(1)
            m.d.sync += sw.v1.eq(0)
        with m.If(sw.v1 & sw.adv if self.dump else sw.v1):
            fold = Const(0, 32)
            for a, _name, bits, rdata, n_last in self._words():
                f = Const(0, 32)
                # (a dump core folds stage 1's word as sent: the lanes' low bits are the words' bit patterns)
                words = [sw.word[p_][:bits] for p_ in range(s.lanes)] if self.dump else \
                    lanes(rdata, bits, False, s.lanes)
                for p_, u in enumerate(words):
                    u32 = Cat(u, Const(0, 32 - bits)) if bits < 32 else u
                    if p_ >= n_last:
                        u32 = Mux(sw.last1, 0, u32)
                    f = f ^ u32.rotate_left((DIGEST_LANE_ROT * p_) % 32)
                fold = Mux(sw.arr1 == a, f, fold)
            m.d.sync += self.digest.eq((self.digest.rotate_left(DIGEST_ROT) ^ fold) + DIGEST_ADD)
        return sw

    def _issue(self, m, sw):
        """The next word's read; stage 1 takes it in the next cycle."""
        s, L = self.spec, self.spec.n_layers
        for a, *_ in self._words():
            with m.If(sw.arr == a):
                tw_ = s.tiles(a % L + 1)
                m.d.sync += [sw.v1.eq(1), sw.arr1.eq(a), sw.last1.eq(sw.t == tw_ - 1),
                             sw.t.eq(Mux(sw.t == tw_ - 1, 0, sw.t + 1))]
                with m.If(sw.addr == self.sweep_depth[a] - 1):
                    m.d.sync += [sw.addr.eq(0), sw.arr.eq(a + 1)]
                    if a == 2 * L - 1:
                        m.next = "DIGEST_END"
                with m.Else():
                    m.d.sync += sw.addr.eq(sw.addr + 1)
