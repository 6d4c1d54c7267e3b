"""A host for :class:`hdl.eqspike.EqSpikeCore` in the Amaranth simulator: stream beats with optional
seeded random stalls, weight loading and read-back, samples as pixels or as AER events.

The beat layouts are the core's stream payloads (``EqSpikeCore.inp`` etc.); this module packs and
unpacks them as integers (fields from bit 0 in their declaration order).
"""

from __future__ import annotations

import numpy as np

from spec.eqspike import EqSpikeSpec

from .eqspike import aer_addr_bits, dump_bits, dump_word_count, wcmd_fields
from .simhost import StreamHost


def pack(fields: list[tuple[int, int]]) -> int:
    """(value, bits) pairs, the first at bit 0; values are masked (two's complement)."""
    word, pos = 0, 0
    for v, bits in fields:
        word |= (int(v) & ((1 << bits) - 1)) << pos
        pos += bits
    return word


def unpack_dump(spec: EqSpikeSpec, beats) -> list[list[int]]:
    """``wdump`` beats (ints) as lists of P signed lane values."""
    bits, P = dump_bits(spec), spec.lanes
    out = []
    for w in beats:
        lanes = [(int(w) >> (p * bits)) & ((1 << bits) - 1) for p in range(P)]
        out.append([v - (1 << bits) if v >> (bits - 1) else v for v in lanes])
    return out


def dump_to_weights(spec: EqSpikeSpec, lanes: list[list[int]]) -> tuple[dict[str, np.ndarray], int]:
    """A block read-back (:func:`unpack_dump` lanes, :func:`spec.eqspike.digest_words` order: ``w{l}``
    presynaptic-neuron-major, P posts per word, then ``b{l}``) as the image-layout weight dict, and the
    number of non-zero padding lanes (lanes beyond a layer's last neuron: the core sends 0 there)."""
    if len(lanes) != dump_word_count(spec):
        raise ValueError(f"a block read-back of this spec has {dump_word_count(spec)} words, not {len(lanes)}")
    P, L = spec.lanes, spec.n_layers
    a = np.asarray(lanes, np.int64).reshape(-1, P)
    out, pad, k = {}, 0, 0
    for l in range(L):
        n_pre, n_post, t = spec.layers[l], spec.layers[l + 1], spec.tiles(l + 1)
        rows = a[k:k + n_pre * t].reshape(n_pre, t * P)
        k += n_pre * t
        out[f"w{l}"] = rows[:, :n_post].T.copy()
        pad += int(np.count_nonzero(rows[:, n_post:]))
    for l in range(L):
        n_post, t = spec.layers[l + 1], spec.tiles(l + 1)
        row = a[k:k + t].reshape(-1)
        k += t
        out[f"b{l}"] = row[:n_post].copy()
        pad += int(np.count_nonzero(row[n_post:]))
    return out, pad


