"""``python -m boards run``: a core on a board (or a simulated board), driven end to end and checked against its twin.

One code path for every board:

* :func:`ep_session` / :func:`galton_session` / :func:`eqspike_session` are the host side: they take
  a byte *transport* (``write(bytes)``, ``read(n) -> bytes``), check the spec id, load the weights,
  run the samples through :class:`boards.host.EPCoreHost` (or the Galton/EqSpike host) and return
  plain data (predictions, read-backs, counters, link bytes, cycles). They import no Amaranth, so
  they run unchanged against a serial port, inside this process against the Amaranth simulator,
  and inside a cocotb simulator process on Verilator (:mod:`sim.board_bench`, in a
  :func:`cocotb.task.bridge` thread).
* :func:`open_board` makes the transport: ``--port`` (pyserial), ``--sim amaranth`` (the gateware in
  the Amaranth simulator: :class:`boards.simlink.StreamSimTransport` on :class:`boards.top.LinkedCore`,
  bytes as fast as the link takes them — or ``--link uart``: :class:`boards.simlink.UARTSimTransport`
  on :class:`boards.top.UARTLinkedCore` at the board's real divisor), ``--sim verilator`` (the
  board's :class:`~boards.top.UARTLinkedCore` Verilog under cocotb at the real baud rate, cycle for cycle).
* The twin replay, the comparison and the report (:func:`compare_ep` …, :func:`write_report`) run in
  this process whatever the board.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from golden.clierr import CLIError, describe

BOARD_CLOCK_HZ = {"ulx3s": 25e6, "icebreaker": 12e6}
REPORT_KIND = "boards-run"


# ================================================================================== transports
class CountingTransport:
    """Counts the bytes each way through a transport (what the link carried)."""

    def __init__(self, inner):
        self.inner = inner
        self.bytes_out = 0  # host → device
        self.bytes_in = 0  # device → host

    def write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.inner.write(data)

    def read(self, n: int) -> bytes:
        b = self.inner.read(n)
        self.bytes_in += len(b)
        return b

    def reset_input_buffer(self) -> None:
        f = getattr(self.inner, "reset_input_buffer", None)
        if callable(f):
            f()

    def snapshot(self) -> tuple[int, int]:
        return self.bytes_out, self.bytes_in


@dataclass
class Board:
    """An open board: the transport and what the report says about it."""

    name: str
    backend: str  # "port /dev/ttyUSB0", "sim amaranth (stream link)", …
    baud: int
    clock_hz: float
    transport: object
    cycles: object = None  # callable → simulated clock cycles so far (simulated boards)
    close: object = None


def _check_port(port: str):
    if not os.path.exists(port):
        raise CLIError(f"--port {port}: no such device (is the board plugged in? its FTDI bridge shows up as "
                       "/dev/ttyUSB0 or similar)")
    try:
        import serial
    except ImportError:
        raise CLIError(f"--port {port}: talking to a real board needs pyserial: pip install pyserial") from None
    return serial


def open_port(port: str, baud: int, board: str, timeout_s: float = 2.0) -> Board:
    serial = _check_port(port)
    try:
        s = serial.Serial(port, baud, timeout=timeout_s)
    except (serial.SerialException, OSError, ValueError) as e:
        raise CLIError(f"--port {port}: cannot open it at {baud} baud ({describe(e) if isinstance(e, OSError) else e})"
                       ) from None
    return Board(board, f"port {port}", baud, BOARD_CLOCK_HZ[board], CountingTransport(s), close=s.close)


def link_timeout_cycles(clock_hz: float) -> int:
    return max(1, int(0.1 * clock_hz))  # the board tops' 0.1 s


def amaranth_dut(design: str, spec, *, link: str, divisor: int, rx_fifo_depth: int, clock_hz: float,
                 store_samples: int = 0):
    """The board's gateware for the Amaranth simulator: LinkedCore (stream) or UARTLinkedCore (uart)."""
    if design == "galton":
        from .galton_top import LinkedGalton, UARTLinkedGalton

        if link == "stream":
            return LinkedGalton(spec, rx_fifo_depth=rx_fifo_depth)
        return UARTLinkedGalton(spec, divisor=divisor, rx_fifo_depth=rx_fifo_depth,
                                timeout_cycles=link_timeout_cycles(clock_hz))
    from .top import LinkedCore, UARTLinkedCore

    if design == "eqspike":
        from .eqspike_top import EqSpikeLinkAdapter, EqSpikeLinkSpec

        view = EqSpikeLinkSpec(spec)
        core, lspec = EqSpikeLinkAdapter(view), view
    else:
        from hdl.ep_core import EPCore

        core, lspec = EPCore(spec), spec
    if link == "stream":
        return LinkedCore(core, lspec, rx_fifo_depth=rx_fifo_depth, store_samples=store_samples)
    return UARTLinkedCore(core, lspec, divisor=divisor, rx_fifo_depth=rx_fifo_depth,
                          timeout_cycles=link_timeout_cycles(clock_hz), store_samples=store_samples)


def open_amaranth(design: str, spec, board: str, baud: int, *, link: str, rx_fifo_depth: int,
                  max_wait_cycles: int, store_samples: int = 0) -> Board:
    from .simlink import StreamSimTransport, UARTSimTransport
    from .uart import uart_divisor

    clock = BOARD_CLOCK_HZ[board]
    divisor = uart_divisor(clock, baud)
    dut = amaranth_dut(design, spec, link=link, divisor=divisor, rx_fifo_depth=rx_fifo_depth, clock_hz=clock,
                       store_samples=store_samples)
    if link == "stream":
        t = StreamSimTransport(dut, max_wait_cycles=max_wait_cycles)
        what = "sim amaranth (LinkedCore byte streams, bytes as fast as the link takes them)"
    else:
        t = UARTSimTransport(dut, max_wait_cycles=max_wait_cycles)
        what = f"sim amaranth (UARTLinkedCore serial lines, {divisor} cycles per bit)"
    return Board(board, what, baud, clock, CountingTransport(t), cycles=lambda: t.cycles, close=t.close)


# ================================================================================== sessions (host side)
def _phase(board_cycles, transport: CountingTransport, t0: float, c0) -> dict:
    out, inn = transport.snapshot()
    d = {"wall_s": time.perf_counter() - t0, "bytes_out": out, "bytes_in": inn}
    if board_cycles is not None:
        d["cycles"] = board_cycles() - c0
    return d


