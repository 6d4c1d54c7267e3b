"""IDX data sets: MNIST, Fashion-MNIST and the embedded MNIST subset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import _files
from ._core import (
    DATASETS,
    DataError,
    DataMissingError,
    Dataset,
    DatasetInfo,
    FileSpec,
    identify_digest,
    offline,
)
from .idx import decode_idx, encode_idx

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

log = logging.getLogger("golden.data")

SUBSET_DIR = "mnist_subset"
SUBSET_PER_CLASS = {"train": 200, "test": 50}
SUMS_FILE = "SHA256SUMS"


def candidates(info: DatasetInfo, root: Path, spec: FileSpec) -> list[Path]:
    """Existing files that could be ``spec``, in search order (``.gz`` before uncompressed)."""
    return [d / n for d in info.search_dirs(root) for n in (spec.name, spec.stem) if (d / n).is_file()]


def _verify(spec: FileSpec, content: bytes, where: str) -> None:
    if spec.digest is not None:
        actual = _files.hexdigest(spec.algorithm, content)
        _files.check_digest(spec, actual, where, over="uncompressed content")


def _find(info: DatasetInfo, root: Path, spec: FileSpec, verify: bool, skipped: list[str]) -> tuple[Path, bytes] | None:
    """Return ``(path, content)`` of the first good candidate for ``spec``, or None."""
    for path in candidates(info, root, spec):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc}") from exc
        content = _files.gunzip_if_needed(raw, str(path))
        if verify and spec.digest is not None:
            actual = _files.hexdigest(spec.algorithm, content)
            other = identify_digest(actual) if actual != spec.digest else None
            if other is not None and other.what != spec.what:
                # Roots are shared (MNIST and Fashion-MNIST use the same file names): a file that
                # is verifiably another data set's is not "corrupt", it is simply not this one.
                note = f"{path} (it is the {other.what} file)"
                log.info("skipping %s", note)
                skipped.append(note)
                continue
            _files.check_digest(spec, actual, str(path), over="uncompressed content")
        return path, content
    return None


def _check_download(spec: FileSpec, part: Path, verify: bool) -> None:
    content = _files.gunzip_if_needed(part.read_bytes(), f"download of {spec.name}")
    if verify:
        _verify(spec, content, f"the download of {spec.name}")
    decode_idx(content, f"download of {spec.name}")  # rejects e.g. an HTML error page


def missing_message(
    info: DatasetInfo,
    split: str,
    root: Path,
    missing: list[FileSpec],
    reason: str,
    skipped: Sequence[str] = (),
) -> str:
    """Say exactly which files to put where, where to get them and what checksum they need."""
    dest = info.search_dirs(root)[0]
    lines = [
        f"{info.title} {split} data not found: missing {', '.join(s.name for s in missing)}.",
        f"Put {'this file' if len(missing) == 1 else 'these files'} in {dest}/ "
        "(or set EPFORGE_DATA, or pass data_dir= / --data-dir, to use another data root):",
    ]
    for s in missing:
        detail = [s.what]
        if s.digest:
            over = "uncompressed content" if s.name.endswith(".gz") else "file"
            detail.append(f"{s.algorithm} of the {over} {s.digest}")
        if s.urls:
            detail.append("download: " + " or ".join(s.urls))
        lines.append(f"  {s.name}  ({'; '.join(detail)})")
    searched = ", ".join(str(d) for d in info.search_dirs(root))
    lines.append(f"Searched: {searched} (each for the .gz and the uncompressed file).")
    if skipped:
        lines.append("Skipped files of another data set: " + "; ".join(skipped) + ".")
    lines.append(reason)
    lines.append(f"To download: python -m golden.data fetch {info.name} --data-dir {root}")
    return "\n".join(lines)


def load_idx_dataset(info: DatasetInfo, split: str, root: Path, *, download: bool, verify: bool) -> Dataset:
    """Load one split of an IDX data set found under ``root`` (downloading missing files)."""
    specs = info.files(split)
    skipped: list[str] = []
    found: dict[str, tuple[Path, bytes]] = {}
    for spec in specs:
        hit = _find(info, root, spec, verify, skipped)
        if hit is not None:
            found[spec.name] = hit
    missing = [s for s in specs if s.name not in found]
    if missing:
        dest = info.search_dirs(root)[0]
        if not download:
            reason = "Not downloaded: download=False."
        elif offline():
            reason = "Not downloaded: EPFORGE_OFFLINE is set."
        else:
            failures = []
            for spec in missing:
                try:
                    path = _files.download(
                        spec, dest / spec.name, check=lambda p, s=spec: _check_download(s, p, verify)
                    )
                except DataError as exc:
                    failures.append(f"{spec.name}: {exc}")
                    continue
                found[spec.name] = (path, _files.gunzip_if_needed(path.read_bytes(), str(path)))
            reason = "Download failed: " + " | ".join(failures) if failures else ""
        missing = [s for s in specs if s.name not in found]
        if missing:
            raise DataMissingError(missing_message(info, split, root, missing, reason, skipped))
    (img_path, img), (lbl_path, lbl) = (found[s.name] for s in specs)
    images, labels = parse_pair(info, img, str(img_path), lbl, str(lbl_path))
    source = str(img_path.parent) if img_path.parent == lbl_path.parent else f"{img_path} + {lbl_path}"
    log.info("loaded %s %s (%d samples) from %s", info.name, split, len(labels), source)
    return Dataset(images, labels, info.name, split, info.classes, source)


def parse_pair(info: DatasetInfo, img: bytes, img_src: str, lbl: bytes, lbl_src: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode and cross-check an images/labels pair of IDX contents."""
    c, h, w = info.image_shape
    images = decode_idx(img, img_src)
    labels = decode_idx(lbl, lbl_src)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (h, w):
        raise DataError(
            f"{img_src}: expected {info.title} images (unsigned byte, N x {h} x {w}), "
            f"got {images.dtype} {'x'.join(map(str, images.shape))}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{lbl_src}: expected {info.title} labels (unsigned byte, N), "
            f"got {labels.dtype} {'x'.join(map(str, labels.shape))}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{img_src} has {images.shape[0]} images but {lbl_src} has {labels.shape[0]} labels")
    if labels.size and int(labels.max()) >= len(info.classes):
        bad = int(np.argmax(labels >= len(info.classes)))
        raise DataError(
            f"{lbl_src}: label {int(labels[bad])} at index {bad} is out of range 0..{len(info.classes) - 1}"
        )
    return images.reshape(-1, c, h, w), labels.astype(np.int64)


