"""The project's PRNG: Marsaglia xorshift generators with jump-ahead lanes (the one definition).

Algorithm (Marsaglia 2003, "Xorshift RNGs"): a w-bit state x ≠ 0 is updated by three shift-XORs,

    x ^= x << a;  x ^= x >> b;  x ^= x << c      (all mod 2^w)

With the triples below the map is a permutation of the 2^w − 1 non-zero states with a single
cycle: the period is 2^w − 1 (tests check this exhaustively for w = 16). The update is linear over
GF(2): x' = M·x for a w×w bit matrix M, so jumping D steps ahead is x' = M^D·x, a fixed matrix — a
fixed XOR network in hardware.

Output (scrambler). Because the update is linear, the raw states fail statistical batteries
(dieharder's 32 × 32 binary-rank test: 32 words M^e·x always have the same rank; its
``dab_monobit2``: the Hamming-weight dependency of xorshift64). So the output word is not the
state but a nonlinear, bijective function of it, the "**" scrambler of Blackman & Vigna (2018,
"Scrambled linear pseudorandom number generators", ACM TOMS 47(4); used by xoshiro256** and
xoshiro128**):

    out = rotl(x·5, 7)·9     (mod 2^w; x·5 = x + (x << 2), y·9 = y + (y << 3): two adders, no multiplier)

The carries of the two additions make every output bit a nonlinear function of the state bits,
which removes the linear artefacts (docs/galton.md "Randomness" has the dieharder runs); the
state update and the jump-ahead are unchanged, so lanes, periods and limits are as before, and
out(x) ≠ 0 for every non-zero state x (·5 and ·9 are odd, hence invertible mod 2^w). A
:class:`PRNGSpec` with ``output="raw"`` gives the unscrambled states (the project's generator
before issue 12, kept for comparisons); every consumer uses the default, ``"scrambled"``.

Lanes: lane 0 starts from the seed, lane i from M^(i·D)·seed with D = ``jump``; each lane's stream
is disjoint from the next lane's for D outputs. Seeding maps any integer to a non-zero state.

These functions are the specification; :mod:`golden.prng` vectorises them, :mod:`hdl.prng` builds
them, and the tests compare the three.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

# Full-period triples (a, b, c) for x ^= x<<a; x ^= x>>b; x ^= x<<c.
TRIPLES = {16: (7, 9, 8), 32: (13, 17, 5), 64: (13, 7, 17)}
# the "**" scrambler out = rotl(x·S, R)·T: S = 1 + 2^2, T = 1 + 2^3 (shift-adds), R = 7 (Blackman & Vigna)
SCRAMBLER = (5, 7, 9)
OUTPUTS = ("scrambled", "raw")


def _mask(w: int) -> int:
    return (1 << w) - 1


def step(x: int, w: int) -> int:
    """One xorshift update of the w-bit state ``x`` (the output is the new state)."""
    a, b, c = TRIPLES[w]
    m = _mask(w)
    x ^= (x << a) & m
    x ^= x >> b
    x ^= (x << c) & m
    return x


def rotl(x: int, r: int, w: int) -> int:
    """Rotate the w-bit word ``x`` left by ``r``."""
    return ((x << r) | (x >> (w - r))) & _mask(w)


def scramble(x: int, w: int) -> int:
    """The output word of state ``x``: rotl(x·5, 7)·9 mod 2^w (the "**" scrambler, module docstring)."""
    s, r, t = SCRAMBLER
    m = _mask(w)
    return (rotl((x * s) & m, r, w) * t) & m


def output(x: int, w: int, kind: str = "scrambled") -> int:
    """The output word of state ``x`` for ``kind`` ("scrambled": :func:`scramble`; "raw": ``x``)."""
    if kind not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, not {kind!r}")
    return scramble(x, w) if kind == "scrambled" else x


def seed_state(seed: int, w: int) -> int:
    """Map any integer seed to a valid (non-zero) w-bit state: fold to w bits, 0 → 1."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    x = 0
    while True:
        x ^= seed & _mask(w)
        seed >>= w
        if not seed:
            break
    return x or 1


def matrix(w: int) -> list[int]:
    """The update as a GF(2) matrix: column j (as an int) is step(1 << j)."""
    return [step(1 << j, w) for j in range(w)]


def apply(mat: list[int], x: int) -> int:
    """M·x over GF(2) with M given by its columns."""
    out, j = 0, 0
    while x:
        if x & 1:
            out ^= mat[j]
        x >>= 1
        j += 1
    return out


def mat_mul(a: list[int], b: list[int]) -> list[int]:
    """(A·B) by columns: column j of A·B is A·(column j of B)."""
    return [apply(a, col) for col in b]


def mat_pow(mat: list[int], n: int, w: int) -> list[int]:
    result = [1 << j for j in range(w)]  # identity
    base = mat
    while n:
        if n & 1:
            result = mat_mul(base, result)
        base = mat_mul(base, base)
        n >>= 1
    return result


def jump_matrix(w: int, distance: int) -> list[int]:
    """Columns of M^distance: x ↦ the state ``distance`` steps later."""
    if distance < 0:
        raise ValueError(f"distance must be non-negative, not {distance!r}")
    return list(_jump_columns(w, distance))


@functools.lru_cache(maxsize=64)
def _jump_columns(w: int, distance: int) -> tuple[int, ...]:
    """Cached: a twin skips the same number of reads sample after sample."""
    return tuple(mat_pow(matrix(w), distance, w))


