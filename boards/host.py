"""Host driver for an EP core behind :class:`boards.hostlink.HostLink` (pure Python, no Amaranth).

:class:`EPCoreHost` speaks :mod:`boards.protocol` over any *transport*: an object with
``write(data: bytes)`` and ``read(n: int) -> bytes`` (a serial port, or the simulated link of
:mod:`boards.simlink`; the same code drives both). ``read`` may return fewer bytes than asked
(a serial timeout); an empty read raises :class:`LinkTimeout`.

Flow control: the host never has more than ``rx_fifo_depth`` bytes (reported by INFO) beyond the
last SYNC echo in flight, since the UART cannot push back. Responses are read as they come and
sorted by tag, so predictions, dump beats and weight words may interleave on the wire.

:class:`LinkHost` and :class:`FramedLinkHost` are that link layer (SYNC credit, frames, message reading
and queueing, device errors), shared with the EqSpike and Galton boards' hosts
(:class:`boards.eqspike_top.EqSpikeHost`, :class:`boards.galton_top.GaltonHost`).
"""

from __future__ import annotations

import random
import time
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
    CMD_INPUT_Z,
    CMD_READ_REG,
    CMD_READ_WORD,
    CMD_RUN_STORED,
    CMD_STORE,
    CMD_STORE_INFO,
    CMD_SYNC,
    CMD_WRITE_REG,
    CMD_WRITE_WORD,
    ERR_BUSY,
    ERR_LENGTH,
    ERR_SESSION,
    ERR_STORE,
    ERR_TIMEOUT,
    ERR_UNKNOWN_OPCODE,
    ERROR_NAMES,
    FRAME_OVERHEAD,
    MESSAGES,
    MIN_RX_FIFO_DEPTH,
    MSG_DUMP,
    MSG_ERROR,
    MSG_INFO,
    MSG_PRED,
    MSG_REG,
    MSG_STORE,
    MSG_SYNC,
    MSG_WORD,
    PAD,
    PROTOCOL_VERSION,
    REG_ADDR_LIMIT,
    SEQ_WINDOW,
    LinkFormat,
    crc16,
    frame,
    zero_run_encode,
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
    """The transport half of the host link: exact reads, message tags sized by the link format,
    answer queues by tag. :class:`FramedLinkHost` adds the frames, SYNC credit and recovery.

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

    def _read_tag(self) -> tuple[int, int]:
        """A message's tag byte and its payload length from the link format (an unknown tag: out of step)."""
        tag = self._read_exact(1)[0]
        try:
            n = self.format.payload_bytes(tag)
        except ValueError:
            raise self.Error(
                f"unknown message tag 0x{tag:02x} from the device: the link is out of step "
                f"(reset the board) or {self.OTHER_LINK}"
            ) from None
        return tag, n

    def _request(self, cmd: bytes, tag: int) -> bytes:
        """Send a command and wait for its answer (``_send`` and ``_wait`` come from the subclass)."""
        self._send(cmd)
        return self._wait(tag)


