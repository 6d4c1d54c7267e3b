"""The one error path of every epforge command line (torch-free: hdl/ and boards/ import it).

Contract (docs/cli.md): an *expected* error — a bad file, a bad value, missing data, no space, no
permission, a parse error — prints ONE line ``error: …`` on stderr naming the file or option and what
is wrong, and the command exits with status 2; nothing else is printed and no traceback. Any other
exception is a bug and keeps its traceback (exit 1). ``EPFORGE_TRACEBACK=1`` shows the traceback of
expected errors too (for debugging).

Expected errors are :class:`CLIError` (and its subclasses), ``ValueError`` (every validation in the
specs, configs and loaders raises it; ``json.JSONDecodeError``, ``tomllib.TOMLDecodeError`` and
``UnicodeDecodeError`` are ValueErrors), ``OSError`` (reported with its file name) and ``EOFError``
(a truncated file). ``SystemExit("error: …")`` raised by older code is reported the same way.
:func:`run_cli` maps them; every CLI's ``main(argv)`` is wrapped with :func:`cli_main`.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_EXPECTED = 2


class CLIError(Exception):
    """An expected error of a command: bad input the user can fix. ``str(e)`` is the message."""


class OutputDirError(CLIError):
    """An output directory that may not be written or replaced (it is not ours, or not a directory)."""


class SizeError(CLIError):
    """A requested size that is too large to allocate or does not fit the target."""


EXPECTED = (CLIError, ValueError, OSError, EOFError)


def describe(exc: BaseException) -> str:
    """One line for an expected error: OSErrors name their file(s), other messages are joined to one line."""
    if isinstance(exc, OSError) and not isinstance(exc, CLIError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        msg = f"{' -> '.join(names)}: {exc.strerror}" if names else exc.strerror
    elif isinstance(exc, UnicodeDecodeError):
        msg = f"not a text file ({exc.reason} at byte {exc.start})"
    elif isinstance(exc, EOFError):
        msg = f"unexpected end of file{': ' + str(exc) if str(exc) else ''} (the file is truncated)"
    else:
        msg = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    msg = " ".join(line.strip() for line in msg.strip().splitlines() if line.strip())
    return msg[6:].lstrip() if msg.startswith("error:") else msg


def run_cli(fn: Callable[[], int | None], prog: str | None = None) -> int:
    """Run ``fn`` (a command's body) and map expected errors to one ``error:`` line and exit status 2."""
    try:
        rc = fn()
        return 0 if rc is None else int(rc)
    except SystemExit as e:
        if isinstance(e.code, str):  # SystemExit("error: …"): an expected error of older code
            print(f"error: {describe(ValueError(e.code))}", file=sys.stderr)
            return EXIT_EXPECTED
        raise
    except EXPECTED as e:
        if os.environ.get("EPFORGE_TRACEBACK"):
            traceback.print_exc()
        print(f"error: {describe(e)}", file=sys.stderr)
        return EXIT_EXPECTED


def cli_main(main: Callable[..., int | None]) -> Callable[..., int]:
    """Decorator for a CLI's ``main(argv=None)``: the same function with :func:`run_cli`'s error mapping.

    argparse's own usage errors keep their behaviour (usage + message on stderr, exit 2)."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None, *a: Any, **kw: Any) -> int:
        return run_cli(lambda: main(argv, *a, **kw))

    wrapped.__wrapped__ = main
    return wrapped


# ------------------------------------------------------------------------------------------------
# Validation helpers shared by the CLIs (argparse types and checks where values enter)
# ------------------------------------------------------------------------------------------------
def finite(name: str, value: Any) -> float:
    """``value`` as a finite float, or a CLIError naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CLIError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(v):
        raise CLIError(f"{name} must be a finite number, not {value!r}")
    return v


def positive_int(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CLIError(f"{name} must be a positive integer, not {value!r}")
    return value


def finite_float_type(text: str) -> float:
    """argparse ``type=``: a finite float (``inf``/``nan`` are refused where they enter)."""
    import argparse

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return v


def positive_int_type(text: str) -> int:
    """argparse ``type=``: an integer ≥ 1."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {v}")
    return v


def nonneg_int_type(text: str) -> int:
    """argparse ``type=``: an integer ≥ 0."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {v}")
    return v


def parse_set_value(text: str) -> Any:
    """The VALUE of ``--set FIELD=VALUE``: JSON, with strict booleans (true/false, also yes/no, on/off).

    A bare word that is not JSON stays a string (e.g. ``--set weight_kind=ternary``)."""
    import json

    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_config_file(path: Any, what: str = "--config") -> dict[str, Any]:
    """A JSON (``.json``) or TOML file holding a table; errors name the file and the position."""
    import json
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{what} {path}: is a directory, not a file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise CLIError(f"{what} {path}: {describe(e)}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ValueError as e:  # JSONDecodeError / TOMLDecodeError
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise CLIError(f"{what} {path}: not valid {kind}: {describe(e)}") from None
    if not isinstance(data, dict):
        raise CLIError(f"{what} {path}: must hold a table of options, not a JSON {type(data).__name__}")
    return data


class ArgumentParser(__import__("argparse").ArgumentParser):
    """argparse with the one-line error contract: a usage error prints ``error: …`` (naming the
    option, and where to read the usage) and exits 2, like every other expected error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_EXPECTED, f"error: {message} (see {self.prog} --help)\n")


def add_replaceable_out(parser, what: str, *, path_type: Any = None) -> None:
    """``--out`` (required) and ``--force`` for a command whose output directory it may replace:
    new or empty, or a previous ``what`` with --force (replaced atomically); anything else is refused."""
    kw = {} if path_type is None else {"type": path_type}
    parser.add_argument("--out", required=True, **kw,
                        help=f"{what} directory to write (new or empty; a previous {what} only with --force, "
                             "replaced atomically; any other directory is refused)")
    parser.add_argument("--force", action="store_true", help=f"replace a previous {what} at --out (never other files)")


def add_export_parser(sub, help: str, description: str):
    """The ``export`` subcommand every trainer CLI has: --checkpoint, --out, --force."""
    x = sub.add_parser("export", help=help, description=description)
    x.add_argument("--checkpoint", required=True, help="checkpoint.pt or a run directory")
    add_replaceable_out(x, "export", path_type=Path)
    return x


def physical_memory_bytes() -> int:
    """This machine's physical memory (1 TiB when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def check_memory(what: str, n_values: int, bytes_per_value: int, copies: int = 1) -> None:
    """Refuse (SizeError, with the numbers) before allocating ``copies`` arrays of ``n_values`` values
    of ``bytes_per_value`` bytes when they exceed the machine's physical memory."""
    need = n_values * bytes_per_value * copies
    have = physical_memory_bytes()
    if need > have:
        raise SizeError(f"{what}: {n_values:,} values need {need / 2**30:,.1f} GiB ({copies} x {bytes_per_value} "
                        f"bytes each), more than this machine's {have / 2**30:,.1f} GiB of memory")
