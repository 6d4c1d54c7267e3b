"""Atomic file output shared by every tool (no torch import, so light CLIs can use it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``:
    readers see the old file or the new one, never a partial one."""
    path = Path(path)
    for p in (path.parent, *path.parent.parents):  # a file where a directory should be: say which
        if p.exists():
            if not p.is_dir():
                import errno

                raise NotADirectoryError(errno.ENOTDIR, f"{p} is a file, not a directory", str(path))
            break
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------------
# Output directories: never delete what is not ours, replace our own atomically
# ------------------------------------------------------------------------------------------------
MARKER = ".epforge-output.json"
MARKER_FORMAT = "epforge-output/1"


def write_spec_text(spec, out: str | os.PathLike | None) -> int:
    """A ``spec`` subcommand's output: the spec as TOML, atomically to ``out`` (with its digest on stdout)
    or to stdout when ``out`` is None. Works for every spec class with ``to_toml()`` and ``digest()``."""
    import sys

    text = spec.to_toml()
    if out:
        atomic_write_bytes(Path(out), text.encode())
        print(f"wrote {out} (digest {spec.digest()[:12]}…)")
    else:
        sys.stdout.write(text)
    return 0


def output_kind(path: Path) -> str | None:
    """The kind recorded in ``path``'s output marker (None: no marker, or not a directory)."""
    import json

    try:
        m = json.loads((Path(path) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return m.get("kind") if isinstance(m, dict) and m.get("format") == MARKER_FORMAT else None


def _marker_bytes(kind: str) -> bytes:
    import json

    return json.dumps({"format": MARKER_FORMAT, "kind": kind,
                       "note": "written by epforge: this directory may be replaced by the same command "
                               "(with --force); see docs/cli.md"}, indent=2).encode()


def only(*names: str):
    """A ``legacy`` predicate: the directory holds ``names[0]`` and nothing but ``names`` (an output of a
    command written before markers existed; any other file makes it foreign)."""
    def is_ours(path: Path) -> bool:
        entries = {e.name for e in os.scandir(path)}
        return names[0] in entries and entries <= set(names)
    return is_ours


def check_output_dir(out: str | os.PathLike, kind: str, *, force: bool = False, option: str = "--out",
                     legacy=None) -> str:
    """Decide whether ``out`` may receive a new output of ``kind``; refuse (OutputDirError) otherwise.

    Returns ``"new"`` (missing or empty directory) or ``"replace"`` (a previous output of the same
    kind, and ``force``). Refused: a file; a symbolic link; a non-empty directory that is not a
    previous output of this kind (its marker names another kind, or it has none — unless ``legacy``,
    a predicate, recognises an output written before markers existed); a previous output of this
    kind without ``force``. Nothing is ever changed here.
    """
    from .clierr import OutputDirError

    out = Path(out)
    if out.is_symlink():
        raise OutputDirError(f"{option} {out}: is a symbolic link; give the real directory")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{option} {out}: is a file, not a directory (nothing was changed)")
    parent = out.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputDirError(f"{option} {out}: {p} is a file, not a directory")
            break
    if not out.exists():
        return "new"
    try:
        entries = sorted(e.name for e in os.scandir(out))
    except OSError as e:
        raise OutputDirError(f"{option} {out}: cannot read the directory ({e.strerror})") from None
    if not entries:
        return "new"
    theirs = output_kind(out)
    ours = theirs == kind or (theirs is None and legacy is not None and legacy(out))
    if not ours:
        what = (f"the output of another command (kind {theirs})" if theirs else
                f"{len(entries)} entries that are not a {kind} output")
        shown = ", ".join(entries[:4]) + (", …" if len(entries) > 4 else "")
        raise OutputDirError(f"{option} {out}: the directory holds {what} ({shown}); epforge never replaces "
                             "files it did not write, even with --force: choose another " + option +
                             " (nothing was changed)")
    if not force:
        raise OutputDirError(f"{option} {out}: holds a previous {kind} output; pass --force to replace it "
                             "(atomically) or choose another " + option)
    return "replace"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    import errno

    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # kernel or file system without RENAME_EXCHANGE: fall back
    raise OSError(err, os.strerror(err), str(a), None, str(b))


class OutputDir:
    """Build a new output directory beside ``out`` and put it in place atomically::

        with OutputDir(out, "golden-export", force=args.force) as tmp:
            ...write files into tmp...

    ``out`` is checked first (:func:`check_output_dir`: a foreign directory is refused before any
    work). The tree is written into a sibling temporary directory; on success it receives the
    output marker and replaces ``out``: a missing or empty ``out`` by one rename, a previous output
    by an atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``), after which the old tree — now
    under the temporary name — is removed. Where the exchange is not available, the old tree is
    renamed to ``.NAME.old-…`` and the new one renamed into place (a window of two renames in which
    ``out`` is missing; the old tree survives under the ``.old`` name until the new one is in place).
    On an error the temporary tree is removed and ``out`` is unchanged.
    """

    def __init__(self, out: str | os.PathLike, kind: str, *, force: bool = False, option: str = "--out",
                 legacy=None):
        self.out = Path(out)
        self.kind = kind
        self.force = force
        self.option = option
        self.legacy = legacy
        self.mode = check_output_dir(self.out, kind, force=force, option=option, legacy=legacy)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        from .clierr import OutputDirError

        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.new-"))
        except OSError as e:
            raise OutputDirError(f"{self.option} {self.out}: cannot create it ({e.strerror})") from None
        os.chmod(self.tmp, 0o777 & ~_umask())
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        import shutil

        tmp = self.tmp
        assert tmp is not None
        if exc_type is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        try:
            (tmp / MARKER).write_bytes(_marker_bytes(self.kind))
            # the directory may have changed since the check: check again right before replacing it
            mode = check_output_dir(self.out, self.kind, force=self.force, option=self.option, legacy=self.legacy)
            if mode == "new":
                os.replace(tmp, self.out)  # onto a missing or empty directory
            elif _exchange(tmp, self.out):
                shutil.rmtree(tmp)  # now the old tree
            else:
                old = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.old-"))
                os.replace(self.out, old)
                os.replace(tmp, self.out)
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return False


def claim_output_dir(out: str | os.PathLike, kind: str, *, writes: tuple[str, ...] = (), force: bool = False,
                     option: str = "--out", legacy=None) -> Path:
    """For commands that write into a directory file by file (training runs, result folders): refuse a
    directory that is not ours before any work, then create it and write the marker.

    Refused: a file or symbolic link; a directory marked as another kind's output; a previous output
    of ``kind`` (marker, or ``legacy(out)``) unless ``force``; a directory without our marker that
    already holds one of the files the command ``writes`` (nothing of the user's is overwritten).
    Other files in the directory are left alone (e.g. a results folder shared with other tools).
    """
    from .clierr import OutputDirError

    out = Path(out)
    if out.is_symlink() and not out.is_dir():
        raise OutputDirError(f"{option} {out}: is a dangling symbolic link")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{option} {out}: is a file, not a directory (nothing was changed)")
    for p in (out.parent, *out.parent.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputDirError(f"{option} {out}: {p} is a file, not a directory")
            break
    if out.is_dir():
        theirs = output_kind(out)
        if theirs is not None and theirs != kind:
            raise OutputDirError(f"{option} {out}: the directory holds the output of another command (kind "
                                 f"{theirs}), not a {kind}; choose another {option} (nothing was changed)")
        if theirs == kind or (theirs is None and legacy is not None and legacy(out)):
            if not force:
                raise OutputDirError(f"{option} {out}: holds a previous {kind} output; pass --force to "
                                     f"overwrite it or choose another {option}")
        else:
            clash = sorted(n for n in writes if (out / n).exists())
            if clash:
                raise OutputDirError(f"{option} {out}: the directory already holds {', '.join(clash)}, not "
                                     f"written by a {kind}; epforge never overwrites files it did not write: "
                                     f"choose another {option} (nothing was changed)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        if output_kind(out) != kind:
            atomic_write_bytes(out / MARKER, _marker_bytes(kind))
    except OSError as e:
        raise OutputDirError(f"{option} {out}: cannot write there ({e.strerror})") from None
    return out


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