def ep_session(transport: CountingTransport, job: dict, progress=None, cycles=None) -> dict:
    """The EP core's host session (no Amaranth): spec check, weight load, samples, read-backs.

    ``job``: ``spec`` (dict), ``words`` (load-port words), ``x`` (samples, N0 ints each) and ``y``,
    ``train``, ``readback_every`` (0: never), ``chunk``, ``regs`` (T1, T2, beta_shift, lr_shift),
    ``seed`` (None: leave REG_SEED alone), ``mem_writes`` ([addr, value] register writes before the
    load: a ternary core's fault setting), ``corrupt`` (None or a word address whose bit 0 is flipped
    after loading: the self-check that a mismatch is caught). ``progress(n)``: samples done so far.
    ``cycles()``: the simulated board's clock cycles so far (None on a real board).
    """
    from spec.ep_core import REG_CYCLES, REG_SEED, REG_TILLEGAL, REG_TINJECTED, REG_TREADS, EPCoreSpec

    from .host import EPCoreHost

    spec = EPCoreSpec.from_dict(job["spec"])
    c0 = cycles() if cycles else 0
    t0 = time.perf_counter()
    host = EPCoreHost(transport, spec)  # INFO + REG_SPEC_ID: SpecMismatchError on another bitstream
    res: dict = {"spec_id": host.info.spec_id, "rx_fifo_depth": host.info.rx_fifo_depth,
                 "protocol_version": host.info.version}
    ternary = spec.weight_kind == "ternary"
    for a, v in job.get("mem_writes") or []:
        host.write_reg(int(a), int(v))
    words = [int(w) for w in job["words"]]
    host.load_weights(words)
    if job.get("corrupt") is not None:
        a = int(job["corrupt"])
        host.write_word(a, words[a] ^ 1)
        host.sync()
    regs = job["regs"]
    host.configure(T1=regs["T1"], T2=regs["T2"], beta_shift=regs["beta_shift"], lr_shift=regs["lr_shift"])
    if job.get("seed") is not None:
        host.write_reg(REG_SEED, int(job["seed"]))
    host.sync()
    res["load"] = _phase(cycles, transport, t0, c0)
    x, y = job["x"], job["y"]
    train, every = bool(job["train"]), int(job.get("readback_every") or 0)
    readbacks: dict[int, list[int]] = {}
    c1 = cycles() if cycles else 0
    b1 = transport.snapshot()
    t1 = time.perf_counter()
    if train and every:
        readbacks[0] = host.read_weights()
    preds: list[int] = []
    cyc: list[int] = []
    chunk = max(1, int(job.get("chunk") or 8))
    if train and every:
        chunk = min(chunk, every)
    from_ram = bool(job.get("from_ram"))
    if from_ram:  # --from-ram: parts of the set into the board's sample store, each run from there
        chunk = host.store_info().samples
        if chunk == 0:
            from .host import LinkError

            raise LinkError("--from-ram: the board has no sample store (its bitstream was built with "
                             "store_samples = 0; python -m boards synth --store-samples N)")
        if train and every:
            chunk = min(chunk, every)
        ram = {"store_samples": chunk, "parts": 0, "store_cycles": 0, "run_cycles": 0, "store_wall_s": 0.0,
               "run_wall_s": 0.0, "store_bytes_to_device": 0}
    i = 0
    while i < len(x):
        n = min(chunk, len(x) - i)
        if train and every:
            n = min(n, every - i % every)
        if from_ram:
            ta, ca, ba = time.perf_counter(), (cycles() if cycles else 0), transport.snapshot()[0]
            host.store_samples(x[i:i + n], y[i:i + n])
            tb, cb, bb = time.perf_counter(), (cycles() if cycles else 0), transport.snapshot()[0]
            preds += host.run_stored(0, n, train=train)
            ram["parts"] += 1
            ram["store_wall_s"] += tb - ta
            ram["run_wall_s"] += time.perf_counter() - tb
            ram["store_bytes_to_device"] += bb - ba
            if cycles:
                ram["store_cycles"] += cb - ca
                ram["run_cycles"] += cycles() - cb  # from the RUN_STORED frame to the last prediction read
        else:
            preds += host.run(x[i:i + n], y[i:i + n], train=train).preds
        cyc.append(host.read_reg(REG_CYCLES))
        i += n
        if train and every and i % every == 0:
            readbacks[i] = host.read_weights()
        if progress:
            progress(i)
    if train and every and len(x) not in readbacks:
        readbacks[len(x)] = host.read_weights()
    st = host.status()
    res["samples"] = _phase(cycles, transport, t1, c1)
    res["samples"]["bytes_out"] -= b1[0]
    res["samples"]["bytes_in"] -= b1[1]
    res.update(preds=preds, readbacks={str(k): v for k, v in readbacks.items()}, cycles_last=cyc, status=st)
    if from_ram:
        res["from_ram"] = ram
    if job.get("x_eval"):  # --eval: the trained weights on the chip, inference on the test split
        c2, b2, t2 = (cycles() if cycles else 0), transport.snapshot(), time.perf_counter()
        xe, ye, ev = job["x_eval"], job["y_eval"], []
        for i in range(0, len(xe), chunk):
            ev += host.run(xe[i:i + chunk], ye[i:i + chunk], train=False).preds
        host.sync()
        res["eval"] = _phase(cycles, transport, t2, c2)
        res["eval"]["bytes_out"] -= b2[0]
        res["eval"]["bytes_in"] -= b2[1]
        res["eval_preds"] = ev
    if ternary and spec.fault_injection:
        res["mem_counters"] = [host.read_reg(a) for a in (REG_TINJECTED, REG_TILLEGAL, REG_TREADS)]
    return res


