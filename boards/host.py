"""Host driver for an EP core behind :class:`boards.hostlink.HostLink` (pure Python, no Amaranth).

:class:`EPCoreHost` speaks :mod:`boards.protocol` over any *transport*: an object with
``write(data: bytes)`` and ``read(n: int) -> bytes`` (a serial port, or the simulated link of
:mod:`boards.simlink`; the same code drives both). ``read`` may return fewer bytes than asked
(a serial timeout); an empty read raises :class:`LinkTimeout`.

Flow control: the host never has more than ``rx_fifo_depth`` bytes (reported by INFO) beyond the
last SYNC echo in flight, since the UART cannot push back. Responses are read as they come and
sorted by tag, so predictions, dump beats and weight words may interleave on the wire.

:class:`LinkHost` is that link layer (SYNC credit, message reading and queueing, device errors),
shared with the Galton board's host (:class:`boards.galton_top.GaltonHost`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from spec.ep_core import (
    REG_BETA_SHIFT,
    REG_CTRL,
    REG_CYCLES,
    REG_LR_SHIFT,
    REG_SAMPLES,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    REG_T1,
    REG_T2,
    STATUS_BUSY,
    STATUS_REG_ERROR,
    EPCoreSpec,
    unpack_fields,
)

from .protocol import (
    CMD_INFO,
    CMD_INPUT,
    CMD_READ_REG,
    CMD_READ_WORD,
    CMD_SYNC,
    CMD_WRITE_REG,
    CMD_WRITE_WORD,
    ERR_TIMEOUT,
    ERR_UNKNOWN_OPCODE,
    MESSAGES,
    MIN_RX_FIFO_DEPTH,
    MSG_DUMP,
    MSG_ERROR,
    MSG_INFO,
    MSG_PRED,
    MSG_REG,
    MSG_SYNC,
    MSG_WORD,
    PROTOCOL_VERSION,
    REG_ADDR_LIMIT,
    LinkFormat,
)

REGISTER_NAMES = {"T1": REG_T1, "T2": REG_T2, "beta_shift": REG_BETA_SHIFT, "lr_shift": REG_LR_SHIFT, "seed": REG_SEED}


class LinkError(RuntimeError):
    """The device answered something the protocol does not allow, or reported an error.

    ``code`` and ``opcode`` are the device's ERROR message fields (``None`` for other errors).
    """

    def __init__(self, message: str, code: int | None = None, opcode: int | None = None):
        super().__init__(message)
        self.code, self.opcode = code, opcode


class LinkTimeout(LinkError):
    """The transport returned no bytes while the host waited for a message."""


class SpecMismatchError(LinkError):
    """The bitstream was built for other numbers than the host's spec."""


