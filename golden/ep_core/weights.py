"""The EP core twin's weight store: one strategy object per weight kind (the twin piece of
:class:`hdl.kit.weights.WeightStore`).

:class:`golden.ep_core.twin.EPCoreTwin` holds the weights as integer arrays (``w{l}``, ``b{l}``; a
ternary training core's latent ``v{l}`` too) and does the arithmetic; everything that depends on what
the weights are stored in goes through the store it picks once, in its constructor
(:func:`weight_store`):

* :class:`FixedWeights` — signed fixed-point weights in block RAMs: every read returns the stored
  value, the load port stores words as they are, an update saturates ``w{l}``.
* :class:`TernaryWeights` — an inference core whose ``w{l}`` are cells of the ternary memory
  (:class:`golden.ternary.memory.TernaryMemoryTwin`: PCSA sensing, fault injection, its PRNG and
  registers); the memory's cells are the truth for ``w{l}``.
* :class:`TernaryTrainingWeights` — a ternary core that trains: latent ``v{l}`` move, and the cells whose
  ternary value changed are reprogrammed through the memory's update port.

The interface (every store has all of it):

=========================  =====================================================================
``encode`` / ``decode``    a ``w`` region's elements ↔ the bits of a load-port word
``init_layer``             initial weights of one connection for on-chip learning
``reseed``                 what a ``REG_SEED`` write does to the store (the memory's PRNG)
``write_reg``/``read_reg`` a ternary core's memory registers (ValueError elsewhere)
``stored``                 the ``w{l}`` the store holds, when it (not the twin's dict) is the truth
``words`` / ``load``       the load-port image (read-back) and a build's init image
``program``                load-port writes, as the core does them
``batch_reads``            account a batch's reads when they all return the stored values
``read_c1``/``read_step``  the matrices one sample's ``c1`` sweep / one step's sweeps read
                           (``None``: the stored values)
``update_weights``         the weight part of one connection's update
``chunk``                  the batch size of :meth:`EPCoreTwin.predict`
=========================  =====================================================================
"""

from __future__ import annotations

import functools

import numpy as np

from golden.ternary.memory import TernaryMemoryTwin, encode_array
from spec.ep_core import REG_SEED, TERNARY_REGS, EPCoreSpec

from .update import apply_update, reprogram_cells, update_delta