# ================================================================================== twin replays
def compare_ep(job: dict, res: dict, max_report: int = 20) -> dict:
    """Replay the session on :class:`golden.ep_core.EPCoreTwin` and list every difference (``==``)."""
    import numpy as np

    from golden.ep_core import EPCoreTwin, Registers, unpack_memory
    from spec.ep_core import REG_SEED, REG_TILLEGAL, REG_TINJECTED, REG_TREADS, EPCoreSpec

    spec = EPCoreSpec.from_dict(job["spec"])
    words = [int(w) for w in job["words"]]
    bad: list[str] = []
    n_bad = 0

    def mismatch(msg: str) -> None:
        nonlocal n_bad
        n_bad += 1
        if len(bad) < max_report:
            bad.append(msg)

    if res["spec_id"] != spec.spec_id:
        mismatch(f"spec id 0x{res['spec_id']:08x} != 0x{spec.spec_id:08x}")
    ternary = spec.weight_kind == "ternary"
    # the core's load port: a ternary core programs its cells (one PRNG draw per word, faults drawn
    # when static), so the twin starts empty and is programmed the same way after the same writes
    twin = EPCoreTwin(spec) if ternary else EPCoreTwin(spec, unpack_memory(spec, words))
    for a, v in job.get("mem_writes") or []:
        if a == REG_SEED:
            twin.reseed(int(v))
        else:
            twin.write_memory_reg(int(a), int(v))
    if ternary:
        twin.program(0, words)
    if job.get("seed") is not None:
        twin.reseed(int(job["seed"]))
    r = job["regs"]
    regs = Registers.from_spec(spec, train=bool(job["train"]), T1=r["T1"], T2=r["T2"], beta_shift=r["beta_shift"],
                               lr_shift=r["lr_shift"])
    x = np.asarray(job["x"], np.int64)
    y = np.asarray(job["y"], np.int64)
    preds = res["preds"]
    compared = {"preds": 0, "weight_readbacks": 0, "weight_arrays": 0, "memory_counters": 0}
    if len(preds) != len(x):
        mismatch(f"{len(preds)} predictions for {len(x)} samples")
    if not job["train"]:
        want, _ = twin.infer(x, regs)
        for i, p in enumerate(preds):
            compared["preds"] += 1
            if p != int(want[i]):
                mismatch(f"sample {i}: prediction {p} != twin {int(want[i])}")
    else:
        rbs = {int(k): v for k, v in res["readbacks"].items()}

        def check_weights(step: int) -> None:
            got = unpack_memory(spec, rbs[step])
            compared["weight_readbacks"] += 1
            for k in got:
                compared["weight_arrays"] += 1
                if not np.array_equal(got[k], twin.weights[k]):
                    n = int((got[k] != twin.weights[k]).sum())
                    mismatch(f"after training step {step}: {k} differs from the twin in {n} element(s)")

        if 0 in rbs:
            check_weights(0)
        for i, p in enumerate(preds):
            rec = twin.train_sample(x[i], int(y[i]), regs)
            compared["preds"] += 1
            if p != rec.pred:
                mismatch(f"training step {i + 1}: prediction {p} != twin {rec.pred}")
            if i + 1 in rbs:
                check_weights(i + 1)
    out_eval = None
    if "eval_preds" in res:  # the weights the training left, on the test split (the core's inference mode)
        ev_regs = Registers.from_spec(spec, train=False, T1=r["T1"], T2=r["T2"], beta_shift=r["beta_shift"],
                                      lr_shift=r["lr_shift"])
        xe, ye = np.asarray(job["x_eval"], np.int64), np.asarray(job["y_eval"], np.int64)
        want, _ = twin.infer(xe, ev_regs)
        got = res["eval_preds"]
        if len(got) != len(xe):
            mismatch(f"--eval: {len(got)} predictions for {len(xe)} test samples")
        compared["eval_preds"] = 0
        for i, p in enumerate(got):
            compared["eval_preds"] += 1
            if p != int(want[i]):
                mismatch(f"--eval test sample {i}: prediction {p} != twin {int(want[i])}")
        out_eval = {"samples": len(got), "accuracy": float(np.mean(np.asarray(got) == ye[:len(got)])) if got else 0.0,
                    "twin_accuracy": float(np.mean(want == ye))}
    if "mem_counters" in res:
        want = [twin.read_memory_reg(a) for a in (REG_TINJECTED, REG_TILLEGAL, REG_TREADS)]
        compared["memory_counters"] += 1
        if res["mem_counters"] != want:
            mismatch(f"ternary memory counters (injected, illegal, reads) {res['mem_counters']} != twin {want}")
    acc = float(np.mean(np.asarray(preds[:len(y)]) == y[:len(preds)])) if len(preds) else 0.0
    out = {"mismatches": n_bad, "mismatch_examples": bad, "compared": compared, "accuracy": acc}
    if out_eval is not None:
        out["eval"] = out_eval
    if "mem_counters" in res:
        out["memory_counters"] = dict(zip(("injected", "illegal", "reads"), res["mem_counters"], strict=True))
    return out


# ================================================================================== job building
def _load_samples(dataset: str, split: str, data_dir, limit: int | None):
    import numpy as np

    from golden.data import load_dataset

    ds = load_dataset(dataset, split, data_dir=data_dir)
    x = ds.images.reshape(len(ds), -1)
    y = np.asarray(ds.labels)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def _core_job(args, load_image, load_spec, init_weights, image_hint: str, what: str = "core"):
    """What the EP and EqSpike jobs share: the spec and weights (``--image``, or ``--spec`` with random
    weights from ``--seed``), the ``--train`` check, and the data set's samples as the core's input codes
    (:func:`golden.ep_core.twin.pixels_to_input`). Returns ``(spec, weights, source, x, y)``."""
    import numpy as np

    from golden.ep_core.twin import pixels_to_input

    if args.image is not None:
        if not Path(args.image).exists():
            raise CLIError(f"--image {args.image}: no such directory (an image from {image_hint})")
        try:
            spec, weights, _ = load_image(args.image)
        except (OSError, ValueError) as e:
            raise CLIError(f"--image {args.image}: {describe(e)}") from None
        source = {"image": str(args.image)}
    else:
        try:
            spec = load_spec(args.spec)
        except (OSError, ValueError) as e:
            raise CLIError(f"--spec {args.spec}: {describe(e)}") from None
        weights = init_weights(spec, args.seed)
        source = {"spec": str(args.spec), "init_seed": args.seed}
    if args.train and not spec.training:
        raise CLIError(f"--train: the {what} of {args.image or args.spec} was built without on-chip learning "
                       "(spec training = false); give a training image or drop --train")
    x, y = _load_samples(args.dataset, "train" if args.train else "test", args.data_dir, args.limit)
    if x.shape[1] != spec.layers[0]:
        raise CLIError(f"--dataset {args.dataset}: samples of {x.shape[1]} pixels, but the core has "
                       f"{spec.layers[0]} inputs")
    return spec, weights, source, pixels_to_input(spec, x.astype(np.int64)), y