class FramedLinkHost(LinkHost):
    """The host half of protocol version 2 (:mod:`boards.protocol`): frames with a sequence number
    and a CRC-16 in both directions, go-back-N retransmission of dropped frames, session start.

    * Every command (:meth:`_send` takes it unframed: opcode and fields) gets the next sequence
      number and is kept until the device is known to have accepted it. A SYNC echo carries the
      sequence number the device expects next: the frames before it were accepted, the ones after
      it were dropped (bad CRC, out of sequence, cut short, lost) and are sent again, in order.
      An ERROR message, or an echo that shows a gap, starts that recovery; a frame dropped
      :attr:`max_retries` times in a row raises :class:`LinkError`.
    * Device messages are checked too: a bad CRC, a gap in their sequence numbers or an unknown tag
      raise :class:`LinkError` (a lost prediction cannot be asked for again).
    * The session starts with INFO (:meth:`_open_session`): filler bytes end any frame a previous
      session left half-sent, stale bytes from the device are skipped until a well-formed INFO
      answer, and the device then expects this session's sequence numbers; if nothing answers, the
      host waits out the device's mid-frame timeout and tries again.
    """

    ERROR_NAMES = ERROR_NAMES
    max_retries = 16
    session_attempts = 3
    device_timeout_s = 0.15  # the board top's mid-frame timeout is 0.1 s
    seq_rng = random.Random()  # the first sequence number of a session (seed it for reproducible runs)

    def _open_link(self, transport, fmt, tags) -> None:
        super()._open_link(transport, fmt, tags)
        self._syncs: deque[tuple[int, int, int]] = deque()  # (token, position after it, next seq then)
        self._seq = self.seq_rng.randrange(256)  # the next frame's sequence number
        self._unacked: deque[tuple[int, bytes]] = deque()  # (seq, frame) not yet known to be accepted
        self._rx_seq: int | None = None  # the next device message's sequence number
        self._need_recovery = False
        self._recovering = False
        self._errors: list[tuple[int, int, int]] = []
        self._session = False
        self._session_id = -1
        self.error_log: deque[tuple[int, int, int]] = deque(maxlen=256)  # device ERRORs: (code, opcode, expect)
        self.link_stats = {"frames": 0, "bytes_sent": 0, "bytes_received": 0, "retransmitted": 0,
                           "device_errors": 0, "recoveries": 0}

    # ---- sending ---------------------------------------------------------------------------------
    def _write_frame(self, f: bytes) -> None:
        """Write one frame once the receive FIFO has room for it (and a SYNC behind it)."""
        self._reserve(len(f))
        self.transport.write(f)
        self._sent += len(f)
        self.link_stats["bytes_sent"] += len(f)
        if self._sent - self._last_sync >= self.rx_fifo_depth // 2:
            if self._sent + self.format.sync_frame_bytes <= self._acked + self.rx_fifo_depth:
                self._send_sync()

    def _send(self, cmd: bytes) -> None:
        """Send one command (opcode and fields, unframed): framed with the next sequence number."""
        while len(self._unacked) >= SEQ_WINDOW:  # keep the window well inside the 8-bit sequence space
            if not self._syncs:
                self._reserve(0)
                self._send_sync()
            self._pump_and_recover()
        seq = self._seq
        self._seq = (seq + 1) & 0xFF
        f = frame(cmd[0], seq, cmd[1:])
        self._unacked.append((seq, f))
        self.link_stats["frames"] += 1
        self._write_frame(f)

    def _send_sync(self) -> None:
        self._token = (self._token + 1) & 0xFF
        f = frame(CMD_SYNC, 0, bytes((self._token,)))
        self.transport.write(f)
        self._sent += len(f)
        self.link_stats["bytes_sent"] += len(f)
        self._last_sync = self._sent
        self._syncs.append((self._token, self._sent, self._seq))

    def _reserve(self, n: int) -> None:
        S = self.format.sync_frame_bytes
        if n + S > self.rx_fifo_depth:
            raise ValueError(f"frame of {n} bytes does not fit the device's {self.rx_fifo_depth}-byte FIFO")
        while self._sent + n + S > self._acked + self.rx_fifo_depth:
            if not self._syncs:
                self._send_sync()  # its room was kept free by the check before the last frame
            while self._syncs and self._sent + n + S > self._acked + self.rx_fifo_depth:
                self._pump_and_recover()

    # ---- receiving -------------------------------------------------------------------------------
    def _read_message(self) -> tuple[int, bytes]:
        tag, n = self._read_tag()
        rest = self._read_exact(1 + n + 2)
        self.link_stats["bytes_received"] += 4 + n
        if crc16(bytes((tag,)) + rest) != 0:
            raise self.Error(
                f"a message from the device (tag 0x{tag:02x}) failed its CRC check: noise on the device's "
                "transmit line; its content is lost (open a new session and repeat the last step)"
            )
        seq, payload = rest[0], rest[1 : 1 + n]
        if self._rx_seq is not None and seq != self._rx_seq:
            if tag == MSG_ERROR and payload[0] == ERR_SESSION:
                self._raise_device_error(*payload)
            if tag == MSG_SYNC and payload[2] != self._session_id and payload[2] != 0:
                self._raise_other_session(payload[2])
            if seq == 0:
                raise self.Error(f"the device's message numbers restarted at 0 (expected {self._rx_seq}): the "
                                 "board was reset since this session began; open a new session")
            raise self.Error(
                f"{(seq - self._rx_seq) & 0xFF} message(s) from the device were not read by this session "
                f"(message seq {seq}, expected {self._rx_seq}): another host session used the link, the "
                "board was reset, or messages were lost; open a new session and repeat the last step"
            )
        self._rx_seq = (seq + 1) & 0xFF
        return tag, payload

    def _raise_device_error(self, code: int, opcode: int, expect: int) -> None:
        if code == ERR_LENGTH:
            raise self.Error(f"device reported error {code} ({self.ERROR_NAMES[code]}) for opcode "
                             f"0x{opcode:02x}: the host sent more beats than a sample has", code, opcode)
        if code == ERR_UNKNOWN_OPCODE and opcode in (CMD_STORE, CMD_RUN_STORED, CMD_STORE_INFO):
            raise self.Error(f"the device does not know opcode 0x{opcode:02x} (the sample store's): its bitstream "
                             "was built before the sample store; rebuild it with this version of epforge", code, opcode)
        if code == ERR_STORE:
            raise self.Error(f"device reported error {code} ({self.ERROR_NAMES[code]}) for opcode 0x{opcode:02x}: "
                             "a STORE slot or RUN_STORED range past the board's sample store", code, opcode)
        if code == ERR_BUSY:
            raise self.Error(f"device reported error {code} ({self.ERROR_NAMES[code]}) for opcode 0x{opcode:02x}: "
                             "the command would wait for a run without an end; it was dropped (stop the run "
                             "first)", code, opcode)
        if code == ERR_SESSION:
            raise self.Error(f"device reported error {code} ({self.ERROR_NAMES[code]}): the board was reset "
                             "since this session began (its registers are back at their reset values); open "
                             "a new session", code, opcode)

    def _raise_other_session(self, session: int) -> None:
        raise self.Error(
            f"another host session (number {session}) opened the link after this one (number "
            f"{self._session_id}): this session's view of the device is stale; open a new session"
        )

    def _pump(self) -> None:
        """Read one message: queue an answer by tag, take a SYNC echo's credit and acknowledgement,
        note a device ERROR (recovery follows in :meth:`_pump_and_recover`)."""
        tag, payload = self._read_message()
        if tag == MSG_ERROR:
            code, opcode, expect = payload
            self.link_stats["device_errors"] += 1
            self._errors.append((code, opcode, expect))
            self.error_log.append((code, opcode, expect))
            self._raise_device_error(code, opcode, expect)
            self._need_recovery = True
            return
        if tag == MSG_SYNC:
            token, expect, session = payload
            tokens = [t for t, _, _ in self._syncs]
            if token not in tokens:
                raise self.Error(
                    f"unexpected SYNC token {token} (expected {self._syncs[0][0] if self._syncs else 'none'})"
                )
            for _ in range(tokens.index(token)):  # earlier SYNCs were dropped by the device (bad CRC, cut short)
                self._syncs.popleft()
            if session != self._session_id:
                self._raise_other_session(session)
            _, self._acked, next_seq = self._syncs.popleft()
            self._ack_upto(expect, next_seq)
            if expect != next_seq:
                self._need_recovery = True
            return
        self._queues[tag].append(payload)

    def _ack_upto(self, expect: int, next_seq: int) -> None:
        """The device expects ``expect`` next: the frames before it were accepted."""
        if self._unacked:
            first = self._unacked[0][0]
            k = (expect - first) & 0xFF
            limit = (next_seq - first) & 0xFF
        else:
            first, k, limit = expect, 0, (next_seq - expect) & 0xFF
        if k > limit or (not self._unacked and expect != next_seq):
            raise self.Error(
                f"the device expects frame {expect}, which this session has not sent (next: {next_seq}): "
                "another host session opened the link or the board was reset; open a new session"
            )
        for _ in range(k):
            self._unacked.popleft()

    def _pump_and_recover(self) -> None:
        try:
            self._pump()
        except LinkTimeout:
            if self._recovering or not (self._unacked or self._syncs):
                raise
            self._recover(silent=True)  # a SYNC (or its echo) was lost: wait, then resynchronise
            return
        if self._need_recovery and not self._recovering:
            self._recover()

    def _wait(self, tag: int) -> bytes:
        q = self._queues[tag]
        while not q:
            if self._unacked and not self._syncs:
                self._reserve(0)
                self._send_sync()  # a silently dropped frame shows in this SYNC's echo
            self._pump_and_recover()
        return q.popleft()

    def _recover(self, *, silent: bool = False) -> None:
        """Go-back-N: learn which frame the device expects, send every frame from there again.
        Gives up (:class:`LinkError`) after :attr:`max_retries` rounds in a row without progress."""
        self._recovering = True
        stuck, head = 0, None
        try:
            while True:
                self._need_recovery = False
                try:
                    if silent:  # nothing came back: let the device's mid-frame timeout end a half frame
                        self._wait_out_device_timeout()
                        self._syncs.clear()
                        self._acked = self._sent
                        silent = False
                    self._reserve(0)
                    self._send_sync()
                    while self._syncs:
                        self._pump()
                    if not self._unacked:
                        return
                    stuck = stuck + 1 if self._unacked[0][0] == head else 0
                    head = self._unacked[0][0]
                    if stuck >= self.max_retries:
                        break
                    self.link_stats["recoveries"] += 1
                    for _, f in list(self._unacked):
                        self.link_stats["retransmitted"] += 1
                        self._write_frame(f)
                except LinkTimeout:
                    silent = True
                    stuck += 1
                    if stuck >= self.max_retries:
                        break
            names = sorted({self.ERROR_NAMES.get(c, f"code {c}") for c, _, _ in self._errors}) or ["no answer"]
            raise self.Error(
                f"the device dropped frame {self._unacked[0][0] if self._unacked else '?'} {self.max_retries} "
                f"times in a row ({', '.join(names)}): the line is too noisy, or the board does not answer"
            )
        finally:
            self._recovering = False
            self._errors.clear()

    def _wait_out_device_timeout(self) -> None:
        wait = getattr(self.transport, "wait_device_timeout", None)
        if callable(wait):
            wait()
        else:
            time.sleep(self.device_timeout_s)

    def sync(self) -> None:
        """Wait until the device has consumed and accepted every frame sent so far."""
        self._reserve(0)
        self._send_sync()
        while self._syncs or self._unacked:
            if not self._syncs:
                self._reserve(0)
                self._send_sync()
            self._pump_and_recover()

    # ---- session ---------------------------------------------------------------------------------
    def _open_session(self) -> bytes:
        """Send INFO until a well-formed answer comes; return its payload. The device then expects
        this session's next sequence number."""
        # PAD bytes: skipped by a parser between frames; they complete a fixed frame a previous session
        # left half-sent (which is then dropped for its CRC)
        fill = bytes((PAD,)) * (FRAME_OVERHEAD + self.format.max_arg_bytes)
        self._session_id = self.seq_rng.randrange(256)
        for _attempt in range(self.session_attempts):
            seq = self._seq
            self._seq = (seq + 1) & 0xFF
            self.transport.write(fill + frame(CMD_INFO, seq, bytes((self._session_id,))))
            self.link_stats["bytes_sent"] += len(fill) + FRAME_OVERHEAD + 1
            try:
                payload = self._scan_for_info()
            except LinkTimeout:
                self._wait_out_device_timeout()
                continue
            self._session = True
            self._sent = self._acked = self._last_sync = 0
            self._syncs.clear()
            self._unacked.clear()
            return payload
        raise self.Timeout(
            f"no answer to INFO after {self.session_attempts} tries: the device is not a protocol "
            f"version {PROTOCOL_VERSION} host link, is not powered or programmed, or hangs (press its reset button)"
        )

    def _scan_for_info(self) -> bytes:
        """Skip bytes until a well-formed INFO message (a previous session's answers may still come)."""
        n = self.format.payload_bytes(MSG_INFO)
        want = 1 + 1 + n + 2
        buf = bytearray()
        for _ in range(1 << 16):
            try:
                buf += self._read_exact(1)
            except LinkTimeout:
                if len(buf) >= 8 and buf[1] == 1:  # version 1's INFO answer: 8 bytes, no seq, no CRC
                    raise self.Error(f"the device speaks host-link protocol version 1, this host {PROTOCOL_VERSION}: "
                                     "rebuild the bitstream with this version of epforge") from None
                raise
            while buf and buf[0] != MSG_INFO:
                del buf[0]
            if len(buf) < want:
                continue
            if crc16(bytes(buf[:want])) == 0:
                self._rx_seq = (buf[1] + 1) & 0xFF
                return bytes(buf[2 : 2 + n])
            if buf[1] == 1:  # not a version-2 message; version 1's INFO answer has the version here
                raise self.Error(f"the device speaks host-link protocol version 1, this host {PROTOCOL_VERSION}: "
                                 "rebuild the bitstream with this version of epforge")
            del buf[0]
        raise self.Error("no INFO answer within 65,536 bytes from the device")


