"""The failing paths of a routed build, from nextpnr's SDF (``python -m boards synth --sdf``).

nextpnr's log names one critical path per clock; timing closure needs the others too. This reads the
routed delays nextpnr writes with ``--sdf`` (``DIR/build/top.sdf``: every cell's delays and set-up
checks, every routed connection's delay), finds the latest arrival at every register input (a small
static timing analysis: the longest path from any clocked output, worst of the min/typ/max values), and
groups the endpoints that miss the clock period by where their worst path starts and ends (cell
names with yosys' suffixes and bit indices stripped, i.e. the design's signal names).

``python -m boards paths DIR [--period NS] [--top N] [--detail M] [--depth D]``; the period defaults
to the build's clock (``DIR/synth.json``). The numbers are within a few tenths of a nanosecond of
nextpnr's own report (the worst corner of each delay is taken).
"""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any

CLOCK_PINS = frozenset({"CLK", "CLKA", "CLKB", "WCK"})
_TOKEN_RE = re.compile(r'\(|\)|"[^"]*"|(?:\\.|[^\s()"])+')
_SUFFIX_RE = re.compile(r"_TRELLIS_FF_Q.*|_LUT4_Z.*|_CCU2C.*|\$.*|_DO[AB]?_.*|_DPRAM.*|_MULT18X18D.*|_PFUMX.*")


def _parse(text: str) -> list:
    tokens = _TOKEN_RE.findall(text)
    stack: list[list] = [[]]
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    return stack[0]


def _delay(v) -> float:
    """The worst value of an SDF triple ``(min:typ:max)`` (a list of tokens), in the file's unit."""
    s = "".join(v) if isinstance(v, list) else v
    nums = [float(x) for x in s.split(":") if x]
    return max(nums) if nums else 0.0


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def signal_name(cell: str) -> str:
    """A cell's name without yosys' mapping suffixes and bit indices (``a.b[3]_TRELLIS_FF_Q_2`` → ``a.b[]``)."""
    return re.sub(r"\[\d+\]", "[]", _SUFFIX_RE.sub("", cell))