class FixedWeights:
    """Signed fixed-point weights (block RAMs): reads return the stored values, no registers of their own."""

    memory = None
    chunk = 1000  # samples per infer() call in predict()

    def __init__(self, spec: EPCoreSpec, weights: dict[str, np.ndarray]):
        self.spec = spec

    # --- elements and initial values --------------------------------------------------------------
    @staticmethod
    def encode(a: np.ndarray) -> np.ndarray:
        """A ``w`` region's elements as the load port's word holds them (two's complement, masked later)."""
        return a

    @staticmethod
    def decode(vals: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`encode` on the sign-extended elements of a word."""
        return vals

    @staticmethod
    def init_layer(spec: EPCoreSpec, l: int, rng: np.random.Generator, bound: float,
                   latent_scale: float) -> dict[str, np.ndarray]:
        """``w{l}`` drawn U(±bound), quantised to its format (one ``rng.uniform`` call)."""
        lo, hi = spec.element_range(f"w{l}")
        wf = rng.uniform(-bound, bound, (spec.layers[l + 1], spec.layers[l]))
        return {f"w{l}": np.clip(np.rint(wf * 2.0 ** spec.weight_frac[l]), lo, hi).astype(np.int64)}

    # --- registers ----------------------------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """A ``REG_SEED`` write: nothing in a fixed-point store."""

    def write_reg(self, addr: int, value: int) -> None:
        raise ValueError(f"register {addr} is not a ternary-memory register of this core")

    def read_reg(self, addr: int) -> int:
        raise ValueError(f"register {addr} is not a ternary-memory register of this core")

    # --- memory image ---------------------------------------------------------------------------------
    def stored(self) -> dict[str, np.ndarray]:
        """The ``w{l}`` the store holds beyond the twin's dict: none (the dict is the truth)."""
        return {}

    def words(self, weights: dict[str, np.ndarray]) -> list[int]:
        """The load port's image of ``weights`` (what a read-back returns)."""
        return pack_memory(self.spec, weights)

    def load(self, words: list[int]) -> dict[str, np.ndarray]:
        """A build's init image (no draws, no faults): the weights it holds."""
        return unpack_memory(self.spec, words)

    def program(self, weights: dict[str, np.ndarray], addr: int, words: list[int]) -> dict[str, np.ndarray]:
        """Load-port writes of ``words`` from ``addr``: every word stored as is. Returns the weights."""
        image = self.words(weights)
        image[addr:addr + len(words)] = list(words)
        return self.load(image)

    # --- reads ----------------------------------------------------------------------------------------
    def batch_reads(self, batch: int, steps: int) -> bool:
        """Account for the reads of ``batch`` samples of ``steps`` steps when every read returns the
        stored values and say so (True); False: each sample has to read on its own (:meth:`read_c1`,
        :meth:`read_step`)."""
        return True

    def read_c1(self) -> np.ndarray | None:
        """The matrix ``w0`` as one sample's ``c1`` sweep reads it (float64), or None: the stored one."""
        return None

    def read_step(self) -> dict | None:
        """The matrices one step's sweeps read, ``("bu" | "td", k)`` → float64 matrix, or None: the stored ones."""
        return None

    # --- update ---------------------------------------------------------------------------------------
    def update_weights(self, weights: dict[str, np.ndarray], l: int, prod: np.ndarray, k: int,
                       rnd: np.ndarray | None) -> None:
        """``w{l} += shift_round(prod, k)`` saturated (``rnd``: stochastic rounding's random words)."""
        s = self.spec
        weights[f"w{l}"] = apply_update(weights[f"w{l}"], update_delta(prod, k, s.update_rounding, rnd),
                                        *s.element_range(f"w{l}"))


class TernaryWeights(FixedWeights):
    """An inference core's ternary memory: cells (PCSA reads, fault injection, registers, a PRNG); the
    stored cells are the truth for ``w{l}``."""

    def __init__(self, spec: EPCoreSpec, weights: dict[str, np.ndarray]):
        super().__init__(spec, weights)
        self.memory = TernaryMemoryTwin(spec.ternary_memory_spec(), ternary_cells(spec, weights))

    @property
    def chunk(self) -> int:
        """50 samples where every read is sensed on its own (per-read matrices held in memory)."""
        return 1000 if self.memory.deterministic else 50

    @staticmethod
    def encode(a: np.ndarray) -> np.ndarray:
        """Cells (:mod:`spec.ternary`: +1 → 01, −1 → 10, 0 → 00)."""
        return encode_array(a).astype(np.int64)

    @staticmethod
    def decode(vals: np.ndarray) -> np.ndarray:
        """Cells 01 → +1, 10 → −1 (sign-extended −2), 00 and the illegal 11 → 0."""
        return np.select([vals == 1, vals == -2], [1, -1], 0)

    def reseed(self, seed: int) -> None:
        """A ``REG_SEED`` write reaches the memory's seed register."""
        self.memory.write_reg(TERNARY_REGS[REG_SEED], seed)

    def write_reg(self, addr: int, value: int) -> None:
        if addr not in TERNARY_REGS:
            super().write_reg(addr, value)
        self.memory.write_reg(TERNARY_REGS[addr], value)

    def read_reg(self, addr: int) -> int:
        if addr not in TERNARY_REGS:
            super().read_reg(addr)
        return self.memory.read_reg(TERNARY_REGS[addr])

    def stored(self) -> dict[str, np.ndarray]:
        """The stored cells' nominal values (illegal cells as 0)."""
        return ternary_values(self.spec, self.memory.values())

    def words(self, weights: dict[str, np.ndarray]) -> list[int]:
        """The ``w`` words hold the stored cells, as the read-back returns them."""
        words = pack_memory(self.spec, weights)
        eb = self.spec.word_elem_bits
        for a, row in enumerate(self.memory.cells.tolist()):
            words[a] = sum(int(c) << (i * eb) for i, c in enumerate(row))
        return words

    def load(self, words: list[int]) -> dict[str, np.ndarray]:
        weights = unpack_memory(self.spec, words)
        self.memory.cells[:] = image_cells(self.spec, words)
        return weights

    def program(self, weights: dict[str, np.ndarray], addr: int, words: list[int]) -> dict[str, np.ndarray]:
        """``w`` words go through the memory's program port (one draw each; static faults); the others
        (biases, a training core's latent weights) are stored as written."""
        s = self.spec
        P, eb = s.lanes, s.word_elem_bits
        depth = self.memory.spec.depth
        image = pack_memory(s, weights)
        for a, w in enumerate(words, start=addr):
            if a < depth:
                self.memory.program(a, np.array([(int(w) >> (i * eb)) & 3 for i in range(P)], np.uint8))
            else:
                image[a] = int(w)
        for name, v in unpack_memory(s, image).items():
            if not name.startswith("w"):
                weights[name] = v
        return weights

    @functools.cached_property
    def _schedule(self) -> tuple[np.ndarray, list[tuple[str, int, int, np.ndarray]]]:
        """:meth:`EPCoreSpec.weight_read_schedule` as arrays (computed once, on first use)."""
        c1, step = self.spec.weight_read_schedule()
        return np.asarray(c1, np.int64), [(d, k, l, np.asarray(a, np.int64)) for d, k, l, a in step]

    def batch_reads(self, batch: int, steps: int) -> bool:
        mem = self.memory
        if not mem.deterministic:
            return False
        c1, step = self._schedule
        mem.skip_reads(batch * (len(c1) + steps * sum(len(a) for *_, a in step)))
        return True

    def read_c1(self) -> np.ndarray | None:
        """The W0 sweep's reads (deterministic reads only counted)."""
        addrs = self._schedule[0]
        if self.memory.deterministic:
            self.memory.skip_reads(len(addrs))
            return None
        return self._sensed_matrix(0, self.memory.read(addrs), False)

    def read_step(self) -> dict | None:
        """Sweep by sweep in the core's order (deterministic reads only counted)."""
        step = self._schedule[1]
        if self.memory.deterministic:
            self.memory.skip_reads(sum(len(a) for *_, a in step))
            return None
        return {(direction, k): self._sensed_matrix(l, self.memory.read(a), direction == "td")
                for direction, k, l, a in step}

    def _sensed_matrix(self, l: int, vals: np.ndarray, by_columns: bool) -> np.ndarray:
        """The matrix w{l} as one sweep read it (``vals``: the sensed words in read order)."""
        s = self.spec
        T, n_out, n_in = s.tiles(l), s.layers[l + 1], s.layers[l]
        if by_columns:
            vals = vals.reshape(T, n_out, s.lanes).transpose(1, 0, 2)
        return vals.reshape(n_out, T * s.lanes)[:, :n_in].astype(np.float64)

    def update_weights(self, weights: dict[str, np.ndarray], l: int, prod: np.ndarray, k: int,
                       rnd: np.ndarray | None) -> None:
        """An inference core's cells are not written by an update: the memory stays the truth for
        ``w{l}`` (the twin's dict is refreshed from it)."""


class TernaryTrainingWeights(TernaryWeights):
    """A ternary core that trains: latent weights ``v{l}`` beside the cells."""

    @staticmethod
    def init_layer(spec: EPCoreSpec, l: int, rng: np.random.Generator, bound: float,
                   latent_scale: float) -> dict[str, np.ndarray]:
        """Latent ``v{l}`` U(±latent_scale) quantised (golden.ternary's default init_scale) and the
        cells' ternary values ``w{l}``."""
        lo, hi = spec.element_range(f"v{l}")
        vf = rng.uniform(-latent_scale, latent_scale, (spec.layers[l + 1], spec.layers[l]))
        v = np.clip(np.rint(vf * 2.0 ** spec.latent_frac[l]), lo, hi).astype(np.int64)
        return {f"v{l}": v, f"w{l}": spec.ternarize_latent(l, v).astype(np.int64)}

    def update_weights(self, weights: dict[str, np.ndarray], l: int, prod: np.ndarray, k: int,
                       rnd: np.ndarray | None) -> None:
        """The latent weights move by ``shift_round(prod, k)`` (saturated); every word of w{l} is then
        written through the memory's update port, in the core's order (row j, tile t), with the cells
        whose ternary value changed reprogrammed (the injector's targets in static mode) and the others
        written back as stored."""
        s, P = self.spec, self.spec.lanes
        v = weights[f"v{l}"]
        vn = apply_update(v, update_delta(prod, k, s.update_rounding), *s.element_range(f"v{l}"))
        weights[f"v{l}"] = vn
        r = next(r for r in s.memory_map() if r.name == f"w{l}")
        n_in = s.layers[l]
        cells = self.memory.cells[r.base:r.base + r.words].reshape(r.rows, r.tiles * P).copy()
        mask = np.zeros(cells.shape, bool)
        cells[:, :n_in], mask[:, :n_in] = reprogram_cells(lambda x: s.ternarize_latent(l, x), v, vn, cells[:, :n_in])
        self.memory.update(np.arange(r.base, r.base + r.words), cells.reshape(-1, P), mask.reshape(-1, P))


def weight_store_class(spec: EPCoreSpec) -> type[FixedWeights]:
    """The store of ``spec``'s weight kind (the one place that looks at ``weight_kind``)."""
    if spec.weight_kind == "fixed":
        return FixedWeights
    if spec.weight_kind == "ternary":
        return TernaryTrainingWeights if spec.training else TernaryWeights
    raise ValueError(f"weight_kind must be 'fixed' or 'ternary', not {spec.weight_kind!r}")


def weight_store(spec: EPCoreSpec, weights: dict[str, np.ndarray]) -> FixedWeights:
    """A store for ``spec`` holding ``weights`` (validated integer arrays)."""
    return weight_store_class(spec)(spec, weights)


# --- the load port's image ---------------------------------------------------------------------------
def ternary_cells(spec: EPCoreSpec, weights: dict[str, np.ndarray]) -> np.ndarray:
    """A ternary core's memory cells (depth, P) for weights ``w{l}`` in {−1, 0, +1}; padding cells 0."""
    P = spec.lanes
    out = []
    for r in spec.memory_map():
        if r.name.startswith("w"):
            padded = np.zeros((r.rows, r.tiles * P), np.int64)
            padded[:, :weights[r.name].shape[1]] = weights[r.name]
            out.append(encode_array(padded).reshape(r.rows * r.tiles, P))
    return np.concatenate(out)


def ternary_values(spec: EPCoreSpec, values: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`ternary_cells` on sensed values (depth, P): the matrices ``w{l}``."""
    out = {}
    for r in spec.memory_map():
        if r.name.startswith("w"):
            v = values[r.base:r.base + r.words].reshape(r.rows, r.tiles * spec.lanes)
            out[r.name] = v[:, :spec.layers[int(r.name[1:])]].astype(np.int64)
    return out


def image_cells(spec: EPCoreSpec, words: list[int]) -> np.ndarray:
    """The raw cells (low 2 bits of each element) of a ternary core's ``w`` words in a load-port image."""
    depth, P, eb = spec.ternary_memory_spec().depth, spec.lanes, spec.word_elem_bits
    return np.array([[(int(w) >> (i * eb)) & 3 for i in range(P)] for w in words[:depth]], np.uint8).reshape(depth, P)


def pack_memory(spec: EPCoreSpec, weights: dict[str, np.ndarray]) -> list[int]:
    """Pack weights/biases into the core's word image (``spec.memory_map()``), zero-padded.

    ``w`` elements as the weight kind's store encodes them (a ternary core's are cells)."""
    P, eb = spec.lanes, spec.word_elem_bits
    mask = (1 << eb) - 1
    words = [0] * spec.memory_words
    encode = weight_store_class(spec).encode
    for r in spec.memory_map():
        a = weights[r.name]
        if r.name.startswith("w"):
            a = encode(a)
        a = a.reshape(r.rows, -1) if a.ndim == 2 else a.reshape(1, -1)
        n = a.shape[1]
        padded = np.zeros((r.rows, r.tiles * P), np.int64)
        padded[:, :n] = a
        for row in range(r.rows):
            for t in range(r.tiles):
                w = 0
                for i, v in enumerate(padded[row, t * P:(t + 1) * P].tolist()):
                    w |= (v & mask) << (i * eb)
                words[r.base + row * r.tiles + t] = w
    return words


def unpack_memory(spec: EPCoreSpec, words: list[int]) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_memory` (each element sign-extended from its region's width, then ``w``
    elements decoded by the weight kind's store: a ternary core's illegal (LRS, LRS) cell as 0)."""
    P, eb = spec.lanes, spec.word_elem_bits
    if len(words) != spec.memory_words:
        raise ValueError(f"the image has {len(words)} words, the spec's memory has {spec.memory_words}")
    out: dict[str, np.ndarray] = {}
    shapes = spec.weight_shapes()
    decode = weight_store_class(spec).decode
    for r in spec.memory_map():
        vals = np.zeros((r.rows, r.tiles * P), np.int64)
        for row in range(r.rows):
            for t in range(r.tiles):
                w = words[r.base + row * r.tiles + t]
                for i in range(P):
                    v = (w >> (i * eb)) & ((1 << r.elem_bits) - 1)
                    if v >> (r.elem_bits - 1):
                        v -= 1 << r.elem_bits
                    vals[row, t * P + i] = v
        if r.name.startswith("w"):
            vals = decode(vals)
        out[r.name] = vals[:, :shapes[r.name][-1]].reshape(shapes[r.name])
    return out
