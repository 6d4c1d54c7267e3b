"""The host link's byte protocol: opcodes, message tags and the spec-derived field sizes.

Plain Python (no Amaranth): shared by the gateware (:mod:`boards.hostlink`) and the host driver
(:mod:`boards.host`), so both sides derive every length from the same :class:`LinkFormat`.

Every frame is one opcode/tag byte followed by fixed-size little-endian fields; the sizes follow
from the spec (see ``docs/boards.md`` for the byte layouts):

* ``A = ceil(addr_bits / 8)``: a weight word address;
* ``D = ceil(P · word_elem_bits / 8)``: a weight word (the load port's ``data`` field);
* ``LB = ceil(label_bits / 8)``: a label or a prediction;
* ``PB = ceil(input_bits / 8)``: one pixel;
* ``DD = ceil(dump bits / 8)``: one raw dump beat (``spec.dump_fields()``, bit 0 first).
"""

from __future__ import annotations

from dataclasses import dataclass

from spec.ep_core import EPCoreSpec

PROTOCOL_VERSION = 1

# host → device (opcodes)
CMD_SYNC = 0x00  # token(1)                     → MSG_SYNC token
CMD_WRITE_REG = 0x01  # addr(1) value(4)        → nothing; applied once the core is not busy
CMD_READ_REG = 0x02  # addr(1)                  → MSG_REG addr value
CMD_WRITE_WORD = 0x03  # addr(A) data(D)        → nothing
CMD_READ_WORD = 0x04  # addr(A)                 → MSG_WORD data (in command order)
CMD_INPUT = 0x05  # n(1) label(LB) n·P pixels(PB each) → n beats of the core's input stream
CMD_INFO = 0x06  # —                            → MSG_INFO

# device → host (message tags)
MSG_SYNC = 0x80  # token(1)
MSG_REG = 0x82  # addr(1) value(4)
MSG_WORD = 0x84  # data(D)
MSG_INFO = 0x86  # version(1) rx_fifo_depth(2) link spec_id(4)
MSG_PRED = 0x90  # pred(LB)
MSG_DUMP = 0x91  # dump beat(DD)
MSG_ERROR = 0xFF  # code(1) opcode(1)

ERR_UNKNOWN_OPCODE = 1
ERR_TIMEOUT = 2  # the command's bytes stopped arriving for timeout_cycles; the parser was reset

REG_ADDR_LIMIT = 16  # the core's register port has 4 address bits
MIN_RX_FIFO_DEPTH = 16


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
    def pixel_bytes(self) -> int:
        return _bytes(self.spec.input_bits)

    @property
    def dump_bits(self) -> int:
        return sum(w for _, w in self.spec.dump_fields())

    @property
    def dump_bytes(self) -> int:
        return _bytes(self.dump_bits)

    @property
    def beat_bytes(self) -> int:
        """Pixel bytes of one input beat (P pixels)."""
        return self.spec.lanes * self.pixel_bytes

    def arg_bytes(self, opcode: int) -> int:
        """Bytes following the opcode that the parser collects before acting (INPUT: n and label)."""
        return {CMD_SYNC: 1, CMD_WRITE_REG: 5, CMD_READ_REG: 1, CMD_WRITE_WORD: self.addr_bytes + self.word_bytes,
                CMD_READ_WORD: self.addr_bytes, CMD_INPUT: 1 + self.label_bytes, CMD_INFO: 0}[opcode]

    @property
    def max_arg_bytes(self) -> int:
        return max(self.arg_bytes(op) for op in COMMANDS)

    def payload_bytes(self, tag: int) -> int:
        """Bytes following a device → host message tag."""
        sizes = {MSG_SYNC: 1, MSG_REG: 5, MSG_WORD: self.word_bytes, MSG_INFO: 7, MSG_PRED: self.label_bytes,
                 MSG_DUMP: self.dump_bytes, MSG_ERROR: 2}
        if tag not in sizes:
            raise ValueError(f"unknown message tag 0x{tag:02x}")
        return sizes[tag]

    @property
    def max_message_bytes(self) -> int:
        return 1 + max(self.payload_bytes(t) for t in MESSAGES)

    def min_rx_fifo_depth(self) -> int:
        """Smallest receive FIFO the host driver can work with: the longest fixed command, a one-beat
        INPUT command, and a SYNC behind either."""
        return max(MIN_RX_FIFO_DEPTH, 1 + self.max_arg_bytes + 2, 2 + self.label_bytes + self.beat_bytes + 2)


COMMANDS = (CMD_SYNC, CMD_WRITE_REG, CMD_READ_REG, CMD_WRITE_WORD, CMD_READ_WORD, CMD_INPUT, CMD_INFO)
MESSAGES = (MSG_SYNC, MSG_REG, MSG_WORD, MSG_INFO, MSG_PRED, MSG_DUMP, MSG_ERROR)