@dataclass(frozen=True)
class LinkInfo:
    version: int
    rx_fifo_depth: int
    spec_id: int  # the link's (built from the same spec as the core)
    sample_buffer: int = 0  # bytes of the device's sample buffer (one sample)


@dataclass(frozen=True)
class StoreInfo:
    samples: int  # slots of the board's sample store (0: none built)
    slot_bytes: int  # bytes a slot holds (one sample's packed beats)


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


class EPCoreHost(FramedLinkHost):
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
        self._store: StoreInfo | None = None
        if check_spec:
            self.check_spec()

    # ---- commands ------------------------------------------------------------------------------
    def read_info(self) -> LinkInfo:
        """INFO: protocol version, receive FIFO, spec id, sample buffer. The first call opens the
        session (see :meth:`FramedLinkHost._open_session`)."""
        if not self._session:
            p = self._open_session()
        else:
            self._send(bytes((CMD_INFO, self._session_id)))
            p = self._wait(MSG_INFO)
        info = LinkInfo(
            version=p[0], rx_fifo_depth=int.from_bytes(p[1:3], "little"), spec_id=int.from_bytes(p[3:7], "little"),
            sample_buffer=int.from_bytes(p[7:9], "little"),
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

    compress = True  # INPUT_Z (zero-run coded) where it is shorter than INPUT

    def _sample_frames(self, pixels: Sequence[int], label: int, store_index: int | None = None) -> list[bytes]:
        """A sample as INPUT / INPUT_Z commands (unframed), each fitting the receive FIFO; with
        ``store_index`` as STORE commands (always zero-run coded) into that slot of the sample store."""
        s, f = self.spec, self.format
        if len(pixels) != s.layers[0]:
            raise ValueError(f"a sample has {s.layers[0]} pixels, not {len(pixels)}")
        if not 0 <= label < 1 << s.label_bits:
            raise ValueError(f"label must fit {s.label_bits} bits, not {label}")
        top = 1 << s.input_bits
        for x in pixels:
            if not 0 <= int(x) < top:
                raise ValueError(f"pixel {int(x)} does not fit input_bits={s.input_bits}")
        data = f.pack_sample([int(x) for x in pixels])
        BB, T = f.beat_bytes, s.tiles(0)
        head = bytes(1) + int(label).to_bytes(f.label_bytes, "little")  # n patched below
        pre = b"" if store_index is None else int(store_index).to_bytes(2, "little")
        budget = self.rx_fifo_depth - f.sync_frame_bytes - FRAME_OVERHEAD - len(head) - len(pre)

        def body(t0: int, t1: int) -> tuple[int, bytes]:
            raw = data[t0 * BB : t1 * BB]
            if store_index is not None:
                return CMD_STORE, zero_run_encode(raw)
            if self.compress:
                z = zero_run_encode(raw)
                if len(z) < len(raw):
                    return CMD_INPUT_Z, z
            return CMD_INPUT, raw

        out, t0 = [], 0
        while t0 < T:
            hi = min(T, t0 + 255)
            if len(body(t0, hi)[1]) > budget:  # binary search for the most beats that fit
                lo = t0 + 1
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if len(body(t0, mid)[1]) <= budget:
                        lo = mid
                    else:
                        hi = mid - 1
                hi = lo
            op, b = body(t0, hi)
            out.append(bytes((op,)) + pre + bytes((hi - t0,)) + head[1:] + b)
            t0 = hi
        return out

    def _send_sample(self, pixels: Sequence[int], label: int) -> None:
        for cmd in self._sample_frames(pixels, label):
            self._send(cmd)

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

    # ---- the sample store (HostLink(store_samples=N): a test set in the board's block RAM) ----------
    def store_info(self) -> StoreInfo:
        """STORE_INFO: slots of the board's sample store (0: built without one) and bytes a slot holds."""
        if self._store is None:
            self._send(bytes((CMD_STORE_INFO,)))
            p = self._wait(MSG_STORE)
            self._store = StoreInfo(samples=int.from_bytes(p[0:2], "little"),
                                    slot_bytes=int.from_bytes(p[2:4], "little"))
        return self._store

    def _check_store_range(self, first: int, count: int, what: str) -> None:
        info = self.store_info()
        if info.samples == 0:
            raise ValueError(f"{what}: the board has no sample store (its bitstream was built with store_samples = 0)")
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise ValueError(f"{what}: first slot must be a non-negative integer, not {first!r}")
        if count < 1 or first + count > info.samples:
            raise ValueError(f"{what}: {count} sample(s) from slot {first} do not fit the board's sample store of "
                             f"{info.samples} samples ({info.slot_bytes:,} bytes each); send at most "
                             f"{max(0, info.samples - first)} from slot {first}, or the set in parts")

    def store_samples(self, images, labels=None, *, first: int = 0) -> None:
        """Load samples into the sample store from slot ``first`` on (packed at ``input_bits``, zero-run
        coded; every frame CRC-checked and resent when dropped, like INPUT)."""
        images = list(images)
        labels = [0] * len(images) if labels is None else [int(y) for y in labels]
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self._check_store_range(first, len(images), "store_samples")
        for i, (x, y) in enumerate(zip(images, labels, strict=True)):
            for cmd in self._sample_frames(list(x), y, store_index=first + i):
                self._send(cmd)
        self.sync()

    def run_stored(self, first: int, count: int, *, train: bool = False, symmetric: bool | None = None) -> list[int]:
        """Send slots ``first … first + count − 1`` of the sample store to the core back to back (the
        board reads them from its block RAM: no sample crosses the link) and return one prediction
        each (``train``: one on-chip step per sample, the free phase's prediction)."""
        s = self.spec
        self._check_store_range(first, count, "run_stored")
        if train and not s.training:
            raise ValueError("this core was built without on-chip learning (spec.training = false)")
        sym = (s.estimator == "symmetric") if symmetric is None else symmetric
        ctrl = int(train) | (int(sym) << 1)
        if ctrl != self._ctrl:
            self.write_reg(REG_CTRL, ctrl)
        self._send(bytes((CMD_RUN_STORED,)) + first.to_bytes(2, "little") + count.to_bytes(2, "little"))
        return [int.from_bytes(self._wait(MSG_PRED), "little") for _ in range(count)]

    def infer(self, images, labels=None) -> list[int]:
        """Predictions of the free phase (labels are sent along but not used by inference)."""
        return self.run(images, labels).preds

    def train(self, images, labels, *, symmetric: bool | None = None) -> list[int]:
        """One on-chip training step per sample; returns the free phase's predictions."""
        return self.run(images, labels, train=True, symmetric=symmetric).preds
