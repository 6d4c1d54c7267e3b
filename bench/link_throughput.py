"""Link-bound against core-bound samples/s of a board's inference core (host link protocol v2).

The host → device direction carries the samples; its cost per sample is measured with the real
host driver (:class:`boards.host.EPCoreHost`) against the simulated link (:mod:`boards.simlink`):

1. **bytes per sample** on MNIST test images at the stream level (every byte the host writes:
   INPUT/INPUT_Z frames and the SYNC frames of the flow control; and what the device answers),
   with the zero-run coding (INPUT_Z) on and off;
2. **cycles per sample at the real baud rate**: the same host driving ``UARTLinkedCore`` (UART
   bit by bit at ``divisor = clock / baud``) with a mock core that is busy ``--core-cycles`` per
   sample like the real one, in steady state (between the first and the last prediction), so the
   pipelining (the host keeps the receive FIFO and the sample buffer full while the core works)
   is measured, not assumed;
3. **cycles per sample streamed from block RAM** (``--ram-samples``): the same mock core behind a
   link with a sample store (``HostLink(store_samples=N)``): the samples are loaded with STORE frames
   first, then one RUN_STORED sends them to the core back to back with no host in the loop; steady
   state between the first and the last prediction. The ULX3S's room for a store beside the
   784-500-10 core (193 of 208 DP16KD in its build) is printed from ``boards.fit.store_plan``.

The simulated core is ``layers (784, 16, 10)``, P = 16, 8-bit inputs: its link frames are those of
the 784-500-10 P = 16 core (the INPUT frames depend only on the input layer, P, input_bits and the
label width; checked below). The core-bound rate is ``clock / core_cycles``.

    nice -n 10 python bench/link_throughput.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from boards.host import EPCoreHost  # noqa: E402
from boards.mock_core import MockEPCore  # noqa: E402
from boards.protocol import PROTOCOL_VERSION, LinkFormat  # noqa: E402
from boards.simlink import StreamSimTransport, UARTSimTransport  # noqa: E402
from boards.top import LinkedCore, UARTLinkedCore  # noqa: E402
from boards.uart import FT231X, default_baud, uart_divisor  # noqa: E402
from golden.fileio import atomic_write_bytes  # noqa: E402
from spec.ep_core import EPCoreSpec  # noqa: E402

SIM_SPEC = EPCoreSpec(layers=(784, 16, 10), lanes=16, training=False)
REAL_SPEC = EPCoreSpec(layers=(784, 500, 10), lanes=16, training=False)


def default_data_dir(arg):
    if arg:
        return arg
    if os.environ.get("EPFORGE_DATA"):
        return os.environ["EPFORGE_DATA"]
    d = REPO.parent / "shared" / "data"
    return str(d) if d.exists() else None


def mnist_test(data_dir, n):
    from golden.data import load_mnist_or_subset

    ds = load_mnist_or_subset("test", data_dir)
    return ds.name, [img.reshape(-1).tolist() for img in ds.images[:n]], [int(y) for y in ds.labels[:n]]


def stream_bytes(xs, ys, *, compress: bool, depth: int) -> dict:
    """Bytes per sample each way (the stream-level simulation: exact byte counts, fast)."""
    dut = LinkedCore(MockEPCore(SIM_SPEC, delay=4), SIM_SPEC, rx_fifo_depth=depth, timeout_cycles=10_000)
    host = EPCoreHost(StreamSimTransport(dut, seed=1), SIM_SPEC)
    host.compress = compress
    host.sync()
    s0, r0 = host.link_stats["bytes_sent"], host.link_stats["bytes_received"]
    per = []
    for x, y in zip(xs, ys, strict=True):
        a = host.link_stats["bytes_sent"]
        host._send_sample(x, y)
        per.append(host.link_stats["bytes_sent"] - a)
    preds = [host._wait(0x90) for _ in xs]
    host.sync()
    assert len(preds) == len(xs) and host.link_stats["device_errors"] == 0
    return {"host_to_device_bytes_per_sample": (host.link_stats["bytes_sent"] - s0) / len(xs),
            "frame_bytes_per_sample_min_mean_max": [min(per), statistics.mean(per), max(per)],
            "device_to_host_bytes_per_sample": (host.link_stats["bytes_received"] - r0) / len(xs)}


def uart_cycles(xs, ys, *, divisor: int, core_cycles: int, depth: int) -> dict:
    """Cycles per sample in steady state with the UART at ``divisor`` and a core busy ``core_cycles``."""
    delay = core_cycles - SIM_SPEC.tiles(0)  # the mock takes one input beat a cycle, then is busy `delay`
    dut = UARTLinkedCore(MockEPCore(SIM_SPEC, delay=delay), SIM_SPEC, divisor=divisor, rx_fifo_depth=depth,
                         timeout_cycles=100_000)
    t = UARTSimTransport(dut, seed=1, max_wait_cycles=4 * (core_cycles + 12_000 * divisor))
    host = EPCoreHost(t, SIM_SPEC)
    host.sync()
    stamps = []

    class Stamped(deque):  # the cycle each prediction arrived (the host reads them while it still sends)
        def append(self, item):
            stamps.append(t.cycles)
            super().append(item)

    host._queues[0x90] = Stamped()
    for x, y in zip(xs, ys, strict=True):
        host._send_sample(x, y)
    for _ in xs:
        host._wait(0x90)
    assert not t.fault and host.link_stats["device_errors"] == 0
    steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return {"prediction_cycles": stamps, "cycles_per_sample_steady": steady}


def ram_cycles(xs, ys, *, core_cycles: int, depth: int) -> dict:
    """Cycles per sample run from the sample store (loaded first) with a core busy ``core_cycles``."""
    delay = core_cycles - SIM_SPEC.tiles(0)
    dut = LinkedCore(MockEPCore(SIM_SPEC, delay=delay), SIM_SPEC, rx_fifo_depth=depth, timeout_cycles=100_000,
                     store_samples=len(xs))
    t = StreamSimTransport(dut, seed=1, max_wait_cycles=4 * core_cycles + 100_000)
    host = EPCoreHost(t, SIM_SPEC)
    c0, b0 = t.cycles, host.link_stats["bytes_sent"]
    host.store_samples(xs, ys)
    load_cycles, load_bytes = t.cycles - c0, host.link_stats["bytes_sent"] - b0
    stamps = []

    class Stamped(deque):
        def append(self, item):
            stamps.append(t.cycles)
            super().append(item)

    host._queues[0x90] = Stamped()
    c1 = t.cycles
    preds = host.run_stored(0, len(xs))
    from boards.mock_core import mock_prediction

    assert preds == [mock_prediction(SIM_SPEC, x, y, False) for x, y in zip(xs, ys, strict=True)]
    assert host.link_stats["device_errors"] == 0
    return {"prediction_cycles": [c - c1 for c in stamps], "load_cycles_stream_level": load_cycles,
            "store_bytes_per_sample": load_bytes / len(xs),
            "cycles_per_sample_steady": (stamps[-1] - stamps[0]) / (len(stamps) - 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="MNIST root (default $EPFORGE_DATA, else ../shared/data, else the subset)")
    ap.add_argument("--samples", type=int, default=500, help="MNIST test images for the byte counts (default 500)")
    ap.add_argument("--uart-samples", type=int, default=6,
                    help="MNIST test images through the UART-level simulation (default 6; ~1 min each)")
    ap.add_argument("--clock-mhz", type=float, default=50.0,
                    help="core clock (default 50: the ULX3S PLL just under the 784-500-10 core's 50.82 MHz Fmax)")
    ap.add_argument("--baud", type=int, default=None,
                    help="UART rate (default: the fastest the FT231X and the clock make exactly)")
    ap.add_argument("--core-cycles", type=int, default=44_151,
                    help="core cycles per sample (default 44,151: 784-500-10 P16 inference, docs/boards.md)")
    ap.add_argument("--rx-fifo-depth", type=int, default=512, help="receive FIFO bytes (default 512)")
    ap.add_argument("--ram-samples", type=int, default=6,
                    help="MNIST test images streamed from the simulated sample store (default 6)")
    ap.add_argument("--core-blocks", type=int, default=193,
                    help="DP16KD the 784-500-10 core takes on the ULX3S (default 193: its build, README)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "link_throughput.json"))
    ap.add_argument("--first", type=int, default=0, help="index of the first test image (default 0)")
    a = ap.parse_args(argv)
    for name in ("samples", "uart_samples", "ram_samples", "core_cycles", "rx_fifo_depth"):
        lo = 2 if name in ("uart_samples", "ram_samples") else 1
        if getattr(a, name) < lo:
            ap.error(f"--{name.replace('_', '-')} must be at least {lo}")
    if a.first < 0:
        ap.error(f"--first must be at least 0, not {a.first}")
    if not a.clock_mhz > 0:
        ap.error(f"--clock-mhz must be positive, not {a.clock_mhz}")
    clk = a.clock_mhz * 1e6
    baud = default_baud(clk, FT231X) if a.baud is None else a.baud
    try:
        divisor = uart_divisor(clk, baud, bridge=FT231X)
    except ValueError as e:
        ap.error(f"--baud {baud}: {e}")
    fs, fr = LinkFormat(SIM_SPEC), LinkFormat(REAL_SPEC)
    assert (fs.beat_bytes, fs.label_bytes, fs.sample_bytes) == (fr.beat_bytes, fr.label_bytes, fr.sample_bytes)
    t0 = time.monotonic()
    data_name, xs, ys = mnist_test(default_data_dir(a.data_dir), a.first + a.samples)
    xs, ys = xs[a.first :], ys[a.first :]
    nz = sum(v != 0 for x in xs for v in x) / (len(xs) * 784)
    rows = {}
    for compress in (False, True):
        rows["INPUT_Z (zero runs)" if compress else "INPUT (raw)"] = stream_bytes(xs, ys, compress=compress,
                                                                               depth=a.rx_fifo_depth)
    u = uart_cycles(xs[: a.uart_samples], ys[: a.uart_samples], divisor=divisor, core_cycles=a.core_cycles,
                    depth=a.rx_fifo_depth)
    ram = ram_cycles(xs[: a.ram_samples], ys[: a.ram_samples], core_cycles=a.core_cycles, depth=a.rx_fifo_depth)
    from boards.fit import store_plan

    plan = store_plan("ulx3s", REAL_SPEC, 0, core_blocks=a.core_blocks)
    line_bytes_per_s = clk / divisor / 10  # 8N1: 10 bit times a byte
    core_bound = clk / a.core_cycles
    table = []
    for name, r in rows.items():
        b = r["host_to_device_bytes_per_sample"]
        table.append({"encoding": name, "bytes_per_sample": round(b, 1),
                      "link_bound_samples_per_s": round(line_bytes_per_s / b, 1)})
    measured = clk / u["cycles_per_sample_steady"]
    res = {
        "bench": "link_throughput", "protocol_version": PROTOCOL_VERSION, "data": data_name,
        "samples": len(xs), "nonzero_pixel_fraction": round(nz, 4), "clock_mhz": a.clock_mhz, "baud": baud,
        "divisor": divisor, "bridge": FT231X.name, "rx_fifo_depth": a.rx_fifo_depth, "core_cycles": a.core_cycles,
        "core_bound_samples_per_s": round(core_bound, 1), "line_bytes_per_s": line_bytes_per_s,
        "bytes": rows, "table": table,
        "uart_sim": {**u, "samples": a.uart_samples, "samples_per_s": round(measured, 1),
                     "fraction_of_core_bound": round(measured / core_bound, 3)},
        "ram_sim": {**ram, "samples": a.ram_samples, "samples_per_s": round(clk / ram["cycles_per_sample_steady"], 1),
                    "fraction_of_core_bound": round(clk / ram["cycles_per_sample_steady"] / core_bound, 3),
                    # one pass over a set too big for the store: load a part over the link, then run it
                    "one_pass_samples_per_s": round(1 / (ram["store_bytes_per_sample"] / line_bytes_per_s
                                                         + ram["cycles_per_sample_steady"] / clk), 1),
                    "ulx3s_store": plan},
        "wall_s": round(time.monotonic() - t0, 1),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(res, indent=1) + "\n").encode())
    print(f"{data_name}: {len(xs)} test images, {nz:.1%} non-zero pixels; {a.clock_mhz:g} MHz, {baud} baud "
          f"(divisor {divisor}), FIFO {a.rx_fifo_depth} B")
    print("| encoding | host→device bytes/sample | link-bound samples/s | core-bound samples/s |")
    print("| --- | ---: | ---: | ---: |")
    for r in table:
        print(f"| {r['encoding']} | {r['bytes_per_sample']} | {r['link_bound_samples_per_s']} | {core_bound:.0f} |")
    print(f"UART-level simulation ({a.uart_samples} samples, zero runs on): {u['cycles_per_sample_steady']:.0f} "
          f"cycles/sample in steady state = {measured:.0f} samples/s at {a.clock_mhz:g} MHz "
          f"({measured / core_bound:.0%} of core-bound)")
    rs = clk / ram["cycles_per_sample_steady"]
    print(f"streamed from block RAM ({a.ram_samples} samples in the store): {ram['cycles_per_sample_steady']:.0f} "
          f"cycles/sample = {rs:.0f} samples/s ({rs / core_bound:.1%} of core-bound); one pass loading each part "
          f"first ({ram['store_bytes_per_sample']:.1f} B/sample): {res['ram_sim']['one_pass_samples_per_s']} samples/s")
    print(f"ULX3S store beside the 784-500-10 core ({a.core_blocks} of 208 DP16KD): at most "
          f"{plan['max_store_samples']} samples of {plan['slot_bytes']} B")
    print("| path | samples/s | of core-bound |")
    print("| --- | ---: | ---: |")
    print(f"| link-bound, UART-level simulation | {measured:.0f} | {measured / core_bound:.0%} |")
    print(f"| streamed from block RAM | {rs:.0f} | {rs / core_bound:.1%} |")
    print(f"| core-bound (clock / core cycles) | {core_bound:.0f} | 100% |")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