def ep_job(args) -> tuple[dict, dict]:
    """The EP (or ternary) core's job from the command line, and what the report says about it."""
    from golden.ep_core import Registers, init_weights, load_image, pack_memory
    from spec.ep_core import EPCoreSpec

    spec, weights, source, x, y = _core_job(args, load_image, EPCoreSpec.load, init_weights,
                                            "'python -m golden.ep_core quantize' or '… train'")
    regs = Registers.from_spec(spec, train=args.train)
    for name in ("T1", "T2", "beta_shift", "lr_shift"):
        if getattr(args, name, None) is not None:
            setattr(regs, name, getattr(args, name))
    try:
        regs.check(spec)
    except ValueError as e:
        raise CLIError(f"--T1/--T2/--beta-shift/--lr-shift: {e}") from None
    mem_writes: list[list[int]] = []
    faults = None
    if spec.weight_kind == "ternary" and spec.fault_injection:
        from golden.ep_core.faults import fault_writes
        from spec.ep_core import REG_TILLEGAL, REG_TINJECTED, REG_TREADS

        if not 0 <= args.error_rate <= 1:
            raise CLIError(f"--error-rate must be a probability in [0, 1], not {args.error_rate}")
        w, faults = fault_writes(spec, weights, args.error_rate, args.fault_mode, args.fault_kind, args.supply,
                                 args.fault_seed)
        # the counters start at 0 (a write clears them), then the fault setting; the load draws static faults
        mem_writes = [[REG_TINJECTED, 0], [REG_TILLEGAL, 0], [REG_TREADS, 0]] + [[a, v] for a, v in w]
    elif args.fault_mode != "off" or args.error_rate:
        raise CLIError(f"--fault-mode {args.fault_mode} / --error-rate {args.error_rate}: the core of "
                       f"{args.image or args.spec} has no fault injector (a ternary spec with fault_injection)")
    seed = regs.seed if (spec.uses_prng and spec.weight_kind != "ternary") else None
    words = pack_memory(spec, weights)
    x_eval, y_eval = [], []
    if getattr(args, "eval", None):
        if not args.train:
            raise CLIError(f"--eval {args.eval}: only with --train (it evaluates the weights the training left; "
                           "without --train use --limit)")
        from golden.ep_core.twin import pixels_to_input

        xe, ye = _load_samples(args.dataset, "test", args.data_dir, args.eval)
        x_eval, y_eval = pixels_to_input(spec, xe.astype("int64")).tolist(), [int(v) for v in ye]
    if args.corrupt_word is not None and not 0 <= args.corrupt_word < len(words):
        raise CLIError(f"--corrupt-word {args.corrupt_word}: the weight memory has words 0..{len(words) - 1}")
    job = {"design": "ep", "spec": spec.to_dict(), "words": words, "x": x.tolist(), "y": [int(v) for v in y],
           "train": bool(args.train), "readback_every": args.readback_every if args.train else 0,
           "chunk": 8, "regs": {k: getattr(regs, k) for k in ("T1", "T2", "beta_shift", "lr_shift")},
           "seed": seed, "mem_writes": mem_writes, "corrupt": args.corrupt_word, "x_eval": x_eval, "y_eval": y_eval,
           "from_ram": bool(getattr(args, "from_ram", False))}
    meta = {"source": source, "spec_digest": spec.digest(), "layers": list(spec.layers), "lanes": spec.lanes,
            "weight_kind": spec.weight_kind, "training_core": spec.training, "faults": faults,
            "memory_words": len(words), "registers": job["regs"]}
    return job, meta


# ================================================================================== report
def _fmt(v, nd=1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def summarize(board: Board, job: dict, meta: dict, res: dict, cmp: dict, wall_total: float) -> dict:
    """The report's numbers (same fields for a real and a simulated board)."""
    n = len(res.get("preds", []))
    s = res.get("samples", {})
    load = res.get("load", {})
    clock = board.clock_hz
    per_in = s.get("bytes_out", 0) / n if n else None
    cyc = res.get("cycles_last") or []
    core_cycles = max(cyc) if cyc else None
    rep = {
        "format": "epforge-boards-run/1",
        "board": board.name, "backend": board.backend, "baud": board.baud, "clock_mhz": clock / 1e6,
        "design": job["design"], "mode": "train" if job.get("train") else "inference",
        "samples": n, "accuracy": cmp.get("accuracy"),
        "mismatches": cmp["mismatches"], "mismatch_examples": cmp["mismatch_examples"], "compared": cmp["compared"],
        "spec_id": f"0x{res.get('spec_id', 0):08x}",
        "link": {"load_bytes_to_device": load.get("bytes_out"), "load_bytes_from_device": load.get("bytes_in"),
                 "sample_bytes_to_device": s.get("bytes_out"), "sample_bytes_from_device": s.get("bytes_in"),
                 "bytes_to_device_per_sample": per_in,
                 "bytes_from_device_per_sample": s.get("bytes_in", 0) / n if n else None,
                 "rx_fifo_depth": res.get("rx_fifo_depth")},
        "core_cycles_per_sample": core_cycles,
        "core_cycles_per_sample_range": [min(cyc), max(cyc)] if cyc else None,
        "wall_s": {"load": load.get("wall_s"), "samples": s.get("wall_s"), "total": wall_total},
        "samples_per_s_end_to_end": n / s["wall_s"] if n and s.get("wall_s") else None,
        # what the link alone allows (8N1: 10 bits a byte) and what the core alone allows, at the board clock
        "link_bound_samples_per_s": board.baud / 10 / per_in if per_in else None,
        "core_bound_samples_per_s": clock / core_cycles if core_cycles else None,
    }
    if "cycles" in s:  # a simulated board: its own clock says how long the board took
        rep["simulated_cycles"] = {"load": load.get("cycles"), "samples": s["cycles"]}
        rep["board_time_s"] = {"load": load["cycles"] / clock, "samples": s["cycles"] / clock}
        rep["board_samples_per_s"] = n / (s["cycles"] / clock) if n and s["cycles"] else None
    for k in ("memory_counters",):
        if k in cmp:
            rep[k] = cmp[k]
    if "from_ram" in res:  # the samples ran from the board's block RAM: the core's own rate
        ram = dict(res["from_ram"])
        if ram.get("run_cycles"):
            ram["run_samples_per_s_board"] = n / (ram["run_cycles"] / clock)
            ram["run_cycles_per_sample"] = ram["run_cycles"] / n
        ram["run_samples_per_s_wall"] = n / ram["run_wall_s"] if ram["run_wall_s"] else None
        rep["from_ram"] = ram
    if "eval" in cmp:
        ev = res.get("eval", {})
        rep["eval"] = dict(cmp["eval"], wall_s=ev.get("wall_s"), bytes_to_device=ev.get("bytes_out"),
                           bytes_from_device=ev.get("bytes_in"))
        if "cycles" in ev:
            rep["eval"]["simulated_cycles"] = ev["cycles"]
    if res.get("status"):
        rep["status"] = res["status"]
    rep.update({k: v for k, v in meta.items() if k not in rep})
    return rep


def render_markdown(rep: dict) -> str:
    ok = "**0 mismatches**" if rep["mismatches"] == 0 else f"**{rep['mismatches']} MISMATCHES**"
    lines = [f"# boards run: {rep['design']} on {rep['board']} ({rep['mode']})", "",
             f"{rep['backend']}, {rep['baud']:,} baud, {rep['clock_mhz']:g} MHz; spec id {rep['spec_id']}", "",
             "| quantity | value |", "| --- | ---: |",
             f"| samples | {rep['samples']:,} |",
             f"| accuracy | {100 * rep['accuracy']:.2f} % |" if rep.get("accuracy") is not None else "",
             f"| mismatches with the twin | {ok} |",
             f"| compared | {', '.join(f'{k} {v:,}' for k, v in rep['compared'].items())} |",
             f"| samples/s end to end (wall clock) | {_fmt(rep['samples_per_s_end_to_end'], 2)} |"]
    if "board_samples_per_s" in rep:
        lines.append(f"| samples/s of the simulated board (its clock) | {_fmt(rep['board_samples_per_s'], 2)} |")
    lk = rep["link"]
    lines += [f"| link-bound samples/s (baud / 10 / bytes per sample) | {_fmt(rep['link_bound_samples_per_s'], 1)} |",
              f"| core-bound samples/s (clock / cycles per sample) | {_fmt(rep['core_bound_samples_per_s'], 1)} |",
              f"| core cycles per sample | {_fmt(rep['core_cycles_per_sample'])} |",
              f"| link bytes, load: to / from the board | {_fmt(lk['load_bytes_to_device'])} / "
              f"{_fmt(lk['load_bytes_from_device'])} |",
              f"| link bytes, samples: to / from the board | {_fmt(lk['sample_bytes_to_device'])} / "
              f"{_fmt(lk['sample_bytes_from_device'])} |",
              f"| wall time: load / samples / total (s) | {_fmt(rep['wall_s']['load'], 2)} / "
              f"{_fmt(rep['wall_s']['samples'], 2)} / {_fmt(rep['wall_s']['total'], 2)} |"]
    if "board_time_s" in rep:
        bt = rep["board_time_s"]
        lines.append(f"| board time: load / samples (s) | {bt['load']:.4f} / {bt['samples']:.4f} |")
    for k, v in (rep.get("memory_counters") or {}).items():
        lines.append(f"| ternary memory counter: {k} | {v:,} |")
    if rep.get("from_ram"):
        ram = rep["from_ram"]
        lines.append(f"| --from-ram: parts of ≤ {ram['store_samples']:,} samples; store / run wall (s) | "
                     f"{ram['parts']:,}; {ram['store_wall_s']:.2f} / {ram['run_wall_s']:.2f} |")
        if ram.get("run_samples_per_s_board"):
            lines.append(f"| --from-ram: samples/s while running from block RAM (board clock; cycles per sample) | "
                         f"{_fmt(ram['run_samples_per_s_board'], 1)} ({_fmt(ram['run_cycles_per_sample'], 1)}) |")
    if rep.get("eval"):
        ev = rep["eval"]
        lines.append(f"| after training, --eval on {ev['samples']:,} test samples: accuracy (twin) | "
                     f"{100 * ev['accuracy']:.2f} % ({100 * ev['twin_accuracy']:.2f} %) |")
    if rep.get("chi_square") is not None:
        lines.append(f"| chi-square vs the exact distribution | {rep['chi_square']:.2f} (dof {rep['chi_square_dof']}, "
                     f"p = {rep['chi_square_p']:.3g}) |")
    lines = [ln for ln in lines if ln]
    if rep["mismatch_examples"]:
        lines += ["", "Mismatches (first ones):", ""] + [f"* {m}" for m in rep["mismatch_examples"]]
    return "\n".join(lines) + "\n"


def write_report(out: str, rep: dict, force: bool) -> None:
    from golden.fileio import atomic_write_bytes

    atomic_write_bytes(Path(out) / "report.json", json.dumps(rep, indent=2).encode())
    atomic_write_bytes(Path(out) / "report.md", render_markdown(rep).encode())


def summary_line(rep: dict) -> str:
    acc = f"accuracy {100 * rep['accuracy']:.2f}%, " if rep.get("accuracy") is not None else ""
    e2e = rep["samples_per_s_end_to_end"]
    board = f", {rep['board_samples_per_s']:.1f} samples/s on the simulated board's clock" \
        if rep.get("board_samples_per_s") else ""
    return (f"{rep['design']} {rep['mode']} on {rep['board']} ({rep['backend']}): {rep['samples']} samples, {acc}"
            f"{rep['mismatches']} mismatches with the twin; {e2e:.2f} samples/s end to end{board}; link "
            f"{rep['link']['sample_bytes_to_device']:,} B to / {rep['link']['sample_bytes_from_device']:,} B from "
            f"the board at {rep['baud']:,} baud" if e2e else f"{rep['mismatches']} mismatches")


# ================================================================================== the command
def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="sample", disable=not enabled, mininterval=0.5)
    state = {"n": 0}

    def update(n: int) -> None:
        bar.update(n - state["n"])
        state["n"] = n

    return bar, update