def subset_location() -> Traversable:
    """The package resource directory holding the embedded subset."""
    from importlib.resources import files

    return files(__package__).joinpath(SUBSET_DIR)


def load_subset(info: DatasetInfo, split: str, *, verify: bool) -> Dataset:
    """Load one split of the MNIST subset shipped inside the package."""
    base = subset_location()
    contents = []
    for spec in info.files(split):
        res = base.joinpath(spec.name)
        if not res.is_file():
            raise DataError(
                f"{spec.what}: {spec.name} is missing from the installed package ({base}). Reinstall epforge, "
                "or regenerate it: python -m golden.data make-subset --from <dir with MNIST>"
            )
        where = f"{base}/{spec.name}"
        content = _files.gunzip_if_needed(res.read_bytes(), where)
        if verify:
            _verify(spec, content, where)
        contents.append((content, where))
    (img, img_src), (lbl, lbl_src) = contents
    images, labels = parse_pair(info, img, img_src, lbl, lbl_src)
    return Dataset(images, labels, info.name, split, info.classes, str(base))


def first_per_class(labels: np.ndarray, per_class: int, n_classes: int) -> np.ndarray:
    """Indices of the first ``per_class`` samples of each class, in file order."""
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(n_classes))
    counts = np.bincount(labels, minlength=n_classes)
    if counts.min() < per_class:
        raise DataError(f"need {per_class} samples of each class, class {int(counts.argmin())} has {counts.min()}")
    picks = np.concatenate([order[s : s + per_class] for s in starts])
    return np.sort(picks)


def make_subset(source_root: Path, out_dir: Path | None = None) -> dict[str, str]:
    """Regenerate the embedded MNIST subset from a directory holding the real MNIST.

    Parameters
    ----------
    source_root : pathlib.Path
        A data root searched like any other (``MNIST/raw``, ``MNIST``, ``mnist``, itself); the
        files must pass the MNIST checksums, so the output is fully determined.
    out_dir : pathlib.Path, optional
        Where to write; by default the package's own ``mnist_subset`` directory.

    Returns
    -------
    dict of str to str
        File name to sha256 of its uncompressed content (as written to ``SHA256SUMS``).
    """
    mnist = DATASETS["mnist"]
    subset = DATASETS["mnist-subset"]
    out = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent / SUBSET_DIR
    hashes: dict[str, str] = {}
    for split, per_class in SUBSET_PER_CLASS.items():
        ds = load_idx_dataset(mnist, split, Path(source_root), download=False, verify=True)
        keep = first_per_class(ds.labels, per_class, len(mnist.classes))
        arrays = (ds.images[keep, 0], ds.labels[keep].astype(np.uint8))
        for spec, arr in zip(subset.files(split), arrays, strict=True):
            content = encode_idx(arr)
            hashes[spec.name] = _files.hexdigest("sha256", content)
            _files.atomic_write_bytes(out / spec.name, _files.deterministic_gzip(content))
    sums = "".join(f"{hashes[n]}  {n} (uncompressed)\n" for n in sorted(hashes))
    _files.atomic_write_bytes(out / SUMS_FILE, sums.encode())
    for spec in subset.all_files():
        if spec.digest != hashes[spec.name]:
            log.warning(
                "%s: sha256 %s differs from the registry's %s; update golden/data/_core.py",
                spec.name,
                hashes[spec.name],
                spec.digest,
            )
    return hashes
