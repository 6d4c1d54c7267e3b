"""A stand-in for :class:`hdl.ep_core.EPCore` with the same ports, for the board wrappers.

:class:`MockEPCore` has the EP core's signature and port behaviour (registers that read back and
ignore writes while busy, a weight memory of ``spec.memory_words`` words with one response per
read, one prediction per sample, optional state-dump beats after every phase) but computes
something trivial, modelled bit for bit by :func:`mock_prediction` and :func:`mock_dump_beats`.
It lets the host link, the board tops and the synthesis flow be built and tested without the
real core, and gives the board's overhead (UART, link, FIFO) on its own in the reports.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.kit import layout_from_fields
from hdl.kit.regfile import EPRegisterFile
from hdl.regport import RegSignature
from spec.ep_core import (
    PHASE_FREE,
    PHASE_MINUS,
    PHASE_PLUS,
    REG_BITS,
    EPCoreSpec,
)


def core_signature_members(spec: EPCoreSpec) -> dict[str, wiring.Member]:
    """The EP core's ports (directions from the core's view)."""
    return {
        "inp": In(stream.Signature(layout_from_fields(spec.input_fields()))),
        "out": Out(stream.Signature(layout_from_fields(spec.output_fields()))),
        "dump": Out(stream.Signature(layout_from_fields(spec.dump_fields()))),
        "wcmd": In(stream.Signature(layout_from_fields(spec.wcmd_fields()))),
        "wrsp": Out(stream.Signature(layout_from_fields(spec.wrsp_fields()))),
        "reg": In(RegSignature()),
    }


def mock_phases(spec: EPCoreSpec, train: bool, symmetric: bool) -> list[int]:
    """Phases a sample runs through (as the real core: free, then +β and, if symmetric, −β when training)."""
    if not (train and spec.training):
        return [PHASE_FREE]
    return [PHASE_FREE, PHASE_PLUS] + ([PHASE_MINUS] if symmetric else [])


def mock_prediction(spec: EPCoreSpec, pixels: list[int], label: int, train: bool) -> int:
    """The mock's prediction: the label when training, else the pixel sum folded into the classes."""
    if train and spec.training:
        return label
    lb = spec.label_bits
    p = sum(pixels) & ((1 << lb) - 1)
    return p - spec.n_classes if p >= spec.n_classes else p


def mock_dump_beats(spec: EPCoreSpec, pixels: list[int], train: bool, symmetric: bool) -> list[dict[str, int]]:
    """The mock's dump beats of one sample: ``states[i] = (pixel sum + i + tile + layer + phase) mod 2^sb``."""
    total = sum(pixels)
    mask = (1 << spec.state_bits) - 1
    beats = []
    for phase in mock_phases(spec, train, symmetric):
        for k in range(1, spec.n_layers + 1):
            for t in range(spec.tiles(k)):
                beat = {f"states[{i}]": (total + i + t + k + phase) & mask for i in range(spec.lanes)}
                beat.update(tile=t, layer=k, phase=phase)
                beats.append(beat)
    return beats