def _sim_wait_cycles(job: dict, clock: float, divisor: int, link: str, rx_fifo_depth: int) -> int:
    """How long a read may wait on the Amaranth simulator before it counts as silence."""
    base = 2_000_000
    if link == "uart":
        base += 2 * 10 * divisor * (rx_fifo_depth + 64)
    return base


def run_in_process(board: Board, job: dict, progress) -> dict:
    sess = {"ep": ep_session, "galton": galton_session, "eqspike": eqspike_session}[job["design"]]
    return sess(board.transport, job, progress, board.cycles)


def _host_errors():
    from .host import LinkError

    return (LinkError,)


def cmd_run(args) -> int:
    from golden.fileio import claim_output_dir

    t_start = time.perf_counter()
    if (args.port is None) == (args.sim is None):
        raise CLIError("give exactly one of --port DEVICE (a real board) and --sim {amaranth,verilator}")
    if args.design == "ep" and (args.image is None) == (args.spec is None):
        raise CLIError("--design ep needs --image IMG (a quantised core image) or --spec SPEC.toml (random initial "
                       "weights, for --train)")
    if args.readback_every < 0:
        raise CLIError(f"--readback-every must be a non-negative integer, not {args.readback_every}")
    if (args.from_ram or args.store_samples) and args.design != "ep":
        raise CLIError(f"--from-ram / --store-samples: the sample store is for --design ep, not {args.design}")
    if args.store_samples is not None and args.port is not None:
        raise CLIError("--store-samples sizes a simulated board's store; a real board's is its bitstream's "
                       "(python -m boards synth --store-samples N)")
    if args.store_samples is not None and not 0 <= args.store_samples < 1 << 16:
        raise CLIError(f"--store-samples must be an integer in [0, 65535], not {args.store_samples}")
    store = 0
    if args.sim is not None and args.design == "ep":  # the simulated board's sample store
        store = args.store_samples if args.store_samples is not None else (64 if args.from_ram else 0)
    if args.link is not None and args.sim != "amaranth":
        raise CLIError(f"--link {args.link} is for --sim amaranth (verilator paces the link's byte streams at "
                       "the baud rate)")
    if args.port is not None:
        _check_port(args.port)  # a missing device or pyserial before any work
    if args.report is not None:  # refused before any work if it is not ours
        claim_output_dir(args.report, REPORT_KIND, writes=("report.json", "report.md"), force=args.force,
                         option="--report")
    from .uart import BRIDGES, default_baud, uart_divisor

    clock, bridge = BOARD_CLOCK_HZ[args.board], BRIDGES[args.board]
    if args.baud is None:  # what 'boards synth' builds by default
        args.baud = default_baud(clock, bridge)
    try:
        divisor = uart_divisor(clock, args.baud, bridge=bridge)
    except ValueError as e:
        raise CLIError(f"--baud {args.baud}: {e} on the {args.board}") from None
    if args.design == "ep":
        job, meta = ep_job(args)
        n = len(job["x"])
    elif args.design == "galton":
        job, meta = galton_job(args)
        n = job["runs"]
    else:
        job, meta = eqspike_job(args)
        n = len(job["x"])
    sim_spec = None
    if args.sim_spec is not None:  # a simulated board built from another spec (the wrong bitstream)
        sim_spec = _load_design_spec(args.design, args.sim_spec, "--sim-spec")
    progress_on = not args.no_progress and sys.stderr.isatty()
    bar, update = _progress_bar(n, progress_on, f"{args.design} {'train' if job.get('train') else 'run'}")
    try:
        if args.sim == "verilator":
            from .simboard import run_verilator

            spec = sim_spec if sim_spec is not None else _design_spec(job)
            clock = BOARD_CLOCK_HZ[args.board]
            dut = amaranth_dut(args.design, spec, link="stream", divisor=divisor, rx_fifo_depth=args.rx_fifo_depth,
                               clock_hz=clock, store_samples=store)
            board, res = run_verilator(args.design, job, spec, dut, args.board, clock, args.baud, divisor,
                                       make_board=Board, rx_fifo_depth=args.rx_fifo_depth, progress=update)
        else:
            if args.sim == "amaranth":
                spec = sim_spec if sim_spec is not None else _design_spec(job)
                link = args.link or "stream"
                board = open_amaranth(args.design, spec, args.board, args.baud, link=link,
                                      rx_fifo_depth=args.rx_fifo_depth,
                                      max_wait_cycles=_sim_wait_cycles(job, BOARD_CLOCK_HZ[args.board], divisor, link,
                                                                       args.rx_fifo_depth),
                                      store_samples=store)
            else:
                board = open_port(args.port, args.baud, args.board)
            try:
                res = run_in_process(board, job, update)
            finally:
                if board.close:
                    board.close()
    except _host_errors() as e:
        raise CLIError(f"{'--port ' + args.port if args.port else '--sim ' + args.sim}: {e}") from None
    finally:
        bar.close()
    print(f"spec id 0x{res['spec_id']:08x} matches the host's (link protocol v{res.get('protocol_version', 1)}, "
          f"{res.get('rx_fifo_depth')}-byte receive FIFO)", file=sys.stderr)
    cmp = {"ep": compare_ep, "galton": compare_galton, "eqspike": compare_eqspike}[args.design](job, res)
    rep = summarize(board, job, meta, res, cmp, time.perf_counter() - t_start)
    if args.design == "galton":
        rep.update(cmp.get("extra", {}))
    if args.report is not None:
        write_report(args.report, rep, args.force)
    print(render_markdown(rep))
    print(summary_line(rep), file=sys.stderr)
    if args.report is not None:
        print(f"wrote {args.report}/report.json and {args.report}/report.md", file=sys.stderr)
    return 1 if rep["mismatches"] else 0