def analyse(sdf_text: str, period_ns: float) -> dict[str, Any]:
    """Worst arrival at every register input of a routed design.

    Returns ``{"endpoints": n, "failing": [(arrival_ns, (cell, pin), path) …]}`` (worst first; ``path``
    the worst path's pins from its clocked start, each ``(cell, pin, arrival_ns)``) for the endpoints
    whose arrival plus set-up exceeds ``period_ns``.
    """
    root = _parse(sdf_text)
    cells = root[0] if root and isinstance(root[0], list) and root[0] and root[0][0] == "DELAYFILE" else root
    scale = 1.0
    edges: dict[tuple, list] = collections.defaultdict(list)
    start: dict[tuple, float] = {}
    setup: dict[tuple, float] = {}
    for cell in cells:
        if not isinstance(cell, list) or not cell:
            continue
        if cell[0] == "TIMESCALE":
            unit = "".join(cell[1:])
            scale = {"1ps": 1e-3, "1ns": 1.0, "10ps": 1e-2, "100ps": 1e-1}.get(unit, 1e-3)
            continue
        if cell[0] != "CELL":
            continue
        inst = ""
        for it in cell[1:]:
            if isinstance(it, list) and it and it[0] == "INSTANCE":
                inst = _unescape(it[1]) if len(it) > 1 else ""
        for it in cell[1:]:
            if not isinstance(it, list) or not it:
                continue
            if it[0] == "DELAY":
                for ab in it[1:]:
                    for p in ab[1:]:
                        if p[0] == "IOPATH":
                            a, b = p[1], p[2]
                            d = max((_delay(x) for x in p[3:]), default=0.0) * scale
                            if isinstance(a, list) or a in CLOCK_PINS:  # clock to output: a path starts here
                                start[(inst, b)] = max(start.get((inst, b), 0.0), d)
                            else:
                                edges[(inst, a)].append(((inst, b), d))
                        elif p[0] == "INTERCONNECT":
                            a, b = _unescape(p[1]), _unescape(p[2])
                            (ca, pa), (cb, pb) = a.rsplit("/", 1), b.rsplit("/", 1)
                            if pb not in CLOCK_PINS:
                                edges[(ca, pa)].append(((cb, pb), max(_delay(x) for x in p[3:]) * scale))
            elif it[0] == "TIMINGCHECK":
                for c in it[1:]:
                    if c[0] in ("SETUPHOLD", "SETUP"):
                        pin = c[1][1] if isinstance(c[1], list) else c[1]
                        su = max(_delay(c[3]), _delay(c[4]) if len(c) > 4 else 0.0) * scale
                        setup[(inst, pin)] = max(setup.get((inst, pin), 0.0), su)
    indeg: collections.Counter = collections.Counter()
    for vs in edges.values():
        for v, _ in vs:
            indeg[v] += 1
    nodes = set(edges) | {v for vs in edges.values() for v, _ in vs} | set(start)
    arrival, prev = dict(start), {}
    queue = collections.deque(n for n in nodes if indeg[n] == 0)
    while queue:  # longest paths in topological order (a combinational loop's pins are left out)
        u = queue.popleft()
        a = arrival.get(u)
        for v, d in edges.get(u, ()):
            if a is not None and v not in start and (v not in arrival or a + d > arrival[v]):
                arrival[v], prev[v] = a + d, u
            indeg[v] -= 1
            if indeg[v] == 0:
                queue.append(v)
    ends = sorted(((arrival[n] + su, n) for n, su in setup.items() if n in arrival), reverse=True)

    def path(n):
        p = [n]
        while p[-1] in prev:
            p.append(prev[p[-1]])
        return [(c, pin, arrival[(c, pin)]) for c, pin in reversed(p)]

    return {"endpoints": len(ends), "failing": [(t, n, path(n)) for t, n in ends if t > period_ns]}


def group(failing: list, depth: int | None = None) -> list[dict[str, Any]]:
    """Failing endpoints grouped by (start signal, end signal), worst first: ``{"worst_ns", "count", "from",
    "to", "path"}``; ``depth`` keeps only the first ``depth`` dotted parts of the names (coarser groups)."""
    out: dict[tuple, dict] = {}
    for t, _, p in failing:
        a, b = signal_name(p[0][0]), signal_name(p[-1][0])
        if depth:
            a, b = ".".join(a.split(".")[:depth]), ".".join(b.split(".")[:depth])
        g = out.setdefault((a, b), {"worst_ns": t, "count": 0, "from": a, "to": b, "path": p})
        g["count"] += 1
    return list(out.values())


def report(out_dir: str | Path, period_ns: float | None = None, top: int = 30, detail: int = 0,
           depth: int | None = None) -> str:
    """The failing paths of the build in ``out_dir`` (its ``build/top.sdf``) as text."""
    import json

    out_dir = Path(out_dir)
    sdf = out_dir / "build" / "top.sdf"
    if not sdf.exists():
        raise FileNotFoundError(f"{sdf} does not exist: build with 'python -m boards synth … --sdf'")
    if period_ns is None:
        period_ns = 1000.0 / json.loads((out_dir / "synth.json").read_text())["clock_mhz"]
    res = analyse(sdf.read_text(), period_ns)
    groups = group(res["failing"], depth)
    lines = [f"{res['endpoints']} register inputs, {len(res['failing'])} miss {period_ns:g} ns; "
             f"{len(groups)} groups (start → end), worst first:"]
    for g in groups[:top]:
        lines.append(f"{g['worst_ns']:7.2f} ns  {g['count']:5d} × {g['from']} → {g['to']}")
    for g in groups[:detail]:
        lines += ["", f"{g['worst_ns']:.2f} ns: {g['from']} → {g['to']}"]
        lines += [f"  {t:7.2f}  {c}.{pin}" for c, pin, t in g["path"]]
    return "\n".join(lines)
