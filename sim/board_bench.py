"""cocotb bench: a board's link + core Verilog (LinkedCore or LinkedGalton) driven by the real host code.

Run by :func:`boards.simboard.run_verilator`. The host session (:func:`boards.run.ep_session` …,
synchronous, the same code that drives a serial port) runs in a :func:`cocotb.task.bridge` thread;
its transport's ``write``/``read`` enter the simulation through :func:`cocotb.task.resume`.

The link's byte streams are driven at the UART's pace (:class:`PacedLink`): one byte per 8N1 frame
of ``10 * divisor`` clock cycles each way, with a ``Timer`` between bytes. No Python runs per clock
cycle (the clock is cocotb's GPI clock), so the simulator runs freely between bytes. The UART's own
shift registers are not in this simulation (``boards/uart.py`` is tested bit by bit on its own and
behind the link in tests/test_boards.py).
"""

from __future__ import annotations

import collections
import os
import time

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import Event, First, ReadOnly, RisingEdge, Timer

from sim.runner import load_job, save_result
from sim.streams import reset, start_clock

PERIOD_NS = 10
DEBUG = bool(os.environ.get("EPFORGE_BOARD_DEBUG"))  # the simulated clock; board time = cycles / the board's clock


class PacedLink:
    """Host side of the board's link at the UART's pace, on :class:`boards.top.LinkedCore`'s byte streams.

    A byte from the host enters ``rx`` one 8N1 frame (``10 * divisor`` cycles) after the previous one;
    a UART cannot wait, so ``rx`` not ready for a whole frame counts as a lost byte (``overflows``).
    A byte the link offers on ``tx`` is taken, and reaches the host one frame later; the next one is
    taken after that frame (the UART transmitter's pace). Per byte: a handful of triggers, no Python
    per clock cycle.
    """

    def __init__(self, dut, divisor: int):
        self.dut, self.divisor = dut, divisor
        self.frame_ns = 10 * divisor * PERIOD_NS
        self.to_device: collections.deque[int] = collections.deque()
        self.from_device = bytearray()
        self.have_tx = Event()
        self.got_rx = Event()
        self.overflows = 0

    async def sender(self) -> None:
        clk, v, r, p = self.dut.clk, self.dut.rx__valid, self.dut.rx__ready, self.dut.rx__payload
        v.value = 0
        while True:
            while not self.to_device:
                self.have_tx.clear()
                await self.have_tx.wait()
            p.value = self.to_device.popleft()
            v.value = 1
            await ReadOnly()
            if r.value != 1:  # the receive FIFO is full: a UART byte waits at most one frame
                t = Timer(self.frame_ns, unit="ns")
                if await First(RisingEdge(r), t) is t:
                    self.overflows += 1
            await RisingEdge(clk)  # the handshake edge
            v.value = 0
            # to the middle of the cycle before the next frame's handshake edge (no race with the clock)
            await Timer(self.frame_ns - PERIOD_NS - PERIOD_NS // 2, unit="ns")

    async def receiver(self) -> None:
        clk, v, r, p = self.dut.clk, self.dut.tx__valid, self.dut.tx__ready, self.dut.tx__payload
        r.value = 1
        while True:
            await ReadOnly()
            if v.value != 1:
                await RisingEdge(v)
                continue
            b = int(p.value)
            await RisingEdge(clk)  # the handshake edge
            r.value = 0
            await Timer(self.frame_ns - PERIOD_NS - PERIOD_NS // 2, unit="ns")  # the frame on the wire
            self.from_device.append(b)
            self.got_rx.set()
            r.value = 1

    async def write(self, data: bytes) -> None:
        if DEBUG:
            cocotb.log.info(f"host writes {len(data)} byte(s) {bytes(data[:8]).hex()}")
        self.to_device.extend(data)
        self.have_tx.set()

    async def read(self, n: int, max_wait_ns: int) -> bytes:
        t_end = get_sim_time("ns") + max_wait_ns
        while len(self.from_device) < n:
            left = t_end - get_sim_time("ns")
            if left <= 0:
                break
            self.got_rx.clear()
            await First(self.got_rx.wait(), Timer(left, unit="ns"))
        out = bytes(self.from_device[:n])
        del self.from_device[:n]
        if DEBUG:
            cocotb.log.info(f"host read {out.hex()} (asked {n})")
        return out


class BridgeTransport:
    """``write``/``read`` for the host code running in a bridge thread."""

    def __init__(self, lines: PacedLink, max_wait_cycles: int):
        self.lines, self.max_wait_ns = lines, max_wait_cycles * PERIOD_NS
        self._write = resume(lines.write)
        self._read = resume(lines.read)

    def write(self, data: bytes) -> None:
        self._write(bytes(data))

    def read(self, n: int) -> bytes:
        return self._read(n, self.max_wait_ns)


async def _now_cycles() -> int:
    return int(get_sim_time("ns")) // PERIOD_NS


@cocotb.test()
async def board(dut):
    from boards.host import LinkError
    from boards.run import CountingTransport, ep_session, eqspike_session, galton_session

    job = load_job()
    start_clock(dut.clk, PERIOD_NS)
    dut.rx__valid.value = 0
    dut.tx__ready.value = 0
    await reset(dut)
    lines = PacedLink(dut, int(job["divisor"]))
    cocotb.start_soon(lines.sender())
    cocotb.start_soon(lines.receiver())
    transport = CountingTransport(BridgeTransport(lines, int(job["max_wait_cycles"])))
    now = resume(_now_cycles)
    progress_file = job.get("progress_file")
    last = [0.0]

    def progress(n: int) -> None:
        t = time.monotonic()
        if progress_file and (t - last[0] > 0.3 or n == job.get("n_total")):
            last[0] = t
            tmp = progress_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(n))
            os.replace(tmp, progress_file)

    session = {"ep": ep_session, "galton": galton_session, "eqspike": eqspike_session}[job["design"]]

    def host_main() -> dict:
        try:
            return session(transport, job, progress, now)
        except (LinkError, ValueError) as e:
            return {"error": str(e), "error_type": type(e).__name__}

    t0 = time.monotonic()
    res = await bridge(host_main)()
    res["host_wall_s"] = time.monotonic() - t0
    res["rx_overflows"] = lines.overflows
    save_result(res)
