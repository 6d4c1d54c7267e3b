"""Bit-exact twin of :class:`hdl.ternary_mem.TernaryWeightMemory` (numpy, vectorised).

:mod:`spec.ternary` defines cells, PCSA sensing, the injector and the random-bit use; this module
applies those rules to whole arrays and keeps the block's state: stored cells, registers,
counters and the PRNG stream (:class:`golden.prng.LaneStream`, one draw per PCSA read and per
programming write).
"""

from __future__ import annotations

import numpy as np

from golden.prng import LaneStream
from spec.prng import seed_state
from spec.ternary import (
    CELL_ILLEGAL,
    CELL_MINUS,
    CELL_PLUS,
    CELL_ZERO,
    COUNTER_MAX,
    PCSA_BIT,
    RATE_BITS,
    REG_BITS,
    REG_CTRL,
    REG_ILLEGAL,
    REG_INJECTED,
    REG_RATE_NONZERO,
    REG_RATE_ZERO,
    REG_READS,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    SIGN_BIT,
    TernaryMemorySpec,
    decode_ctrl,
)

RATE_REG_MASK = (1 << (RATE_BITS + 1)) - 1


def encode_array(t: np.ndarray) -> np.ndarray:
    """Cells (uint8) of an array of ternary weights in {−1, 0, +1}."""
    t = np.asarray(t)
    bad = ~np.isin(t, (-1, 0, 1))
    if bad.any():
        raise ValueError(f"ternary weights must be -1, 0 or 1, not {t[bad].flat[0].item()!r}")
    cells = np.full(t.shape, CELL_ZERO, np.uint8)
    cells[t == 1] = CELL_PLUS
    cells[t == -1] = CELL_MINUS
    return cells


def pack_words(cells: np.ndarray) -> list[int]:
    """Memory words (cell i of a row in bits [2i, 2i+2)) of a (words, lanes) cell array."""
    out = []
    for row in np.asarray(cells, np.uint8):
        w = 0
        for i, c in enumerate(row.tolist()):
            w |= int(c) << (2 * i)
        out.append(w)
    return out


def unpack_words(words, lanes: int) -> np.ndarray:
    w = np.array([int(x) for x in words], dtype=object)
    return np.array([[(int(x) >> (2 * i)) & 3 for i in range(lanes)] for x in w], np.uint8).reshape(-1, lanes)


def inject_array(cells: np.ndarray, words: np.ndarray, kind: str, rate_zero: int, rate_nonzero: int
                 ) -> np.ndarray:
    """:func:`spec.ternary.inject` applied elementwise (``words``: the lane words, same shape)."""
    words = words.astype(np.uint64)
    r = (words & np.uint64((1 << RATE_BITS) - 1)).astype(np.int64)
    nonzero = (cells == CELL_PLUS) | (cells == CELL_MINUS)
    out = cells.copy()
    hit1 = nonzero & (r < rate_nonzero)
    if kind == "adjacent":
        out[hit1] = CELL_ZERO
        hit0 = (cells == CELL_ZERO) & (r < rate_zero)
        neg = ((words >> np.uint64(SIGN_BIT)) & np.uint64(1)).astype(bool)
        out[hit0 & ~neg] = CELL_PLUS
        out[hit0 & neg] = CELL_MINUS
    else:
        out[hit1] = cells[hit1] ^ np.uint8(0b11)
    return out


