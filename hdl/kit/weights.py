"""Kit part: the weight store of the EP core (docs/ep-core.md, "Components"; twin piece: the load-port
image of :mod:`golden.ep_core.twin` — ``pack_memory``/``unpack_memory``, ``EPCoreTwin.program``)."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from spec.ep_core import EPCoreSpec

from ..regport import RegSignature
from ..ternary_mem import TernaryWeightMemory
from . import layout_from_fields


def banked_memory(m: Module, name: str, width: int, depth: int, init: list[int], stages: int,
                  bank_words: int) -> tuple[SimpleNamespace, SimpleNamespace]:
    """A memory of ``depth`` words read through ``stages`` pipeline stages (0: one memory, as built before).

    With ``stages`` ≥ 1 the words are split into banks of ``bank_words`` (one block-RAM row), every bank's
    read data goes into a register right at the bank (stage 1), then a multiplexer tree picks the bank
    named by the address's high bits: ``stages − 1`` registered levels and a last combinational one (each
    level decodes ``ceil(log2(banks) / stages)`` bits of the bank index), so no path crosses more than one
    level of the tree. Returns a read and a write port (``addr``, ``en``, ``data``): a read's data appears
    ``1 + stages`` cycles after its address; without ``en`` the banks hold their data, the stages after
    them do not. Writes take effect at the clock edge, in the bank the address's high bits name.
    """
    rd = SimpleNamespace(addr=Signal(range(max(2, depth)), name=f"{name}_raddr"), en=Signal(name=f"{name}_ren"))
    wr = SimpleNamespace(addr=Signal(range(max(2, depth)), name=f"{name}_waddr"), en=Signal(name=f"{name}_wen"),
                         data=Signal(width, name=f"{name}_wdata"))
    if stages == 0:
        mem = memory.Memory(shape=unsigned(width), depth=depth, init=init)
        m.submodules[name] = mem
        rp, wp = mem.read_port(), mem.write_port()
        m.d.comb += [rp.addr.eq(rd.addr), rp.en.eq(rd.en), wp.addr.eq(wr.addr), wp.en.eq(wr.en), wp.data.eq(wr.data)]
        rd.data = rp.data
        return rd, wr
    ab = ceil_log2(bank_words)
    nb = -(-depth // bank_words)
    level = []  # stage 1: every bank's data registered at the bank
    for b in range(nb):
        bdepth = min(bank_words, depth - b * bank_words)
        mem = memory.Memory(shape=unsigned(width), depth=bdepth, init=init[b * bank_words:(b + 1) * bank_words])
        m.submodules[f"{name}_bank{b}"] = mem
        rp, wp = mem.read_port(), mem.write_port()
        bsel = (wr.addr >> ab) == b if nb > 1 else Const(1)
        m.d.comb += [rp.addr.eq(rd.addr[:ab] if nb > 1 else rd.addr), rp.en.eq(rd.en),
                     wp.addr.eq(wr.addr[:ab] if nb > 1 else wr.addr), wp.en.eq(wr.en & bsel), wp.data.eq(wr.data)]
        q = Signal(width, name=f"{name}_bank{b}_q", reset_less=True)  # data only: no reset logic before it
        m.d.sync += q.eq(rp.data)
        level.append(q)
    # the bank index rides along: registered beside the read port (cycle 1) and the bank registers (cycle 2)
    sel = Signal(range(max(2, nb)), name=f"{name}_sel0", reset_less=True)
    m.d.sync += sel.eq(rd.addr >> ab if nb > 1 else 0)
    sel_q = Signal.like(sel, name=f"{name}_sel1", reset_less=True)
    m.d.sync += sel_q.eq(sel)
    rbits = -(-ceil_log2(nb) // stages)  # each level decodes rbits bits of the bank index
    radix = 1 << rbits
    for lvl in range(stages):
        last = lvl == stages - 1
        dom = "comb" if last else "sync"
        nxt = []
        for g in range(-(-len(level) // radix)):
            grp = level[g * radix:(g + 1) * radix]
            out = Signal(width, name=f"{name}_l{lvl}_{g}", reset_less=True)
            if len(grp) == 1:
                m.d[dom] += out.eq(grp[0])
            else:
                with m.Switch(sel_q[lvl * rbits:(lvl + 1) * rbits]):
                    for i, w in enumerate(grp):
                        with m.Case(i):
                            m.d[dom] += out.eq(w)
            nxt.append(out)
        level = nxt
        if not last:
            sel_n = Signal.like(sel, name=f"{name}_sel{lvl + 2}", reset_less=True)
            m.d.sync += sel_n.eq(sel_q)
            sel_q = sel_n
    assert len(level) == 1
    rd.data = level[0]
    return rd, wr


def check_read_stages(read_stages, bank_words) -> None:
    """ValueError unless ``read_stages`` is an int 0 … 4 and ``bank_words`` a power of two >= 2."""
    if not isinstance(read_stages, int) or isinstance(read_stages, bool) or not 0 <= read_stages <= 4:
        raise ValueError(f"read_stages must be an integer 0 … 4 (the weight memory's extra read stages), "
                         f"not {read_stages!r}")
    if not isinstance(bank_words, int) or isinstance(bank_words, bool) or bank_words < 2 \
            or bank_words & (bank_words - 1):
        raise ValueError(f"bank_words must be a power of two >= 2 (words per block-RAM row), not {bank_words!r}")


class WeightStore(wiring.Component):
    """Every weight and bias of an EP core behind one read / update interface and the load port.

    Inside: one block RAM per connection (fixed-point weights ``w{l}``, or a ternary training core's
    latent weights ``v{l}``), or the ternary memory (:class:`hdl.ternary_mem.TernaryWeightMemory`,
    every ``w{l}`` at its load-port address) with those latent banks beside it, and one memory for
    every layer's biases (``b{l}`` from word ``bias_base[l]``, the tiles of the layers below).

    Contract (twin piece: the load-port image — :func:`golden.ep_core.pack_memory` /
    :func:`~golden.ep_core.unpack_memory` and :meth:`golden.ep_core.EPCoreTwin.program`):

    * **Load port** (only while ``serve`` is high): ``wcmd`` writes ``data`` to ``addr`` of
      ``spec.memory_map()`` (each element truncated to its region's width; a ternary core's ``w``
      words through the ternary memory's program port) or reads ``addr``: one ``wrsp`` beat per read,
      the region's elements sign-extended to ``spec.word_elem_bits`` (a ternary ``w`` word: its cells
      zero-extended); a read outside the map answers a zero word, a write there is ignored. A command
      is registered and decoded the next cycle; writes go back to back; a read holds the port until
      its response is taken. ``pending`` is high while a command or response is in flight.
    * **Sweep reads** (``rd_en``): connection ``l``'s word ``rd_addr`` appears on ``w{l}`` (every
      connection's bank reads the same address) the next cycle; a ternary core senses word
      ``base(rd_conn) + rd_addr`` when ``rd_sense`` (one PRNG draw), raw when ``rd_raw`` (``nz``/``neg``,
      ``cells``, the next cycle). The bias word ``bias_base[b_rd_conn] + b_rd_word`` appears on
      ``b_data`` the next cycle. Without ``rd_en`` the banks' read ports hold their data.
    * **Update writes**: ``w_wen`` writes ``w{l}_wdata`` (l = ``w_wconn``) at ``w_waddr`` (a ternary
      training core also writes ``up_cells``, masked by ``up_mask``, through the memory's update port),
      ``b_wen`` writes ``b_wdata`` at ``bias_base[b_wconn] + b_wword``; both take effect from the next cycle.

    Latency: reads 1 cycle (block RAM), writes 1 cycle, the load port's responses 2 cycles after the
    read command is taken (3 for a ternary ``w`` word) and then as long as ``wrsp.ready`` is low.

    Read stages (``read_stages`` K ≥ 1, for fast clocks; :func:`banked_memory`): every memory is split
    into banks of ``bank_words`` (one block-RAM row: 1,024 words in the ECP5's DP16KD 1,024 × 18 mode),
    each bank's data is registered at the bank and a pipelined multiplexer tree picks the bank. Sweep
    reads (weights, biases, and the ternary memory's words, delayed by K registers) then arrive
    1 + K cycles after their address, every cycle (the stages do not hold without ``rd_en``). The load
    port's decoded access (address, enable and data of each memory port) is registered before the memories,
    so its writes take effect a cycle later (``pending`` covers that cycle) and a block-RAM read-back's word,
    taken into a response register, is answered 4 + K cycles after the command is taken.

    Parameters
    ----------
    spec : EPCoreSpec. init_words : the load-port image as the memories' initial contents, or None.
    read_stages : int 0 … 4 (default 0: one memory per bank, as before). bank_words : power of two.

    Members
    -------
    wcmd : In(stream) / wrsp : Out(stream) — the load port (``spec.wcmd_fields()`` / ``wrsp_fields()``).
    serve : In(1); pending : Out(1). rd_en, rd_sense, rd_raw : In(1); rd_addr, rd_conn : In.
    ``w{l}`` : Out(P·bits_l) per connection (fixed point / latent); nz, neg : Out(P), cells : Out(2P) (ternary).
    b_rd_conn, b_rd_word : In; b_data : Out(P·bias_bits). w_wen : In(1); w_wconn, w_waddr : In;
    ``w{l}_wdata`` : In(P·bits_l); up_cells : In(2P), up_mask : In(P) (ternary training).
    b_wen : In(1); b_wconn, b_wword : In; b_wdata : In(P·bias_bits). reg : In(RegSignature),
    mem_busy : Out(1) — the ternary memory's registers and its reseeding (ternary cores).
    """

    def __init__(self, spec: EPCoreSpec, init_words: list[int] | None = None, *, read_stages: int = 0,
                 bank_words: int = 1024):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        if init_words is not None and len(init_words) != spec.memory_words:
            raise ValueError(f"init_words must have {spec.memory_words} words (the spec's memory), "
                             f"not {len(init_words)}")
        check_read_stages(read_stages, bank_words)
        self.spec, self.init_words = spec, init_words
        self.read_stages, self.bank_words = read_stages, bank_words
        s, L, P = spec, spec.n_layers, spec.lanes
        self.ternary = s.weight_kind == "ternary"
        self.tt = s.ternary_training
        T = [s.tiles(k) for k in range(L + 1)]
        self.wbits = list(s.latent_bits) if self.tt else list(s.weight_bits)
        self.banks = L if not self.ternary or self.tt else 0  # block-RAM weight banks
        self.bias_base = [sum(T[1:l + 1]) for l in range(L + 1)]
        self.words = max(s.layers[l + 1] * T[l] for l in range(L))
        members = {
            "wcmd": In(stream.Signature(layout_from_fields(s.wcmd_fields()))),
            "wrsp": Out(stream.Signature(layout_from_fields(s.wrsp_fields()))),
            "serve": In(1), "pending": Out(1),
            "rd_en": In(1), "rd_addr": In(range(self.words + 1)), "rd_conn": In(range(max(2, L))),
            "b_rd_conn": In(range(max(2, L))), "b_rd_word": In(range(max(T) + 1)),
            "b_data": Out(P * s.bias_bits),
            "w_wen": In(1), "w_wconn": In(range(max(2, L))), "w_waddr": In(range(self.words + 1)),
            "b_wen": In(1), "b_wconn": In(range(max(2, L))), "b_wword": In(range(max(T) + 1)),
            "b_wdata": In(P * s.bias_bits),
        }
        for l in range(self.banks):
            members[f"w{l}"] = Out(P * self.wbits[l])
            members[f"w{l}_wdata"] = In(P * self.wbits[l])
        if self.ternary:
            members.update({"rd_sense": In(1), "nz": Out(P), "neg": Out(P), "reg": In(RegSignature()),
                            "mem_busy": Out(1)})
        if self.tt:
            members.update({"rd_raw": In(1), "cells": Out(2 * P), "up_cells": In(2 * P), "up_mask": In(P)})
        super().__init__(members)

    def _region_init(self, name: str, elem_bits: int) -> list[int]:
        """Memory contents of a region from the load-port image (re-packed at elem_bits)."""
        s, init = self.spec, self.init_words
        if init is None:
            return []
        P, EB = s.lanes, s.word_elem_bits
        r = {r.name: r for r in s.memory_map()}[name]
        out = []
        for w in init[r.base:r.base + r.words]:
            word = 0
            for i in range(P):
                v = (w >> (i * EB)) & ((1 << EB) - 1)
                word |= (v & ((1 << elem_bits) - 1)) << (i * elem_bits)
            out.append(word)
        return out

    def elaborate(self, platform):
        s, m = self.spec, Module()
        P, L = s.lanes, s.n_layers
        T = [s.tiles(k) for k in range(L + 1)]
        ternary, tt, wbits, bbase = self.ternary, self.tt, self.wbits, self.bias_base
        wbase = {r.name: r.base for r in s.memory_map()}

        # ---------------- memories ----------------
        if ternary:
            tinit = [w for l in range(L) for w in self._region_init(f"w{l}", 2)]
            m.submodules.tmem = tmem = TernaryWeightMemory(s.ternary_memory_spec(), tinit or None)
            wiring.connect(m, wiring.flipped(self.reg), tmem.reg)
            m.d.comb += self.mem_busy.eq(tmem.busy)
        K, BW = self.read_stages, self.bank_words
        rd_w, wr_w = [], []
        for l in range(self.banks):
            rp, wp = banked_memory(m, f"wmem{l}", P * wbits[l], s.layers[l + 1] * T[l],
                                   self._region_init(f"v{l}" if tt else f"w{l}", wbits[l]), K, BW)
            rd_w.append(rp)
            wr_w.append(wp)
            m.d.comb += getattr(self, f"w{l}").eq(rp.data)
        # every layer's biases in one memory: one bias word is read per cycle, and a small layer's biases do
        # not become flip-flops of their own
        rd_b, wr_b = banked_memory(m, "bmem", P * s.bias_bits, bbase[L],
                                   [w for l in range(L) for w in self._region_init(f"b{l}", s.bias_bits)], K, BW)
        m.d.comb += self.b_data.eq(rd_b.data)

        def bias_base(lval):
            v = Signal(range(bbase[L] + 1), name="bbase")
            with m.Switch(lval):
                for l in range(L):
                    with m.Case(l):
                        m.d.comb += v.eq(bbase[l])
            return v

        # ---------------- sweep reads ----------------
        # A read port's enable is 1 unless driven: the ports that answer load-port read-backs are held
        # (enable 0) by default, so that their data stays until the response is taken
        m.d.comb += [rd_b.en.eq(0)] + [p.en.eq(0) for p in rd_w]
        with m.If(self.rd_en):
            for p in rd_w:
                m.d.comb += [p.addr.eq(self.rd_addr), p.en.eq(1)]
            if ternary:  # every relaxation micro-op reads one weight word (one draw)
                tbase = Signal(len(tmem.rd_addr))
                with m.Switch(self.rd_conn):
                    for l in range(L):
                        with m.Case(l):
                            m.d.comb += tbase.eq(wbase[f"w{l}"])
                m.d.comb += [tmem.rd_addr.eq(tbase + self.rd_addr), tmem.rd_en.eq(self.rd_sense)]
                if tt:  # … and a weight update reads the stored cells raw (no PCSA, no draw)
                    m.d.comb += tmem.rd_raw.eq(self.rd_raw)
            m.d.comb += [rd_b.addr.eq(bias_base(self.b_rd_conn) + self.b_rd_word), rd_b.en.eq(1)]
        def delayed(v):  # the ternary memory's words: K registers, beside the banks' stages
            for i in range(K):
                r = Signal.like(v, name=f"{v.name}_d{i + 1}", reset_less=True)
                m.d.sync += r.eq(v)
                v = r
            return v

        if ternary:
            m.d.comb += [self.nz.eq(delayed(tmem.rd_nz)), self.neg.eq(delayed(tmem.rd_neg))]
        if tt:
            m.d.comb += self.cells.eq(delayed(tmem.rd_cells))

        # ---------------- update writes ----------------
        for l in range(self.banks):
            with m.If(self.w_wen & (self.w_wconn == l)):
                m.d.comb += [wr_w[l].addr.eq(self.w_waddr), wr_w[l].en.eq(1),
                             wr_w[l].data.eq(getattr(self, f"w{l}_wdata"))]
                if tt:
                    m.d.comb += [tmem.up_en.eq(1), tmem.up_addr.eq(wbase[f"w{l}"] + self.w_waddr),
                                 tmem.up_data.eq(self.up_cells), tmem.up_mask.eq(self.up_mask)]
        with m.If(self.b_wen):
            m.d.comb += [wr_b.addr.eq(bias_base(self.b_wconn) + self.b_wword), wr_b.en.eq(1),
                         wr_b.data.eq(self.b_wdata)]

        self._load_port(m, tmem if ternary else None, rd_w, wr_w, rd_b, wr_b)
        return m

    def _load_port(self, m, tmem, rd_w, wr_w, rd_b, wr_b):
        """The load port (``wcmd``/``wrsp``) on the memories' ports (``tmem``: the ternary memory or None)."""
        s, P, EB = self.spec, self.spec.lanes, self.spec.word_elem_bits
        ternary, bbase = self.ternary, self.bias_base
        # ---------------- load port (while serve) ----------------
        # A command is taken into a register and decoded in the next cycle, so the host side's
        # logic never meets the address decoder and the memory ports in one cycle. Writes can
        # follow each other every cycle; a read holds the port until its response is taken.
        wc = Signal.like(self.wcmd.payload)
        wq_valid = Signal()
        rsp_pending = Signal()
        rsp_region = Signal(range(len(s.memory_map()) + 1))  # the last value: an address outside the map
        rsp_valid = Signal()
        K = self.read_stages
        # read stages: the decoded access (address, enable, data of each memory port) is registered before the
        # memories (the command register's decoder and the far block RAMs' ports are then a cycle apart)
        staged: dict[int, tuple] = {}

        def stage(port):
            if K == 0:
                return port
            if id(port) not in staged:
                d = SimpleNamespace(addr=Signal.like(port.addr, name=f"{port.addr.name}_ld"),
                                    en=Signal(name=f"{port.en.name}_ld"))
                if any(port is w for w in wr_w + [wr_b]):  # a write port: its data too
                    d.data = Signal.like(port.data, name=f"{port.data.name}_ld")
                staged[id(port)] = (port, d)
            return staged[id(port)][1]

        staged_busy = Signal()  # a registered access not yet at its memory
        m.d.comb += self.pending.eq(wq_valid | rsp_pending | rsp_valid | staged_busy)
        wport_ok = self.serve & ~rsp_pending & ~rsp_valid
        wq_done = Signal(init=1)  # the registered command completes this cycle
        rsp_t = Signal()  # the pending read is the ternary memory's
        m.d.comb += self.wcmd.ready.eq(wport_ok & (~wq_valid | (wc.write & wq_done)))
        with m.If(self.wcmd.valid & self.wcmd.ready):
            m.d.sync += [wc.eq(self.wcmd.payload), wq_valid.eq(1)]
        with m.Elif(wq_valid & wq_done):
            m.d.sync += wq_valid.eq(0)
        wdata_lanes = [wc.data[i * EB:(i + 1) * EB] for i in range(P)]
        if ternary:
            # w words go through the ternary memory's program port (static faults, one draw per write);
            # the command waits there while the memory is busy (reseeding)
            t_hit = wc.addr < s.ternary_memory_spec().depth
            m.d.comb += [tmem.cmd.payload.data.eq(Cat(*[wdata_lanes[i][:2] for i in range(P)])),
                         tmem.cmd.payload.addr.eq(wc.addr), tmem.cmd.payload.write.eq(wc.write),
                         tmem.cmd.valid.eq(wq_valid & t_hit & ~rsp_pending & ~rsp_valid)]
            with m.If(t_hit):
                m.d.comb += wq_done.eq(tmem.cmd.ready & ~rsp_pending & ~rsp_valid)
            with m.If(tmem.cmd.valid & tmem.cmd.ready & ~wc.write):
                m.d.sync += [rsp_pending.eq(1), rsp_t.eq(1)]
        hits = [t_hit] if ternary else []

        def ports(r):
            """The write and read port of region r: the bias memory, or connection l's bank (w or v)."""
            return (wr_b, rd_b) if r.name.startswith("b") else (wr_w[int(r.name[1:])], rd_w[int(r.name[1:])])

        for idx, r in enumerate(s.memory_map()):
            if ternary and r.name.startswith("w"):
                continue
            hit = (wc.addr >= r.base) & (wc.addr < r.base + r.words)
            hits.append(hit)
            local = Signal(range(max(2, r.words)), name=f"{r.name}_local")
            m.d.comb += local.eq(wc.addr - r.base)
            port_w, port_r = (stage(p) for p in ports(r))
            local_base = bbase[int(r.name[1:])] if r.name.startswith("b") else 0
            eb_r = r.elem_bits
            with m.If(wq_valid & hit):
                with m.If(wc.write):
                    m.d.comb += [port_w.addr.eq(local + local_base), port_w.en.eq(1)]
                    for i in range(P):
                        m.d.comb += port_w.data[i * eb_r:(i + 1) * eb_r].eq(wdata_lanes[i][:eb_r])
                with m.Else():
                    m.d.comb += [port_r.addr.eq(local + local_base), port_r.en.eq(1)]
                    m.d.sync += [rsp_pending.eq(1), rsp_region.eq(idx)]
        if staged:
            ens = []
            for port, d in staged.values():
                q = SimpleNamespace(**{f: Signal.like(v, name=f"{v.name}_q") for f, v in vars(d).items()})
                m.d.sync += [getattr(q, f).eq(v) for f, v in vars(d).items()]
                with m.If(q.en):
                    m.d.comb += [port.addr.eq(q.addr), port.en.eq(1)] + ([port.data.eq(q.data)] if hasattr(q, "data")
                                                                          else [])
                ens.append(q.en)
            m.d.comb += staged_busy.eq(Cat(*ens).any())
        # a read outside the memory map is answered with a zero word (one response per read); a write there is
        # ignored
        with m.If(wq_valid & ~wc.write & ~Cat(*hits).any()):
            m.d.sync += [rsp_pending.eq(1), rsp_region.eq(len(s.memory_map()))]
        rsp_word = Signal(P * EB)
        if ternary:  # a w read-back: the memory's (registered) response stream, its cells zero-extended
            with m.If(rsp_t):
                m.d.comb += [self.wrsp.valid.eq(tmem.rsp.valid), tmem.rsp.ready.eq(self.wrsp.ready),
                             rsp_word.eq(Cat(*[Cat(tmem.rsp.payload.data[2 * i:2 * i + 2], Const(0, EB - 2))
                                               for i in range(P)]))]
                with m.If(tmem.rsp.valid & self.wrsp.ready):
                    m.d.sync += [rsp_pending.eq(0), rsp_t.eq(0)]
        if K == 0:
            # a block-RAM read-back answers from the read port itself: its data holds (the port stays disabled:
            # no sweep starts and no command is taken) until the response is taken
            with m.If(rsp_pending & ~rsp_t):
                m.d.sync += [rsp_pending.eq(0), rsp_valid.eq(1)]
            rsp_sel = rsp_valid
        else:
            # read stages: the read reaches its memory a cycle later (the registered access), its word K cycles
            # after that through the banks' pipeline, and is taken into a response register (the read-back's path
            # ends there, not in the host link)
            rsp_wait = Signal(range(K + 2))
            with m.If(wq_valid & ~wc.write & ~rsp_pending & ~rsp_valid):
                m.d.sync += rsp_wait.eq(K + 1)
            with m.If(rsp_pending & ~rsp_t):
                with m.If(rsp_wait != 0):
                    m.d.sync += rsp_wait.eq(rsp_wait - 1)
                with m.Else():
                    m.d.sync += [rsp_pending.eq(0), rsp_valid.eq(1)]
            rsp_sel = rsp_pending & ~rsp_t & (rsp_wait == 0)
        with m.If(rsp_valid):
            m.d.comb += self.wrsp.valid.eq(1)
            with m.If(self.wrsp.ready):
                m.d.sync += rsp_valid.eq(0)
        with m.If(rsp_sel):
            with m.Switch(rsp_region):
                for idx, r in enumerate(s.memory_map()):
                    if ternary and r.name.startswith("w"):
                        continue
                    with m.Case(idx):
                        port_r = ports(r)[1]
                        eb_r = r.elem_bits
                        for i in range(P):
                            m.d.comb += rsp_word[i * EB:(i + 1) * EB].eq(
                                port_r.data[i * eb_r:(i + 1) * eb_r].as_signed())
        if K == 0:
            m.d.comb += self.wrsp.payload.data.eq(rsp_word)
        else:
            rsp_q = Signal.like(rsp_word)
            with m.If(rsp_sel):
                m.d.sync += rsp_q.eq(rsp_word)
            if ternary:
                with m.If(rsp_t):
                    m.d.comb += self.wrsp.payload.data.eq(rsp_word)
                with m.Else():
                    m.d.comb += self.wrsp.payload.data.eq(rsp_q)
            else:
                m.d.comb += self.wrsp.payload.data.eq(rsp_q)