def _design_spec(job: dict):
    if job["design"] == "galton":
        from spec.galton import GaltonSpec

        return GaltonSpec.from_dict(job["spec"])
    if job["design"] == "eqspike":
        from spec.eqspike import EqSpikeSpec

        return EqSpikeSpec.from_dict(job["spec"])
    from spec.ep_core import EPCoreSpec

    return EPCoreSpec.from_dict(job["spec"])


def _load_design_spec(design: str, path: str, option: str):
    try:
        if design == "galton":
            from spec.galton import GaltonSpec

            return GaltonSpec.load(path)
        if design == "eqspike":
            from spec.eqspike import EqSpikeSpec

            return EqSpikeSpec.load(path)
        from spec.ep_core import EPCoreSpec

        return EPCoreSpec.load(path)
    except (OSError, ValueError) as e:
        raise CLIError(f"{option} {path}: {describe(e)}") from None


# ================================================================================== Galton board
def galton_job(args) -> tuple[dict, dict]:
    from spec.galton import GaltonSpec

    try:
        spec = GaltonSpec() if args.galton_spec is None else GaltonSpec.load(args.galton_spec)
    except (OSError, ValueError) as e:
        raise CLIError(f"--galton-spec {args.galton_spec}: {describe(e)}") from None
    balls = args.balls
    if not 0 < balls < 1 << spec.count_bits:
        raise CLIError(f"--balls {balls}: must be in 1..{(1 << spec.count_bits) - 1} (count_bits {spec.count_bits})")
    runs = args.limit or 1
    job = {"design": "galton", "spec": spec.to_dict(), "balls": balls, "runs": runs, "seed": args.seed,
           "correlated": False}
    meta = {"source": {"galton_spec": args.galton_spec or "GaltonSpec()"}, "rows": spec.rows, "boards": spec.boards,
            "balls_per_board_per_run": balls}
    return job, meta


def galton_session(transport: CountingTransport, job: dict, progress=None, cycles=None) -> dict:
    """Runs of ``balls`` balls per board, histograms read back after each (no Amaranth)."""
    from spec.galton import GaltonSpec

    from .galton_top import GaltonHost

    spec = GaltonSpec.from_dict(job["spec"])
    c0 = cycles() if cycles else 0
    t0 = time.perf_counter()
    host = GaltonHost(transport, spec)
    res: dict = {"spec_id": spec.spec_id, "rx_fifo_depth": host.rx_fifo_depth,
                 "protocol_version": host.protocol_version}
    res["load"] = _phase(cycles, transport, t0, c0)
    c1 = cycles() if cycles else 0
    b1 = transport.snapshot()
    t1 = time.perf_counter()
    hists = []
    for r in range(job["runs"]):
        host.start(int(job["balls"]), seed=int(job["seed"]) + r, correlated=bool(job["correlated"]))
        hists.append(host.read_histograms())
        if progress:
            progress(r + 1)
    res["samples"] = _phase(cycles, transport, t1, c1)
    res["samples"]["bytes_out"] -= b1[0]
    res["samples"]["bytes_in"] -= b1[1]
    res["preds"] = list(range(job["runs"]))  # one "sample" per run
    res["histograms"] = hists
    res["status"] = host.status()
    return res


