"""Ternary weights in 2T2R RRAM read by a precharge sense amplifier (PCSA), and the fault injector.

The one definition of the numbers and random-bit use of :class:`hdl.ternary_mem.TernaryWeightMemory`;
:mod:`golden.ternary.memory` vectorises it and the tests compare the two bit for bit.

Cells
-----
A weight is one 2T2R cell: two devices, each in the low (LRS, bit 1) or high (HRS, bit 0)
resistance state. Bit 0 of a cell is the left device (the "+" branch), bit 1 the right device:

======  =====================  ======
cell    devices (left, right)  weight
======  =====================  ======
``01``  (LRS, HRS)             +1
``10``  (HRS, LRS)             −1
``00``  (HRS, HRS)             0
``11``  (LRS, LRS)             illegal (never programmed by the flow; counted when sensed)
======  =====================  ======

A memory word holds P cells, cell i in bits ``[2i, 2i+2)`` (:func:`pack_cells`).

PCSA read (:func:`sense`)
-------------------------
The PCSA precharges both branches and lets them discharge through the devices; the faster (LRS)
side trips the latch. ``01`` reads +1 and ``10`` reads −1 at any supply. ``00`` reads 0 at
**near-threshold** supply (neither side trips inside the sense window) and resolves at random to
±1 at **nominal** supply. ``11`` (both sides fast) is a race: it resolves at random to ±1 at any
supply and is counted as illegal.

Fault injector (:func:`inject`)
-------------------------------
Two kinds, each with two integer thresholds of :data:`RATE_BITS` bits (``rate_zero`` for cells
holding 0, ``rate_nonzero`` for cells holding ±1; :func:`rate_thresholds` derives them from an
error rate p):

* **adjacent** (ternary; ALGORITHMS.md §4): a ``00`` cell becomes ±1 (``01`` or ``10``) when
  ``r < rate_zero``; a ``01``/``10`` cell becomes ``00`` when ``r < rate_nonzero``. Never a sign
  flip. With ``rate_zero ≈ 2^24·2p/(1+p0)`` and ``rate_nonzero ≈ 2^24·p/(1+p0)`` the mean error
  rate over a matrix whose zero fraction is p0 is p.
* **flip** (binary): a ``01``/``10`` cell swaps to ``10``/``01`` when ``r < rate_nonzero``;
  ``00`` cells are left alone.

``11`` cells are never changed. Modes: **off**; **static**: the injector acts on the cells being
programmed (the faulty cells are what is stored, as on a chip); **dynamic**: it acts on the cells
being read (the stored cells do not change; every read draws anew).

Random bits
-----------
Memories with ``fault_injection`` have one PRNG: :mod:`spec.prng`'s xorshift bank, 32-bit lanes, P
lanes (lane i serves cell i), lane i starting ``i·prng_jump`` steps after lane 0. It is seeded at
reset from ``seed`` and by every write of ``REG_SEED`` (P cycles to refill the lanes, then one
priming step; the memory is busy meanwhile). Draw n after a seeding sees every lane's output word
(:func:`spec.prng.scramble` of its state) after n + 1 steps. **Every PCSA read and every
programming write draws once**, whatever the mode and supply (so the stream position depends only
on the sequence of accesses); raw read-backs through the program port do not draw. Bits of lane
i's word used for cell i: ``r`` = bits 0…23 (compared with the thresholds), bit 30 = the PCSA's
random resolution (0 → +1, 1 → −1), bit 31 = the sign of a 0 → ±1 error (0 → +1, 1 → −1).

Update port (training cores)
----------------------------
A memory with ``update_port`` (the weight memory of a ternary core that trains on chip) has a
second way in for the core's weight update, beside the program port:

* **raw reads** (``rd_en`` with ``rd_raw``): the stored cells of a word, no PCSA, no draw, not
  counted as a PCSA read;
* **update writes** (``up_en``, ``up_addr``, ``up_data``, ``up_mask``): program the word's cells.
  Every update write draws once (like a programming write); in static mode the injector acts on
  the cells whose ``up_mask`` bit is set (the cells the update reprograms), the others are stored
  as given (the core passes their stored cells back unchanged). A raw read and an update write may
  share a cycle (different words): the storage is then a simple dual-port RAM.

Memories without ``fault_injection`` have no PRNG: only near-threshold sensing, no injector; the
control register reads 0 and ignores writes (``11`` cells then read as +1, deterministically).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from .checks import choice as _choice
from .checks import int_in as _int
from .prng import LaneBank, lane_limit_message
from .specfile import SpecFile

SPEC_FORMAT = "epforge-ternary-memory-spec/1"
PRNG_WIDTH = 32
RATE_BITS = 24  # comparison width of the injector: P(error) = threshold / 2^24
RATE_MAX = 1 << RATE_BITS  # a threshold of 2^24 means probability 1
PCSA_BIT = 30  # lane-word bit giving an HRS/HRS (nominal supply) or LRS/LRS read its random sign
SIGN_BIT = 31  # lane-word bit giving a 0 → ±1 error its sign

CELL_ZERO, CELL_PLUS, CELL_MINUS, CELL_ILLEGAL = 0b00, 0b01, 0b10, 0b11

MODES = ("off", "static", "dynamic")
KINDS = ("adjacent", "flip")
SUPPLIES = ("near-threshold", "nominal")

# Register map (word addresses on the block's register port, hdl.regport.RegSignature).
REG_CTRL = 0  # R/W: bits 1:0 mode (0 off, 1 static, 2 dynamic), bit 2 kind (1 = flip), bit 3 nominal supply
REG_RATE_ZERO = 1  # R/W: threshold for cells holding 0 (RATE_BITS + 1 bits)
REG_RATE_NONZERO = 2  # R/W: threshold for cells holding ±1
REG_SEED = 3  # W: reseed the PRNG (folded by spec.prng.seed_state); R: the last seed written
REG_STATUS = 8  # R: bit 0 busy (seeding)
REG_INJECTED = 9  # R: cells changed by the injector (saturating); W: clear
REG_ILLEGAL = 10  # R: (LRS, LRS) cells sensed by reads (saturating); W: clear
REG_SPEC_ID = 11  # R: low 32 bits of the spec digest
REG_READS = 12  # R: PCSA reads (words; saturating); W: clear
REG_BITS = 32
COUNTER_MAX = (1 << REG_BITS) - 1
CTRL_KIND_FLIP, CTRL_NOMINAL = 4, 8


# --- cells ----------------------------------------------------------------------------------------
def encode(t: int) -> int:
    """The cell of ternary weight ``t`` ∈ {−1, 0, +1}."""
    if isinstance(t, bool) or t not in (-1, 0, 1):
        raise ValueError(f"a ternary weight must be -1, 0 or 1, not {t!r}")
    return {1: CELL_PLUS, -1: CELL_MINUS, 0: CELL_ZERO}[t]


def pack_cells(cells: list[int]) -> int:
    """A memory word: cell i in bits [2i, 2i+2)."""
    word = 0
    for i, c in enumerate(cells):
        _int(f"cells[{i}]", c, 0, 3)
        word |= c << (2 * i)
    return word


def unpack_cells(word: int, lanes: int) -> list[int]:
    return [(int(word) >> (2 * i)) & 3 for i in range(lanes)]


def sense(cell: int, supply: str, word: int = 0) -> tuple[int, bool]:
    """PCSA read of one cell: (weight, illegal). ``word`` is the cell's lane word of this read's draw."""
    _int("cell", cell, 0, 3)
    _choice("supply", supply, SUPPLIES)
    rand = -1 if (word >> PCSA_BIT) & 1 else 1
    if cell == CELL_PLUS:
        return 1, False
    if cell == CELL_MINUS:
        return -1, False
    if cell == CELL_ZERO:
        return (0 if supply == "near-threshold" else rand), False
    return rand, True


def inject(cell: int, word: int, kind: str, rate_zero: int, rate_nonzero: int) -> int:
    """The cell after the injector, given this access's lane word (see the module docstring)."""
    _int("cell", cell, 0, 3)
    _choice("kind", kind, KINDS)
    r = word & (RATE_MAX - 1)
    if cell in (CELL_PLUS, CELL_MINUS) and r < rate_nonzero:
        return CELL_ZERO if kind == "adjacent" else cell ^ 0b11
    if cell == CELL_ZERO and kind == "adjacent" and r < rate_zero:
        return CELL_MINUS if (word >> SIGN_BIT) & 1 else CELL_PLUS
    return cell


