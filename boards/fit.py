"""Whether a design fits a board's block RAM, decided before any tool runs: the EP / EqSpike core's
memories against the FPGA's block RAM (:func:`check_fits`) and a sample store beside the core
(:func:`store_plan`, :func:`check_store_fits`). Kept apart from :mod:`boards.synth` so that the board
tops can check a fit without importing the synthesis driver (which imports them)."""

from __future__ import annotations

from spec.ep_core import EPCoreSpec

# Block RAM of each board's FPGA in bits (data + parity as the primitives hold them): the ECP5-85F's
# 208 DP16KD of 18 kbit; the iCE40UP5K's 30 EBR of 4 kbit and 4 SPRAM of 256 kbit (docs/boards.md)
BOARD_RAM_BITS = {
    "ulx3s": {"DP16KD": 208 * 18 * 1024},
    "icebreaker": {"EBR": 30 * 4 * 1024, "SPRAM": 4 * 256 * 1024},
}


def check_fits(board: str, design: str, spec) -> None:
    """Refuse, before any tool runs, an EP core whose memories need more bits than the board's block RAM
    (a lower bound: packing words into RAM blocks only adds to it), with the numbers.

    ``mock`` holds only the weight memory of the spec's size; ``galton`` has no large memories."""
    if board not in BOARD_RAM_BITS:
        raise ValueError(f"board must be one of {sorted(BOARD_RAM_BITS)}, not {board!r}")
    if design == "eqspike":
        from .eqspike_top import storage_bits

        need = storage_bits(spec)
        total, have = sum(need.values()), sum(BOARD_RAM_BITS[board].values())
        if total > have:
            parts = ", ".join(f"{k} {v:,}" for k, v in need.items() if v)
            raise ValueError(f"the {'-'.join(map(str, spec.layers))} EqSpike core (P = {spec.lanes}, training = "
                             f"{spec.training}) does not fit the {board}: its memories need {total:,} bits ({parts}), "
                             f"the FPGA has {have:,} bits of block RAM; use fewer or narrower weights, inference "
                             "only, or the other board")
        return
    if design == "galton" or not isinstance(spec, EPCoreSpec):
        return
    need = spec.storage_bits()
    if design == "mock":
        need = {k: v for k, v in need.items() if k in ("weights", "cells")}
    total = sum(need.values())
    have = sum(BOARD_RAM_BITS[board].values())
    if total > have:
        parts = ", ".join(f"{k} {v:,}" for k, v in need.items() if v)
        ram = " + ".join(f"{k} {v:,}" for k, v in BOARD_RAM_BITS[board].items())
        raise ValueError(f"the {'-'.join(map(str, spec.layers))} core (P = {spec.lanes}) does not fit the {board}: "
                         f"its memories need {total:,} bits ({parts}), the FPGA has {have:,} bits of block RAM "
                         f"({ram}); use ternary weights, fewer or narrower weights, or the other board")
    if design == "ep":
        check_lanes_fit(board, spec)


# Multipliers of each board's FPGA: primitive, count, signed operand widths (docs/boards.md). yosys' mul2dsp
# splits a wider product into ⌈a/A⌉·⌈b/B⌉ primitives.
BOARD_DSP = {"ulx3s": ("MULT18X18D", 156, 18, 18), "icebreaker": ("SB_MAC16", 8, 16, 16)}
# Block RAM shapes (depth, width) that give one read and one write port at once, each of the full width: the
# ECP5's DP16KD (true dual port up to 18 bits, PDPW16KD 512 × 36 pseudo dual port), the iCE40's SB_RAM40_4K
# (EBR; the SPRAM has one port and cannot hold a memory that is read and written in the same cycle). The EP
# core's weight memories need both ports in the same cycle (training: the update reads a word while writing
# back the word it read a few cycles before), so one DP16KD delivers at most 36 bits of a weight word per
# cycle, one EBR 16.
BOARD_BRAM = {"ulx3s": ("DP16KD", 208, ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))),
              "icebreaker": ("EBR", 30, ((2048, 2), (1024, 4), (512, 8), (256, 16)))}


