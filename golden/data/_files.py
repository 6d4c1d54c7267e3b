"""File plumbing shared by the loaders: hashing, atomic writes, gzip, downloads (stdlib only)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ._core import DataError, FileSpec, offline

log = logging.getLogger("golden.data")

#: Seconds to wait for a connection and for each read of a download.
DOWNLOAD_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


def hexdigest(algorithm: str, data: bytes) -> str:
    """Return the hex digest of ``data`` with ``algorithm`` ("sha256" or "md5")."""
    return hashlib.new(algorithm, data, usedforsecurity=False).hexdigest()


def file_hexdigest(algorithm: str, path: Path) -> str:
    """Return the hex digest of the file at ``path``, read in chunks."""
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check_digest(spec: FileSpec, actual: str, where: str, *, over: str = "file") -> None:
    """Raise a DataError unless ``actual`` equals ``spec.digest``.

    Parameters
    ----------
    spec : FileSpec
        The file's registry entry; nothing is checked when it has no digest.
    actual : str
        The digest computed with ``spec.algorithm``.
    where : str
        Path shown in the message.
    over : str
        What the digest was taken over ("file" or "uncompressed content"), for the message.
    """
    if spec.digest is None or actual == spec.digest:
        return
    from ._core import identify_digest

    other = identify_digest(actual)
    hint = (
        f" It is the {other.what} file ({other.name}), not the {spec.what}."
        if other and other.what != spec.what
        else ""
    )
    raise DataError(
        f"{spec.what}: checksum mismatch for {where}: {spec.algorithm} of the {over} is {actual}, "
        f"expected {spec.digest}.{hint} The file is corrupt or not the right one: delete it and put a "
        f"good copy of {spec.name} there" + (f" (download: {' or '.join(spec.urls)})." if spec.urls else ".")
    )


def gunzip_if_needed(raw: bytes, source: str) -> bytes:
    """Return ``raw`` gunzipped if it starts with the gzip magic, else unchanged.

    The magic decides, not the name: browsers sometimes unpack ``*.gz`` downloads and keep the
    name, and such a file is still good (its content checksum says so).
    """
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{source} is not a valid gzip file ({exc}); delete it and put a good copy there") from exc


def deterministic_gzip(data: bytes) -> bytes:
    """Gzip ``data`` into a byte-for-byte reproducible stream.

    The container is written here rather than by :mod:`gzip` because the header (mtime, OS
    byte, file name) written by ``gzip.compress`` changed between Python versions; only the
    deflate stream comes from zlib (level 9, window 15, memLevel 8, one call).
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
    body = comp.compress(data) + comp.flush()
    # magic, deflate, no flags, mtime 0, XFL 2 (max compression), OS 255 (unknown)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + body + trailer


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str = ".tmp") -> Iterator[tuple[Path, BinaryIO]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    On any exception the temporary file is removed, so a half-written file never appears
    under the final name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield tmp, f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    with atomic_output(path) as (_, f):
        f.write(data)


def download(spec: FileSpec, dest: Path, check: Callable[[Path], None] | None = None) -> Path:
    """Download ``spec`` to ``dest`` (a file path), trying each URL in turn.

    The bytes are streamed into ``<dest>.<random>.part``, the published md5 is checked, then
    ``check(part_path)`` (which raises DataError on bad content), and only then is the file
    renamed to ``dest``.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DataError
        When ``EPFORGE_OFFLINE`` is set, when there is no URL, or when every URL failed; the
        message lists each URL with its error.
    """
    if offline():
        raise DataError("not downloaded: EPFORGE_OFFLINE is set")
    if not spec.urls:
        raise DataError("no download location is known")
    import http.client
    import urllib.error
    import urllib.request

    errors = []
    for url in spec.urls:
        log.info("downloading %s -> %s", url, dest)
        try:
            with atomic_output(dest, suffix=".part") as (part, f):
                md5 = hashlib.md5(usedforsecurity=False)
                # Looked up at call time so that tests can monkeypatch urllib.request.urlopen.
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                    for chunk in iter(lambda r=resp: r.read(_CHUNK), b""):
                        md5.update(chunk)
                        f.write(chunk)
                f.flush()
                if spec.download_md5 is not None and md5.hexdigest() != spec.download_md5:
                    raise DataError(f"md5 {md5.hexdigest()} of the download, expected {spec.download_md5}")
                if check is not None:
                    check(part)
            return dest
        except (OSError, urllib.error.URLError, http.client.HTTPException, DataError, ValueError) as exc:
            # Network errors, HTTP errors, timeouts, truncated bodies, bad content: try the next mirror.
            log.warning("download of %s failed: %s", url, exc)
            errors.append(f"{url}: {exc}")
    raise DataError("download failed: " + "; ".join(errors))