class LinkHost:
    """The host half of a byte link (:mod:`boards.protocol` and the Galton link speak the same link
    layer): reads messages and queues them by tag, raises the device's ERROR messages, and keeps
    the flow-control invariant with SYNC tokens (never more than ``rx_fifo_depth`` bytes beyond
    the last echoed SYNC in flight).

    Subclasses call :meth:`_open_link` first and may set :attr:`Error`/:attr:`Timeout` (the
    exception types raised), :attr:`ERROR_NAMES` (device error codes) and :attr:`OTHER_LINK` (how
    an unknown tag is explained).
    """

    Error: type[LinkError] = LinkError
    Timeout: type[LinkError] = LinkTimeout
    ERROR_NAMES: dict[int, str] = {ERR_UNKNOWN_OPCODE: "unknown opcode", ERR_TIMEOUT: "command timed out mid-way"}
    OTHER_LINK = "built for another spec"

    def _open_link(self, transport, fmt, tags) -> None:
        """Start a session: ``fmt.payload_bytes(tag)`` sizes the messages; ``tags`` get answer queues."""
        self.transport = transport
        self.format = fmt
        self._queues: dict[int, deque] = {tag: deque() for tag in tags}
        self._sent = 0  # bytes written
        self._acked = 0  # bytes known to have left the device's receive FIFO
        self._last_sync = 0  # position after the last SYNC sent
        self._syncs: deque[tuple[int, int]] = deque()  # (token, position after it), oldest first
        self._token = 0
        self.rx_fifo_depth = MIN_RX_FIFO_DEPTH  # until INFO tells
        flush = getattr(transport, "reset_input_buffer", None)  # pyserial: drop a previous session's bytes
        if callable(flush):
            flush()

    def _read_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.transport.read(n - len(out))
            if not chunk:
                raise self.Timeout(f"no answer from the device (waited for {n - len(out)} more byte(s))")
            out += chunk
        return out

    def _pump(self) -> None:
        """Read one message and queue it by tag (SYNC echoes advance the credit)."""
        tag = self._read_exact(1)[0]
        try:
            n = self.format.payload_bytes(tag)
        except ValueError:
            raise self.Error(
                f"unknown message tag 0x{tag:02x} from the device: the link is out of step "
                f"(reset the board) or {self.OTHER_LINK}"
            ) from None
        payload = self._read_exact(n)
        if tag == MSG_ERROR:
            code, opcode = payload
            raise self.Error(
                f"device reported error {code} ({self.ERROR_NAMES.get(code, '?')}) for opcode 0x{opcode:02x}",
                code,
                opcode,
            )
        if tag == MSG_SYNC:
            if not self._syncs or self._syncs[0][0] != payload[0]:
                raise self.Error(
                    f"unexpected SYNC token {payload[0]} (expected {self._syncs[0][0] if self._syncs else 'none'})"
                )
            _, self._acked = self._syncs.popleft()
            return
        self._queues[tag].append(payload)

    def _wait(self, tag: int) -> bytes:
        q = self._queues[tag]
        while not q:
            self._pump()
        return q.popleft()

    def _send_sync(self) -> None:
        self._token = (self._token + 1) & 0xFF
        self.transport.write(bytes((CMD_SYNC, self._token)))
        self._sent += 2
        self._last_sync = self._sent
        self._syncs.append((self._token, self._sent))

    def _reserve(self, n: int) -> None:
        """Wait until ``n`` more bytes (and a SYNC behind them) fit the device's receive FIFO."""
        if n + 2 > self.rx_fifo_depth:
            raise ValueError(f"command of {n} bytes does not fit the device's {self.rx_fifo_depth}-byte FIFO")
        while self._sent + n + 2 > self._acked + self.rx_fifo_depth:
            if not self._syncs:
                self._send_sync()  # its room was kept free by the check before the last command
            while self._syncs and self._sent + n + 2 > self._acked + self.rx_fifo_depth:
                self._pump()

    def _send(self, cmd: bytes) -> None:
        """Write one command once the receive FIFO has room for it."""
        self._reserve(len(cmd))
        self.transport.write(cmd)
        self._sent += len(cmd)
        # a SYNC every half FIFO keeps credit flowing back while the host goes on sending
        if self._sent - self._last_sync >= self.rx_fifo_depth // 2:
            if self._sent + 2 <= self._acked + self.rx_fifo_depth:
                self._send_sync()

    def _request(self, cmd: bytes, tag: int) -> bytes:
        """Send a command and wait for its answer."""
        self._send(cmd)
        return self._wait(tag)

    def sync(self) -> None:
        """Wait until the device has consumed every byte sent so far (raises on a pending ERROR)."""
        self._reserve(0)
        self._send_sync()
        while self._syncs:
            self._pump()


@dataclass(frozen=True)
class LinkInfo:
    version: int
    rx_fifo_depth: int
    spec_id: int  # the link's (built from the same spec as the core)


@dataclass
class RunResult:
    """Predictions, and per sample the dumped states ``{phase: [states of layer 1, …, L]}`` when dumping."""

    preds: list[int]
    dumps: list[dict[int, list[list[int]]]] = field(default_factory=list)


def dump_beats_to_states(spec: EPCoreSpec, beats: list[dict[str, int]]) -> dict[int, list[list[int]]]:
    """Group one sample's dump beats by phase into per-layer state lists (padding lanes removed)."""
    tiles: dict[int, dict[tuple[int, int], list[int]]] = {}
    for b in beats:
        tiles.setdefault(b["phase"], {})[(b["layer"], b["tile"])] = [b[f"states[{i}]"] for i in range(spec.lanes)]
    out = {}
    for phase, t in tiles.items():
        layers = []
        for k in range(1, spec.n_layers + 1):
            vals = []
            for j in range(spec.tiles(k)):
                if (k, j) not in t:
                    raise LinkError(f"phase {phase}: dump beat of layer {k} tile {j} is missing")
                vals += t[(k, j)]
            layers.append(vals[: spec.layers[k]])
        out[phase] = layers
    return out


