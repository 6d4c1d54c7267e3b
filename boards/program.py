"""``python -m boards program``: write a ``boards synth`` bitstream to a board with its usual programmer.

* ULX3S (ECP5): ``openFPGALoader -b ulx3s BUILD/build/top.bit`` (Debian: ``apt-get install
  openfpgaloader``); with ``--flash`` the SPI flash instead of the FPGA's SRAM (``-f``).
* iCEBreaker (iCE40UP5K): ``openFPGALoader -b icebreaker BUILD/build/top.bin`` (the iCE40 has no
  SRAM load through this path, so it always writes the flash and resets the FPGA), or with
  ``--programmer iceprog`` ``iceprog [-S] top.bin`` (Debian: ``apt-get install fpga-icestorm``;
  ``-S`` = SRAM, without ``--flash``).

Every failure is one ``error:`` line (exit status 2): the programmer not installed (naming the
Debian package), a build directory that is missing, is not a ``boards synth`` output, is for the
other board or holds no bitstream, and a programmer that fails (no board answering, no permission
on the USB device): its exit status and the last line of its output are quoted.

Nothing here talks to USB itself; tests put a fake programmer on ``PATH``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from golden.clierr import CLIError

BITSTREAMS = {"ulx3s": "top.bit", "icebreaker": "top.bin"}
PROGRAMMERS = {
    "openfpgaloader": ("openFPGALoader", "openfpgaloader"),  # (executable, Debian package)
    "iceprog": ("iceprog", "fpga-icestorm"),
}
BOARD_PROGRAMMERS = {"ulx3s": ("openfpgaloader",), "icebreaker": ("openfpgaloader", "iceprog")}


@dataclass(frozen=True)
class ProgramPlan:
    board: str
    bitstream: Path
    argv: list[str]
    package: str


def find_bitstream(board: str, build: str | Path) -> Path:
    """The bitstream of a ``boards synth --board BOARD --out BUILD`` run (checked against its synth.json)."""
    d = Path(build)
    if not d.exists():
        raise CLIError(f"--build {build}: no such directory (give the --out directory of 'python -m boards synth')")
    if not d.is_dir():
        raise CLIError(f"--build {build}: not a directory (give the --out directory of 'python -m boards synth')")
    report = d / "synth.json"
    if report.is_file():
        try:
            built_for = json.loads(report.read_text()).get("board")
        except (OSError, ValueError, AttributeError) as e:
            raise CLIError(f"--build {build}: unreadable synth.json ({e})") from None
        if built_for is not None and built_for != board:
            raise CLIError(f"--build {build}: the bitstream was built for --board {built_for}, not {board}")
    name = BITSTREAMS[board]
    for cand in (d / "build" / name, d / name):
        if cand.is_file():
            if cand.stat().st_size == 0:
                raise CLIError(f"--build {build}: {cand.relative_to(d)} is empty (a failed build?)")
            return cand
    raise CLIError(f"--build {build}: no {name} in {build}/build (not a finished 'python -m boards synth --board "
                   f"{board}' output)")


def plan(board: str, build: str | Path, *, programmer: str = "openfpgaloader", flash: bool = False,
         cable: str | None = None) -> ProgramPlan:
    """The programmer's command line for ``board`` (refuses a programmer the board does not use)."""
    if board not in BITSTREAMS:
        raise CLIError(f"--board {board}: must be one of {sorted(BITSTREAMS)}")
    if programmer not in BOARD_PROGRAMMERS[board]:
        raise CLIError(f"--programmer {programmer}: the {board} is programmed with "
                       f"{' or '.join(BOARD_PROGRAMMERS[board])}")
    bit = find_bitstream(board, build)
    exe, package = PROGRAMMERS[programmer]
    if programmer == "iceprog":
        argv = [exe] + ([] if flash else ["-S"]) + [str(bit)]
    else:
        argv = [exe, "-b", board] + (["-c", cable] if cable else []) + (["-f"] if flash else []) + [str(bit)]
    return ProgramPlan(board, bit, argv, package)


def program(p: ProgramPlan, *, timeout_s: float = 300.0, log=print) -> None:
    """Run the programmer; a missing tool or a failed run raise :class:`CLIError` (one line)."""
    exe = shutil.which(p.argv[0])
    if exe is None:
        raise CLIError(f"{p.argv[0]} is not installed: apt-get install {p.package} (needed to program the "
                       f"{p.board})")
    log(f">> {' '.join(p.argv)}")
    try:
        r = subprocess.run([exe, *p.argv[1:]], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CLIError(f"{p.argv[0]} did not finish within {timeout_s:g} s (is the {p.board} connected?)") from None
    except OSError as e:
        raise CLIError(f"{p.argv[0]}: cannot run it ({e.strerror or e})") from None
    if r.returncode != 0:
        lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()] or \
            [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        raise CLIError(f"{p.argv[0]} failed with exit status {r.returncode} (no {p.board} answering? check the USB "
                       f"cable and permissions): {last}")
    if r.stdout.strip():
        log(r.stdout.rstrip())


def cmd_program(args) -> int:
    if not args.timeout > 0:
        raise CLIError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    p = plan(args.board, args.build, programmer=args.programmer, flash=args.flash, cable=args.cable)
    program(p, timeout_s=args.timeout)
    where = "flash" if args.flash or (args.programmer == "openfpgaloader" and args.board == "icebreaker") else "SRAM"
    print(f"programmed the {args.board} ({where}) with {p.bitstream}")
    return 0


def add_parser(sub) -> None:
    from golden.clierr import finite_float_type as real

    s = sub.add_parser(
        "program",
        help="write a 'boards synth' bitstream to a board (openFPGALoader, or iceprog on the iCEBreaker)",
        description="Find the bitstream in a 'python -m boards synth' output directory (BUILD/build/top.bit "
        "for the ULX3S, top.bin for the iCEBreaker) and run the board's programmer. Needs openFPGALoader "
        "(apt-get install openfpgaloader) or iceprog (apt-get install fpga-icestorm).",
    )
    s.add_argument("--board", required=True, choices=sorted(BITSTREAMS), help="the board the bitstream was built for")
    s.add_argument("--build", required=True, metavar="DIR", help="the --out directory of 'python -m boards synth'")
    s.add_argument("--programmer", choices=sorted(PROGRAMMERS), default="openfpgaloader",
                   help="openfpgaloader (both boards; default) or iceprog (iCEBreaker only)")
    s.add_argument("--flash", action="store_true",
                   help="write the SPI flash (the design survives a power cycle); default: the FPGA's SRAM "
                   "(openFPGALoader on the iCEBreaker always writes the flash)")
    s.add_argument("--cable", metavar="NAME", help="openFPGALoader --cable (default: the board's own)")
    s.add_argument("--timeout", type=real, default=300.0, metavar="S",
                   help="give up on the programmer after S seconds (default 300)")
    s.set_defaults(func=cmd_program)