def compare_galton(job: dict, res: dict) -> dict:
    """The histograms == the twin's (bit for bit), and their chi-square against the exact distribution."""
    import numpy as np

    from golden.domainwall import GaltonTwin, chi_square_test, default_thresholds
    from golden.domainwall.model import threshold_distribution
    from spec.galton import GaltonSpec

    spec = GaltonSpec.from_dict(job["spec"])
    twin = GaltonTwin(spec)
    bad: list[str] = []
    n_bad = 0
    total = np.zeros(spec.n_bins, np.int64)
    for r, got in enumerate(res["histograms"]):
        twin.reseed(int(job["seed"]) + r)
        twin.correlated = bool(job["correlated"])
        twin.clear()
        twin.balls(int(job["balls"]))
        got = np.asarray(got, np.int64)
        total += got.sum(axis=0)
        if not np.array_equal(got, twin.hist):
            n_bad += 1
            if len(bad) < 20:
                d = np.argwhere(got != twin.hist)
                b, i = d[0]
                bad.append(f"run {r}: {len(d)} histogram counter(s) differ from the twin (board {b} bin {i}: "
                           f"{got[b, i]} != {twin.hist[b, i]})")
    exact = threshold_distribution(default_thresholds(spec), spec.prob_bits, bool(job["correlated"]))
    chi = chi_square_test(total, exact)
    n = int(total.sum())
    extra = {"chi_square": chi.statistic, "chi_square_dof": chi.dof, "chi_square_p": chi.p_value,
             "histogram_total": total.tolist(), "exact_distribution": exact.tolist(), "balls_total": n}
    return {"mismatches": n_bad, "mismatch_examples": bad, "accuracy": None,
            "compared": {"runs": len(res["histograms"]), "histogram_counters": len(res["histograms"]) * spec.boards
                         * spec.n_bins}, "extra": extra}


# ================================================================================== EqSpike
def eqspike_job(args) -> tuple[dict, dict]:
    import numpy as np

    from golden.eqspike.image import load_image
    from golden.eqspike.twin import init_weights
    from spec.eqspike import EqSpikeSpec

    if args.image is None and args.spec is None:
        raise CLIError("--design eqspike needs --image IMG (python -m golden.eqspike.twin_cli quantize) or --spec "
                       "SPEC.toml (an EqSpike spec; random initial weights)")
    spec, weights, source, x, y = _core_job(args, load_image, EqSpikeSpec.load, init_weights,
                                            "'python -m golden.eqspike.twin_cli quantize'", "EqSpike core")
    lr = getattr(args, "lr_shift", None)
    if lr is not None:  # the η registers (REG_LR), written after the load; the twin the same
        if not (args.train and spec.training):
            raise CLIError("--lr-shift sets the EqSpike core's η registers (REG_LR): it needs --train and a "
                           "training core (spec training = true)")
        try:
            spec.check_lr_shift(lr)
        except ValueError as e:
            raise CLIError(f"--lr-shift: {e}") from None
    job = {"design": "eqspike", "lr_shift": lr, "spec": spec.to_dict(),
           "weights": {k: np.asarray(v).tolist() for k, v in weights.items()},
           "x": x.tolist(), "y": [int(v) for v in y], "train": bool(args.train),
           "readback_every": args.readback_every if args.train else 0, "chunk": 4, "corrupt": args.corrupt_word}
    meta = {"source": source, "spec_digest": spec.digest(), "layers": list(spec.layers), "lanes": spec.lanes}
    return job, meta


def eqspike_session(transport: CountingTransport, job: dict, progress=None, cycles=None) -> dict:
    """The EqSpike core's host session (no Amaranth); the same shape of result as :func:`ep_session`."""
    import numpy as np

    from spec.eqspike import EqSpikeSpec

    from .eqspike_top import EqSpikeHost, element_address

    spec = EqSpikeSpec.from_dict(job["spec"])
    c0 = cycles() if cycles else 0
    t0 = time.perf_counter()
    host = EqSpikeHost(transport, spec)
    res: dict = {"spec_id": host.link.info.spec_id, "rx_fifo_depth": host.link.info.rx_fifo_depth,
                 "protocol_version": host.link.info.version}
    weights = {k: np.asarray(v, np.int64) for k, v in job["weights"].items()}
    host.load_weights(weights)
    if job.get("corrupt") is not None:  # flip bit 0 of one element of w0 (flat index)
        i, j = divmod(int(job["corrupt"]) % weights["w0"].size, weights["w0"].shape[1])
        mask = (1 << host.view.link_word_bits) - 1
        host.link.write_word(element_address(host.view, 0, i, j), (int(weights["w0"][i, j]) ^ 1) & mask)
        host.link.sync()
    if job.get("lr_shift") is not None:
        res["lr_shift"] = list(host.set_lr_shift(job["lr_shift"]))
    res["load"] = _phase(cycles, transport, t0, c0)
    x, y = job["x"], job["y"]
    train, every = bool(job["train"]), int(job.get("readback_every") or 0)
    c1 = cycles() if cycles else 0
    b1 = transport.snapshot()
    t1 = time.perf_counter()
    readbacks: dict[str, dict] = {}

    def readback(step: int) -> None:
        readbacks[str(step)] = {k: v.tolist() for k, v in host.read_weights().items()}

    if train and every:
        readback(0)
    preds: list[int] = []
    cyc: list[int] = []
    chunk = max(1, int(job.get("chunk") or 4))
    i = 0
    while i < len(x):
        n = min(chunk, len(x) - i)
        if train and every:
            n = min(n, every - i % every)
        preds += host.train(x[i:i + n], y[i:i + n]) if train else host.infer(x[i:i + n], y[i:i + n])
        cyc.append(host.counters()["cycles"])
        i += n
        if train and every and i % every == 0:
            readback(i)
        if progress:
            progress(i)
    if train and every and str(len(x)) not in readbacks:
        readback(len(x))
    res["samples"] = _phase(cycles, transport, t1, c1)
    res["samples"]["bytes_out"] -= b1[0]
    res["samples"]["bytes_in"] -= b1[1]
    res.update(preds=preds, readbacks=readbacks, cycles_last=cyc, status=host.counters())
    return res


def compare_eqspike(job: dict, res: dict) -> dict:
    import numpy as np

    from golden.eqspike.twin import EqSpikeTwin
    from spec.eqspike import EqSpikeSpec

    spec = EqSpikeSpec.from_dict(job["spec"])
    twin = EqSpikeTwin(spec, {k: np.asarray(v, np.int64) for k, v in job["weights"].items()})
    if job.get("lr_shift") is not None:
        twin.set_lr_shift(job["lr_shift"])
    bad: list[str] = []
    n_bad = 0

    def mismatch(msg: str) -> None:
        nonlocal n_bad
        n_bad += 1
        if len(bad) < 20:
            bad.append(msg)

    if res["spec_id"] != spec.spec_id:
        mismatch(f"spec id 0x{res['spec_id']:08x} != 0x{spec.spec_id:08x}")
    x = np.asarray(job["x"], np.int64)
    y = np.asarray(job["y"], np.int64)
    preds = res["preds"]
    compared = {"preds": 0, "weight_readbacks": 0, "weight_arrays": 0}
    rbs = res.get("readbacks") or {}

    def check_weights(step: int) -> None:
        got = rbs[str(step)]
        compared["weight_readbacks"] += 1
        for k, v in twin.weights.items():
            compared["weight_arrays"] += 1
            g = np.asarray(got[k], np.int64)
            if not np.array_equal(g, np.asarray(v)):
                mismatch(f"after training step {step}: {k} differs from the twin in {int((g != v).sum())} element(s)")

    if job["train"] and "0" in rbs:
        check_weights(0)
    for i, p in enumerate(preds):
        rec = twin.train_sample(x[i], int(y[i])) if job["train"] else twin.infer(x[i])
        compared["preds"] += 1
        if p != int(rec.pred):
            mismatch(f"{'training step' if job['train'] else 'sample'} {i + 1}: prediction {p} != twin "
                     f"{int(rec.pred)}")
        if job["train"] and str(i + 1) in rbs:
            check_weights(i + 1)
    acc = float(np.mean(np.asarray(preds) == y[:len(preds)])) if preds else 0.0
    return {"mismatches": n_bad, "mismatch_examples": bad, "compared": compared, "accuracy": acc}


