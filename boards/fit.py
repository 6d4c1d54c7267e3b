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
