"""CIFAR-10 (python version): pickle batches, restricted unpickling, safe archive extraction."""

from __future__ import annotations

import io
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from . import _files
from ._core import (
    CIFAR10_BATCHES_DIR,
    DataError,
    DataMissingError,
    Dataset,
    DatasetInfo,
    FileSpec,
    offline,
)

log = logging.getLogger("golden.data")

_PIXELS = 3 * 32 * 32
_ARCHIVE_PARENTS = ("", "CIFAR10", "cifar10")


# --------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------


def _latin1_encode(obj: Any, encoding: str = "latin1") -> bytes:
    # Python 3 pickles bytes below protocol 3 as _codecs.encode(str, "latin1"); allow only that.
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(obj).__name__}, {encoding!r}) is not allowed")
    return obj.encode("latin-1")


def _plain_dtype(obj: Any, *args: Any) -> np.dtype:
    # Only simple type strings: a dtype built from anything else could carry object fields.
    if not isinstance(obj, str | bytes):
        raise pickle.UnpicklingError(f"numpy.dtype({obj!r}) is not allowed")
    # Python 2's numpy pickled align/copy as ints, which numpy >= 2.4 deprecates: pass a bool.
    align = bool(args[0]) if args else False
    dt = np.dtype(obj.decode("ascii") if isinstance(obj, bytes) else obj, align=align)
    if dt.hasobject or dt.fields is not None:
        raise pickle.UnpicklingError(f"numpy.dtype({obj!r}) is not allowed")
    return dt


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # Taken from numpy's own reducers instead of importing numpy.core.*, which numpy 2 deprecates
    # (a DeprecationWarning is an error in this project's test runs).
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a CIFAR-10 batch needs.

    Dicts, lists, tuples, ints, strings and bytes need no globals at all; numpy arrays need
    ``_reconstruct``/``_frombuffer``, ``ndarray`` and ``dtype`` (plain, non-object dtypes only).
    Anything else, in particular arbitrary classes and callables, raises UnpicklingError.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        try:
            return RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name} in pickle") from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` (Python 2 or 3 pickles) with :class:`RestrictedUnpickler`."""
    # encoding="bytes": the batches were written by Python 2, whose str becomes bytes (b"data").
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _key(d: dict, name: str) -> Any:
    # Python 2 pickles give bytes keys; a batch rewritten by Python 3 has str keys.
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def parse_batch(data: bytes, source: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode one ``data_batch_*``/``test_batch`` file into ``(N, 3, 32, 32)`` images and labels."""
    try:
        obj = restricted_loads(data)
    except Exception as exc:  # any unpickling failure is a bad file, whatever its type
        raise DataError(f"{source}: not a valid CIFAR-10 batch: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{source}: not a valid CIFAR-10 batch: a {type(obj).__name__}, expected a dict")
    try:
        pixels, labels = _key(obj, "data"), _key(obj, "labels")
    except KeyError as exc:
        raise DataError(f"{source}: not a valid CIFAR-10 batch: no {exc.args[0]!r} entry") from None
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != _PIXELS:
        desc = f"{pixels.dtype} {pixels.shape}" if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise DataError(f"{source}: 'data' must be a uint8 array N x {_PIXELS}, got {desc}")
    if not isinstance(labels, list | tuple) or not all(type(x) is int for x in labels):
        raise DataError(f"{source}: 'labels' must be a list of ints")
    if len(labels) != pixels.shape[0]:
        raise DataError(f"{source}: {pixels.shape[0]} images but {len(labels)} labels")
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        bad = int(np.argmax((lab < 0) | (lab >= n_classes)))
        raise DataError(f"{source}: label {int(lab[bad])} at index {bad} is out of range 0..{n_classes - 1}")
    # Each row is the R plane, then G, then B, each 32x32 row-major: exactly (3, 32, 32).
    return pixels.reshape(-1, 3, 32, 32), lab


def parse_meta(data: bytes, source: str, n_classes: int) -> tuple[str, ...]:
    """Decode ``batches.meta`` and return the class names."""
    try:
        obj = restricted_loads(data)
        names = _key(obj, "label_names")
    except Exception as exc:
        raise DataError(f"{source}: not a valid CIFAR-10 batches.meta: {type(exc).__name__}: {exc}") from exc
    if not isinstance(names, list) or len(names) != n_classes or not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{source}: 'label_names' must be a list of {n_classes} strings")
    return tuple(n.decode("ascii", "replace") if isinstance(n, bytes) else n for n in names)


# --------------------------------------------------------------------------------------------
# Archive
# --------------------------------------------------------------------------------------------


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest`` (the directory holding it) atomically and safely.

    Every member must be a regular file or directory with a relative path free of ``..``;
    otherwise nothing is extracted. Files go to a temporary directory beside the final one,
    which is renamed into place only once the whole archive has been read.
    """
    try:
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar-extract-"))
    except OSError as exc:
        raise DataError(
            f"cannot extract {archive}: {dest} is not writable ({exc}); extract it yourself so that "
            f"{dest / CIFAR10_BATCHES_DIR}/ holds the batches, or copy the archive to a writable data root"
        ) from exc
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    rel = _safe_member_path(member, archive)
                    if rel is None:
                        continue
                    target = tmp.joinpath(*rel.parts)
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    if src is None:  # pragma: no cover - regular files always have a stream
                        raise DataError(f"{archive}: cannot read member {member.name!r}")
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
        except (tarfile.TarError, OSError, EOFError) as exc:
            # gzip/tar damage and write failures (disk full) both land here; say both possibilities.
            raise DataError(
                f"cannot extract {archive} into {dest}: {exc}. If the archive is damaged, delete it and "
                "download it again"
            ) from exc
        extracted = tmp / CIFAR10_BATCHES_DIR
        if not extracted.is_dir():
            raise DataError(
                f"{archive}: no {CIFAR10_BATCHES_DIR}/ directory inside; is it the CIFAR-10 python archive?"
            )
        final = dest / CIFAR10_BATCHES_DIR
        try:
            os.rename(extracted, final)
        except OSError:
            # An incomplete directory is already there: add what it lacks, one atomic rename each.
            final.mkdir(parents=True, exist_ok=True)
            for f in extracted.iterdir():
                if not (final / f.name).exists():
                    os.replace(f, final / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe_member_path(member: tarfile.TarInfo, archive: Path) -> PurePosixPath | None:
    name = member.name
    path = PurePosixPath(name)
    if not name or path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name:
        raise DataError(f"{archive}: refusing to extract unsafe member path {name!r} (absolute or containing '..')")
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise DataError(f"{archive}: refusing to extract {kind} member {name!r}")
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


# --------------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------------


def _complete(d: Path, specs: tuple[FileSpec, ...]) -> bool:
    return d.is_dir() and all((d / s.name).is_file() for s in specs)


def _read_verified(spec: FileSpec, path: Path, verify: bool) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if verify and spec.digest is not None:
        _files.check_digest(spec, _files.hexdigest(spec.algorithm, data), str(path))
    return data


def _check_archive(spec: FileSpec, path: Path, verify: bool) -> None:
    if verify and spec.digest is not None:
        _files.check_digest(spec, _files.file_hexdigest(spec.algorithm, path), str(path))


def locate(info: DatasetInfo, root: Path, split: str) -> tuple[Path | None, Path | None]:
    """Return ``(complete batches directory or None, archive or None)`` for ``split``."""
    specs = info.files(split)
    batch_dir = next((d for d in info.search_dirs(root) if _complete(d, specs)), None)
    archive = None
    if info.archive is not None:
        archive = next((p for sub in _ARCHIVE_PARENTS if (p := root / sub / info.archive.name).is_file()), None)
    return batch_dir, archive


def _missing_message(info: DatasetInfo, split: str, root: Path, reason: str) -> str:
    assert info.archive is not None
    specs = info.files(split)
    dest = root / CIFAR10_BATCHES_DIR
    arch = info.archive
    lines = [
        f"{info.title} {split} data not found: missing {', '.join(s.name for s in specs)}.",
        f"Put the archive {arch.name} (md5 {arch.digest}; download: {' or '.join(arch.urls)}) in {root}/ "
        f"(it is extracted there on first use), or its extracted files in {dest}/:",
    ]
    lines += [f"  {s.name}  (md5 {s.digest})" for s in specs]
    for d in info.search_dirs(root):
        if d.is_dir():
            lacking = [s.name for s in specs if not (d / s.name).is_file()]
            lines.append(f"{d}/ exists but lacks {', '.join(lacking)}.")
    searched = [str(d) for d in info.search_dirs(root)] + [str(root / p / arch.name) for p in _ARCHIVE_PARENTS]
    lines.append("Searched: " + ", ".join(searched) + ".")
    lines.append("Or set EPFORGE_DATA, or pass data_dir= / --data-dir, to use another data root.")
    lines.append(reason)
    lines.append(f"To download: python -m golden.data fetch {info.name} --data-dir {root}")
    return "\n".join(lines)


def load_cifar(info: DatasetInfo, split: str, root: Path, *, download: bool, verify: bool) -> Dataset:
    """Load one split of CIFAR-10 from ``root`` (extracting or downloading the archive if needed)."""
    assert info.archive is not None
    specs = info.files(split)
    batch_dir, archive = locate(info, root, split)
    if batch_dir is None:
        if archive is None:
            if not download:
                reason = "Not downloaded: download=False."
            elif offline():
                reason = "Not downloaded: EPFORGE_OFFLINE is set."
            else:
                try:
                    archive = _files.download(
                        info.archive,
                        root / info.archive.name,
                        check=lambda p: _check_archive(info.archive, p, verify),
                    )
                    reason = ""
                except DataError as exc:
                    reason = f"Download failed: {exc}"
            if archive is None:
                raise DataMissingError(_missing_message(info, split, root, reason))
        else:
            _check_archive(info.archive, archive, verify)
        log.info("extracting %s into %s", archive, archive.parent)
        safe_extract(archive, archive.parent)
        batch_dir = archive.parent / CIFAR10_BATCHES_DIR
        if not _complete(batch_dir, specs):
            lacking = [s.name for s in specs if not (batch_dir / s.name).is_file()]
            raise DataError(f"{archive} did not provide {', '.join(lacking)} in {batch_dir}/")

    *batch_specs, meta_spec = specs
    classes = parse_meta(
        _read_verified(meta_spec, batch_dir / meta_spec.name, verify),
        str(batch_dir / meta_spec.name),
        len(info.classes),
    )
    images, labels = [], []
    for spec in batch_specs:
        path = batch_dir / spec.name
        x, y = parse_batch(_read_verified(spec, path, verify), str(path), len(info.classes))
        images.append(x)
        labels.append(y)
    log.info("loaded %s %s (%d samples) from %s", info.name, split, sum(map(len, labels)), batch_dir)
    return Dataset(np.concatenate(images), np.concatenate(labels), info.name, split, classes, str(batch_dir))
