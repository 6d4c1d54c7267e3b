"""Data sets for the EP models: MNIST, Fashion-MNIST, CIFAR-10 and an embedded MNIST subset.

Importing this package costs only the standard library; numpy is imported on the first load,
torch never.

Examples
--------
>>> from golden.data import load_dataset
>>> ds = load_dataset("mnist-subset", "test")
>>> ds.images.shape, ds.labels.dtype
((500, 1, 28, 28), dtype('int64'))

Files are looked up under a data root (``data_dir``, else :func:`default_data_dir`), checked
against known checksums, and downloaded when missing unless ``download=False`` or
``EPFORGE_OFFLINE=1``. Every problem raises :class:`DataError` with a message that says which
files to put where. ``python -m golden.data --help`` lists the command-line tools.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from ._core import (
    DATASETS,
    SPLITS,
    DataError,
    DataMissingError,
    Dataset,
    DatasetInfo,
    FileSpec,
    apply_checksums,
    check_split,
    default_data_dir,
    get_info,
)

__all__ = [
    "DATASETS",
    "SPLITS",
    "DataError",
    "DataMissingError",
    "Dataset",
    "DatasetInfo",
    "FileSpec",
    "default_data_dir",
    "load_dataset",
    "load_mnist_or_subset",
]

log = logging.getLogger("golden.data")


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    verify: bool = True,
    checksums: Mapping[str, str] | None = None,
) -> Dataset:
    """Load one split of a data set into memory.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "cifar10", "mnist-subset"}
        Which data set. "mnist-subset" is shipped inside the package (2000 train / 500 test
        images) and ignores ``data_dir`` and ``download``.
    split : {"train", "test"}
        Which split.
    data_dir : str or path-like, optional
        Data root to search (see below); default :func:`default_data_dir`.
    download : bool
        Download missing files into the data root (never when ``EPFORGE_OFFLINE=1``). Only
        missing files are fetched; a file that is present but corrupt is an error.
    verify : bool, keyword-only
        Check every file against its known checksum (default). Structure is always validated.
    checksums : mapping of str to str, optional, keyword-only
        Replace the expected digest of some files: file name (``"train-images-idx3-ubyte.gz"``,
        ``"data_batch_1"``, ``"cifar-10-python.tar.gz"``, ...) to a 64-digit sha256 or 32-digit
        md5. For IDX files it is the digest of the uncompressed content, for others of the file.
        Meant for tests that build small files in the real format.

    Returns
    -------
    Dataset
        ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``, ``classes``, ``source``.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``split``, or a malformed ``checksums`` entry.
    DataError
        Files missing (:class:`DataMissingError`), corrupt or malformed; the message lists the
        files, the directory to put them in, where to download them and their checksums.

    Notes
    -----
    Search order under the root ``R``: MNIST ``R/MNIST/raw``, ``R/MNIST``, ``R/mnist``, ``R``;
    Fashion-MNIST ``R/FashionMNIST/raw``, ``R/FashionMNIST``, ``R/fashion-mnist``, ``R``, then
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``); both as
    ``*.gz`` or uncompressed. CIFAR-10: ``R/cifar-10-batches-py``, ``R/CIFAR10/...``,
    ``R/cifar10/...``, else the archive ``R/cifar-10-python.tar.gz``, extracted beside itself.
    Downloads go to the first directory of the list.
    """
    info = get_info(name)
    check_split(split)
    info = apply_checksums(info, checksums)
    if info.name == "mnist-subset":
        from ._idxsets import load_subset

        return load_subset(info, split, verify=verify)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if info.name == "cifar10":
        from ._cifar import load_cifar

        return load_cifar(info, split, root, download=download, verify=verify)
    from ._idxsets import load_idx_dataset

    return load_idx_dataset(info, split, root, download=download, verify=verify)


def load_mnist_or_subset(split: str = "train", data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load full MNIST if it is on disk, else the embedded subset; log which one.

    Parameters
    ----------
    split : {"train", "test"}
        Which split.
    data_dir : str or path-like, optional
        Data root searched for MNIST; default :func:`default_data_dir`. Nothing is downloaded.

    Returns
    -------
    Dataset
        ``name`` is "mnist" or "mnist-subset", so callers can tell which they got.

    Raises
    ------
    DataError
        MNIST files were found but are corrupt (a broken file is reported, not silently
        replaced by the subset), or the embedded subset itself is damaged.
    """
    check_split(split)
    try:
        ds = load_dataset("mnist", split, data_dir, download=False)
    except DataMissingError as exc:
        first_line = str(exc).splitlines()[0]
        log.warning(
            "full MNIST not found (%s); using the embedded %s subset (%s). Put MNIST under %s to use it.",
            first_line,
            split,
            "2000 train images" if split == "train" else "500 test images",
            Path(data_dir) if data_dir is not None else default_data_dir(),
        )
        return load_dataset("mnist-subset", split)
    log.info("using full MNIST %s (%d images) from %s", split, len(ds), ds.source)
    return ds