def sense_array(cells: np.ndarray, supply: str, words: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`spec.ternary.sense` elementwise: (weights int8, illegal bool)."""
    if words is None:
        rand = np.ones(cells.shape, np.int8)
    else:
        rand = np.where((words.astype(np.uint64) >> np.uint64(PCSA_BIT)) & np.uint64(1), -1, 1).astype(np.int8)
    val = np.zeros(cells.shape, np.int8)
    val[cells == CELL_PLUS] = 1
    val[cells == CELL_MINUS] = -1
    illegal = cells == CELL_ILLEGAL
    random = illegal | ((cells == CELL_ZERO) if supply == "nominal" else False)
    val[random] = rand[random]
    return val, illegal


def _sat_add(counter: int, n: int) -> int:
    return min(counter + int(n), COUNTER_MAX)


class TernaryMemoryTwin:
    """State and behaviour of one ternary weight memory.

    Parameters
    ----------
    spec : TernaryMemorySpec
    cells : optional (depth, lanes) initial cells (the build's init contents; default all 0).

    The operations mirror the block's ports in the order a host or core issues them:
    :meth:`program` (program-port writes), :meth:`raw` (program-port read-backs), :meth:`read`
    (PCSA reads), :meth:`write_reg` / :meth:`read_reg` (register port).
    """

    def __init__(self, spec: TernaryMemorySpec, cells: np.ndarray | None = None):
        self.spec = spec
        self.cells = np.zeros((spec.depth, spec.lanes), np.uint8)
        if cells is not None:
            cells = np.asarray(cells, np.uint8)
            if cells.shape != self.cells.shape:
                raise ValueError(f"cells must have shape {self.cells.shape}, not {cells.shape}")
            self.cells[:] = cells
        self.ctrl = spec.ctrl_reset
        self.rate_zero = spec.rate_zero
        self.rate_nonzero = spec.rate_nonzero
        self.seed = spec.seed
        self.injected = self.illegal = self.reads = 0
        self.prng = LaneStream(spec.prng_spec()) if spec.fault_injection else None
        self._skipped = 0  # draws of skipped reads not yet applied to the stream

    # --- registers ----------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return decode_ctrl(self.ctrl)[0]

    @property
    def kind(self) -> str:
        return decode_ctrl(self.ctrl)[1]

    @property
    def supply(self) -> str:
        return decode_ctrl(self.ctrl)[2]

    def write_reg(self, addr: int, value: int) -> None:
        value = int(value) & ((1 << REG_BITS) - 1)
        fi = self.spec.fault_injection
        if addr == REG_CTRL and fi:
            self.ctrl = value & 0xF
        elif addr == REG_RATE_ZERO and fi:
            self.rate_zero = value & RATE_REG_MASK
        elif addr == REG_RATE_NONZERO and fi:
            self.rate_nonzero = value & RATE_REG_MASK
        elif addr == REG_SEED:
            self.seed = value
            if self.prng is not None:
                self._skipped = 0
                self.prng.reseed(value)
        elif addr == REG_INJECTED:
            self.injected = 0
        elif addr == REG_ILLEGAL:
            self.illegal = 0
        elif addr == REG_READS:
            self.reads = 0

    def read_reg(self, addr: int) -> int:
        return {REG_CTRL: self.ctrl, REG_RATE_ZERO: self.rate_zero, REG_RATE_NONZERO: self.rate_nonzero,
                REG_SEED: self.seed, REG_STATUS: 0, REG_INJECTED: self.injected, REG_ILLEGAL: self.illegal,
                REG_SPEC_ID: self.spec.spec_id, REG_READS: self.reads}.get(addr, 0)

    def configure(self, mode: str = "off", kind: str = "adjacent", supply: str = "near-threshold",
                  rate_zero: int = 0, rate_nonzero: int = 0, seed: int | None = None) -> None:
        """Set the run-time registers as a host would (seed last: it restarts the stream)."""
        from spec.ternary import ctrl_value

        self.write_reg(REG_CTRL, ctrl_value(mode, kind, supply))
        self.write_reg(REG_RATE_ZERO, rate_zero)
        self.write_reg(REG_RATE_NONZERO, rate_nonzero)
        if seed is not None:
            seed_state(seed, 32)
            self.write_reg(REG_SEED, seed)

    # --- ports --------------------------------------------------------------------------------------
    def _draw(self, n: int) -> np.ndarray | None:
        if self.prng is None:
            return None
        self._flush_skips()
        return self.prng.take(n)

    def _flush_skips(self) -> None:
        if self._skipped:  # reads skipped since the last draw: one jump of the stream
            self.prng.skip(self._skipped)
            self._skipped = 0

    def program(self, addr: int, cells: np.ndarray) -> None:
        """Program-port writes of consecutive words from ``addr`` (cells: (n, lanes) or (lanes,))."""
        cells = np.asarray(cells, np.uint8).reshape(-1, self.spec.lanes)
        n = len(cells)
        if addr < 0 or addr + n > self.spec.depth:
            raise ValueError(f"words {addr}..{addr + n - 1} are outside the memory's 0..{self.spec.depth - 1}")
        self._write(slice(addr, addr + n), cells, None)

    def update(self, addrs, cells: np.ndarray, mask: np.ndarray) -> None:
        """Update-port writes (a training core's weight update), one per word of ``addrs`` in order:
        one draw each; in static mode the injector acts on the cells whose ``mask`` is set."""
        if not self.spec.update_port:
            raise ValueError("this memory has no update port (TernaryMemorySpec.update_port is false)")
        addrs = np.asarray(addrs, np.int64).reshape(-1)
        cells = np.asarray(cells, np.uint8).reshape(len(addrs), self.spec.lanes)
        self._write(addrs, cells, np.asarray(mask, bool).reshape(cells.shape))

    def _write(self, where, cells: np.ndarray, mask: np.ndarray | None) -> None:
        """Store ``cells`` (one word per row) at ``where``: one draw per word; in static mode through the
        injector (only on the cells ``mask`` selects, every cell without a mask)."""
        words = self._draw(len(cells))
        if self.mode == "static":
            new = inject_array(cells, words, self.kind, self.rate_zero, self.rate_nonzero)
            if mask is not None:
                new = np.where(mask, new, cells)
            self.injected = _sat_add(self.injected, np.count_nonzero(new != cells))
            cells = new
        self.cells[where] = cells

    def raw(self, addr: int) -> np.ndarray:
        """A program-port read-back: the stored cells of word ``addr`` (no PCSA, no draw)."""
        return self.cells[addr].copy()

    @property
    def deterministic(self) -> bool:
        """Reads return the stored cells' nominal values (no dynamic faults, no random PCSA outcome)."""
        return self.prng is None or (self.mode != "dynamic" and self.supply == "near-threshold"
                                     and not (self.cells == CELL_ILLEGAL).any())

    def skip_reads(self, n: int) -> None:
        """What ``n`` reads do to the state when :attr:`deterministic`: count them, advance the PRNG."""
        if not self.deterministic:
            raise ValueError("skip_reads needs a deterministic memory (reads would differ from the stored cells)")
        if self.prng is not None:  # jumped lazily, in one step, before the next draw
            self._skipped += int(n)
        self.reads = _sat_add(self.reads, n)

    def values(self) -> np.ndarray:
        """The stored cells' nominal weights (0 for illegal cells): what a deterministic read returns."""
        return sense_array(np.where(self.cells == CELL_ILLEGAL, CELL_ZERO, self.cells), "near-threshold", None)[0]

    def read(self, addrs) -> np.ndarray:
        """PCSA reads of the words ``addrs`` in order: weights (len, lanes) int8."""
        addrs = np.asarray(addrs, np.int64).reshape(-1)
        cells = self.cells[addrs]
        words = self._draw(len(addrs))
        if self.mode == "dynamic":
            new = inject_array(cells, words, self.kind, self.rate_zero, self.rate_nonzero)
            self.injected = _sat_add(self.injected, np.count_nonzero(new != cells))
            cells = new
        val, illegal = sense_array(cells, self.supply, words)
        self.illegal = _sat_add(self.illegal, np.count_nonzero(illegal))
        self.reads = _sat_add(self.reads, len(addrs))
        return val
