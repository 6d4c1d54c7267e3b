"""The host link's byte protocol: opcodes, message tags, frames and the spec-derived field sizes.

Plain Python (no Amaranth): shared by the gateware (:mod:`boards.hostlink`) and the host driver
(:mod:`boards.host`), so both sides derive every length from the same :class:`LinkFormat`.

Version 2 (``docs/boards.md``, "Protocol"). Every frame carries a sequence number and a CRC:

* host → device: ``opcode (1) | seq (1) | fields (fixed per opcode) | data (INPUT only) | crc (2)``;
* device → host: ``tag (1) | seq (1) | payload (fixed per tag) | crc (2)``;

``crc`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, not reflected, no final
XOR; :func:`crc16`) over every byte before it, sent most significant byte first, so that the CRC
over the whole frame is 0. Field sizes follow from the spec:

* ``A = ceil(addr_bits / 8)``: a weight word address;
* ``D = ceil(P · word_elem_bits / 8)``: a weight word (the load port's ``data`` field);
* ``LB = ceil(label_bits / 8)``: a label or a prediction;
* ``BB = ceil(P · input_bits / 8)``: one input beat, its P pixels packed at ``input_bits`` each
  (pixel i in bits ``[i·input_bits, (i+1)·input_bits)`` of the little-endian beat);
* ``DD = ceil(dump bits / 8)``: one raw dump beat (``spec.dump_fields()``, bit 0 first).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from spec.ep_core import EPCoreSpec

PROTOCOL_VERSION = 2

# host → device (opcodes)
CMD_SYNC = 0x00  # token(1)                     → MSG_SYNC token expect session
CMD_WRITE_REG = 0x01  # addr(1) value(4)        → nothing; applied once the core is not busy
CMD_READ_REG = 0x02  # addr(1)                  → MSG_REG addr value
CMD_WRITE_WORD = 0x03  # addr(A) data(D)        → nothing
CMD_READ_WORD = 0x04  # addr(A)                 → MSG_WORD data (in command order)
CMD_INPUT = 0x05  # n(1) label(LB), then n·BB bytes → n beats into the sample buffer
CMD_INFO = 0x06  # session(1)                   → MSG_INFO; starts a session (the device's expected seq = seq + 1)
CMD_INPUT_Z = 0x07  # as INPUT, the n·BB bytes zero-run coded (zero_run_encode)
# the sample store (block RAM on the board; HostLink(store_samples=N)): a test set kept on the board
CMD_STORE = 0x08  # index(2) n(1) label(LB), then n·BB bytes zero-run coded → into store slot `index`
CMD_RUN_STORED = 0x09  # first(2) count(2) → slots first … first+count−1 to the core back to back; MSG_PRED each
CMD_STORE_INFO = 0x0A  # (no fields)             → MSG_STORE samples(2) slot bytes(2)
PAD = 0xFF  # where an opcode is expected: skipped without an answer (a session's filler)

# device → host (message tags)
MSG_SYNC = 0x80  # token(1) expect(1) session(1)
MSG_REG = 0x82  # addr(1) value(4)
MSG_WORD = 0x84  # data(D)
MSG_INFO = 0x86  # version(1) rx_fifo_depth(2) link spec_id(4) sample_buffer_bytes(2) session(1)
MSG_STORE = 0x87  # store samples(2) bytes a slot holds(2): the sample store's size (0 samples: none built)
MSG_PRED = 0x90  # pred(LB)
MSG_DUMP = 0x91  # dump beat(DD)
MSG_ERROR = 0xFF  # code(1) opcode(1) expect(1)

ERR_UNKNOWN_OPCODE = 1
ERR_TIMEOUT = 2  # the frame's bytes stopped arriving for timeout_cycles; the frame was dropped
ERR_CRC = 3  # the frame's CRC was wrong; dropped
ERR_SEQ = 4  # the frame's sequence number was not the one expected; dropped
ERR_LENGTH = 5  # an INPUT frame would overfill the sample (its beats past the sample's tiles(0)); dropped
ERR_SESSION = 6  # no session is open (the device was reset): only INFO and SYNC are taken; dropped
ERR_STORE = 7  # a STORE slot or a RUN_STORED range outside the sample store (or an empty range); dropped
ERR_BUSY = 8  # the frame would wait for a core that runs until stopped (its view's refuse_bit); dropped

ERROR_NAMES = {
    ERR_UNKNOWN_OPCODE: "unknown opcode",
    ERR_TIMEOUT: "command timed out mid-way",
    ERR_CRC: "bad CRC",
    ERR_SEQ: "out of sequence",
    ERR_LENGTH: "INPUT beats past the end of the sample",
    ERR_SESSION: "no session open (the device was reset)",
    ERR_STORE: "outside the sample store",
    ERR_BUSY: "busy: the core runs until stopped (send STOP first)",
}

REG_ADDR_LIMIT = 16  # the core's register port has 4 address bits
MIN_RX_FIFO_DEPTH = 16
FRAME_OVERHEAD = 4  # opcode/tag, seq, CRC (2)
SEQ_WINDOW = 96  # frames the host keeps unacknowledged at most (< 128: seq arithmetic mod 256 stays unambiguous)
ZERO_RUN_MAX = 256  # a zero run codes 1 … 256 zero bytes


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``)."""
    return binascii.crc_hqx(data, crc)


