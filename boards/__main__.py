"""``python -m boards``: board builds and their synthesis reports.

    python -m boards synth --board ulx3s --design mock --out build/boards/ulx3s-mock
    python -m boards synth --board icebreaker --design ep --spec core.toml --out build/boards/ice-ep --seed 3
    python -m boards synth --board ulx3s --design galton --galton-spec galton.toml --out build/boards/ulx3s-galton
    python -m boards report build/boards/ulx3s-mock      # re-parse the logs of an earlier build
    python -m boards program --board ulx3s --build build/boards/ulx3s-ep      # openFPGALoader
    python -m boards run --board ulx3s --sim verilator --image img --data-dir DATA --report runs/board

Heavy imports (Amaranth, the core) happen inside the subcommands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys

from golden.clierr import ArgumentParser, CLIError, cli_main, describe
from golden.clierr import finite_float_type as real
from golden.clierr import nonneg_int_type as natural
from golden.clierr import positive_int_type as count

# yosys options a user may add to the board's synthesis script (yosys 0.70: synth_ecp5 is synth_lattice
# and always maps with ABC9; synth_ice40 has -noabc): the ones that change mapping, never the outputs
SYNTH_OPTS = {
    "ulx3s": ("-nowidelut", "-widelut", "-nodsp", "-nolutram", "-nodffe", "-dff"),
    "icebreaker": ("-noabc", "-nocarry", "-nodffe", "-dff", "-nobram"),
}


def cmd_synth(args) -> int:
    from golden.fileio import claim_output_dir, only
    from spec.ep_core import EPCoreSpec
    from spec.galton import GaltonSpec

    from .fit import check_fits, check_store_fits
    from .synth import default_mock_spec, synthesize

    if args.design == "galton":
        if args.spec is not None:
            print(
                "error: --spec is the EP core's spec; --design galton takes --galton-spec GALTON.toml", file=sys.stderr
            )
            return 2
        try:
            spec = GaltonSpec() if args.galton_spec is None else GaltonSpec.load(args.galton_spec)
        except (OSError, ValueError) as e:
            raise CLIError(f"--galton-spec {args.galton_spec}: {describe(e)}") from None
    elif args.galton_spec is not None or args.rows_per_stage is not None:
        opt = "--galton-spec" if args.galton_spec is not None else "--rows-per-stage"
        print(f"error: {opt} is for --design galton, not --design {args.design}", file=sys.stderr)
        return 2
    elif args.design == "eqspike":
        if args.spec is None:
            print("error: --design eqspike needs --spec SPEC.toml (an EqSpike spec, spec/eqspike.py)", file=sys.stderr)
            return 2
        from spec.eqspike import EqSpikeSpec

        try:
            spec = EqSpikeSpec.load(args.spec)
        except (OSError, ValueError) as e:
            raise CLIError(f"--spec {args.spec}: {describe(e)}") from None
    elif args.spec is None:
        if args.design != "mock":
            print("error: --design ep needs --spec SPEC.toml (the core's numbers)", file=sys.stderr)
            return 2
        spec = default_mock_spec()
    else:
        try:
            spec = EPCoreSpec.load(args.spec)
        except (OSError, ValueError) as e:
            raise CLIError(f"--spec {args.spec}: {describe(e)}") from None
    if args.design != "galton":
        try:
            check_fits(args.board, args.design, spec)  # before any tool runs, with the numbers
        except ValueError as e:
            raise CLIError(f"--spec {args.spec}: {e}") from None
    if args.store_samples:
        if args.design not in ("ep", "mock"):
            raise CLIError(f"--store-samples: the sample store is for --design ep or mock, not {args.design}")
        try:
            check_store_fits(args.board, spec, args.store_samples)
        except ValueError as e:
            raise CLIError(f"--store-samples {args.store_samples}: {e}") from None
    bad = [o for o in args.synth_opt if o not in SYNTH_OPTS[args.board]]
    if bad:
        raise CLIError(f"--synth-opt {bad[0]}: not an option this project passes to yosys for the {args.board} "
                       f"(one of {', '.join(SYNTH_OPTS[args.board])})")
    if args.weight_read_stages or args.weight_bank_words != 1024:
        from hdl.kit.weights import check_read_stages

        if args.design != "ep":
            raise CLIError(f"--weight-read-stages/--weight-bank-words: for --design ep, not {args.design}")
        if not args.weight_read_stages:
            raise CLIError(f"--weight-bank-words {args.weight_bank_words}: needs --weight-read-stages >= 1 "
                           "(an unbanked weight store has no banks)")
        try:
            check_read_stages(args.weight_read_stages, args.weight_bank_words)
        except ValueError as e:
            raise CLIError(f"--weight-read-stages/--weight-bank-words: {e}") from None
    # never write into someone else's directory; a previous synthesis there is overwritten only with --force
    claim_output_dir(args.out, "boards-synth", writes=("build", "synth.json", "synth.md"), force=args.force,
                     legacy=only("synth.json", "synth.md", "build"))
    try:
        r = synthesize(
            args.board,
            args.design,
            spec,
            args.out,
            seed=args.seed,
            baud=args.baud,
            rx_fifo_depth=args.rx_fifo_depth,
            mock_delay=args.mock_delay,
            clock_mhz=args.clock_mhz,
            router=args.router,
            rows_per_stage=args.rows_per_stage,
            weight_read_stages=args.weight_read_stages,
            weight_bank_words=args.weight_bank_words,
            store_samples=args.store_samples,
            extra_nextpnr_opts=("--sdf", "top.sdf") if args.sdf else (),
            extra_synth_opts=tuple(args.synth_opt),
            log=lambda msg: print(f">> {msg}", file=sys.stderr),
        )
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from .synth import render_markdown

    print(render_markdown(r))
    print(f"wrote {args.out}/synth.json and {args.out}/synth.md", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from .synth import refresh_report, render_markdown

    try:
        r = refresh_report(args.dir)
    except (OSError, ValueError) as e:
        raise CLIError(f"{args.dir}: {describe(e)}") from None
    print(render_markdown(r))
    return 0


def cmd_paths(args) -> int:
    from .paths import report

    try:
        print(report(args.dir, args.period, args.top, args.detail, args.depth))
    except (OSError, ValueError, KeyError) as e:
        raise CLIError(f"{args.dir}: {describe(e)}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m boards",
        description="Board wrappers of the EP core: synthesis "
        "with the open toolchain (YoWASP yosys + nextpnr) and resource/Fmax reports.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "synth",
        help="synthesise, place and route a board top; write synth.json and synth.md",
        description="Build the board top (UART + host link + core) with amaranth-boards and "
        "YoWASP (no programming), parse nextpnr's utilisation and Fmax and yosys' cell "
        "statistics, and write OUT/synth.json and OUT/synth.md atomically (build products in "
        "OUT/build).",
    )
    s.add_argument(
        "--board",
        required=True,
        choices=["ulx3s", "icebreaker"],
        help="ulx3s: ULX3S with ECP5-85F (25 MHz oscillator); icebreaker: iCEBreaker with "
        "iCE40UP5K (12 MHz oscillator)",
    )
    s.add_argument(
        "--design",
        default="mock",
        choices=["mock", "ep", "galton", "eqspike"],
        help="mock: boards.mock_core.MockEPCore (UART, link and a weight memory of the spec's size; no "
        "datapath); ep: the real "
        "hdl.ep_core.EPCore; galton: the Galton-board emulator hdl.galton.GaltonBoard behind the same "
        "host link (boards.galton_top; the report adds balls/s = B x Fmax and the random bits per "
        "ball); eqspike: hdl.eqspike.EqSpikeCore behind the same host link (boards.eqspike_top; --spec "
        "is an EqSpike spec) (default: mock)",
    )
    s.add_argument(
        "--spec",
        metavar="SPEC.toml",
        help="the core's spec (.toml or .json, e.g. from 'python -m golden.ep_core spec'); "
        "required for --design ep; the mock defaults to layers [64, 32, 10], P = 8",
    )
    s.add_argument(
        "--galton-spec",
        metavar="GALTON.toml",
        help="--design galton only: the emulator's GaltonSpec (.toml or .json, e.g. from 'python -m "
        "golden.domainwall spec --set rows=16 --set boards=4 --out galton.toml'); default: "
        "GaltonSpec() = 16 rows, 1 board, k = 8, w = 64",
    )
    s.add_argument(
        "--rows-per-stage",
        type=count,
        default=None,
        metavar="R",
        help="--design galton only: rows of the emulator between pipeline registers (1..N; default 1, "
        "a register after every row); changes latency and resources, not the ball stream",
    )
    s.add_argument(
        "--weight-read-stages",
        type=int,
        default=0,
        metavar="K",
        help="--design ep only: extra read stages of the weight store (0 … 4; default 0): banks of one "
        "block-RAM row (1,024 words), each registered, and a pipelined bank multiplexer (hdl.kit.weights); "
        "one cycle more per stage and pipeline drain, same results",
    )
    s.add_argument(
        "--weight-bank-words",
        type=int,
        default=1024,
        metavar="W",
        help="--design ep with --weight-read-stages >= 1 only: words per weight bank (a power of two; default "
        "1,024 = one DP16KD row in the 1,024 x 18 mode; 2,048 maps a 128-bit bank onto 15 DP16KD in the "
        "2,048 x 9 mode instead of 16)",
    )
    s.add_argument("--out", required=True, metavar="DIR", help="output directory (created; a directory holding "
                   "files this command would overwrite is refused unless it is a previous synthesis and --force)")
    s.add_argument("--force", action="store_true", help="overwrite a previous synthesis at --out (never other files)")
    s.add_argument("--seed", type=natural, default=None, metavar="N",
                   help="nextpnr placement seed (default: nextpnr's)")
    s.add_argument(
        "--clock-mhz",
        type=real,
        default=None,
        metavar="MHZ",
        help="clock the top from a PLL at MHZ (ulx3s only; nextpnr then places and routes for that "
        "frequency and the UART divisor follows it); default: the board oscillator",
    )
    s.add_argument(
        "--router",
        choices=["router1", "router2"],
        default=None,
        help="nextpnr router (default: nextpnr's; router2 routes large, congested designs such as "
        "the 784-500-10 core much faster)",
    )
    s.add_argument(
        "--synth-opt",
        action="append",
        default=[],
        metavar="OPT",
        help="an extra option of yosys' synth_ecp5 (ulx3s: " + ", ".join(SYNTH_OPTS["ulx3s"]) + ") or synth_ice40 "
        "(icebreaker: " + ", ".join(SYNTH_OPTS["icebreaker"]) + "); repeatable, written --synth-opt=-OPT; "
        "recorded in synth.json. E.g. "
        "-nowidelut maps to LUT4s only (a different ABC9 library), where ABC9 fails on a large design",
    )
    s.add_argument("--baud", type=count, default=None,
                   help="UART baud rate, checked against the board's USB-UART bridge (ULX3S FT231X: 3 Mbaud max; "
                   "iCEBreaker FT2232H: 12 Mbaud) and the clock divisor (refused beyond 2 %%); default: the fastest "
                   "rate both make exactly (ULX3S 1 Mbaud at 25 MHz, 2 Mbaud at 50 MHz; iCEBreaker 3 Mbaud); "
                   "galton: 115200")
    s.add_argument(
        "--rx-fifo-depth",
        type=count,
        default=512,
        metavar="BYTES",
        help="host link receive FIFO in bytes (default: 512, one iCE40 EBR)",
    )
    s.add_argument(
        "--store-samples",
        type=int,
        default=0,
        metavar="N",
        help="slots of the link's sample store in block RAM (default 0: none): python -m boards run --from-ram "
        "streams a test set from it; refused when it does not fit beside the core",
    )
    s.add_argument(
        "--mock-delay",
        type=count,
        default=8,
        metavar="CYCLES",
        help="busy cycles per sample of the mock core (default: 8; --design mock only)",
    )
    s.add_argument("--sdf", action="store_true",
                   help="also write nextpnr's routed delays (OUT/build/top.sdf) for 'python -m boards paths OUT'")
    s.set_defaults(func=cmd_synth)
    t = sub.add_parser(
        "paths",
        help="list the failing paths of a build made with --sdf, grouped by start and end signal",
        description="Read DIR/build/top.sdf (nextpnr's routed delays, 'synth --sdf'), find the latest arrival at "
        "every register input and list the endpoints that miss the clock period, grouped by where their worst "
        "path starts and ends (boards/paths.py).",
    )
    t.add_argument("dir", metavar="DIR", help="the --out directory of a 'synth --sdf' run")
    t.add_argument("--period", type=real, default=None, metavar="NS", help="clock period (default: the build's clock)")
    t.add_argument("--top", type=count, default=30, metavar="N", help="groups to list (default 30)")
    t.add_argument("--detail", type=int, default=0, metavar="M", help="print the worst path of the first M groups")
    t.add_argument("--depth", type=count, default=None, metavar="D",
                   help="group by the first D dotted parts of the names only (coarser; e.g. 4: the core's parts)")
    t.set_defaults(func=cmd_paths)
    r = sub.add_parser(
        "report",
        help="re-parse an existing build's logs into synth.json and synth.md",
        description="Re-read DIR/build/top.tim (nextpnr) and DIR/build/top.rpt (yosys) and rewrite "
        "DIR/synth.json and DIR/synth.md, keeping the run's metadata (no rebuild).",
    )
    r.add_argument("dir", metavar="DIR", help="the --out directory of an earlier 'synth' run")
    r.set_defaults(func=cmd_report)
    from .program import add_parser as add_program
    from .run import add_parser as add_run

    add_program(sub)
    add_run(sub)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