# --- error rates ------------------------------------------------------------------------------------
def transition_probabilities(p: float, p0: float, kind: str = "adjacent") -> tuple[float, float]:
    """(q_zero, q_nonzero): probability that a cell holding 0 / ±1 is hit, for mean error rate ``p``.

    adjacent (ternary): q_zero = 2p/(1+p0) (to +1 or −1, equally likely), q_nonzero = p/(1+p0)
    (to 0), so that ``p0·q_zero + (1−p0)·q_nonzero = p``. flip (binary): (0, p).

    Raises
    ------
    ValueError
        For p or p0 outside [0, 1], an unknown kind, or a p for which q_zero would exceed 1.
    """
    _choice("kind", kind, KINDS)
    for name, v in (("p", p), ("p0", p0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], not {v!r}")
    if kind == "flip":
        return 0.0, float(p)
    q0, q1 = 2.0 * p / (1.0 + p0), p / (1.0 + p0)
    if q0 > 1.0:
        raise ValueError(f"p must be at most (1+p0)/2 = {(1 + p0) / 2} for adjacent errors, not {p!r}")
    return q0, q1


def rate_threshold(q: float) -> int:
    """The injector threshold of probability ``q``: ``clip(⌊2^24·q + ½⌋, 0, 2^24)`` (exact)."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= float(q) <= 1.0:
        raise ValueError(f"q must be a probability in [0, 1], not {q!r}")
    return min(max(math.floor(Fraction(q) * RATE_MAX + Fraction(1, 2)), 0), RATE_MAX)


def rate_thresholds(p: float, p0: float, kind: str = "adjacent") -> tuple[int, int]:
    """(rate_zero, rate_nonzero) register values for mean error rate ``p`` and zero fraction ``p0``."""
    q0, q1 = transition_probabilities(p, p0, kind)
    return rate_threshold(q0), rate_threshold(q1)


def ctrl_value(mode: str = "off", kind: str = "adjacent", supply: str = "near-threshold") -> int:
    """``REG_CTRL`` for a mode, error kind and PCSA supply."""
    flip = _choice("kind", kind, KINDS) == "flip"
    nominal = _choice("supply", supply, SUPPLIES) == "nominal"
    mode_bits = MODES.index(_choice("mode", mode, MODES))
    return mode_bits | (CTRL_KIND_FLIP if flip else 0) | (CTRL_NOMINAL if nominal else 0)


def decode_ctrl(value: int) -> tuple[str, str, str]:
    """(mode, kind, supply) of a ``REG_CTRL`` value; mode 3 reads as off."""
    m = value & 3
    return (MODES[m] if m < 3 else "off", "flip" if value & CTRL_KIND_FLIP else "adjacent",
            "nominal" if value & CTRL_NOMINAL else "near-threshold")


@dataclass(frozen=True)
class TernaryMemorySpec(LaneBank, SpecFile):
    """A ternary weight memory: ``depth`` words of ``lanes`` cells, optional fault injection.

    Register reset values: ``mode``, ``kind``, ``supply``, ``rate_zero``, ``rate_nonzero``, ``seed``.

    Raises
    ------
    ValueError
        Naming the field, its value and what is allowed.
    """

    FORMAT: ClassVar[str] = SPEC_FORMAT
    depth: int = 1024
    lanes: int = 16
    fault_injection: bool = True
    mode: str = "off"
    kind: str = "adjacent"
    supply: str = "near-threshold"
    rate_zero: int = 0
    rate_nonzero: int = 0
    seed: int = 1
    update_port: bool = False

    def __post_init__(self) -> None:
        _int("depth", self.depth, 1, 1 << 20)
        if not isinstance(self.update_port, bool):
            raise ValueError(f"update_port must be a bool (true/false), not {self.update_port!r}")
        _int("lanes", self.lanes, 1, 256)
        if not isinstance(self.fault_injection, bool):
            raise ValueError(f"fault_injection must be a bool (true/false), not {self.fault_injection!r}")
        _choice("mode", self.mode, MODES)
        _choice("kind", self.kind, KINDS)
        _choice("supply", self.supply, SUPPLIES)
        if not self.fault_injection and (self.mode, self.supply) != ("off", "near-threshold"):
            raise ValueError(f"a memory without fault_injection has mode 'off' and supply 'near-threshold', "
                             f"not mode={self.mode!r}, supply={self.supply!r}")
        _int("rate_zero", self.rate_zero, 0, RATE_MAX)
        _int("rate_nonzero", self.rate_nonzero, 0, RATE_MAX)
        _int("seed", self.seed, 0, (1 << REG_BITS) - 1)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if not self.update_port:  # added later: memories without it keep their digests
            del d["update_port"]
        return d

    @property
    def independent_accesses(self) -> int | None:
        """Accesses (PCSA reads and programming/update writes, one draw each) since a seeding before
        PRNG lane i + 1 repeats lane i: ``prng_jump``; ``None`` without ``fault_injection`` (no PRNG)."""
        return self.prng_jump if self.fault_injection else None

    def access_limit_message(self, accesses: int, what: str = "accesses", fields: str = "",
                             unit: str = "access") -> str | None:
        """Why ``accesses`` draws of the fault injector reuse its lanes; ``None`` if they do not.
        ``what``/``unit`` name the unit counted (plural/singular), ``fields`` the caller's spec fields
        (default: this spec's)."""
        return lane_limit_message(
            what, fields or f"ternary memory lanes={self.lanes}, fault_injection={self.fault_injection}",
            1 if self.fault_injection else 0, self.prng_jump, (1 << 32) - 1, accesses,
            "run fewer images/samples or relaxation steps per seeding (reseed between runs)", unit)

    @property
    def word_bits(self) -> int:
        return 2 * self.lanes

    @property
    def addr_bits(self) -> int:
        return max(1, (self.depth - 1).bit_length())

    @property
    def ctrl_reset(self) -> int:
        return ctrl_value(self.mode, self.kind, self.supply) if self.fault_injection else 0

    # --- program port payloads (bit 0 first, spec.ep_core.pack_fields) ----------------------------
    def cmd_fields(self) -> list[tuple[str, int]]:
        """Program command: write the cells ``data`` to word ``addr`` (write=1) or read them back raw."""
        return [("data", self.word_bits), ("addr", self.addr_bits), ("write", 1)]

    def rsp_fields(self) -> list[tuple[str, int]]:
        return [("data", self.word_bits)]