def frame(op: int, seq: int, body: bytes = b"") -> bytes:
    """One host → device frame (or device → host message: ``op`` is then the tag)."""
    head = bytes((op, seq & 0xFF)) + bytes(body)
    return head + crc16(head).to_bytes(2, "big")


def zero_run_encode(data: bytes) -> bytes:
    """Zero-run coding of INPUT_Z: a run of k zero bytes (1 ≤ k ≤ 256) becomes ``0x00, k − 1``;
    every other byte is itself."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        if data[i]:
            out.append(data[i])
            i += 1
            continue
        j = i
        while j < n and not data[j] and j - i < ZERO_RUN_MAX:
            j += 1
        out += bytes((0, j - i - 1))
        i = j
    return bytes(out)


def zero_run_decode(code: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(code):
        if code[i]:
            out.append(code[i])
            i += 1
        else:
            if i + 1 >= len(code):
                raise ValueError("zero-run code ends inside a run")
            out += bytes(code[i + 1] + 1)
            i += 2
    return bytes(out)


@dataclass(frozen=True)
class SpecView:
    """Base of the host link's view of another core's spec (``boards.eqspike_top.EqSpikeLinkSpec``,
    ``boards.galton_top.GaltonLinkSpec``): the wrapped ``spec`` (checked against ``spec_type``), its
    identity (``spec_id``, ``digest``, ``to_dict``: what INFO and ``REG_SPEC_ID`` check) and the dump
    fields of a core without a state dump. Subclasses give the rest of what :class:`LinkFormat` and
    :class:`boards.hostlink.HostLink` read."""

    spec: object
    spec_type = object  # the spec class the view wraps

    def __post_init__(self):
        if not isinstance(self.spec, self.spec_type):
            name = self.spec_type.__name__
            article = "an" if name[0] in "AEIOU" else "a"
            raise TypeError(f"spec must be {article} {name}, not {type(self.spec).__name__}")

    @property
    def spec_id(self) -> int:
        return self.spec.spec_id

    def digest(self) -> str:
        return self.spec.digest()

    def to_dict(self):
        return self.spec.to_dict()

    def dump_fields(self):
        return [("none", 8)]  # no state dump: MSG_DUMP never comes


def _bytes(bits: int) -> int:
    return -(-bits // 8)


@dataclass(frozen=True)
class LinkFormat:
    """Field sizes of the protocol for one spec (all in bytes)."""

    spec: EPCoreSpec

    @property
    def addr_bytes(self) -> int:
        return _bytes(self.spec.addr_bits)

    @property
    def word_bits(self) -> int:
        # a second core kind's view (boards.eqspike_top.EqSpikeLinkSpec) gives its word width itself
        wb = getattr(self.spec, "link_word_bits", None)
        return self.spec.lanes * self.spec.word_elem_bits if wb is None else wb

    @property
    def word_bytes(self) -> int:
        return _bytes(self.word_bits)

    @property
    def label_bytes(self) -> int:
        return _bytes(self.spec.label_bits)

    @property
    def pixel_bits(self) -> int:
        return self.spec.input_bits

    @property
    def dump_bits(self) -> int:
        return sum(w for _, w in self.spec.dump_fields())

    @property
    def dump_bytes(self) -> int:
        return _bytes(self.dump_bits)

    @property
    def beat_bytes(self) -> int:
        """Bytes of one input beat: P pixels packed at ``input_bits`` each."""
        return _bytes(self.spec.lanes * self.spec.input_bits)

    @property
    def sample_bytes(self) -> int:
        """Bytes of one sample in the device's sample buffer (``tiles(0)`` beats)."""
        return self.spec.tiles(0) * self.beat_bytes

    def pack_beat(self, pixels) -> bytes:
        """P pixels (fewer: zero-padded) → the beat's ``beat_bytes`` bytes."""
        ib, v = self.spec.input_bits, 0
        for i, x in enumerate(pixels):
            v |= int(x) << (i * ib)
        return v.to_bytes(self.beat_bytes, "little")

    def pack_sample(self, pixels) -> bytes:
        """A sample's pixels (``layers[0]`` of them) → ``sample_bytes`` bytes, the last beat zero-padded."""
        P = self.spec.lanes
        return b"".join(self.pack_beat(pixels[t * P : (t + 1) * P]) for t in range(self.spec.tiles(0)))

    def arg_bytes(self, opcode: int) -> int:
        """Fixed bytes after the opcode and seq that the parser collects (INPUT: n and label)."""
        return {CMD_SYNC: 1, CMD_WRITE_REG: 5, CMD_READ_REG: 1, CMD_WRITE_WORD: self.addr_bytes + self.word_bytes,
                CMD_READ_WORD: self.addr_bytes, CMD_INPUT: 1 + self.label_bytes, CMD_INPUT_Z: 1 + self.label_bytes,
                CMD_INFO: 1, CMD_STORE: 3 + self.label_bytes, CMD_RUN_STORED: 4, CMD_STORE_INFO: 0}[opcode]

    @property
    def max_arg_bytes(self) -> int:
        return max(self.arg_bytes(op) for op in COMMANDS)

    def payload_bytes(self, tag: int) -> int:
        """Bytes of a device → host message between its seq and its CRC."""
        sizes = {MSG_SYNC: 3, MSG_REG: 5, MSG_WORD: self.word_bytes, MSG_INFO: 10, MSG_PRED: self.label_bytes,
                 MSG_DUMP: self.dump_bytes, MSG_ERROR: 3, MSG_STORE: 4}
        if tag not in sizes:
            raise ValueError(f"unknown message tag 0x{tag:02x}")
        return sizes[tag]

    @property
    def max_message_bytes(self) -> int:
        return FRAME_OVERHEAD + max(self.payload_bytes(t) for t in MESSAGES)

    @property
    def sync_frame_bytes(self) -> int:
        return FRAME_OVERHEAD + 1

    def min_rx_fifo_depth(self) -> int:
        """Smallest receive FIFO the host driver can work with: the longest fixed frame, a one-beat
        INPUT frame, and a SYNC frame behind either."""
        one_beat = FRAME_OVERHEAD + self.arg_bytes(CMD_INPUT) + self.beat_bytes
        return max(MIN_RX_FIFO_DEPTH, FRAME_OVERHEAD + self.max_arg_bytes + self.sync_frame_bytes,
                   one_beat + self.sync_frame_bytes)