# ================================================================================== argparse
def add_parser(sub) -> None:
    from golden.clierr import finite_float_type as real
    from golden.clierr import nonneg_int_type as natural
    from golden.clierr import positive_int_type as count

    s = sub.add_parser(
        "run",
        help="run a core on a board or a simulated board; compare with its twin; report",
        description="Check the spec id, load the weights, evaluate (or train on chip, batch 1) on a data set "
        "with a progress bar, compare every prediction (and with --train the weights read back every K steps) "
        "with the bit-exact twin, and print/write a report (accuracy, mismatches, samples/s, link bytes, core "
        "cycles). The same host code drives a real board (--port, pyserial) and a simulated one (--sim). "
        "Exit status 1 when anything differs from the twin, 2 on bad input.",
    )
    s.add_argument("--board", required=True, choices=sorted(BOARD_CLOCK_HZ),
                   help="ulx3s (25 MHz) or icebreaker (12 MHz): the clock that sets the UART divisor")
    s.add_argument("--design", choices=["ep", "galton", "eqspike"], default="ep",
                   help="ep: the EP core (fixed point or ternary); galton: the Galton-board emulator; eqspike: the "
                   "EqSpike core (default ep)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--port", metavar="DEVICE", help="the board's serial port, e.g. /dev/ttyUSB0 (needs pyserial)")
    where.add_argument("--sim", choices=["amaranth", "verilator"],
                       help="a simulated board: amaranth (the gateware in the Amaranth simulator) or verilator (the "
                       "LinkedCore's Verilog under cocotb, bytes paced at the real baud rate; the UART shift "
                       "registers are not simulated)")
    s.add_argument("--link", choices=["stream", "uart"], default=None,
                   help="--sim amaranth only: stream (default: LinkedCore's byte streams, bytes as fast as the link "
                   "takes them; board time then excludes the UART) or uart (UARTLinkedCore's serial lines at the "
                   "real divisor; slow)")
    s.add_argument("--image", metavar="IMG", help="a core image (python -m golden.ep_core quantize/train)")
    s.add_argument("--spec", metavar="SPEC.toml", help="instead of --image: a core spec with random initial weights "
                   "(golden.ep_core.init_weights, --seed), for on-chip training from scratch")
    s.add_argument("--galton-spec", metavar="GALTON.toml", help="--design galton: the emulator's spec "
                   "(default GaltonSpec())")
    s.add_argument("--sim-spec", metavar="SPEC.toml", help="simulate a board built from this spec instead of the "
                   "image's (to see what a wrong bitstream does)")
    s.add_argument("--data-dir", metavar="D", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    s.add_argument("--dataset", choices=["mnist", "fashion-mnist", "mnist-subset"], default="mnist",
                   help="test split for evaluation, train split with --train (default mnist)")
    s.add_argument("--train", action="store_true", help="train on chip (batch 1), one step per sample")
    s.add_argument("--limit", type=count, default=None, metavar="N",
                   help="first N samples (default: all); --design galton: N runs")
    s.add_argument("--eval", type=count, default=None, metavar="N",
                   help="with --train: afterwards run the first N test samples through the trained core "
                   "(inference) and compare them with the trained twin; the report gives their accuracy")
    s.add_argument("--from-ram", action="store_true",
                   help="--design ep: load the samples into the board's sample store (block RAM) in parts and run "
                   "each part from there back to back, with no sample on the link while the core runs; the report "
                   "adds the samples/s while running from the store (the core's own rate)")
    s.add_argument("--store-samples", type=int, default=None, metavar="N",
                   help="--sim: slots of the simulated board's sample store (default 64 with --from-ram, else 0)")
    s.add_argument("--readback-every", type=int, default=10, metavar="K",
                   help="with --train: read the whole weight memory back after loading and every K steps and "
                   "compare it with the twin (0: never; default 10)")
    s.add_argument("--T1", type=count, default=None, help="free-phase steps (default: the spec's)")
    s.add_argument("--T2", type=count, default=None, help="nudged-phase steps (default: the spec's)")
    s.add_argument("--beta-shift", dest="beta_shift", type=natural, default=None, help="β = 2^-SHIFT")
    s.add_argument("--lr-shift", dest="lr_shift", type=natural, default=None, help="η = 2^-SHIFT")
    s.add_argument("--fault-mode", choices=["off", "static", "dynamic"], default="off",
                   help="ternary core with fault_injection: weight errors drawn while loading (static) or at every "
                   "read (dynamic) (default off)")
    s.add_argument("--error-rate", type=real, default=0.0, metavar="P", help="mean weight error rate (default 0)")
    s.add_argument("--fault-kind", choices=["adjacent", "flip"], default="adjacent",
                   help="adjacent-level errors or sign flips (default adjacent)")
    s.add_argument("--supply", choices=["near-threshold", "nominal"], default="near-threshold",
                   help="PCSA supply (nominal: a 0 cell reads as a random ±1; default near-threshold)")
    s.add_argument("--fault-seed", type=natural, default=1, help="fault PRNG seed (default 1)")
    s.add_argument("--seed", type=natural, default=0,
                   help="--spec: initial-weight seed; --design galton: PRNG seed of the first run (default 0)")
    s.add_argument("--balls", type=count, default=10000, help="--design galton: balls per board per run (default "
                   "10000)")
    s.add_argument("--baud", type=count, default=None,
                   help="UART rate the bitstream was built with, checked against the board's clock and USB-UART "
                   "bridge (default: 'boards synth''s default, the fastest exact rate: ULX3S 1 Mbaud, iCEBreaker "
                   "3 Mbaud)")
    s.add_argument("--rx-fifo-depth", type=count, default=512, metavar="BYTES",
                   help="simulated boards: the link's receive FIFO (default 512, as 'boards synth')")
    s.add_argument("--corrupt-word", type=natural, default=None, metavar="ADDR",
                   help="self-check: flip bit 0 of weight word ADDR on the board after loading (the twin keeps the "
                   "image), so the run must report mismatches")
    s.add_argument("--report", metavar="DIR", help="write DIR/report.json and DIR/report.md (atomically)")
    s.add_argument("--force", action="store_true", help="overwrite a previous report in --report")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_run)
