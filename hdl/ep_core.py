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

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import (
    PRNG_WIDTH,
    REG_SEED,
    EPCoreSpec,
)

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
from .kit.stages import StageRegs
from .kit.start import StartGate
from .kit.statemem import CoreMemories
from .kit.sweep import Sweep, SweepEngine
from .kit.updpath import UpdatePath
from .kit.weights import WeightStore, check_read_stages
from .kit.writeback import StateWriteback
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

    def update_sweeps(self, named: dict[str, int]) -> list[int]:
        """The update's sweeps in order (d pass, weights, biases; none without training)."""
        L = self.spec.n_layers
        return [named["dpass"]] + [named[f"upw{l}"] for l in range(L)] + [named[f"upb{l}"] for l in range(L)] \
            if self.spec.training else []

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
    def elaborate(self, platform):
        s, m = self.spec, Module()
        P, L, N, T = s.lanes, s.n_layers, list(s.layers), [s.tiles(k) for k in range(s.n_layers + 1)]
        table, step_list, named = self.sweeps()
        ternary, tt, K, rr = s.weight_kind == "ternary", s.ternary_training, self.weight_read_stages, \
            self.register_reads
        # ---------------- memories: weights and biases (with the load port), the core's own ----------------
        m.submodules.weights = store = WeightStore(s, self.init_words, read_stages=K,
                                                   bank_words=self.weight_bank_words)
        wiring.connect(m, wiring.flipped(self.wcmd), store.wcmd)
        wiring.connect(m, store.wrsp, wiring.flipped(self.wrsp))
        wq_banks = [getattr(store, f"w{l}") for l in range(store.banks)]
        m.submodules.mems = mems = CoreMemories(s, rr, [len(w) for w in wq_banks], len(store.b_data))
        # ---------------- registers and the sample's sequencer (phases, steps, dumps, update, output) ----------
        m.submodules.regs = regs = EPRegisterFile(s)
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        if ternary:
            wiring.connect(m, regs.mem, store.reg)
        r_sym, r_beta, r_lr = regs.symmetric, regs.beta_shift, regs.lr_shift
        self.reg_error = regs.reg_error  # REG_STATUS bit 1: a refused write (spec.register_write_error), sticky
        m.submodules.seq = seq = Sequencer(named["c1"], step_list, self.update_sweeps(named), s.step_bits, s.uses_prng)
        busy = seq.busy
        m.d.comb += [regs.busy.eq(busy), regs.cycles.eq(seq.cycles), regs.samples.eq(seq.samples)] + [
            getattr(seq, n).eq(getattr(regs, n)) for n in ("train", "symmetric", "dump", "T1", "T2")]
        m.submodules.start_gate = start = StartGate(r_beta.shape(), s.beta_shift, has_prng=s.uses_prng, ternary=ternary)
        seed_write = Signal()  # a REG_SEED write announced (the PRNGs reseed: no sample starts)
        m.d.comb += seed_write.eq(self.reg.we & (self.reg.addr == REG_SEED))
        # PRNG (spec.ep_core, "Randomness"; only if the spec needs random bits): random sign, one draw when the
        # free phase ends (bit 31 of lane sign_lane); stochastic rounding, one per weight/bias micro-op
        if s.uses_prng:
            m.submodules.prng = prng = DrawSource(s.prng_spec())
            draw_upd = Signal()
            m.d.comb += [seq.random_sign.eq(regs.random_sign),
                         seq.sign_bit.eq(prng.out[(s.sign_lane + 1) * PRNG_WIDTH - 1]), prng.seed.eq(self.reg.wdata),
                         prng.seed_load.eq(regs.seed_load), prng.draw.eq(seq.draw_sign | draw_upd),
                         prng.seed_write.eq(seed_write), start.prng_ok.eq(prng.ok)]
        # input beats: a sample starts with its last beat (when the start gate allows), beta_shift latched then
        m.submodules.loader = loader = InputLoader(self.inp.payload.shape(), N[0], T[0])
        wiring.connect(m, wiring.flipped(self.inp), loader.inp)
        m.d.comb += [start.idle.eq(seq.idle), start.pending.eq(store.pending), start.wcmd_valid.eq(self.wcmd.valid),
                     start.seed_write.eq(seed_write), start.load.eq(loader.load), start.beta_shift.eq(r_beta),
                     loader.ok.eq(start.ok), seq.load.eq(loader.load)] + ([start.mem_busy.eq(store.mem_busy)]
                                                                           if ternary else [])
        # ---------------- sweep engine; S0: issue (the micro-op and the read addresses) ----------------
        m.submodules.sweep = eng = SweepEngine(table, P, T[:L], max(N[l + 1] * T[l] for l in range(L)))
        run, waddr = eng.run, eng.waddr
        op_layout = self.op_layout()
        assert op_layout.members["waddr"] == len(waddr)
        kinds = {"reduce": K_REDUCE, "c1": K_C1, "bcast": K_BCAST, "upw": K_UPW, "dpass": K_DPASS, "upb": K_UPB}
        m.submodules.issue = iss = Issue(s, op_layout, kinds, eng)
        m.d.comb += [getattr(iss, n).eq(getattr(eng, n)) for n in ENGINE_PORTS] + [
            getattr(iss, n).eq(getattr(seq, n)) for n in SEQ_PORTS]
        op0, kind, conn = iss.op, eng.kind, eng.conn
        # the store reads connection conn's word waddr (every bank the same address) and the bias word
        m.d.comb += [store.rd_en.eq(run), store.rd_addr.eq(waddr), store.rd_conn.eq(conn),
                     store.b_rd_conn.eq(conn), store.b_rd_word.eq(iss.b_word)]
        if ternary:  # every relaxation micro-op senses one weight word (one draw)…
            if tt:  # … and a weight update reads the stored cells raw (no PCSA, no draw)
                m.d.comb += [store.rd_sense.eq((kind != K_DPASS) & (kind != K_UPB)), store.rd_raw.eq(kind == K_UPW)]
            else:
                m.d.comb += store.rd_sense.eq(1)
        # the stage registers (hdl.kit.stages.StageRegs): the core memories' read addresses K cycles later (weight
        # read stages, so their words arrive beside the weight store's), the micro-op S0 → S3, the occupancy
        addr_layout = data.StructLayout({"run": 1, "x": len(iss.x_addr), "row": len(iss.row_word),
                                         "s": iss.s_addr.shape()})
        m.submodules.stages = stg = StageRegs(op_layout, addr_layout, K, rr, 5 if s.training else 3)
        m.d.comb += [stg.op.eq(op0), stg.addr.eq(Cat(run, iss.x_addr, iss.row_word, iss.s_addr))]
        ak, op0r, op1, op2, op3 = stg.views()
        m.d.comb += [mems.run.eq(ak.run), mems.x_raddr.eq(ak.x), mems.row_raddr.eq(ak.row)] + [
            getattr(mems, f"s{k}_raddr").eq(ak.s[k - 1]) for k in range(1, L + 1)]
        # the weight store's words into the core memories' read stage; S1 takes every word from there
        words = [f"w{l}" for l in range(store.banks)] + (["nz", "neg"] if ternary else []) + (["cells"] if tt else [])
        m.d.comb += [getattr(mems, n).eq(getattr(store, n)) for n in words] + [mems.b.eq(store.b_data),
                                                                                mems.b_lane.eq(op0r.lane)]
        # ---------------- S1: memory data → operands (hdl.kit.operands.OperandSelect) ----------------
        m.submodules.operands = ops = OperandSelect(s, op_layout, kinds)
        PB, RB, OB = ops.left_bits, ops.right_bits, ops.old_bits
        words += ["x", "b"] + [n for n in mems.widths if n[0] in "spd"]  # states, partial sums, d
        m.d.comb += [ops.op.eq(op1)] + [getattr(ops, n).eq(getattr(mems, f"{n}_q")) for n in words]
        # ---------------- S2: products ----------------
        # c1 (the broadcast's layer-1 init) is read two stages after the other memories: its word arrives beside
        # the products (S3), from the S1 op's tile through the read stage or from the S2 op's tile without it
        m.d.comb += mems.c1_raddr.eq(op1.word if rr else op2.word)
        # P lanes: multipliers, or add / subtract / skip by ternary weights (and multipliers for their update)
        m.submodules.lanes = lanes = LaneProducts(P, PB, RB, mode="addsub+multiply" if tt else
                                                  "addsub" if ternary else "multiply")
        if tt:
            m.d.comb += lanes.mul.eq(op2.kind == K_UPW)
        m.d.comb += [lanes.left[i].eq(ops.left[i]) for i in range(P)] + [
            lanes.right[i].eq(ops.right[i]) for i in range(P)]
        prod3 = lanes.prod
        # ---------------- S3: consume products (registered at the end of S2: beside op3) ----------------
        # --- broadcast (hdl.kit.colpath.ColumnPath): lane accumulators at S3, ρ at S4
        m.submodules.colpath = cp = ColumnPath(s, op_layout, PB + RB, K_BCAST)
        m.d.comb += [cp.op.eq(op3), cp.c1.eq(mems.c1_q)] + [cp.prod[i].eq(prod3[i]) for i in range(P)]
        # --- reduce (hdl.kit.rowpath.RowPath): row addend, adder tree, row accumulator, ρ, argmax
        m.submodules.rowpath = rp = RowPath(s, op_layout, PB + RB, (K_REDUCE, K_C1), K_REDUCE)
        m.d.comb += [rp.op.eq(op3), rp.bias.eq(ops.bias), rp.part.eq(ops.part), rp.nstate.eq(ops.nstate),
                     rp.label.eq(loader.label), rp.beta_shift.eq(start.beta)] + [
            rp.prod[i].eq(prod3[i]) for i in range(P)]
        # --- the c1 and state writes (hdl.kit.writeback.StateWriteback): column path, row path
        m.submodules.writeback = wb = StateWriteback(s, op_layout, K_C1, K_REDUCE)
        m.d.comb += [wb.col_valid.eq(cp.valid), wb.col_layer.eq(cp.layer), wb.col_word.eq(cp.word),
                     wb.col_bank.eq(cp.bank), wb.col_mask.eq(cp.mask), wb.col_state.eq(cp.state), wb.col_acc.eq(cp.acc),
                     wb.row_valid.eq(rp.valid), wb.row_op.eq(rp.op_out), wb.row_value.eq(rp.value),
                     wb.row_state.eq(rp.state)] + [getattr(mems, f"{n}_{p}").eq(getattr(wb, f"{n}_{p}"))
                                                   for n in wb.names for p in ("waddr", "wen", "wdata")]
        more = [cp.valid, rp.occupied, rp.valid]  # the later stages' valid bits (pipeline occupancy)
        # --- update path (hdl.kit.updpath.UpdatePath): S3 difference, S4 rounding shift / d pass, S5 write-back
        if s.training:
            m.submodules.updpath = up = UpdatePath(s, op_layout, PB + RB, OB, (K_DPASS, K_UPW, K_UPB))
            m.d.comb += [up.load.eq(loader.load), up.lr_shift.eq(r_lr), up.beta_shift.eq(r_beta),
                         up.symmetric.eq(r_sym), up.op.eq(op3), up.old.eq(ops.old)] + [
                up.prod[i].eq(prod3[i]) for i in range(P)]
            names = ["w_wen", "w_wconn", "w_waddr", "b_wen", "b_wconn", "b_wword", "b_wdata"] + [
                f"w{l}_wdata" for l in range(L)] + (["up_cells", "up_mask"] if tt else [])
            m.d.comb += [getattr(store, n).eq(getattr(up, n)) for n in names]
            m.d.comb += [mems.d_waddr.eq(up.d_addr), mems.d_wen.eq(up.d_wen), mems.d_wdata.eq(up.d_data)]
            if tt:
                m.d.comb += up.cells.eq(ops.cword)
            if s.update_rounding == "stochastic":  # one PRNG draw per weight/bias micro-op
                m.d.comb += [draw_upd.eq(up.draw), up.rnd.eq(prng.out)]
            more += [up.diff_valid, up.valid_out]
        # pipeline occupancy: a drain waits until no stage holds a valid op
        m.d.comb += [stg.more.eq(Cat(*more)), seq.pipe_busy.eq(stg.occupied), seq.run.eq(run),
                     eng.start.eq(seq.start), eng.index.eq(seq.index)]
        m.d.comb += store.serve.eq(~busy)  # the weight port: the store serves it while the core is idle
        m.d.comb += [mems.x_waddr.eq(loader.wr_addr), mems.x_wen.eq(loader.wr_en), mems.x_wdata.eq(loader.wr_data)]
        # ---------------- state dump (hdl.kit.dump.DumpReader) and the prediction ----------------
        m.submodules.dumper = dumper = DumpReader(self.dump.payload.shape(), T[1:])
        wiring.connect(m, dumper.dump, wiring.flipped(self.dump))
        m.d.comb += [dumper.start.eq(seq.dump_start), dumper.bank.eq(seq.dump_bank), dumper.phase.eq(seq.phase),
                     seq.dump_done.eq(dumper.done)]
        for k in range(1, L + 1):
            m.d.comb += [dumper.data[k - 1].eq(getattr(mems, f"s{k}_rdata")), getattr(mems, f"s{k}_dump_en").eq(
                dumper.rd_en[k - 1]), getattr(mems, f"s{k}_dump_addr").eq(dumper.rd_addr[k - 1])]
        m.d.comb += [self.out.valid.eq(seq.out_valid), self.out.payload.pred.eq(rp.pred),
                     seq.out_ready.eq(self.out.ready)]
        self.formal_taps = self._formal_taps(regs, busy, op3, cp, rp, up if s.training else None)
        return m

    def _formal_taps(self, regs, busy, op3, cp, rp, up) -> dict:
        """What the formal harness (hdl/formal/ep_core.py) reads: registers, and every sized sum as
        (name, full-width expression, register width, when it is written, layer or None)."""
        P, ACC = self.spec.lanes, self.spec.acc_bits_max
        red3, t_red, t_layer = op3.valid & (op3.kind == K_REDUCE), rp.acc_en, rp.acc_layer
        sums = [(f"lsum{i}", cp.laccs.sum_full[i], ACC, op3.valid & (op3.kind == K_BCAST), op3.layer)
                for i in range(P)]
        sums += [("addend", rp.addend_full, ACC, red3, op3.layer)] + (
            [("nudge", rp.nudge.full, ACC, red3 & (op3.bsign != 0), op3.layer)] if up is not None else []) + [
            ("rsum", rp.racc.rsum_full, ACC, t_red, t_layer), ("final", rp.racc.final_full, ACC, t_red, t_layer)]
        if up is not None:
            upd = up.unit
            sums += [(f"udiff{i}", upd.diff_full[i], len(upd.diff[i]), up.diff_en, None) for i in range(P)]
            sums += [(f"delta{i}", upd.delta_full[i], len(upd.delta[i]), upd.diff_valid & upd.apply, None)
                     for i in range(P)]
        return {"busy": busy, "reg_error": regs.reg_error, "T1": regs.T1, "T2": regs.T2,
                "beta_shift": regs.beta_shift, "lr_shift": regs.lr_shift, "sums": sums}
