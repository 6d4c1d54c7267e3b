"""UART host link (boards/hostlink.py): the byte-protocol bridge on a 2-2-2, P = 2 core spec, with the
smallest receive FIFO the protocol allows and a 16-cycle command timeout.

Properties: ``tx``, ``inp`` and ``wcmd`` keep valid and payload until ready (6 assertions); the bytes
on ``rx`` and the core's ``out``, ``dump``, ``wrsp`` beats are assumed to keep the same rules, with
any contents and timing. Covers: a reply byte taken, a sample beat and a weight command sent to the
core, a register write, an ERROR reply (a bad opcode or a timeout). Depth: the longest of these, a
command of a few bytes through the FIFO and the parser, is reached within the cover depth.
"""

from __future__ import annotations

from amaranth.hdl import Cover, Module

from boards.hostlink import HostLink, LinkFormat
from spec.ep_core import EPCoreSpec

from .ep_core import SPEC
from .props import History, assume_stream_in, check_stream_out
from .run import Harness


def harness() -> Harness:
    spec = EPCoreSpec(**SPEC)
    dut = HostLink(spec, rx_fifo_depth=LinkFormat(spec).min_rx_fifo_depth(), timeout_cycles=16)
    m = Module()
    m.submodules.link = dut
    ports = [dut.rx.valid, dut.rx.payload, dut.tx.ready, dut.inp.ready, dut.wcmd.ready,
             dut.out.valid, dut.out.payload, dut.dump.valid, dut.dump.payload, dut.wrsp.valid, dut.wrsp.payload,
             dut.reg.rdata]
    hist = History(m)
    for name in ("tx", "inp", "wcmd"):
        check_stream_out(m, hist, getattr(dut, name), name)
    for name in ("rx", "out", "dump", "wrsp"):
        assume_stream_in(m, hist, getattr(dut, name), name)
    m.d.comb += [Cover(dut.tx.valid & dut.tx.ready, "hostlink: a reply byte taken"),
                 Cover(dut.inp.valid & dut.inp.ready, "hostlink: a sample beat sent"),
                 Cover(dut.wcmd.valid & dut.wcmd.ready, "hostlink: a weight command sent"),
                 Cover(dut.reg.we, "hostlink: a register write"),
                 Cover(dut.error, "hostlink: an ERROR reply")]
    return Harness("UART host link (2-2-2 spec, smallest FIFO, timeout 16)", m, ports,
                   bmc_depth=30, cover_depth=30, deep_bmc_depth=80, deep_cover_depth=60,
                   what="a command of a few bytes through the FIFO and the parser")