def auto_jump(width: int, lanes: int) -> int:
    """The largest power of two J with lanes·J ≤ 2^width − 2: lane spacing that never wraps the period."""
    limit = ((1 << width) - 2) // lanes
    if limit < 1:
        raise ValueError(f"{lanes} lanes do not fit the period 2^{width}-1 of a {width}-bit xorshift")
    return 1 << (limit.bit_length() - 1)


@dataclass(frozen=True)
class PRNGSpec:
    """A bank of ``lanes`` xorshift generators of ``width`` bits, lane i jumped i·``jump`` steps.

    ``output``: ``"scrambled"`` (default; every consumer's) — a lane's output word is
    :func:`scramble` of its state; ``"raw"`` — the state itself (the generator before issue 12).

    Raises
    ------
    ValueError
        For an unsupported width or output, a non-positive lane count, or a jump ≥ the period.
    """

    width: int = 32
    lanes: int = 1
    jump: int = 1 << 20
    seed: int = 1
    output: str = "scrambled"

    def __post_init__(self) -> None:
        if self.width not in TRIPLES:
            raise ValueError(f"width must be one of {sorted(TRIPLES)}, not {self.width!r}")
        if isinstance(self.lanes, bool) or not isinstance(self.lanes, int) or self.lanes <= 0:
            raise ValueError(f"lanes must be a positive integer, not {self.lanes!r}")
        if not 0 < self.jump < (1 << self.width) - 1:
            raise ValueError(f"jump must be in 1..2^{self.width}-2, not {self.jump!r}")
        if self.lanes * self.jump >= (1 << self.width) - 1:
            raise ValueError(f"lanes × jump = {self.lanes * self.jump} wraps the period 2^{self.width}-1")
        seed_state(self.seed, self.width)
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {self.output!r}")

    @property
    def scrambled(self) -> bool:
        return self.output == "scrambled"

    def out(self, state: int) -> int:
        """The output word of a lane in ``state``."""
        return output(state, self.width, self.output)

    @property
    def period(self) -> int:
        return (1 << self.width) - 1

    def lane_states(self, seed: int | None = None) -> list[int]:
        """Initial state of every lane for ``seed`` (default the spec's)."""
        jm = jump_matrix(self.width, self.jump)
        x = seed_state(self.seed if seed is None else seed, self.width)
        out = []
        for _ in range(self.lanes):
            out.append(x)
            x = apply(jm, x)
        return out


class LaneBank:
    """Mixin for a spec with ``lanes`` and ``seed``: one 32-bit xorshift lane per datapath lane,
    spaced :func:`auto_jump` steps apart (the EP core's and the ternary memory's PRNG)."""

    @property
    def prng_jump(self) -> int:
        """Steps between successive PRNG lanes: the largest power of two J with P·J ≤ 2^32 − 2."""
        return auto_jump(32, self.lanes)

    def prng_spec(self, seed: int | None = None) -> PRNGSpec:
        """The bank, seeded with ``seed`` (default: the spec's)."""
        return PRNGSpec(width=32, lanes=self.lanes, jump=self.prng_jump, seed=self.seed if seed is None else seed)


# --- limits of a lane bank ------------------------------------------------------------------------------
ALLOW_REUSE_FLAG = "--allow-prng-reuse"


def check_prng_limit(message: str | None, allow: bool = False, flag: str = ALLOW_REUSE_FLAG,
                     stream: Any = "stderr") -> str | None:
    """Refuse a run whose random draws are not independent, or (``allow``) return a note to print instead.

    ``message`` (from a spec's ``…limit_message``) says why the run's draws repeat or overlap; ``None``
    means the run is within its limit and nothing happens. Without ``allow`` a ``ValueError`` carries
    ``message`` plus how to proceed anyway; with ``allow`` the one-line note is printed to ``stream``
    (default ``sys.stderr``; ``None``: not printed) and returned, and the run proceeds.
    """
    if message is None:
        return None
    if allow:
        note = f"note: {flag} given, proceeding although {message}"
        if stream is not None:
            print(note, file=sys.stderr if stream == "stderr" else stream)
        return note
    raise ValueError(f"{message} (or pass {flag} to run anyway)")


def lane_limit_message(what: str, fields: str, draws_per_unit: int, jump: int, period: int, requested: int,
                       advice: str, unit: str | None = None) -> str | None:
    """Why ``requested`` units (samples, reads; ``what``, plural; ``unit``:
    the singular, default ``what`` less its final s) of ``draws_per_unit`` lane draws each are not independent.

    Lane i + 1 of a bank repeats lane i after ``jump`` draws and the whole stream after ``period``
    draws: at most ``jump // draws_per_unit`` units are independent. ``fields`` names the spec fields
    that set the draws; ``advice`` says what to change. ``None`` when ``requested`` is within the limit.
    """
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 0:
        raise ValueError(f"the number of {what} must be an integer ≥ 0, not {requested!r}")
    if draws_per_unit <= 0:
        return None
    limit = jump // draws_per_unit
    if requested <= limit:
        return None
    repeat = period // draws_per_unit
    how = (f"repeat the whole stream (beyond {repeat})" if requested > repeat
           else f"make lane i + 1 repeat lane i (beyond {limit})")
    return (f"{fields}: {draws_per_unit} PRNG draws per {unit or what.removesuffix('s')}, "
            f"prng_jump={jump}: {requested} {what} {how}; at most {limit} {what} are independent — {advice}")