COMMANDS = (CMD_SYNC, CMD_WRITE_REG, CMD_READ_REG, CMD_WRITE_WORD, CMD_READ_WORD, CMD_INPUT, CMD_INFO, CMD_INPUT_Z,
            CMD_STORE, CMD_RUN_STORED, CMD_STORE_INFO)
MESSAGES = (MSG_SYNC, MSG_REG, MSG_WORD, MSG_INFO, MSG_PRED, MSG_DUMP, MSG_ERROR, MSG_STORE)


# ---- the sample store (docs/boards.md, "Streaming a test set from block RAM") ----------------------
DP16KD_BYTES = 2048  # an ECP5 DP16KD as 2,048 x 9 bits: a byte-wide store takes one per 2,048 bytes


def store_slot_bytes(spec) -> int:
    """Bytes of one sample store slot: a sample's packed beats (``LinkFormat.sample_bytes``); the
    labels are kept in a memory of their own (``label_bits`` a slot)."""
    return LinkFormat(spec).sample_bytes


def store_memory_bytes(spec, store_samples: int) -> int:
    """Bytes of the link's byte-wide sample memory: the live sample buffer plus ``store_samples`` slots."""
    return (1 + store_samples) * store_slot_bytes(spec)


def store_blocks(spec, store_samples: int) -> int:
    """DP16KD blocks (2,048 x 9) of the sample memory with ``store_samples`` slots, labels included
    (a label memory of ``store_samples`` x ``label_bits`` shares no block with it)."""
    mem = -(-store_memory_bytes(spec, store_samples) // DP16KD_BYTES)
    labels = -(-store_samples * spec.label_bits // (18 * 1024)) if store_samples else 0
    return mem + labels


def store_frame(cmd: int, *fields: tuple[int, int]) -> bytes:
    """Opcode and little-endian fields ``(value, bytes)`` of a store command (unframed)."""
    return bytes((cmd,)) + b"".join(int(v).to_bytes(n, "little") for v, n in fields)
