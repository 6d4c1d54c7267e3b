"""The fixed-point EP core with on-chip learning (Amaranth 0.5).

Behaviour is defined by the twin :class:`golden.ep_core.EPCoreTwin`; numbers by
:class:`spec.ep_core.EPCoreSpec`. Structure:

* **Memories.** Connection l's weights ``w{l}`` are stored row by row (row j = postsynaptic
  neuron j of layer l+1), ``tiles(l)`` words of P weights per row. The bottom-up sweep into
  layer l+1 reads a row's words and reduces P products per cycle through an adder tree; the
  top-down sweep into layer l reads *the same* words and broadcasts the postsynaptic state
  ``s_{l+1}[j]`` to P lane accumulators (lane i = presynaptic neuron t·P+i). So W and Wᵀ both
  cost one P-weight read per cycle. States: four banks per layer (free / +β / −β phases
  ping-pong without copies), P states per word, lane-granular writes. Biases: P per word.
  Layer 1's bottom-up term W0·x + b0 is computed once per sample into ``c1``.
* **Pipeline.** One micro-op per cycle: S0 issue (read addresses) → S1 memory data, operand
  selection → S2 products (P multipliers) → then per kind: *reduce* (adder tree, scalar
  accumulator, + bias/nudge/partial, activation, lane write), *broadcast* (P lane accumulators,
  P activations, word write), *update* (state-product difference, rounding shift, saturating
  read-modify-write of the weight word).
* **Sequencer.** A program FSM walks the sample (load, ``c1``, free phase, ±β phases, update,
  output) and starts sweeps; a sweep engine iterates rows/tiles and issues the micro-ops.
  The pipeline is drained only where a later sweep reads what an earlier one writes (between
  steps, and around a middle layer's partial sums).

Ports (see ``spec.input_fields()`` etc. for payload bit layouts): ``inp`` samples (P pixels per
beat, label on the last beat), ``out`` predictions, ``dump`` states after every phase (when
enabled), ``wcmd``/``wrsp`` weight memory load and read-back, ``reg`` a small register port.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import (
    PRNG_WIDTH,
    REG_SEED,
    EPCoreSpec,
)

from .fixed import saturate
from .kit import layout_from_fields
from .kit.colpath import ColumnPath
from .kit.draws import DrawSource
from .kit.dump import DumpReader
from .kit.issue import ENGINE_PORTS, SEQ_PORTS, Issue
from .kit.lanes import LaneProducts
from .kit.loader import InputLoader
from .kit.operands import OperandSelect
from .kit.regfile import EPRegisterFile
from .kit.rowpath import RowPath
from .kit.sequencer import Sequencer
from .kit.statemem import CoreMemories
from .kit.sweep import Sweep, SweepEngine
from .kit.updpath import UpdatePath
from .kit.weights import WeightStore, check_read_stages
from .regport import RegSignature

# micro-op kinds
K_REDUCE, K_BCAST, K_C1, K_DPASS, K_UPW, K_UPB = range(6)


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, n))))


class EPCore(wiring.Component):
    """Fixed-point EP accelerator: inference and on-chip training, P lanes, any layer sizes.

    Parameters
    ----------
    spec : EPCoreSpec
    init_words : optional load-port word image (``golden.ep_core.pack_memory``) used as the
        memories' initial contents (a bitstream with weights built in).
    register_reads : bool
        Register every memory's read data before the operand multiplexers (default). ``False`` drops
        that pipeline stage (one flip-flop per read bit less, one cycle less latency per drain): for
        devices whose memories are one block deep and slow clocks (the iCE40UP5K). Numerics and the
        sample's results are the same either way.
    weight_read_stages : int 0 … 4
        Extra read stages of the weight store (:class:`hdl.kit.weights.WeightStore` ``read_stages``: banks of
        ``weight_bank_words`` words, each registered at the bank, and a pipelined multiplexer tree), for fast
        clocks on devices whose weight memory spans many block-RAM rows (the ECP5). The core's own memories
        are then read K cycles later, so everything after the issue stage moves by K cycles: a drain takes
        K cycles more, the results are the same. Default 0: the core as before (same cycle counts).
    weight_bank_words : int
        Words per bank with read stages (a power of two; default 1,024, one DP16KD row at ≤ 18 bits per block).

    Members
    -------
    inp : In(stream) — sample beats. out : Out(stream) — predictions. dump : Out(stream) — state
    dump. wcmd : In(stream) / wrsp : Out(stream) — weight port. reg : In(RegSignature) — registers.
    """

    def __init__(self, spec: EPCoreSpec, init_words: list[int] | None = None, *, register_reads: bool = True,
                 weight_read_stages: int = 0, weight_bank_words: int = 1024):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        if not isinstance(register_reads, bool):
            raise TypeError(f"register_reads must be a bool, not {register_reads!r}")
        check_read_stages(weight_read_stages, weight_bank_words)
        self.register_reads = register_reads
        self.weight_read_stages, self.weight_bank_words = weight_read_stages, weight_bank_words
        if init_words is not None and len(init_words) != spec.memory_words:
            raise ValueError(f"init_words must have {spec.memory_words} words (the spec's memory), "
                             f"not {len(init_words)}")
        self.spec = spec
        self.init_words = init_words
        super().__init__({
            "inp": In(stream.Signature(layout_from_fields(spec.input_fields()))),
            "out": Out(stream.Signature(layout_from_fields(spec.output_fields()))),
            "dump": Out(stream.Signature(layout_from_fields(spec.dump_fields()))),
            "wcmd": In(stream.Signature(layout_from_fields(spec.wcmd_fields()))),
            "wrsp": Out(stream.Signature(layout_from_fields(spec.wrsp_fields()))),
            "reg": In(RegSignature()),
        })

    # ------------------------------------------------------------------------------------------
    def sweeps(self) -> tuple[list[Sweep], list[int], dict[str, int]]:
        """The sequencer's sweep table, the indices of one relaxation step, and named entries."""
        s = self.spec
        L = s.n_layers
        table: list[Sweep] = []
        named: dict[str, int] = {}

        def add(name, sw):
            named[name] = len(table)
            table.append(sw)

        add("c1", Sweep(K_C1, 0, 1, s.layers[1], s.tiles(0)))
        step = []
        # layer 1: top-down through W1 onto c1 (broadcast), full-word writes
        add("bcast1", Sweep(K_BCAST, 1, 1, s.tiles(1), s.layers[2], columns=True))
        step.append(named["bcast1"])
        for k in range(2, L):
            add(f"bcast{k}", Sweep(K_BCAST, k, k, s.tiles(k), s.layers[k + 1], columns=True))
            add(f"reduce{k}", Sweep(K_REDUCE, k - 1, k, s.layers[k], s.tiles(k - 1)))
            step += [named[f"bcast{k}"], -1, named[f"reduce{k}"]]  # -1: drain (partials read back)
        add(f"reduce{L}", Sweep(K_REDUCE, L - 1, L, s.layers[L], s.tiles(L - 1)))
        step.append(named[f"reduce{L}"])
        if s.training:
            add("dpass", Sweep(K_DPASS, 0, 1, s.tiles(1), 1, two_cycle=True))
            add("upw0", Sweep(K_UPW, 0, 1, s.layers[1], s.tiles(0)))
            for l in range(1, L):
                add(f"upw{l}", Sweep(K_UPW, l, l + 1, s.layers[l + 1], s.tiles(l), two_cycle=True))
            for l in range(L):
                add(f"upb{l}", Sweep(K_UPB, l, l + 1, s.tiles(l + 1), 1, two_cycle=True))
        return table, step, named

    def op_layout(self) -> data.StructLayout:
        """The pipeline's micro-op: what rides along each stage beside the data."""
        s = self.spec
        L, P, N, T = s.n_layers, s.lanes, s.layers, [s.tiles(k) for k in range(s.n_layers + 1)]
        words = max(N[l + 1] * T[l] for l in range(L))  # the sweep engine's waddr is range(words + 1)
        return data.StructLayout({
            "valid": 1, "kind": 3, "conn": _clog2(L), "layer": _clog2(L + 1), "first": 1, "last": 1,
            "sub": 1, "j": _clog2(max(N) + 1), "lane": _clog2(P), "word": _clog2(max(T) + 1),
            "waddr": max(1, words.bit_length()), "wr_bank": 2, "zero": 1, "bsign": 2, "argmax": 1,
        })

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform):  # noqa: C901  (one datapath, kept in one place)
        s = self.spec
        m = Module()
        P, L = s.lanes, s.n_layers
        T = [s.tiles(k) for k in range(L + 1)]
        N = list(s.layers)
        ACC = s.acc_bits_max
        table, step_list, named = self.sweeps()
        # ---------------- memories ----------------
        # weights and biases (hdl.kit.weights.WeightStore, with the load port); the core's own memories below
        ternary = s.weight_kind == "ternary"
        tt = s.ternary_training  # latent weights v{l} in block RAM beside the cells (laid out like w{l})
        K = self.weight_read_stages
        m.submodules.weights = store = WeightStore(s, self.init_words, read_stages=K,
                                                   bank_words=self.weight_bank_words)
        wiring.connect(m, wiring.flipped(self.wcmd), store.wcmd)
        wiring.connect(m, store.wrsp, wiring.flipped(self.wrsp))
        wq_banks = [getattr(store, f"w{l}") for l in range(store.banks)]
        # input, c1 (stored saturated to spec.c1_range()), states, partial sums, d, and the read stage of every
        # word S1 reads (hdl.kit.statemem.CoreMemories; register_reads=False: no read stage)
        rr = self.register_reads
        m.submodules.mems = mems = CoreMemories(s, rr, [len(w) for w in wq_banks], len(store.b_data))

        # ---------------- registers ----------------
        m.submodules.regs = regs = EPRegisterFile(s)
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        if ternary:
            wiring.connect(m, regs.mem, store.reg)
        r_train, r_sym, r_dump = regs.train, regs.symmetric, regs.dump
        r_T1, r_T2, r_beta, r_lr = regs.T1, regs.T2, regs.beta_shift, regs.lr_shift
        # REG_STATUS bit 1: a refused register write (spec.register_write_error), sticky until STATUS is written
        self.reg_error = reg_error = regs.reg_error
        # the sample's sequencer (hdl.kit.sequencer.Sequencer): phases, steps, dumps, update, output
        upd_list = [named["dpass"]] + [named[f"upw{l}"] for l in range(L)] + [named[f"upb{l}"] for l in range(L)] \
            if s.training else []
        m.submodules.seq = seq = Sequencer(named["c1"], step_list, upd_list, s.step_bits, s.uses_prng)
        busy = seq.busy
        m.d.comb += [regs.busy.eq(busy), regs.cycles.eq(seq.cycles), regs.samples.eq(seq.samples),
                     seq.train.eq(r_train), seq.symmetric.eq(r_sym), seq.dump.eq(r_dump), seq.T1.eq(r_T1),
                     seq.T2.eq(r_T2)]
        # read by the formal harness (hdl/formal/ep_core.py): registers, and every sized sum as
        # (name, full-width expression, register width, when it is written, layer or None)
        taps = self.formal_taps = {"busy": busy, "reg_error": reg_error, "T1": r_T1, "T2": r_T2,
                                   "beta_shift": r_beta, "lr_shift": r_lr, "sums": []}
        # PRNG (spec.ep_core, "Randomness"): only in cores whose spec needs random bits. Draw n since
        # the last seeding sees the lanes' state after n + 1 steps: one priming step after every
        # (re)seeding, then one step per draw (random sign: PHASE_DONE; stochastic rounding: S4).
        rng = s.uses_prng
        if rng:  # (hdl.kit.draws.DrawSource) random sign: one draw when the free phase ends, bit 31 of lane P − 1
            m.submodules.prng = prng = DrawSource(s.prng_spec())
            draw_upd = Signal()
            m.d.comb += [seq.random_sign.eq(regs.random_sign),
                         seq.sign_bit.eq(prng.out[(s.sign_lane + 1) * PRNG_WIDTH - 1]), prng.seed.eq(self.reg.wdata),
                         prng.seed_load.eq(regs.seed_load), prng.draw.eq(seq.draw_sign | draw_upd),
                         prng.seed_write.eq(self.reg.we & (self.reg.addr == REG_SEED))]
            rng_ok = prng.ok  # seeded and primed, and not being reseeded: a sample may start

        # input beats (hdl.kit.loader.InputLoader): a sample starts with its last beat; the datapath's registers
        # are latched then (the sequencer latches its own)
        m.submodules.loader = loader = InputLoader(self.inp.payload.shape(), N[0], T[0])
        wiring.connect(m, wiring.flipped(self.inp), loader.inp)
        label, x_beta = loader.label, Signal.like(r_beta)

        # ---------------- sweep engine (hdl.kit.sweep.SweepEngine) ----------------
        m.submodules.sweep = eng = SweepEngine(table, P, T[:L], max(N[l + 1] * T[l] for l in range(L)))
        run, waddr = eng.run, eng.waddr

        def bank_addr(k, bank, word):  # state memories: four banks of tiles(k) words
            return bank * T[k] + word

        # ---------------- S0: issue (hdl.kit.issue.Issue): the micro-op and the read addresses ----------------
        op_layout = self.op_layout()
        assert op_layout.members["waddr"] == len(waddr)
        kinds = {"reduce": K_REDUCE, "c1": K_C1, "bcast": K_BCAST, "upw": K_UPW, "dpass": K_DPASS, "upb": K_UPB}
        m.submodules.issue = iss = Issue(s, op_layout, kinds, eng)
        m.d.comb += [getattr(iss, n).eq(getattr(eng, n)) for n in ENGINE_PORTS] + [
            getattr(iss, n).eq(getattr(seq, n)) for n in SEQ_PORTS]
        op0, kind, conn = iss.op, eng.kind, eng.conn
        # read-port addresses (the engine owns them while running; dump/weight port otherwise). A read port's
        # enable is 1 unless driven: the ports that answer weight-port read-backs are held (enable 0) by
        # default, so that their data stays until the response is taken
        # weights and biases: the store reads connection conn's word waddr (every bank the same address) and
        # the bias word (reduce: b_conn at word j//P; update: word t)
        m.d.comb += [store.rd_en.eq(run), store.rd_addr.eq(waddr), store.rd_conn.eq(conn),
                     store.b_rd_conn.eq(conn), store.b_rd_word.eq(iss.b_word)]
        if ternary:  # every relaxation micro-op senses one weight word (one draw)…
            if tt:  # … and a weight update reads the stored cells raw (no PCSA, no draw)
                m.d.comb += [store.rd_sense.eq((kind != K_DPASS) & (kind != K_UPB)), store.rd_raw.eq(kind == K_UPW)]
            else:
                m.d.comb += store.rd_sense.eq(1)
        # the core's own memories: their addresses K cycles later (weight read stages), so that their words
        # arrive beside the weight store's; every stage after S0 moves by K cycles, reads and writes alike
        raddrs = [run, iss.x_addr, iss.row_word] + [iss.s_addr[k - 1] for k in range(1, L + 1)]
        delayed_run = []
        for i in range(K):
            regs_k = [Signal(len(a), name=f"raddr{j}_k{i + 1}") for j, a in enumerate(raddrs)]
            m.d.sync += [r.eq(a) for r, a in zip(regs_k, raddrs, strict=True)]
            raddrs = regs_k
            delayed_run.append(raddrs[0])
        m.d.comb += [mems.run.eq(raddrs[0]), mems.x_raddr.eq(raddrs[1]), mems.row_raddr.eq(raddrs[2])] + [
            getattr(mems, f"s{k}_raddr").eq(raddrs[2 + k]) for k in range(1, L + 1)]

        # ---------------- S0r: memory data registered ----------------
        # The block RAMs' read data (after the depth-cascade multiplexer that synthesis builds for a
        # deep memory) goes straight into a register: the operand multiplexers of S1 then start
        # from flip-flops, which keeps the cascade off the critical path.
        # Without the read stage (register_reads=False: small devices whose memories are one block deep) the
        # S1 multiplexers take the read data straight from the block RAMs: one register less per memory bit
        # and one cycle less latency; c1 is then read one op later so that it still arrives beside S3.
        op0r = Signal(op_layout)
        op0k = op0  # the micro-op K cycles later (weight read stages)
        for i in range(K):
            r = Signal(op_layout, name=f"op0k{i + 1}")
            m.d.sync += r.eq(op0k)
            op0k = r
        m.d.sync += op0r.eq(op0k)
        rdom = "sync" if rr else "comb"
        m.d.comb += [getattr(mems, f"w{l}").eq(w) for l, w in enumerate(wq_banks)] + [
            mems.b.eq(store.b_data), mems.b_lane.eq(op0r.lane)]
        if ternary:
            m.d.comb += [mems.nz.eq(store.nz), mems.neg.eq(store.neg)]
        if tt:
            m.d.comb += mems.cells.eq(store.cells)

        # ---------------- S1: memory data → operands (hdl.kit.operands.OperandSelect) ----------------
        op1 = Signal(op_layout)
        m.d[rdom] += op1.eq(op0r)
        m.submodules.operands = ops = OperandSelect(s, op_layout, kinds)
        PB, RB, OB = ops.left_bits, ops.right_bits, ops.old_bits
        m.d.comb += [ops.op.eq(op1), ops.x.eq(mems.x_q), ops.b.eq(mems.b_q)] + [
            getattr(ops, f"w{l}").eq(getattr(mems, f"w{l}_q")) for l in range(len(wq_banks))] + [
            getattr(ops, f"{n}").eq(getattr(mems, f"{n}_q")) for n in mems.widths if n[0] in "sp"]
        if ternary:
            m.d.comb += [ops.nz.eq(mems.nz_q), ops.neg.eq(mems.neg_q)]
        if s.training:
            m.d.comb += ops.d.eq(mems.d_q)
            uold3 = ops.old
        if tt:
            m.d.comb += ops.cells.eq(mems.cells_q)
            cword3 = ops.cword
        left, right, bias3, part3, nstate3 = ops.left, ops.right, ops.bias, ops.part, ops.nstate

        # ---------------- S2: products ----------------
        op2 = Signal(op_layout)
        m.d.sync += op2.eq(op1)
        # broadcast accumulator init (c1 for layer 1, 0 for middle layers): c1 is read two stages later
        # than the other memories, so that its word arrives beside the products (S3): from the S1 op's tile
        # into a register, or (without the read stage) from the S2 op's tile straight to S3
        m.d.comb += mems.c1_raddr.eq(op1.word if rr else op2.word)
        prods = [Signal(signed(PB + RB), name=f"prod{i}") for i in range(P)]
        # P lanes: multipliers, or add / subtract / skip for ternary weights (a training core's weight update
        # multiplies states: state × state products)
        m.submodules.lanes = lanes = LaneProducts(P, PB, RB, mode="addsub+multiply" if tt else
                                                  "addsub" if ternary else "multiply")
        if tt:
            m.d.comb += lanes.mul.eq(op2.kind == K_UPW)
        for i in range(P):
            m.d.comb += [lanes.left[i].eq(left[i]), lanes.right[i].eq(right[i]), prods[i].eq(lanes.prod[i])]
        valids = delayed_run + ([op0k.valid] if K else []) + [op0r.valid, op1.valid, op2.valid]

        # ---------------- S3: consume products ----------------
        op3 = Signal(op_layout)
        m.d.sync += op3.eq(op2)
        valids.append(op3.valid)
        prod3 = prods  # registered at the end of S2: valid beside op3
        k3 = op3.kind

        # --- broadcast (hdl.kit.colpath.ColumnPath): lane accumulators at S3, ρ at S4; S4 writes layer 1's
        # states (full word) or a middle layer's partial sums
        m.submodules.colpath = cp = ColumnPath(s, op_layout, PB + RB, K_BCAST)
        m.d.comb += [cp.op.eq(op3), cp.c1.eq(mems.c1_q)] + [cp.prod[i].eq(prod3[i]) for i in range(P)]
        taps["sums"] += [(f"lsum{i}", cp.laccs.sum_full[i], ACC, op3.valid & (k3 == K_BCAST), op3.layer)
                         for i in range(P)]
        valids.append(cp.valid)
        with m.If(cp.valid & (cp.layer == 1)):
            m.d.comb += [mems.s1_waddr.eq(bank_addr(1, cp.bank, cp.word)), mems.s1_wen.eq(cp.mask),
                         mems.s1_wdata.eq(cp.state)]
        for k in range(2, L):
            with m.If(cp.valid & (cp.layer == k)):
                m.d.comb += [getattr(mems, f"p{k}_waddr").eq(cp.word), getattr(mems, f"p{k}_wen").eq(1)]
                for i in range(P):
                    m.d.comb += getattr(mems, f"p{k}_wdata")[i * s.acc_bits(k):(i + 1) * s.acc_bits(k)].eq(cp.acc[i])

        # --- reduce (hdl.kit.rowpath.RowPath): row addend, adder tree, row accumulator, ρ, argmax
        m.submodules.rowpath = rp = RowPath(s, op_layout, PB + RB, (K_REDUCE, K_C1), K_REDUCE)
        m.d.comb += [rp.op.eq(op3), rp.bias.eq(bias3), rp.part.eq(part3), rp.nstate.eq(nstate3), rp.label.eq(label),
                     rp.beta_shift.eq(x_beta)] + [rp.prod[i].eq(prod3[i]) for i in range(P)]
        red3, t_red, t_layer = op3.valid & (op3.kind == K_REDUCE), rp.acc_en, rp.acc_layer
        taps["sums"] += [("addend", rp.addend_full, ACC, red3, op3.layer)] + (
            [("nudge", rp.nudge.full, ACC, red3 & (op3.bsign != 0), op3.layer)] if s.training else []) + [
            ("rsum", rp.racc.rsum_full, ACC, t_red, t_layer), ("final", rp.racc.final_full, ACC, t_red, t_layer)]
        valids += [rp.occupied, rp.valid]
        f_valid, f_val, f_op, f_state, pred = rp.valid, rp.value, rp.op_out, rp.state, rp.pred
        # write: c1 (no activation) or the state lane of layer k
        with m.If(f_valid & (f_op.kind == K_C1)):
            m.d.comb += [mems.c1_waddr.eq(f_op.word), mems.c1_wen.eq(1 << f_op.lane),
                         mems.c1_wdata.eq(saturate(f_val, *s.c1_range(), s.c1_bits).replicate(P))]
        for k in range(2, L + 1):
            with m.If(f_valid & (f_op.kind == K_REDUCE) & (f_op.layer == k)):
                m.d.comb += [getattr(mems, f"s{k}_waddr").eq(bank_addr(k, f_op.wr_bank, f_op.word)),
                             getattr(mems, f"s{k}_wen").eq(1 << f_op.lane),
                             getattr(mems, f"s{k}_wdata").eq(f_state.replicate(P))]

        # --- update path (hdl.kit.updpath.UpdatePath): S3 difference, S4 rounding shift / d pass, S5 write-back
        if s.training:
            m.submodules.updpath = up = UpdatePath(s, op_layout, PB + RB, OB, (K_DPASS, K_UPW, K_UPB))
            m.d.comb += [up.load.eq(loader.load), up.lr_shift.eq(r_lr), up.beta_shift.eq(r_beta),
                         up.symmetric.eq(r_sym), up.op.eq(op3), up.old.eq(uold3)] + [
                up.prod[i].eq(prod3[i]) for i in range(P)]
            names = ["w_wen", "w_wconn", "w_waddr", "b_wen", "b_wconn", "b_wword", "b_wdata"] + [
                f"w{l}_wdata" for l in range(L)] + (["up_cells", "up_mask"] if tt else [])
            m.d.comb += [getattr(store, n).eq(getattr(up, n)) for n in names]
            m.d.comb += [mems.d_waddr.eq(up.d_addr), mems.d_wen.eq(up.d_wen), mems.d_wdata.eq(up.d_data)]
            if tt:
                m.d.comb += up.cells.eq(cword3)
            if s.update_rounding == "stochastic":  # one PRNG draw per weight/bias micro-op
                m.d.comb += [draw_upd.eq(up.draw), up.rnd.eq(prng.out)]
            upd = up.unit
            taps["sums"] += [(f"udiff{i}", upd.diff_full[i], len(upd.diff[i]), up.diff_en, None) for i in range(P)]
            taps["sums"] += [(f"delta{i}", upd.delta_full[i], len(upd.delta[i]), upd.diff_valid & upd.apply, None)
                             for i in range(P)]
            valids += [up.diff_valid, up.valid_out]

        # pipeline occupancy: a drain waits until no stage holds a valid op
        busy_any = run
        for v in valids:
            busy_any = busy_any | v
        m.d.comb += [seq.pipe_busy.eq(busy_any), seq.run.eq(run), eng.start.eq(seq.start), eng.index.eq(seq.index)]

        # ---------------- weight port: the store serves it while the core is idle ----------------
        m.d.comb += store.serve.eq(~busy)

        # ---------------- input beats (hdl.kit.loader.InputLoader): a sample starts with its last beat ----------------
        start_ok = ~store.pending & ~self.wcmd.valid
        if rng:  # a sample starts only with the PRNG seeded and primed
            start_ok = start_ok & rng_ok
        if ternary:  # … and the ternary memory's PRNG likewise
            start_ok = start_ok & ~store.mem_busy & ~(self.reg.we & (self.reg.addr == REG_SEED))
        m.d.comb += [loader.ok.eq(seq.idle & start_ok), mems.x_waddr.eq(loader.wr_addr), mems.x_wen.eq(loader.wr_en),
                     mems.x_wdata.eq(loader.wr_data), seq.load.eq(loader.load)]
        with m.If(loader.load):
            m.d.sync += x_beta.eq(r_beta)

        # ---------------- state dump (hdl.kit.dump.DumpReader) and the prediction ----------------
        m.submodules.dumper = dumper = DumpReader(self.dump.payload.shape(), T[1:])
        wiring.connect(m, dumper.dump, wiring.flipped(self.dump))
        m.d.comb += [dumper.start.eq(seq.dump_start), dumper.bank.eq(seq.dump_bank), dumper.phase.eq(seq.phase),
                     seq.dump_done.eq(dumper.done)]
        for k in range(1, L + 1):
            m.d.comb += [dumper.data[k - 1].eq(getattr(mems, f"s{k}_rdata")), getattr(mems, f"s{k}_dump_en").eq(
                dumper.rd_en[k - 1]), getattr(mems, f"s{k}_dump_addr").eq(dumper.rd_addr[k - 1])]
        m.d.comb += [self.out.valid.eq(seq.out_valid), self.out.payload.pred.eq(pred), seq.out_ready.eq(self.out.ready)]
        return m