def lane_dsps(board: str, spec: EPCoreSpec) -> dict:
    """The lanes' multiplier primitives on ``board``: ``per_lane`` (⌈left/A⌉·⌈right/B⌉ for the spec's
    operand widths), ``lanes`` (:attr:`EPCoreSpec.lane_multipliers`), ``need`` and ``have``. A lower bound on
    the build's count: the board top adds a few (the host link's store base; 16 + 2 in the 784-320-10 P16
    training build, docs/boards.md)."""
    name, have, a, b = BOARD_DSP[board]
    left, right = spec.lane_operand_bits
    per = -(-left // a) * -(-right // b)
    return {"dsp": name, "have": have, "per_lane": per, "left_bits": left, "right_bits": right,
            "lanes": spec.lane_multipliers, "need": spec.lane_multipliers * per}


def memory_blocks(board: str, words: int, width: int) -> tuple[int, int, int]:
    """The fewest block RAMs of ``board`` that hold ``words`` words of ``width`` bits and read (and write)
    a whole word per cycle: ``(blocks, depth, width)`` of the best shape. Splitting a memory into banks
    only adds blocks, so this is a lower bound for the staged weight store too."""
    _, _, shapes = BOARD_BRAM[board]
    return min((-(-width // w) * -(-words // d), d, w) for d, w in shapes)


def weight_blocks(board: str, spec: EPCoreSpec) -> dict:
    """Block RAMs of the fixed-point weight memories (and a ternary training core's latent weights), one
    per connection, each ``rows·tiles`` words of ``P·elem_bits`` bits (:meth:`EPCoreSpec.memory_map`): a
    lower bound on the core's block RAM (the biases, states, input, c1 and d memories are small and may
    become distributed RAM)."""
    regions = [r for r in spec.memory_map()
               if (r.name.startswith("w") and spec.weight_kind == "fixed") or r.name.startswith("v")]
    mems = {}
    for r in regions:
        blocks, depth, width = memory_blocks(board, r.words, spec.lanes * r.elem_bits)
        mems[r.name] = {"words": r.words, "bits": spec.lanes * r.elem_bits, "blocks": blocks,
                        "shape": f"{depth} x {width}", "side_by_side": -(-spec.lanes * r.elem_bits // width)}
    return {"ram": BOARD_BRAM[board][0], "have": BOARD_BRAM[board][1], "memories": mems,
            "need": sum(m["blocks"] for m in mems.values())}


def check_lanes_fit(board: str, spec: EPCoreSpec) -> None:
    """Refuse, on one line with the numbers, an EP core whose lanes need more multipliers than the board's
    FPGA has, or whose weight memories need more block RAMs (DP16KD; EBR for a training core) than it has once
    every weight word is read whole in one cycle through a block's read port while its write port takes the
    update's writes."""
    name = f"the {'-'.join(map(str, spec.layers))} core (P = {spec.lanes}"
    d = lane_dsps(board, spec)
    if d["need"] > d["have"]:
        raise ValueError(
            f"{name}, training = {spec.training}) does not fit the {board}: its {d['lanes']} lane multipliers of "
            f"{d['left_bits']} x {d['right_bits']} signed bits need {d['need']} {d['dsp']} ({d['per_lane']} per lane; "
            f"inference and training share them), the FPGA has {d['have']}: at most P = "
            f"{d['have'] // d['per_lane']} lanes")
    if board == "icebreaker" and not spec.training:
        return  # an inference core's weights might go to the SPRAM (read in sweeps, written between samples)
    w = weight_blocks(board, spec)
    if w["need"] > w["have"]:
        widest = max(width for _, width in BOARD_BRAM[board][2])
        parts = ", ".join(f"{k} {m['words']:,} words x {m['bits']} bits: {m['blocks']} ({m['side_by_side']} side by "
                          f"side as {m['shape']})" for k, m in w["memories"].items())
        raise ValueError(
            f"{name}) does not fit the {board}: its weight memories need at least {w['need']} {w['ram']} ({parts}), "
            f"the FPGA has {w['have']}; one {w['ram']} reads and writes at most {widest} bits a cycle (one read port "
            f"and one write port, both used by the update's read-modify-write): use fewer lanes, narrower weights or "
            f"a smaller layer")


# the block RAM primitive each board's sample store is built from: name, count, bits each, bytes
# each as a byte-wide (x9 / x8) memory
STORE_RAM = {"ulx3s": ("DP16KD", 208, 18 * 1024, 2048), "icebreaker": ("EBR", 30, 4 * 1024, 512)}


def platform_board(platform) -> str | None:
    """``ulx3s`` / ``icebreaker`` for an amaranth-boards platform of those boards, else ``None``."""
    names = " ".join(c.__name__ for c in type(platform).__mro__).lower()
    return next((b for b in STORE_RAM if b in names), None)


def _core_ram_bits(spec) -> int:
    if getattr(spec, "kind", None) == "eqspike":
        from .eqspike_top import storage_bits

        return sum(storage_bits(spec.eqspike if hasattr(spec, "eqspike") else spec).values())
    return sum(spec.storage_bits().values())


def store_plan(board: str, spec, store_samples: int, *, core_blocks: int | None = None) -> dict:
    """Block RAM of a sample store of ``store_samples`` slots beside the core on ``board``.

    ``core_blocks``: the core's blocks from a real build (e.g. 193 DP16KD for the 784-500-10 P16
    inference core, docs/boards.md); default: a lower bound from the core's memory bits (whole
    blocks of ``bits`` each) plus one block for the receive FIFO."""
    from .protocol import LinkFormat, store_memory_bytes

    if board not in STORE_RAM:
        raise ValueError(f"board must be one of {sorted(STORE_RAM)}, not {board!r}")
    name, count, bits, per = STORE_RAM[board]
    core_bits = _core_ram_bits(spec)
    measured = core_blocks is not None
    if core_blocks is None:
        core_blocks = -(-core_bits // bits) + 1
    free = count - core_blocks
    SB = LinkFormat(spec).sample_bytes

    def blocks(n: int) -> int:
        labels = -(-n * spec.label_bits // bits) if n else 0
        return -(-store_memory_bytes(spec, n) // per) + labels

    most = 0
    while blocks(most + 1) <= free:
        most += 1
    # the live sample buffer exists without a store: only the blocks beyond it count as the store's
    return {"ram": name, "blocks_on_chip": count, "core_blocks": core_blocks, "core_blocks_measured": measured,
            "core_bits": core_bits, "slot_bytes": SB, "store_samples": store_samples,
            "store_bytes": store_memory_bytes(spec, store_samples), "store_blocks": blocks(store_samples),
            "max_store_samples": most}


def check_store_fits(board: str, spec, store_samples: int, *, core_blocks: int | None = None) -> dict:
    """Refuse a sample store that does not fit the board's block RAM beside the core, on one line
    with the numbers; returns :func:`store_plan`."""
    if isinstance(store_samples, bool) or not isinstance(store_samples, int) or not 0 <= store_samples < 1 << 16:
        raise ValueError(f"store_samples must be an integer in [0, 65535], not {store_samples!r}")
    plan = store_plan(board, spec, store_samples, core_blocks=core_blocks)
    if plan["store_blocks"] + plan["core_blocks"] > plan["blocks_on_chip"]:
        r = plan["ram"]
        core = (f"{plan['core_blocks']} {r} (a real build's count)" if plan["core_blocks_measured"] else
                f"at least {plan['core_blocks']} {r} ({plan['core_bits']:,} bits of memories and the receive FIFO)")
        raise ValueError(
            f"store_samples={store_samples}: a sample store of {store_samples} samples ({plan['store_bytes']:,} bytes: "
            f"{plan['slot_bytes']:,}-byte slots and the live sample, {plan['store_blocks']} {r} with the labels) does "
            f"not fit the {board} beside the {'-'.join(map(str, spec.layers))} core, which needs {core}; the FPGA has "
            f"{plan['blocks_on_chip']} {r}: at most {plan['max_store_samples']} samples fit")
    return plan