class EqSpikeHost(StreamHost):
    """Drive an :class:`hdl.eqspike.EqSpikeCore` (``dut``) from an async testbench.

    ``idle_prob``: probability that a beat's ``valid`` waits a cycle; ``stall_prob``: probability that
    ``ready`` is held low on a cycle while receiving."""

    def __init__(self, dut, spec: EqSpikeSpec, *, seed: int | None = None, idle_prob: float = 0.0,
                 stall_prob: float = 0.0):
        super().__init__(dut, spec, seed=seed, idle_prob=idle_prob, stall_prob=stall_prob)
        self.wf = wcmd_fields(spec)
        self.label_bits = dut.label_bits

    # --- weights -------------------------------------------------------------------------------------
    def _cmd(self, read: int, array: int, i: int, j: int, value: int) -> int:
        P, wf = self.spec.lanes, self.wf
        return pack([(read, wf["read"]), (array, wf["array"]), (i // P, wf["i_word"]), (i % P, wf["i_lane"]),
                      (j // P, wf["j_word"]), (j % P, wf["j_lane"]), (value, wf["data"])])

    def _elements(self):
        L = self.spec.n_layers
        for l in range(L):
            n_post, n_pre = self.spec.layers[l + 1], self.spec.layers[l]
            for i in range(n_post):
                for j in range(n_pre):
                    yield f"w{l}", l, i, j
        for l in range(L):
            for i in range(self.spec.layers[l + 1]):
                yield f"b{l}", L + l, i, 0

    async def write_element(self, ctx, array: int, i: int, j: int, value: int) -> None:
        await self.put(ctx, self.dut.wcmd, self._cmd(0, array, i, j, value))

    async def read_element(self, ctx, array: int, i: int, j: int) -> int:
        await self.put(ctx, self.dut.wcmd, self._cmd(1, array, i, j, 0))
        v = await self.recv(ctx, self.dut.wrsp)
        bits = self.wf["data"]
        return v - (1 << bits) if v >> (bits - 1) else v

    async def load_weights(self, ctx, weights: dict[str, np.ndarray]) -> None:
        for name, array, i, j in self._elements():
            a = weights[name]
            await self.write_element(ctx, array, i, j, int(a[i, j] if a.ndim == 2 else a[i]))

    async def read_weights(self, ctx) -> dict[str, np.ndarray]:
        out = {k: np.zeros(v, np.int64) for k, v in self.spec.weight_shapes().items()}
        for name, array, i, j in self._elements():
            v = await self.read_element(ctx, array, i, j)
            if out[name].ndim == 2:
                out[name][i, j] = v
            else:
                out[name][i] = v
        return out

    async def read_digest(self, ctx) -> int:
        """Start a digest sweep (a REG_DIGEST write), wait until STATUS busy clears, read REG_DIGEST: the
        32-bit digest of every weight and bias (:func:`spec.eqspike.weight_digest`)."""
        from .eqspike import REG_DIGEST, REG_STATUS, STATUS_BUSY

        await self.write_reg(ctx, REG_DIGEST, 0)
        while await self.read_reg(ctx, REG_STATUS) & STATUS_BUSY:
            await ctx.tick()
        return await self.read_reg(ctx, REG_DIGEST)

    async def read_dump(self, ctx) -> list[list[int]]:
        """Block read-back (a core built with ``dump=True``): a REG_DUMP write, then every ``wdump`` beat
        (:func:`hdl.eqspike.dump_word_count` of them, stalls on) as P signed lanes (:func:`dump_to_weights`
        turns them into the weight dict)."""
        from .eqspike import REG_DUMP

        await self.write_reg(ctx, REG_DUMP, 0)
        return unpack_dump(self.spec, [await self.recv(ctx, self.dut.wdump) for _ in range(dump_word_count(self.spec))])

    # --- samples ---------------------------------------------------------------------------------------
    async def send_pixels(self, ctx, x, label: int = 0) -> None:
        sp, P = self.spec, self.spec.lanes
        x = list(x) + [0] * (sp.tiles(0) * P - len(x))
        for t in range(sp.tiles(0)):
            await self.put(ctx, self.dut.inp, pack([(v, sp.input_bits) for v in x[t * P:(t + 1) * P]]
                                                   + [(label, self.label_bits)]))

    async def send_events(self, ctx, steps: list[list[int]]) -> None:
        """AER: per time step its input-neuron addresses, then an end-of-step beat (``last``)."""
        ab = aer_addr_bits(self.spec)
        for evs in steps:
            for a in evs:
                await self.put(ctx, self.dut.aer, pack([(a, ab), (0, 1)]))
            await self.put(ctx, self.dut.aer, pack([(0, ab), (1, 1)]))

    async def recv_result(self, ctx) -> tuple[int, list[int]]:
        """(prediction, output-layer states)."""
        w = await self.recv(ctx, self.dut.out)
        sb, n = self.spec.state_bits, self.spec.layers[-1]
        pred = w & ((1 << self.label_bits) - 1)
        w >>= self.label_bits
        return pred, [(w >> (i * sb)) & ((1 << sb) - 1) for i in range(n)]
