"""Value checks shared by the specs and the golden configs: one wording for every refusal.

Each check raises ``ValueError`` naming the parameter, the value and what is allowed
(``lanes must be a positive integer, not 0``) and returns the value it accepted.
"""

from __future__ import annotations

import math
from typing import Any


def int_in(name: str, v: Any, lo: int, hi: int | None = None, what: str | None = None) -> int:
    """An int (not a bool) in ``lo..hi`` (``hi`` None: no upper bound)."""
    ok = not isinstance(v, bool) and isinstance(v, int) and v >= lo and (hi is None or v <= hi)
    if not ok:
        if what is None:
            what = (f"an integer in {lo}..{hi}" if hi is not None else
                    "a positive integer" if lo == 1 else "a non-negative integer" if lo == 0 else f"an integer >= {lo}")
        raise ValueError(f"{name} must be {what}, not {v!r}")
    return v


def positive_int(name: str, v: Any) -> int:
    return int_in(name, v, 1)


def choice(name: str, v: Any, allowed: tuple[str, ...]) -> Any:
    if v not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, not {v!r}")
    return v


def positive_ints(name: str, value: Any) -> tuple[int, ...]:
    """One positive int or a sequence of them, as a tuple."""
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for v in items:
        positive_int(f"{name} entries", v)
    return items


def per_connection_floats(name: str, value: Any, n: int, *, positive: bool = False) -> tuple[float, ...]:
    """One finite number or ``n`` of them (one per connection, input side first), as floats;
    with ``positive`` each must also be > 0."""
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if len(items) not in (1, n):
        raise ValueError(f"{name} must have 1 or {n} entries (one per connection, input side first), "
                         f"not {len(items)}: {list(items)}")
    if any(isinstance(v, (bool, str)) for v in items):
        raise ValueError(f"{name} entries must be numbers, not {list(items)}")
    try:
        out = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ValueError(f"{name} entries must be numbers, not {list(items)}") from None
    for v in out:
        if not math.isfinite(v) or (positive and v <= 0):
            what = "finite positive numbers" if positive else "finite numbers"
            raise ValueError(f"{name} entries must be {what}, not {v!r}")
    return out