class EPCoreHost(LinkHost):
    """Drive an EP core over a transport with the :mod:`boards.protocol` byte protocol.

    Parameters
    ----------
    transport
        Object with ``write(bytes)`` and ``read(n) -> bytes``.
    spec : EPCoreSpec
        The numbers the host expects; checked against the link's and the core's spec id.
    check_spec : bool
        Read INFO and ``REG_SPEC_ID`` on construction and refuse a mismatch (default).

    Raises
    ------
    SpecMismatchError
        If the link or the core reports another spec id than ``spec.spec_id``.
    LinkError
        If INFO reports another protocol version.
    """

    def __init__(self, transport, spec: EPCoreSpec, *, check_spec: bool = True):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        self.spec = spec
        self._open_link(transport, LinkFormat(spec), MESSAGES)
        self.info = self.read_info()
        self.rx_fifo_depth = self.info.rx_fifo_depth
        self._ctrl: int | None = None
        if check_spec:
            self.check_spec()

    # ---- commands ------------------------------------------------------------------------------
    def read_info(self) -> LinkInfo:
        self._send(bytes((CMD_INFO,)))
        p = self._wait(MSG_INFO)
        info = LinkInfo(
            version=p[0], rx_fifo_depth=int.from_bytes(p[1:3], "little"), spec_id=int.from_bytes(p[3:7], "little")
        )
        if info.version != PROTOCOL_VERSION:
            raise LinkError(
                f"the device speaks host-link protocol version {info.version}, this host {PROTOCOL_VERSION}"
            )
        return info

    def check_spec(self) -> None:
        """Refuse a bitstream built for another spec (link's INFO and the core's ``REG_SPEC_ID``)."""
        want = self.spec.spec_id
        for who, got in (("host link", self.info.spec_id), ("core", self.read_reg(REG_SPEC_ID))):
            if got != want:
                raise SpecMismatchError(
                    f"the {who} was built for spec id 0x{got:08x}, but the host's spec has id 0x{want:08x} "
                    f"(digest {self.spec.digest()[:16]}…, layers {list(self.spec.layers)}, lanes "
                    f"{self.spec.lanes}): load the bitstream built from this spec, or give the host the "
                    "spec the bitstream was built with"
                )

    def write_reg(self, addr: int, value: int) -> None:
        """Write a register; the link applies it once the core is idle (after samples already sent)."""
        if not 0 <= addr < REG_ADDR_LIMIT:
            raise ValueError(f"register address must be in [0, {REG_ADDR_LIMIT}), not {addr}")
        if not 0 <= value < 1 << 32:
            raise ValueError(f"register value must fit 32 unsigned bits, not {value}")
        self._send(bytes((CMD_WRITE_REG, addr)) + value.to_bytes(4, "little"))
        if addr == REG_CTRL:
            self._ctrl = value

    def read_reg(self, addr: int) -> int:
        if not 0 <= addr < REG_ADDR_LIMIT:
            raise ValueError(f"register address must be in [0, {REG_ADDR_LIMIT}), not {addr}")
        self._send(bytes((CMD_READ_REG, addr)))
        p = self._wait(MSG_REG)
        if p[0] != addr:
            raise LinkError(f"register read answered for address {p[0]}, asked {addr}")
        return int.from_bytes(p[1:5], "little")

    def configure(self, **regs: int) -> None:
        """Write run-time registers by name: ``T1``, ``T2``, ``beta_shift``, ``lr_shift``, ``seed``."""
        for name, value in regs.items():
            if name not in REGISTER_NAMES:
                raise ValueError(f"unknown register {name!r}; known: {sorted(REGISTER_NAMES)}")
            self.write_reg(REGISTER_NAMES[name], int(value))

    def status(self) -> dict[str, int]:
        """``busy`` (REG_STATUS bit 0), ``write_refused`` (bit 1: a register write since the last
        :meth:`clear_write_refused` was out of range and did not take, spec.ep_core
        ``register_write_error``), ``cycles`` of the last sample and ``samples`` completed."""
        st = self.read_reg(REG_STATUS)
        return {
            "busy": st & STATUS_BUSY,
            "write_refused": int(bool(st & STATUS_REG_ERROR)),
            "cycles": self.read_reg(REG_CYCLES),
            "samples": self.read_reg(REG_SAMPLES),
        }

    def clear_write_refused(self) -> None:
        """Clear the sticky refused-write flag (REG_STATUS bit 1): any write of REG_STATUS clears it."""
        self.write_reg(REG_STATUS, 0)

    def _check_addr(self, addr: int) -> None:
        if not 0 <= addr < self.spec.memory_words:
            raise ValueError(f"weight word address must be in [0, {self.spec.memory_words}), not {addr}")

    def write_word(self, addr: int, word: int) -> None:
        self._check_addr(addr)
        if not 0 <= word < 1 << self.format.word_bits:
            raise ValueError(f"weight word must fit {self.format.word_bits} unsigned bits, not {word}")
        f = self.format
        self._send(
            bytes((CMD_WRITE_WORD,)) + addr.to_bytes(f.addr_bytes, "little") + word.to_bytes(f.word_bytes, "little")
        )

    def load_weights(self, words: Sequence[int], *, base: int = 0) -> None:
        """Write load-port words (``golden.ep_core.pack_memory`` layout) from address ``base`` on."""
        if base + len(words) > self.spec.memory_words:
            raise ValueError(
                f"{len(words)} words from address {base} exceed the core's {self.spec.memory_words}-word memory"
            )
        for i, w in enumerate(words):
            self.write_word(base + i, int(w))
        self.sync()

    def read_weights(self, base: int = 0, count: int | None = None) -> list[int]:
        """Read ``count`` words (default: the whole memory) from address ``base`` on."""
        count = self.spec.memory_words - base if count is None else count
        if count:
            self._check_addr(base)
            self._check_addr(base + count - 1)
        f = self.format
        for a in range(base, base + count):
            self._send(bytes((CMD_READ_WORD,)) + a.to_bytes(f.addr_bytes, "little"))
        return [int.from_bytes(self._wait(MSG_WORD), "little") for _ in range(count)]

    def read_word(self, addr: int) -> int:
        return self.read_weights(addr, 1)[0]

    def _send_sample(self, pixels: Sequence[int], label: int) -> None:
        s, f = self.spec, self.format
        if len(pixels) != s.layers[0]:
            raise ValueError(f"a sample has {s.layers[0]} pixels, not {len(pixels)}")
        if not 0 <= label < 1 << s.label_bits:
            raise ValueError(f"label must fit {s.label_bits} bits, not {label}")
        top = 1 << s.input_bits
        data = bytearray()
        for x in pixels:
            x = int(x)
            if not 0 <= x < top:
                raise ValueError(f"pixel {x} does not fit input_bits={s.input_bits}")
            data += x.to_bytes(f.pixel_bytes, "little")
        data += bytes(f.pixel_bytes * (s.tiles(0) * s.lanes - s.layers[0]))  # padding lanes of the last beat
        head = 2 + f.label_bytes
        per = max(1, min(255, (self.rx_fifo_depth - 2 - head) // f.beat_bytes))  # beats per INPUT command
        for t0 in range(0, s.tiles(0), per):
            n = min(per, s.tiles(0) - t0)
            chunk = data[t0 * f.beat_bytes : (t0 + n) * f.beat_bytes]
            self._send(bytes((CMD_INPUT, n)) + int(label).to_bytes(f.label_bytes, "little") + bytes(chunk))

    def run(
        self, images, labels=None, *, train: bool = False, dump: bool = False, symmetric: bool | None = None
    ) -> RunResult:
        """Send samples and collect one prediction each (and their dump beats when ``dump``).

        ``train`` runs the ±β phases and the weight update on the chip; predictions are then the
        free phase's. ``symmetric`` picks the estimator (default: the spec's).
        """
        s = self.spec
        images = list(images)
        labels = [0] * len(images) if labels is None else [int(y) for y in labels]
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if train and not s.training:
            raise ValueError("this core was built without on-chip learning (spec.training = false)")
        sym = (s.estimator == "symmetric") if symmetric is None else symmetric
        ctrl = int(train) | (int(sym) << 1) | (int(dump) << 2)
        if ctrl != self._ctrl:
            self.write_reg(REG_CTRL, ctrl)
        n_phases = 1 + (1 + int(sym) if train else 0)
        per_sample = n_phases * sum(s.tiles(k) for k in range(1, s.n_layers + 1)) if dump else 0
        for x, y in zip(images, labels, strict=True):
            self._send_sample(list(x), y)
        preds = [int.from_bytes(self._wait(MSG_PRED), "little") for _ in images]
        res = RunResult(preds=preds)
        if dump:
            fields = s.dump_fields()
            for _ in images:
                beats = [
                    unpack_fields(fields, int.from_bytes(self._wait(MSG_DUMP), "little")) for _ in range(per_sample)
                ]
                res.dumps.append(dump_beats_to_states(s, beats))
        return res

    def infer(self, images, labels=None) -> list[int]:
        """Predictions of the free phase (labels are sent along but not used by inference)."""
        return self.run(images, labels).preds

    def train(self, images, labels, *, symmetric: bool | None = None) -> list[int]:
        """One on-chip training step per sample; returns the free phase's predictions."""
        return self.run(images, labels, train=True, symmetric=symmetric).preds
