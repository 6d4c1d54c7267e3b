"""The project's random bits as the hardware consumes them, generated fast (for ``dieharder``).

Every random source of the project is a :mod:`spec.prng` xorshift bank whose lanes output
scrambled words (:func:`spec.prng.scramble`, the "**" scrambler); the twins
(:class:`golden.domainwall.GaltonTwin`, :class:`golden.ep_core.twin.EPCoreTwin`,
:class:`golden.ternary.memory.TernaryMemory`) step it draw by draw. A statistical battery needs
10^10–10^11 words, so this module generates the same bits with a vectorised orbit generator
(:class:`Orbit`: the stream is cut into chunks whose start states come from GF(2) jump tables,
then all chunks step in lockstep) and extracts, per source, exactly the bits the hardware reads,
in the order it reads them (tests compare a prefix with the twins, ``==``):

* **Galton board** (:mod:`spec.galton`): per ball, per board, per row the k-bit comparator input
  ``r`` (:func:`galton_fields`), or the junction decisions ``r < 2^(k−1)`` of a symmetric board
  (p = ½ everywhere: one fair bit per row).
* **EP core** (:mod:`spec.ep_core`): stochastic rounding — per update draw, the low ``k`` bits
  of every lane word an element uses (padding lanes draw and discard), ``k`` the update shift of
  the array at the given registers; random sign — bit 31 of lane P − 1 of the sign draw, one bit
  per training sample (the update's draws, if stochastic, lie between two sign draws).
* **Ternary fault injector** (:mod:`spec.ternary`): per access (PCSA read or programming write),
  per lane, bits 0…23 (``r``, compared with the rates), bit 30 (PCSA resolution) and bit 31
  (sign of a 0 → ±1 error): 26 bits per lane word.

Bits are packed LSB-first into bytes (the first bit consumed is bit 0 of byte 0); dieharder reads
the bytes as little-endian 32-bit words.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from golden.prng import scramble_words
from spec.prng import OUTPUTS, TRIPLES, jump_matrix


# --- GF(2) jumps and the vectorised orbit ----------------------------------------------------------
@functools.lru_cache(maxsize=256)
def jump_tables(width: int, distance: int) -> np.ndarray:
    """M^distance of the ``width``-bit xorshift as ``width/8`` tables of 256 entries (one per input byte)."""
    cols = jump_matrix(width, distance)
    tables = np.zeros((width // 8, 256), np.uint64)
    for byte in range(width // 8):
        for j in range(8):
            tables[byte, 1 << j:2 << j] = tables[byte, :1 << j] ^ np.uint64(cols[8 * byte + j])
    return tables


def jump(x: np.ndarray, width: int, distance: int) -> np.ndarray:
    """The states ``distance`` steps after the states ``x`` (any shape, uint64)."""
    t = jump_tables(width, distance)
    x = np.asarray(x, np.uint64)
    out = t[0][x & np.uint64(0xFF)]
    for byte in range(1, width // 8):
        out ^= t[byte][(x >> np.uint64(8 * byte)) & np.uint64(0xFF)]
    return out


def step(x: np.ndarray, width: int) -> np.ndarray:
    """One xorshift step of every state in ``x`` (uint64 array): :func:`spec.prng.step`."""
    a, b, c = (np.uint64(v) for v in TRIPLES[width])
    if width == 64:
        x = x ^ (x << a)
        x = x ^ (x >> b)
        return x ^ (x << c)
    m = np.uint64((1 << width) - 1)
    x = x ^ ((x << a) & m)
    x = x ^ (x >> b)
    return x ^ ((x << c) & m)


class Orbit:
    """Consecutive outputs of ``len(states)`` xorshift lanes, block by block.

    ``states`` are the lanes' states *before* the first output (output d of a lane is the output
    word of its state after d + 1 steps, as :mod:`spec.prng` defines: scrambled, or the state itself
    with ``output="raw"``). :meth:`block` returns the next ``chunks · steps`` outputs of every lane,
    shape ``(chunks·steps, lanes)`` uint64: the block is cut into ``chunks`` (a power of two) runs of
    ``steps``, started by GF(2) jumps and stepped in lockstep, so one numpy operation advances
    ``chunks · lanes`` states.
    """

    def __init__(self, width: int, states, chunks: int = 1024, steps: int = 256, output: str = "scrambled"):
        if width not in TRIPLES:
            raise ValueError(f"width must be one of {sorted(TRIPLES)}, not {width!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
        self.output = output
        if chunks < 1 or chunks & (chunks - 1):
            raise ValueError(f"chunks must be a power of two, not {chunks!r}")
        self.width, self.chunks, self.steps = width, chunks, steps
        self.state = np.array(states, np.uint64).reshape(-1)
        self.outputs = 0  # outputs per lane returned so far

    def block(self) -> np.ndarray:
        w, C, T = self.width, self.chunks, self.steps
        starts = np.empty((C, len(self.state)), np.uint64)
        starts[0] = self.state
        have = 1
        while have < C:  # starts[c] = M^(c·T)·state, by doubling
            starts[have:2 * have] = jump(starts[:have], w, have * T)
            have *= 2
        out = np.empty((C, T, len(self.state)), np.uint64)
        x = starts
        for t in range(T):
            x = step(x, w)
            out[:, t] = x
        out = out.reshape(C * T, -1)
        self.state = out[-1].copy()
        self.outputs += C * T
        return scramble_words(out, w) if self.output == "scrambled" else out

    def skip(self, n: int) -> None:
        """Advance every lane by ``n`` outputs without computing them."""
        self.state = jump(self.state, self.width, n)
        self.outputs += n


def pack_bits(values: np.ndarray, bits, carry: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """Concatenate ``values`` (uint64, any shape, C order) of ``bits`` bits each (an int, or an array
    of the same shape; 0 drops the value) LSB-first into bytes, after the bits ``carry`` left over from
    the previous call. Returns the whole bytes and the new carry (fewer than 8 bits, uint8 0/1)."""
    v = np.ascontiguousarray(np.asarray(values, np.uint64).reshape(-1), dtype="<u8")
    b = np.broadcast_to(np.asarray(bits), np.asarray(values).shape).reshape(-1)
    carry = np.zeros(0, np.uint8) if carry is None else carry
    if b.size == 0 or int(b.max()) == 0:
        return b"", carry
    used = b > 0
    bmax = int(b.max())
    if int(b[used].min()) == bmax:  # one width (and dropped values): select, then pack
        if not used.all():
            v = v[used]
        by = v.view(np.uint8).reshape(-1, 8)
        if bmax % 8 == 0 and carry.size == 0:  # byte-aligned fields: their little-endian bytes
            return by[:, :bmax // 8].tobytes(), carry
        g = 8 // math.gcd(bmax, 8)  # values per whole-byte group
        if carry.size == 0 and bmax <= 32 and len(v) % g == 0:
            return _pack_groups(v, bmax, g), carry
        if bmax == 1:
            flat = by[:, 0] & np.uint8(1)
        else:
            flat = np.unpackbits(by[:, :-(-bmax // 8)], axis=1, bitorder="little")[:, :bmax].reshape(-1)
    else:
        bitmat = np.unpackbits(v.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        flat = bitmat[np.arange(64)[None, :] < b[:, None]]
    if carry.size:
        flat = np.concatenate([carry, flat])
    whole = len(flat) // 8 * 8
    return np.packbits(flat[:whole], bitorder="little").tobytes(), flat[whole:].copy()


def _pack_groups(v: np.ndarray, width: int, g: int) -> bytes:
    """Pack ``v`` (uint64, length a multiple of g) of ``width`` ≤ 32 bits each, LSB-first, g values (a
    whole number of bytes) at a time into 64-bit limbs: a few numpy operations per value of a group."""
    m = len(v) // g
    vv = v.reshape(m, g) & np.uint64((1 << width) - 1)
    nbits = g * width
    limbs = np.zeros((m, -(-nbits // 64)), np.uint64)
    for j in range(g):
        o = j * width
        li, sh = divmod(o, 64)
        limbs[:, li] |= vv[:, j] << np.uint64(sh)
        if sh + width > 64:
            limbs[:, li + 1] |= vv[:, j] >> np.uint64(64 - sh)
    return limbs.astype("<u8").view(np.uint8).reshape(m, -1)[:, : nbits // 8].tobytes()


def bank(spec, seed: int | None = None, output: str | None = None):
    """A source's :class:`spec.prng.PRNGSpec` at ``seed``; ``output`` ("raw"/"scrambled") overrides the
    lanes' output function (every consumer uses "scrambled"; "raw" gives the pre-issue-12 streams)."""
    p = spec.prng_spec(seed)
    return p if output is None else dataclasses.replace(p, output=output)


