"""The EqSpike core (:class:`hdl.eqspike.EqSpikeCore`) behind the EP core's host link.

The link (:class:`boards.hostlink.HostLink`, :mod:`boards.protocol`) is the EP core's, unchanged in
its bytes; it takes any spec with the link's numbers. :class:`EqSpikeLinkSpec` gives them for an
:class:`~spec.eqspike.EqSpikeSpec`, and :class:`EqSpikeLinkAdapter` presents the core with the EP
core's port set:

* ``inp``: the same beat (P pixels, then the label) — ``INPUT`` commands work unchanged;
* ``out``: the prediction (the core's ``states`` are not sent);
* ``dump``: never valid (EqSpike has no state dump);
* ``wcmd``/``wrsp``: a link "word" is one element (``data`` of ``hdl.eqspike.wcmd_fields``) and a
  link "address" is the element's ``array, i_word, i_lane, j_word, j_lane`` packed from bit 0
  (:func:`element_address`);
* ``reg``: the EqSpike register map (``hdl.eqspike.REG_*``, STATUS at 4) — the link rests on it.

:class:`EqSpikeHost` is the host side (the same link layer as :class:`boards.host.EPCoreHost`):
load/read weights as the twin's ``w{l}``/``b{l}`` arrays, infer, train, counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.eqspike_kit.common import ubits
from hdl.regport import RegSignature
from spec.eqspike import EqSpikeSpec

from .hostlink import fields_width
from .protocol import SpecView


@dataclass(frozen=True)
class EqSpikeLinkSpec(SpecView):
    """The host link's view of an :class:`EqSpikeSpec` (the attributes :class:`boards.protocol.LinkFormat`
    and :class:`boards.hostlink.HostLink` read)."""

    spec: EqSpikeSpec
    spec_type = EqSpikeSpec
    kind = "eqspike"

    @property
    def status_addr(self) -> int:
        from hdl.eqspike import REG_STATUS

        return REG_STATUS

    @property
    def lanes(self) -> int:
        return self.spec.lanes

    @property
    def layers(self):
        return self.spec.layers

    @property
    def input_bits(self) -> int:
        return self.spec.input_bits

    @property
    def label_bits(self) -> int:
        return ubits(self.spec.layers[-1] - 1)

    def tiles(self, k: int) -> int:
        return self.spec.tiles(k)

    def _wf(self) -> dict[str, int]:
        from hdl.eqspike import wcmd_fields

        return wcmd_fields(self.spec)

    @property
    def addr_fields(self) -> list[tuple[str, int]]:
        return [(k, v) for k, v in self._wf().items() if k not in ("read", "data")]

    @property
    def addr_bits(self) -> int:
        return sum(v for _, v in self.addr_fields)

    @property
    def link_word_bits(self) -> int:
        return self._wf()["data"]

    def input_fields(self):
        return [(f"pixels[{i}]", self.input_bits) for i in range(self.lanes)] + [("label", self.label_bits)]

    def output_fields(self):
        return [("pred", self.label_bits)]

    def wcmd_fields(self):
        return [("data", self.link_word_bits), ("addr", self.addr_bits), ("write", 1)]

    def wrsp_fields(self):
        return [("data", self.link_word_bits)]


def element_address(view: EqSpikeLinkSpec, array: int, i: int, j: int) -> int:
    """The link address of element (i, j) of ``array`` (0 … L−1: ``w{l}``, L … 2L−1: ``b{l}``; j = 0 for
    biases): i is the postsynaptic neuron (row of ``w{l}``), j the presynaptic one, each split into
    word and lane as the core's ``wcmd`` wants them."""
    P = view.lanes
    vals = {"array": array, "i_word": i // P, "i_lane": i % P, "j_word": j // P, "j_lane": j % P}
    a, shift = 0, 0
    for name, w in view.addr_fields:
        a |= vals[name] << shift
        shift += w
    return a


class EqSpikeLinkAdapter(wiring.Component):
    """:class:`hdl.eqspike.EqSpikeCore` with the EP core's port set for :func:`boards.hostlink.connect_core`
    (see the module docstring). The AER input stays idle (pixel samples over the link)."""

    def __init__(self, view: EqSpikeLinkSpec, weights: dict | None = None):
        from hdl.eqspike import EqSpikeCore

        self.view = view
        self.core = EqSpikeCore(view.spec, weights)
        super().__init__({
            "inp": In(stream.Signature(fields_width(view.input_fields()))),
            "out": Out(stream.Signature(view.label_bits)),
            "dump": Out(stream.Signature(8)),
            "wcmd": In(stream.Signature(fields_width(view.wcmd_fields()))),
            "wrsp": Out(stream.Signature(view.link_word_bits)),
            "reg": In(RegSignature()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.eqspike = c = self.core
        v = self.view
        DB, AB = v.link_word_bits, v.addr_bits
        data, addr, write = self.wcmd.payload[:DB], self.wcmd.payload[DB:DB + AB], self.wcmd.payload[DB + AB]
        m.d.comb += [
            c.inp.valid.eq(self.inp.valid), self.inp.ready.eq(c.inp.ready),
            c.inp.payload.as_value().eq(self.inp.payload),
            self.out.valid.eq(c.out.valid), c.out.ready.eq(self.out.ready), self.out.payload.eq(c.out.payload.pred),
            self.dump.valid.eq(0),
            c.aer.valid.eq(0),
            c.wcmd.valid.eq(self.wcmd.valid), self.wcmd.ready.eq(c.wcmd.ready),
            c.wcmd.payload.as_value().eq(Cat(~write, addr, data)),
            self.wrsp.valid.eq(c.wrsp.valid), c.wrsp.ready.eq(self.wrsp.ready),
            self.wrsp.payload.eq(c.wrsp.payload.data),
            c.reg.addr.eq(self.reg.addr), c.reg.wdata.eq(self.reg.wdata), c.reg.we.eq(self.reg.we),
            self.reg.rdata.eq(c.reg.rdata),
        ]
        return m


def storage_bits(spec: EqSpikeSpec) -> dict[str, int]:
    """Bits of the core's memories that grow with the net (a lower bound on its block RAM): the weights
    (``wup{l}``, and ``wdn{l}`` for l ≥ 1: two copies), biases, states, accumulators, residues and, for
    training, traces, Δŝ and the free phase's snapshot."""
    P, L, N = spec.lanes, spec.n_layers, spec.layers
    T = [spec.tiles(k) for k in range(L + 1)]
    w = sum(N[l] * T[l + 1] * P * spec.weight_bits[l] * (2 if l >= 1 else 1) for l in range(L))
    out = {
        "weights": w,
        "biases": sum(T[k] * P * spec.bias_bits for k in range(1, L + 1)),
        "states": sum(T[k] * P * (spec.state_bits + spec.acc_bits(k)) for k in range(1, L + 1)),
        "residues": sum(T[k] * P * spec.residue_bits(k) for k in range(L + 1)),
    }
    if spec.training:
        tb = spec.trace_frac + 1 + spec.trace_frac + 2
        out["traces"] = sum(T[k] * P * (tb + spec.trace_frac + 1 + spec.state_bits + spec.residue_bits(k))
                            for k in range(1, L + 1))
    return out


class EqSpikeHost:
    """Drive an EqSpike board over a transport: :class:`boards.host.EPCoreHost`'s link layer (INFO, spec
    check, registers, flow control, ``INPUT`` samples, ``MSG_PRED``), with EqSpike's register map and
    element-wise weight access.

    Raises :class:`boards.host.SpecMismatchError` when the link or the core was built for another spec.
    """

    def __init__(self, transport, spec: EqSpikeSpec, *, check_spec: bool = True):
        from .host import EPCoreHost

        self.spec = spec
        self.view = EqSpikeLinkSpec(spec)

        class _Host(EPCoreHost):  # the EP host's link layer with this view's numbers
            def __init__(h):  # noqa: N805
                from .host import MESSAGES, LinkFormat

                h.spec = self.view
                h._open_link(transport, LinkFormat(self.view), MESSAGES)
                h.info = h.read_info()
                h.rx_fifo_depth = h.info.rx_fifo_depth
                h._ctrl = None

            def _check_addr(h, addr):  # noqa: N805
                if not 0 <= addr < 1 << self.view.addr_bits:
                    raise ValueError(f"element address must be in [0, {1 << self.view.addr_bits}), not {addr}")

        self.link = _Host()
        if check_spec:
            self.check_spec()

    def check_spec(self) -> None:
        from hdl.eqspike import REG_SPEC_ID

        from .host import SpecMismatchError

        want = self.spec.spec_id
        for who, got in (("host link", self.link.info.spec_id), ("core", self.read_reg(REG_SPEC_ID))):
            if got != want:
                raise SpecMismatchError(f"the {who} was built for spec id 0x{got:08x}, but the host's EqSpike spec "
                                        f"has id 0x{want:08x}: load the bitstream built from this spec")

    def write_reg(self, addr: int, value: int) -> None:
        self.link.write_reg(addr, value)

    def read_reg(self, addr: int) -> int:
        return self.link.read_reg(addr)

    def _arrays(self):
        L = self.spec.n_layers
        for l in range(L):
            yield l, f"w{l}"
        for l in range(L):
            yield L + l, f"b{l}"

    def load_weights(self, weights: dict) -> None:
        """Write every element of ``w{l}`` (shape N_{l+1} × N_l) and ``b{l}`` (N_{l+1})."""
        for a, name in self._arrays():
            arr = np.asarray(weights[name], np.int64)
            lo, hi = self.spec.element_range(name)
            if arr.min(initial=0) < lo or arr.max(initial=0) > hi:
                raise ValueError(f"weights[{name!r}] must lie in [{lo}, {hi}]")
            mask = (1 << self.view.link_word_bits) - 1
            for idx, x in np.ndenumerate(arr):
                i, j = (idx[0], idx[1]) if arr.ndim == 2 else (idx[0], 0)
                self.link.write_word(element_address(self.view, a, i, j), int(x) & mask)
        self.link.sync()

    def read_weights(self) -> dict[str, np.ndarray]:
        """Read every element back, as the twin's ``weights`` dict."""
        out = {}
        DB = self.view.link_word_bits
        f = self.link.format
        from .protocol import CMD_READ_WORD, MSG_WORD

        for a, name in self._arrays():
            shape = self.spec.weight_shapes()[name]
            idxs = list(np.ndindex(*shape))
            for idx in idxs:
                i, j = (idx[0], idx[1]) if len(shape) == 2 else (idx[0], 0)
                addr = element_address(self.view, a, i, j)
                self.link._send(bytes((CMD_READ_WORD,)) + addr.to_bytes(f.addr_bytes, "little"))
            vals = []
            for _ in idxs:
                v = int.from_bytes(self.link._wait(MSG_WORD), "little") & ((1 << DB) - 1)
                vals.append(v - (1 << DB) if v >> (DB - 1) else v)
            out[name] = np.asarray(vals, np.int64).reshape(shape)
        return out

    def _run(self, images: Sequence, labels, train: bool) -> list[int]:
        from hdl.eqspike import CTRL_TRAIN, REG_CTRL

        from .protocol import MSG_PRED

        s = self.spec
        if train and not s.training:
            raise ValueError("this core was built without on-chip learning (spec.training = false)")
        images = list(images)
        labels = [0] * len(images) if labels is None else [int(y) for y in labels]
        ctrl = CTRL_TRAIN if train else 0
        if ctrl != self.link._ctrl:
            self.link.write_reg(REG_CTRL, ctrl)
            self.link._ctrl = ctrl
        for x, y in zip(images, labels, strict=True):
            self.link._send_sample(list(x), y)
        return [int.from_bytes(self.link._wait(MSG_PRED), "little") for _ in images]

    def infer(self, images, labels=None) -> list[int]:
        return self._run(images, labels, False)

    def set_lr_shift(self, lr_shift) -> tuple[int, ...]:
        """Write the η registers (``REG_LR``; η = 2^-lr_shift per connection, one value for all), as
        :meth:`golden.eqspike.twin.EqSpikeTwin.set_lr_shift` does on the twin: the values are checked first with
        the twin's rule (:meth:`spec.eqspike.EqSpikeSpec.check_lr_shift`; a bad value raises ``ValueError`` and
        nothing is sent), written (one ``LR_ALL`` write when all are equal, else one per connection; the link
        applies them between samples) and read back (connections 0 … 4: the register's 6-bit fields).
        Returns the values written."""
        from hdl.eqspike import LR_ALL, REG_LR

        from .host import LinkError

        s = self.spec
        if not s.training:
            raise ValueError("this core was built without on-chip learning (spec.training = false): it has no "
                             "η registers")
        v = s.check_lr_shift(lr_shift)
        writes = [(LR_ALL, v[0])] if len(set(v)) == 1 else list(enumerate(v))
        for c, x in writes:
            self.write_reg(REG_LR, int(x) | c << 8)
        got = self.read_reg(REG_LR)
        back = [(got >> (6 * c)) & 0x3F for c in range(min(len(v), 5))]
        if back != list(v[:5]):
            raise LinkError(f"REG_LR reads back {back} after writing {list(v)}: a write was refused by the core")
        return v

    def train(self, images, labels) -> list[int]:
        """One on-chip training step per sample (free, then nudged phases); the free phase's predictions."""
        return self._run(images, labels, True)

    def counters(self) -> dict[str, int]:
        """The last sample's cycles, spikes, weight words and synaptic events; samples since reset; bad AER events."""
        from hdl import eqspike as h

        return {name: self.read_reg(getattr(h, f"REG_{name.upper()}"))
                for name in ("status", "cycles", "samples", "spikes", "words", "syn", "aer_bad")}


def eqspike_core_factory(weights: dict | None = None):
    """For :class:`boards.top.BoardTop`: ``factory(view) → EqSpikeLinkAdapter``."""
    return lambda view: EqSpikeLinkAdapter(view, weights)
