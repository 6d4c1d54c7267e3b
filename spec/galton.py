"""Specification of the domain-wall Galton-board emulator (ALGORITHMS.md §5): sizes, numbers, random bits.

One :class:`GaltonSpec` travels the whole way: the Amaranth generator (:mod:`hdl.galton`), the
bit-exact twin (:class:`golden.domainwall.GaltonTwin`), the cocotb bench and the build manifest;
its :meth:`~GaltonSpec.digest` identifies the numbers.

The board (N = ``rows``)
------------------------
A ball enters at position 0 and meets one junction per row. Junction ``j`` of row ``i``
(``0 ≤ j ≤ i < N``) is the one reached after ``j`` right turns; from it the ball goes RIGHT
(position ``j + 1``) or LEFT (position ``j``). The output bin is the number of right turns,
``0 … N`` (N + 1 bins). ``boards`` = B independent boards run side by side.

Probabilities are k-bit thresholds (k = ``prob_bits``)
------------------------------------------------------
Each junction holds a threshold ``t`` of **k + 1 bits**, ``0 ≤ t ≤ 2^k``. A fresh k-bit uniform
random number ``r`` (``0 ≤ r < 2^k``) is drawn per junction visit, and the ball goes RIGHT iff
``r < t``; so ``P(right) = t / 2^k`` exactly. The extra bit makes both ``p = 0`` (``t = 0``) and
``p = 1`` (``t = 2^k``) representable; a written value above ``2^k`` is stored as ``2^k``
(saturation). Out of reset every threshold is ``2^(k-1)`` (p = ½, a symmetric board).

Field → threshold (:func:`threshold`): ``p(H) = 1 / (1 + exp(−(H − H0)/w))`` (the logistic of
ALGORITHMS.md §5), ``t = clip(⌊2^k·p(H) + ½⌋, 0, 2^k)`` — round half up, computed exactly on the
binary value of the float ``p`` (``fractions.Fraction``), so ``H = H0`` gives ``t = 2^(k-1)``,
p = ½ exactly, and ``t`` is non-decreasing in ``H``.

Chirality memory (``correlated``)
---------------------------------
Every junction has two thresholds: table ``c = 0`` ("after left") and table ``c = 1`` ("after
right"). With the correlation switch off, only table 0 is used. With it on, row ``i ≥ 1`` uses
the table named by the ball's previous turn (0 after a LEFT turn in row ``i − 1``, 1 after a
RIGHT turn); row 0 has no previous turn and always uses table 0, so ``t[0][0][0]`` is the first
junction's unconditioned probability. Making "after right" likelier to go right (sticky
chirality) correlates successive turns and widens the distribution beyond the binomial.

Random bits (exactly which bit decides which turn)
--------------------------------------------------
The PRNG is :mod:`spec.prng`'s xorshift bank of width w = ``prng_width`` with
``B · Lb`` lanes, ``Lb = ⌈N / F⌉`` lanes per board, ``F = ⌊w / k⌋`` k-bit fields per lane word.
Lane ``l`` starts ``l · prng_jump`` steps after lane 0 (seeded from ``seed``).

* All lanes advance together by one step per ball (one ball per board per step).
* Ball ``n`` (n = 0, 1, … since the last seeding or reset) uses every lane's ``(n+1)``-th output,
  i.e. the output word (:func:`spec.prng.scramble`, the "**" scrambler) of the state after
  ``n + 1`` steps; the seeded state itself is never used as random bits.
* In board ``b``, row ``i`` draws ``r`` from lane ``b·Lb + ⌊i / F⌋``, bits
  ``[(i mod F)·k, (i mod F)·k + k)`` of its word (fields consumed LSB-first, row by row).

So a ball consumes N·k random bits per board (:attr:`GaltonSpec.random_bits_per_ball`) out of the
``Lb · w`` generated (the rest, ``w mod k`` bits and the unused fields of a board's last lane, are
discarded), and the hardware needs no more than one PRNG step per ball: one ball per cycle per
board. Lanes are disjoint for ``prng_jump`` steps: beyond that many balls, lane ``l + 1``'s
words repeat lane ``l``'s (the default ``prng_jump`` is the largest power of two the period
allows, at most 2^62).

Limits (:attr:`GaltonSpec.independent_balls`, :meth:`GaltonSpec.check_balls`): every lane is a
fixed jump of lane 0, so a ball is a function of one w-bit state and the ball stream repeats after
2^w − 1 balls; n balls are n distinct states of that period, drawn *without replacement*, so a
histogram's chi-square statistic shrinks by 1 − n/2^w (w = 16: a 60,000-ball histogram fits the
exact distribution far too well). Balls are independent draws up to ``min(prng_jump, 2^w/2^10)``
per board since a seeding. w = 16 allows 64 balls at most (it is for small RTL tests); w = 32
allows 2^22 (and its fields fail dieharder's 32×32 binary-rank test: 32 words ``M^e·x`` have
the same rank for every state x, as ``Σ c_e M^e`` is 0 or invertible); the default w = 64 allows 2^54.

Hardware interface constants (registers and the memory map) live here too, shared by the RTL,
its host-side drivers and the twin.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from .checks import int_in as _int
from .prng import TRIPLES, PRNGSpec
from .specfile import SpecFile

SPEC_FORMAT = "epforge-galton-spec/1"

MAX_ROWS = 64
RANDOMNESS_MARGIN_BITS = 10  # independent balls: at most 2^w / 2^10 (GaltonSpec.independent_balls)
MAX_BOARDS = 64
REG_BITS = 32

# Register map (word addresses on the ``reg`` port; 32-bit data, combinational read).
REG_CTRL = 0  # R/W, bit 0: correlated (chirality memory on); bit 1: histogram only (no `out` beats)
REG_SEED = 1  # R/W: writing reseeds the PRNG (lanes refilled through the jump network)
REG_BALLS = 2  # R/W: balls per board for the next START; 0 = run until STOP
REG_CMD = 3  # W: bit 0 START, bit 1 STOP, bit 2 CLEAR (histograms and the ball counter); reads 0
REG_STATUS = 8  # R: bit 0 running, bit 1 clearing, bit 2 seeding, bit 3 a ball waits on `out`,
#                  bit 4 a write was refused (sticky; any write of REG_STATUS clears it)
REG_DONE = 9  # R: balls per board generated since the last CLEAR (saturating)
REG_REMAINING = 10  # R: balls per board still to generate in this run (0 while running unlimited)
REG_SPEC_ID = 11  # R: low 32 bits of the spec digest

CTRL_CORRELATED, CTRL_HIST_ONLY = 1, 2
CMD_START, CMD_STOP, CMD_CLEAR = 1, 2, 4
STATUS_RUNNING, STATUS_CLEARING, STATUS_SEEDING, STATUS_PENDING = 1, 2, 4, 8
STATUS_WRITE_REFUSED = 16
WRITABLE_REGS = (REG_CTRL, REG_SEED, REG_BALLS, REG_CMD, REG_STATUS)


def _real(name: str, v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{name} must be a finite real number, not {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite real number, not {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite real number, not {v!r}")
    return f


def probability(H: float, H0: float = 0.0, w: float = 1.0) -> float:
    """``p(H) = 1 / (1 + exp(−(H − H0)/w))``: probability of a RIGHT turn at field ``H``.

    ``w > 0`` is the width of the switching window. Evaluated without overflow for any finite
    field; ``p(H0) = 0.5`` exactly.

    Raises
    ------
    ValueError
        For a non-finite ``H``/``H0`` or a ``w`` that is not a positive finite number.
    """
    H, H0, w = _real("H", H), _real("H0", H0), _real("w", w)
    if not w > 0:
        raise ValueError(f"w must be a positive finite number, not {w!r}")
    z = (H - H0) / w
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z)) if z < 800 else 1.0
    return math.exp(z) / (1.0 + math.exp(z)) if z > -800 else 0.0


def quantize_probability(p: float, k: int) -> int:
    """The k-bit threshold of probability ``p``: ``clip(⌊2^k·p + ½⌋, 0, 2^k)`` (round half up).

    Exact: the float ``p`` is taken at its binary value, so no rounding of ``2^k·p + ½`` can move
    a value across an integer.

    Raises
    ------
    ValueError
        For ``k`` outside 1..16 or ``p`` outside [0, 1].
    """
    _int("k", k, 1, 16)
    p = _real("p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], not {p!r}")
    t = math.floor(Fraction(p) * (1 << k) + Fraction(1, 2))
    return min(max(t, 0), 1 << k)


def threshold(H: float, H0: float, w: float, k: int) -> int:
    """Junction threshold for field ``H``: ``quantize_probability(probability(H, H0, w), k)``.

    The ball goes RIGHT iff a k-bit uniform ``r < threshold``, so ``P(right) = threshold / 2^k``.
    ``threshold(H0, H0, w, k) == 2^(k-1)`` (p = ½ exactly) and the result is non-decreasing in ``H``.
    """
    _int("k", k, 1, 16)
    return quantize_probability(probability(H, H0, w), k)


def _auto_jump(width: int, lanes: int) -> int:
    """Largest power of two J with lanes·J ≤ 2^w − 2 (PRNGSpec's bound), at most 2^62 (a TOML integer)."""
    limit = min(((1 << width) - 2) // lanes, 1 << 62)
    if limit < 1:
        raise ValueError(f"{lanes} PRNG lanes do not fit the period 2^{width}-1 of a {width}-bit xorshift; "
                         f"use a wider prng_width")
    return 1 << (limit.bit_length() - 1)


@dataclass(frozen=True)
class GaltonSpec(SpecFile):
    """The Galton-board emulator's numbers. Validates itself on construction.

    Parameters
    ----------
    rows : N, rows of junctions (1..64); N + 1 output bins.
    boards : B, boards running in parallel (1..64), one ball each per cycle.
    prob_bits : k (1..16): thresholds are k + 1 bits, ``0 … 2^k``; each junction visit draws k
        random bits.
    prng_width : xorshift width (16, 32 or 64; :mod:`spec.prng`; default 64: see "Limits" above).
    prng_jump : steps between successive PRNG lanes (default: the largest power of two, at most
        2^62, that keeps every lane disjoint; resolved on construction).
    seed : reset value of the seed register (0 .. 2^32 − 1; :func:`spec.prng.seed_state`).
    correlated : reset value of the chirality-memory switch (``REG_CTRL`` bit 0).
    bin_bits : width of each histogram counter (1..32); counters saturate at ``2^bin_bits − 1``.
    count_bits : width of the ball-count registers ``REG_BALLS``/``REG_DONE`` (1..32).

    Raises
    ------
    ValueError
        Naming the field, the value and what is allowed.
    """

    FORMAT: ClassVar[str] = SPEC_FORMAT

    rows: int = 16
    boards: int = 1
    prob_bits: int = 8
    prng_width: int = 64
    prng_jump: int | None = None
    seed: int = 1
    correlated: bool = False
    bin_bits: int = 32
    count_bits: int = 32

    def __post_init__(self) -> None:
        _int("rows", self.rows, 1, MAX_ROWS, f"a positive integer (at most {MAX_ROWS})")
        _int("boards", self.boards, 1, MAX_BOARDS, f"a positive integer (at most {MAX_BOARDS})")
        _int("prob_bits", self.prob_bits, 1, 16)
        if isinstance(self.prng_width, bool) or self.prng_width not in TRIPLES:
            raise ValueError(f"prng_width must be one of {sorted(TRIPLES)}, not {self.prng_width!r}")
        _int("seed", self.seed, 0, (1 << REG_BITS) - 1)
        if not isinstance(self.correlated, bool):
            raise ValueError(f"correlated must be a bool (true/false), not {self.correlated!r}")
        _int("bin_bits", self.bin_bits, 1, 32)
        _int("count_bits", self.count_bits, 1, 32)
        lanes = self.lanes
        if self.prng_jump is None:
            object.__setattr__(self, "prng_jump", _auto_jump(self.prng_width, lanes))
        _int("prng_jump", self.prng_jump, 1, (1 << 63) - 1, "a positive integer below 2^63")
        try:
            PRNGSpec(width=self.prng_width, lanes=lanes, jump=self.prng_jump, seed=self.seed)
        except ValueError as e:
            raise ValueError(f"prng_jump={self.prng_jump} does not fit {lanes} lanes of a {self.prng_width}-bit "
                             f"xorshift: {e}") from None

    # --- random bits ----------------------------------------------------------------------------
    @property
    def fields_per_word(self) -> int:
        """F: k-bit random fields in one lane word."""
        return self.prng_width // self.prob_bits

    @property
    def lanes_per_board(self) -> int:
        """Lb = ⌈N / F⌉."""
        return -(-self.rows // self.fields_per_word)

    @property
    def lanes(self) -> int:
        return self.boards * self.lanes_per_board

    @property
    def random_bits_per_ball(self) -> int:
        """Random bits one ball consumes on one board: N·k."""
        return self.rows * self.prob_bits

    @property
    def generated_bits_per_ball(self) -> int:
        """PRNG bits produced per ball and board (Lb·w)."""
        return self.lanes_per_board * self.prng_width

    def random_field(self, board: int, row: int) -> tuple[int, int]:
        """``(lane, bit offset)`` of the k-bit field that decides ``row`` of ``board``."""
        _int("board", board, 0, self.boards - 1)
        _int("row", row, 0, self.rows - 1)
        F = self.fields_per_word
        return board * self.lanes_per_board + row // F, (row % F) * self.prob_bits

    def prng_spec(self, seed: int | None = None) -> PRNGSpec:
        return PRNGSpec(width=self.prng_width, lanes=self.lanes, jump=self.prng_jump,
                        seed=self.seed if seed is None else seed)

    # --- limits of the random bits ----------------------------------------------------------------
    @property
    def ball_period(self) -> int:
        """Balls after which the ball stream repeats exactly: the period 2^w − 1 (every lane is a
        fixed GF(2) jump of lane 0, so a ball is a function of lane 0's w-bit state)."""
        return (1 << self.prng_width) - 1

    @property
    def independent_balls(self) -> int:
        """Balls per board (since a seeding) that are independent draws: ``min(prng_jump, ⌊2^w / 2^10⌋)``.

        Beyond ``prng_jump`` balls lane l + 1 repeats lane l (ball n + jump reuses ball n's fields in
        other rows); and n balls are n distinct states of one period of 2^w − 1, i.e. drawn without
        replacement: a histogram's chi-square statistic shrinks by the factor 1 − n/2^w (at w = 16
        and 60,000 balls to 8 %: histograms fit "too well"). ``n ≤ 2^w / 1024`` keeps that below 0.1 %.
        """
        return min(self.prng_jump, (1 << self.prng_width) >> RANDOMNESS_MARGIN_BITS)

    def randomness_limit_message(self, balls: int) -> str | None:
        """Why ``balls`` balls per board are not independent draws under this spec; ``None`` if they are."""
        _int("balls", balls, 0)
        if balls <= self.independent_balls:
            return None
        w, P = self.prng_width, self.ball_period
        boards = f"{self.boards} board{'s' * (self.boards != 1)}"
        return (f"prng_width={w}: the xorshift has period 2^{w}-1 = {P} balls and {self.lanes} lanes "
                f"({boards} × {self.lanes_per_board}) spaced prng_jump={self.prng_jump} steps; every ball "
                f"uses {self.random_bits_per_ball * self.boards} bits ({boards} × {self.rows} rows × "
                f"{self.prob_bits} bits) of one step: {balls} balls per board "
                + (f"repeat the stream (beyond {P} balls) " if balls > P else
                   f"reuse lanes (beyond prng_jump={self.prng_jump} balls) " if balls > self.prng_jump else
                   f"cover {100 * balls / P:.2g} % of the period ")
                + f"and are not independent draws (histograms fit too well); at most {self.independent_balls} "
                f"balls per board are (min(prng_jump, 2^{w}/2^{RANDOMNESS_MARGIN_BITS}))"
                + (" — use prng_width=64" if w < 64 else ""))

    def check_balls(self, balls: int) -> None:
        """Refuse a run of ``balls`` balls per board whose balls are not independent draws.

        Raises
        ------
        ValueError
            With :meth:`randomness_limit_message`: the width, period, lanes, bits per ball and the limit.
        """
        msg = self.randomness_limit_message(balls)
        if msg is not None:
            raise ValueError(msg)

    # --- writes the board refuses (one rule for hdl.galton and the twin) -------------------------
    def register_write_error(self, addr: int, value: int) -> str | None:
        """Why the board refuses a register write of ``value`` to ``addr``; ``None`` if it takes it.

        A refused write changes no register (no truncation) and sets ``STATUS_WRITE_REFUSED``
        (``REG_STATUS`` bit 4, sticky); any write of ``REG_STATUS`` clears it. Refused: BALLS of
        ``2^count_bits`` or more, CTRL with bits above 1, CMD with bits above 2, and writes of a
        read-only (DONE, REMAINING, SPEC_ID) or unmapped address. A valid CTRL/SEED/BALLS write while
        the board is not idle is ignored without a flag (as before).
        """
        _int("addr", addr, 0, 15)
        _int("value", value, 0, (1 << REG_BITS) - 1)
        if addr == REG_BALLS and value >> self.count_bits:
            return f"BALLS={value} above 2^count_bits-1 = {(1 << self.count_bits) - 1}"
        if addr == REG_CTRL and value >> 2:
            return f"CTRL={value:#x} sets bits above 1"
        if addr == REG_CMD and value >> 3:
            return f"CMD={value:#x} sets bits above 2"
        if addr not in WRITABLE_REGS:
            return f"register {addr} is read-only or unmapped"
        return None

    def memory_write_error(self, addr: int, data: int) -> str | None:
        """Why the board refuses a ``cmd`` write of ``data`` to ``addr``; ``None`` if it takes (or, for a
        histogram or unused address, ignores) it. Refused, and flagged like a register write
        (``STATUS_WRITE_REFUSED``): a threshold above ``threshold_max`` = 2^k (no clamping)."""
        _int("addr", addr, 0, (1 << self.addr_bits) - 1)
        _int("data", data, 0, (1 << self.data_bits) - 1)
        rb = self.row_bits
        c, i, j = addr >> (2 * rb), (addr >> rb) & ((1 << rb) - 1), addr & ((1 << rb) - 1)
        if not addr & self.hist_base and c <= 1 and i < self.rows and j <= i and data > self.threshold_max:
            return f"threshold {data} at address {addr} above 2^prob_bits = {self.threshold_max}"
        return None

    # --- numbers --------------------------------------------------------------------------------
    @property
    def threshold_max(self) -> int:
        """2^k: the threshold of p = 1."""
        return 1 << self.prob_bits

    @property
    def threshold_bits(self) -> int:
        return self.prob_bits + 1

    @property
    def n_bins(self) -> int:
        return self.rows + 1

    @property
    def bin_index_bits(self) -> int:
        """Width of one bin index (0 … N) in the ``out`` stream."""
        return max(1, self.rows.bit_length())

    @property
    def counter_max(self) -> int:
        return (1 << self.bin_bits) - 1

    def threshold(self, H: float, H0: float = 0.0, w: float = 1.0) -> int:
        """:func:`threshold` at this spec's ``prob_bits``."""
        return threshold(H, H0, w, self.prob_bits)

    # --- memory map of the cmd/rsp port ------------------------------------------------------------
    @property
    def row_bits(self) -> int:
        return max(1, (self.rows - 1).bit_length())

    @property
    def board_bits(self) -> int:
        return (self.boards - 1).bit_length()

    @property
    def region_bits(self) -> int:
        return max(2 * self.row_bits + 1, self.board_bits + self.bin_index_bits)

    @property
    def hist_base(self) -> int:
        return 1 << self.region_bits

    @property
    def addr_bits(self) -> int:
        return self.region_bits + 1

    @property
    def data_bits(self) -> int:
        return max(self.threshold_bits, self.bin_bits)

    def threshold_addr(self, table: int, row: int, junction: int) -> int:
        """Word address of threshold ``t[table][row][junction]`` (table 0: after left, 1: after right).

        ``(table << 2·row_bits) | (row << row_bits) | junction``; addresses with ``junction > row``
        hold nothing (writes ignored, reads 0).
        """
        _int("table", table, 0, 1)
        _int("row", row, 0, self.rows - 1)
        _int("junction", junction, 0, row, f"an integer in 0..row={row}")
        return (table << (2 * self.row_bits)) | (row << self.row_bits) | junction

    def hist_addr(self, board: int, bin: int) -> int:
        """Word address of histogram counter ``bin`` of ``board`` (read-only)."""
        _int("board", board, 0, self.boards - 1)
        _int("bin", bin, 0, self.rows)
        return self.hist_base | (board << self.bin_index_bits) | bin

    def memory_map(self) -> list[dict[str, Any]]:
        return [
            {"name": "thresholds", "base": 0, "words": 2 << (2 * self.row_bits), "bits": self.threshold_bits,
             "access": "rw", "addr": "(table << 2*row_bits) | (row << row_bits) | junction, junction <= row"},
            {"name": "histogram", "base": self.hist_base, "words": self.boards << self.bin_index_bits,
             "bits": self.bin_bits, "access": "r", "addr": "hist_base | (board << bin_index_bits) | bin"},
        ]

    # --- stream payloads (bit 0 first, as spec.ep_core.pack_fields) ------------------------------
    def out_fields(self) -> list[tuple[str, int]]:
        """One beat per ball slot: board b's bin index in field ``bins[b]``."""
        return [(f"bins[{b}]", self.bin_index_bits) for b in range(self.boards)]

    def cmd_fields(self) -> list[tuple[str, int]]:
        """Memory command: write ``data`` to ``addr`` (write=1) or read ``addr`` (write=0)."""
        return [("data", self.data_bits), ("addr", self.addr_bits), ("write", 1)]

    def rsp_fields(self) -> list[tuple[str, int]]:
        """Memory response, one per read command."""
        return [("data", self.data_bits)]

    # --- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GaltonSpec:
        d = dict(d)
        fmt = d.pop("format", SPEC_FORMAT)
        if fmt != SPEC_FORMAT:
            raise ValueError(f"format must be {SPEC_FORMAT!r}, not {fmt!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown Galton spec fields {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**d)