class MockEPCore(wiring.Component):
    """EP core stand-in with :class:`hdl.ep_core.EPCore`'s signature.

    Parameters
    ----------
    spec : EPCoreSpec
        Gives the port widths, the memory size and the register reset values.
    delay : int
        Busy cycles between a sample's last input beat and its dump/prediction.

    Members
    -------
    inp : In(stream) — ``tiles(0)`` beats per sample; the label is read from the last beat.
    out : Out(stream) — one :func:`mock_prediction` per sample.
    dump : Out(stream) — :func:`mock_dump_beats` when ``REG_CTRL`` bit 2 is set.
    wcmd : In(stream) / wrsp : Out(stream) — weight memory of ``spec.memory_words`` words, accepted
        only while idle; one response per read, in order.
    reg : In(RegSignature) — ``REG_*`` registers (:class:`hdl.kit.regfile.EPRegisterFile`, as in the
        core): writes are ignored while busy; an out-of-range write is refused and flagged in
        ``REG_STATUS`` bit 1 (:meth:`spec.ep_core.EPCoreSpec.register_write_error`).
    """

    def __init__(self, spec: EPCoreSpec, *, delay: int = 8):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 1:
            raise ValueError(f"delay must be a positive integer, not {delay!r}")
        self.spec = spec
        self.delay = delay
        super().__init__(core_signature_members(spec))

    def elaborate(self, platform):
        s = self.spec
        m = Module()
        P, IB, SB = s.lanes, s.input_bits, s.state_bits
        WB = P * s.word_elem_bits
        T = [s.tiles(k) for k in range(s.n_layers + 1)]

        busy = Signal()
        cycles, cycles_last, samples = Signal(REG_BITS), Signal(REG_BITS), Signal(REG_BITS)
        # the real core's register file: a write out of range (spec.register_write_error) is refused,
        # keeps the old value and sets the sticky REG_STATUS bit 1; a write of REG_STATUS clears it
        m.submodules.regs = regs = EPRegisterFile(s)
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        m.d.comb += [regs.busy.eq(busy), regs.cycles.eq(cycles_last), regs.samples.eq(samples)]
        r_train, r_sym, r_dump = regs.train, regs.symmetric, regs.dump

        # ---- weight memory: idle only, one response per read ----
        m.submodules.mem = mem = memory.Memory(shape=WB, depth=s.memory_words, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        cmd = Value.cast(self.wcmd.payload)  # data | addr | write, bit 0 first (spec.wcmd_fields())
        c_data, c_addr, c_write = cmd[:WB], cmd[WB:WB + s.addr_bits], cmd[WB + s.addr_bits]
        rsp_valid = Signal()
        m.d.comb += [self.wcmd.ready.eq(~busy & ~rsp_valid), rd.en.eq(0)]  # en's reset value is 1
        in_range = c_addr < s.memory_words
        with m.If(self.wcmd.valid & self.wcmd.ready):
            with m.If(c_write):
                m.d.comb += [wr.addr.eq(c_addr), wr.data.eq(c_data), wr.en.eq(in_range)]
            with m.Else():
                m.d.comb += [rd.addr.eq(c_addr), rd.en.eq(1)]
                m.d.sync += rsp_valid.eq(1)
        # the read port holds its data while en is low, so the response stays stable until taken
        m.d.comb += [self.wrsp.valid.eq(rsp_valid), Value.cast(self.wrsp.payload).eq(rd.data)]
        with m.If(self.wrsp.valid & self.wrsp.ready):
            m.d.sync += rsp_valid.eq(0)

        # ---- samples ----
        beat = Signal(range(max(2, T[0])))
        total = Signal(range(s.layers[0] * ((1 << IB) - 1) + (1 << IB) * P + 1))
        label = Signal(s.label_bits)
        x_train, x_sym, x_dump = Signal(), Signal(), Signal()
        timer = Signal(range(self.delay + 1))
        phase, layer, tile = Signal(2), Signal(range(s.n_layers + 1)), Signal(range(max(T) + 1))
        inp = Value.cast(self.inp.payload)
        lanes_sum = sum(inp[i * IB:(i + 1) * IB] for i in range(P))
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        lb_mask = (1 << s.label_bits) - 1
        folded = Signal(s.label_bits)
        m.d.comb += folded.eq(Mux((total & lb_mask) >= s.n_classes, (total & lb_mask) - s.n_classes, total & lb_mask))
        last_tile = Signal()
        with m.Switch(layer):
            for k in range(1, s.n_layers + 1):
                with m.Case(k):
                    m.d.comb += last_tile.eq(tile == T[k] - 1)

        with m.FSM(name="mock"):
            with m.State("IDLE"):
                m.d.comb += self.inp.ready.eq(~rsp_valid & ~self.wcmd.valid)
                with m.If(self.inp.valid & self.inp.ready):
                    m.d.sync += total.eq(total + lanes_sum)
                    with m.If(beat == T[0] - 1):
                        m.d.sync += [beat.eq(0), label.eq(inp[P * IB:]), cycles.eq(0), timer.eq(self.delay),
                                     x_train.eq(r_train), x_sym.eq(r_sym), x_dump.eq(r_dump)]
                        m.next = "BUSY"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.State("BUSY"):
                m.d.comb += busy.eq(1)
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 1):
                    m.d.sync += [phase.eq(PHASE_FREE), layer.eq(1), tile.eq(0)]
                    with m.If(x_dump):
                        m.next = "DUMP"
                    with m.Else():
                        m.next = "OUTPUT"
            with m.State("DUMP"):
                m.d.comb += busy.eq(1)
                states = [(total + i + tile + layer + phase)[:SB] for i in range(P)]
                m.d.comb += [self.dump.valid.eq(1), Value.cast(self.dump.payload).eq(Cat(*states, tile[:s.tile_bits],
                                                                                  layer[:s.layer_bits], phase))]
                with m.If(self.dump.ready):
                    m.d.sync += tile.eq(tile + 1)
                    with m.If(last_tile):
                        m.d.sync += [tile.eq(0), layer.eq(layer + 1)]
                        with m.If(layer == s.n_layers):
                            m.d.sync += layer.eq(1)
                            last_phase = ((phase == PHASE_FREE) & ~x_train) | ((phase == PHASE_PLUS) & ~x_sym) \
                                | (phase == PHASE_MINUS)
                            with m.If(last_phase):
                                m.next = "OUTPUT"
                            with m.Else():
                                m.d.sync += phase.eq(phase + 1)
            with m.State("OUTPUT"):
                m.d.comb += busy.eq(1)
                m.d.comb += [self.out.valid.eq(1), Value.cast(self.out.payload).eq(Mux(x_train, label, folded))]
                with m.If(self.out.ready):
                    m.d.sync += [cycles_last.eq(cycles + 1), samples.eq(samples + 1), total.eq(0)]
                    m.next = "IDLE"
        return m