# --- one lane ---------------------------------------------------------------------------------------
def lane_stream(prng, **kw) -> Iterator[bytes]:
    """Bytes of lane 0 of the :class:`spec.prng.PRNGSpec` ``prng``: its output words, little-endian, forever."""
    orbit = Orbit(prng.width, prng.lane_states()[:1], output=prng.output, **{"chunks": 1 << 14, "steps": 64, **kw})
    nb = prng.width // 8
    while True:
        yield orbit.block()[:, 0].astype("<u8").view(np.uint8).reshape(-1, 8)[:, :nb].tobytes()


# --- the Galton board -------------------------------------------------------------------------------
def galton_orbit(spec, seed: int | None = None, output: str | None = None, **kw) -> Orbit:
    """The Galton board's PRNG bank as an :class:`Orbit` (ball n = output n of every lane)."""
    p = bank(spec, seed, output)
    return Orbit(p.width, p.lane_states(), output=p.output, **kw)


def galton_fields(spec, words: np.ndarray) -> np.ndarray:
    """The comparator inputs ``r`` of the balls whose lane words are ``words`` ``(n, lanes)``:
    ``(n, boards, rows)`` uint64 — row i of board b reads bits ``[(i mod F)·k, …+k)`` of lane
    ``b·Lb + ⌊i/F⌋`` (:mod:`spec.galton`)."""
    B, N, k, F, Lb = spec.boards, spec.rows, spec.prob_bits, spec.fields_per_word, spec.lanes_per_board
    rows = np.arange(N)
    lanes = (np.arange(B)[:, None] * Lb + rows[None, :] // F)  # (B, N)
    shifts = ((rows % F) * k).astype(np.uint64)
    return (words[:, lanes] >> shifts[None, None, :]) & np.uint64((1 << k) - 1)


def galton_histograms(spec, balls: int, count: int, seed: int | None = None, board: int = 0,
                      output: str | None = None) -> np.ndarray:
    """``count`` histograms of ``board`` on the symmetric board (p = ½ at every junction), each of
    ``balls`` consecutive balls of one stream (disjoint windows, no reseeding): ``(count, rows + 1)``."""
    orbit = galton_orbit(spec, seed, output, chunks=256, steps=256)
    need = balls * count
    hists = np.zeros((count, spec.n_bins), np.int64)
    half = np.uint64(1 << (spec.prob_bits - 1))
    done = 0
    while done < need:
        words = orbit.block()[: need - done]
        bins = (galton_fields(spec, words)[:, board, :] < half).sum(axis=1)
        np.add.at(hists, ((done + np.arange(len(bins))) // balls, bins), 1)
        done += len(bins)
    return hists


def galton_stream(spec, seed: int | None = None, what: str = "fields", output: str | None = None,
                  **kw) -> Iterator[bytes]:
    """Bytes of the Galton board's random bits in consumption order (ball, board, row), forever.

    ``what``: ``fields`` — the k-bit comparator inputs; ``decisions`` — the turns of a symmetric
    board (``r < 2^(k−1)``: RIGHT = 1), one bit per row.
    """
    if what not in ("fields", "decisions"):
        raise ValueError(f"what must be 'fields' or 'decisions', not {what!r}")
    orbit = galton_orbit(spec, seed, output, **kw)
    k = spec.prob_bits
    fast = (what == "fields" and k == 8 and spec.prng_width % 8 == 0
            and spec.rows == spec.lanes_per_board * spec.fields_per_word)
    w8 = spec.prng_width // 8
    carry = None
    while True:
        words = orbit.block()
        if fast:  # every field of every lane word, in order: the words' little-endian bytes
            yield words.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :w8].tobytes()
            continue
        f = galton_fields(spec, words)
        if what == "fields":
            data, carry = pack_bits(f, k, carry)
        else:
            data, carry = pack_bits((f < np.uint64(1 << (k - 1))).astype(np.uint64), 1, carry)
        yield data


# --- the EP core ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EPDraws:
    """What one training sample of an EP core draws: ``sign`` (1 if the random-sign estimator draws
    first), then the update's draws with ``bits[d, lane]`` consumed bits of lane ``lane`` in update draw
    ``d`` (0 for padding lanes; empty without stochastic rounding)."""

    sign: int
    bits: np.ndarray

    @property
    def draws(self) -> int:
        return self.sign + len(self.bits)


def ep_draws(spec, lr_shift: int | None = None, beta_shift: int | None = None, symmetric: bool | None = None,
             random_sign: bool | None = None) -> EPDraws:
    """The draws of one training sample of ``spec`` at the given registers (default: the reset values)."""
    if not spec.uses_prng:
        raise ValueError("this EP core has no PRNG (training with update_rounding='stochastic' or "
                         "estimator='random-sign' has one)")
    lr = spec.lr_shift if lr_shift is None else lr_shift
    beta = spec.beta_shift if beta_shift is None else beta_shift
    sym = spec.estimator == "symmetric" if symmetric is None else symmetric
    rs = (spec.estimator == "random-sign") if random_sign is None else random_sign
    sign = int(rs and not sym)
    P = spec.lanes
    rows = []
    if spec.update_rounding == "stochastic":
        shapes = spec.weight_shapes()
        for name, n in spec.update_draws():
            l = int(name[1:])
            if name.startswith("w"):
                k = spec.update_shift(l, lr, beta, sym)
                fan_in = shapes[name][1]
                used = (np.arange(n * P).reshape(shapes[name][0], -1) % (spec.tiles(l) * P)) < fan_in
            else:
                k = spec.bias_update_shift(l, lr, beta, sym)
                used = np.arange(n * P) < shapes[name][0]
            rows.append(np.where(used.reshape(n, P), max(k, 0), 0))
    bits = np.concatenate(rows) if rows else np.zeros((0, P), np.int64)
    return EPDraws(sign, bits.astype(np.int64))


def ep_orbit(spec, seed: int | None = None, output: str | None = None, **kw) -> Orbit:
    p = bank(spec, seed, output)
    return Orbit(32, p.lane_states(), output=p.output, **kw)


def ep_stream(spec, what: str = "rounding", seed: int | None = None, draws: EPDraws | None = None,
              output: str | None = None, **kw) -> Iterator[bytes]:
    """Bytes of an EP core's random bits in consumption order, forever (one training sample after
    another). ``what``: ``rounding`` (the stochastic-rounding bits) or ``sign`` (the random-sign bits,
    one per sample). ``draws`` defaults to :func:`ep_draws` at the reset registers."""
    d = ep_draws(spec) if draws is None else draws
    if what == "rounding":
        if not len(d.bits) or not d.bits.any():
            raise ValueError("this core's update draws no rounding bits (update_rounding is not 'stochastic')")
        per = d.draws
        orbit = ep_orbit(spec, seed, output, **kw)
        pending = np.zeros((0, spec.lanes), np.uint64)
        carry = None
        while True:
            words = np.concatenate([pending, orbit.block()])
            m = len(words) // per
            pending = words[m * per:]
            samples = words[: m * per].reshape(m, per, spec.lanes)[:, d.sign:]
            data, carry = pack_bits(samples, np.broadcast_to(d.bits, samples.shape), carry)
            yield data
    elif what == "sign":
        if not d.sign:
            raise ValueError("this core draws no sign bits (estimator 'random-sign' with symmetric off draws them)")
        lane = spec.sign_lane
        p = bank(spec, seed, output)
        state = np.array([p.lane_states()[lane]], np.uint64)
        if d.draws == 1:  # sign draws back to back: consecutive outputs of lane P − 1
            orbit = Orbit(32, state, **{"chunks": 1 << 16, "steps": 256, "output": p.output, **kw})
            carry = None
            while True:
                data, carry = pack_bits(orbit.block()[:, 0] >> np.uint64(31), 1, carry)
                yield data
        yield from _strided_sign_bits(state, d.draws, kw.get("chunks", 1024) * 64, kw.get("steps", 256), p.output)
    else:
        raise ValueError(f"what must be 'rounding' or 'sign', not {what!r}")


def _strided_sign_bits(state: np.ndarray, per: int, C: int, T: int, output: str = "scrambled") -> Iterator[bytes]:
    """Bit 31 of outputs 0, per, 2·per, … of one lane (state before output 0): chunk starts by jumps."""
    # sample j's sign draw is output j·per of lane P − 1: chunk starts by jumps, then jump by `per`
    x0 = step(state, 32)  # output 0
    carry = None
    while True:
        starts = np.empty(C, np.uint64)
        starts[0] = x0[0]
        have = 1
        while have < C:
            starts[have:2 * have] = jump(starts[:have], 32, have * T * per)
            have *= 2
        out = np.empty((C, T), np.uint64)
        x = starts
        for t in range(T):
            out[:, t] = x
            x = jump(x, 32, per)
        x0 = jump(out[-1:, -1], 32, per)
        words = scramble_words(out.reshape(-1), 32) if output == "scrambled" else out.reshape(-1)
        data, carry = pack_bits(words >> np.uint64(31), 1, carry)
        yield data


# --- the ternary fault injector ---------------------------------------------------------------------
TERNARY_BITS = 26  # bits 0..23 (r), 30 (PCSA), 31 (error sign) of every lane word


def ternary_consumed(words: np.ndarray) -> np.ndarray:
    """The 26 consumed bits of lane words: ``r`` in bits 0…23, the PCSA bit (30) at 24, the sign bit (31) at 25."""
    w = np.asarray(words, np.uint64)
    return (w & np.uint64(0xFFFFFF)) | ((w >> np.uint64(30)) << np.uint64(24))


def ternary_stream(spec, seed: int | None = None, output: str | None = None, **kw) -> Iterator[bytes]:
    """Bytes of a fault-injecting ternary memory's random bits (per access, per lane, 26 bits), forever."""
    if not spec.fault_injection:
        raise ValueError("this ternary memory has no PRNG (fault_injection is false)")
    p = bank(spec, seed, output)
    orbit = Orbit(32, p.lane_states(), output=p.output, **kw)
    carry = None
    while True:
        data, carry = pack_bits(ternary_consumed(orbit.block()), TERNARY_BITS, carry)
        yield data
