"""Registry of the supported data sets, the error types and the :class:`Dataset` container.

Standard library only, so that ``import golden.data`` stays cheap: numpy is imported by the
loader modules, which are themselves imported only when something is loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..clierr import CLIError

if TYPE_CHECKING:
    import numpy as np

SPLITS: tuple[str, ...] = ("train", "test")


class DataError(CLIError):
    """Data set files are missing, corrupt or malformed (an expected error of every CLI: golden.clierr).

    The message says exactly which files to put where (full paths), where to download them
    and which checksum they must have.
    """


class DataMissingError(DataError):
    """Some files of a data set could not be found (and could not be downloaded)."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a data set as it is distributed.

    Parameters
    ----------
    name : str
        File name as distributed (for IDX files the gzipped name, ``*.gz``).
    what : str
        Human-readable description used in messages ("MNIST train images").
    digest : str or None
        Hex digest that the file must have when it is read: 64 hex digits are a sha256, 32 an
        md5. For IDX files it is taken over the *uncompressed* content (gzip streams differ
        between mirrors and recompressions, the content does not), for every other file
        (CIFAR-10 batches, archives) over the file itself. ``None``: not checked.
    download_md5 : str or None
        md5 of the file exactly as published, checked on downloads before anything else.
    urls : tuple of str
        Download locations, tried in order.
    """

    name: str
    what: str
    digest: str | None = None
    download_md5: str | None = None
    urls: tuple[str, ...] = ()

    @property
    def algorithm(self) -> str | None:
        """``"sha256"``, ``"md5"`` or ``None``, from the length of :attr:`digest`."""
        if self.digest is None:
            return None
        return "sha256" if len(self.digest) == 64 else "md5"

    @property
    def stem(self) -> str:
        """The file name without a trailing ``.gz`` (the uncompressed file's name)."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one data set: files, layout, classes and sizes.

    Parameters
    ----------
    name : str
        The name accepted by :func:`golden.data.load_dataset`.
    title : str
        Display name ("MNIST").
    classes : tuple of str
        Class names, indexed by label.
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    n_train, n_test : int
        Number of samples of the canonical data (tests may build smaller files).
    train_files, test_files : tuple of FileSpec
        Files making up each split (IDX: images then labels; CIFAR-10: batches then meta).
    subdirs : tuple of str
        Directories searched under the data root, in order ("" is the root itself).
    system_dirs : tuple of str
        Absolute directories searched after the data root (distribution packages).
    archive : FileSpec or None
        An archive that contains the files (CIFAR-10).
    homepage : str
        Where the data set is described.
    """

    name: str
    title: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    n_train: int
    n_test: int
    train_files: tuple[FileSpec, ...]
    test_files: tuple[FileSpec, ...]
    subdirs: tuple[str, ...] = ("",)
    system_dirs: tuple[str, ...] = ()
    archive: FileSpec | None = None
    homepage: str = ""

    def files(self, split: str) -> tuple[FileSpec, ...]:
        """Return the files of ``split`` ("train" or "test")."""
        check_split(split)
        return self.train_files if split == "train" else self.test_files

    def all_files(self) -> tuple[FileSpec, ...]:
        """Return every distinct file of the data set (both splits, archive excluded)."""
        seen: dict[str, FileSpec] = {}
        for spec in self.train_files + self.test_files:
            seen.setdefault(spec.name, spec)
        return tuple(seen.values())

    def search_dirs(self, root: Path) -> list[Path]:
        """Directories searched for this data set's files under ``root``, in order."""
        dirs = [root / sub if sub else root for sub in self.subdirs]
        dirs += [Path(d) for d in self.system_dirs]
        return dirs


@dataclass(frozen=True, eq=False)
class Dataset:
    """An image classification split held in memory.

    Attributes
    ----------
    images : numpy.ndarray
        ``uint8`` array of shape ``(N, C, H, W)`` (C = 1 for MNIST/Fashion-MNIST, 3 for
        CIFAR-10 in RGB order).
    labels : numpy.ndarray
        ``int64`` array of shape ``(N,)``, values in ``range(len(classes))``.
    name : str
        Data set name ("mnist", "fashion-mnist", "cifar10", "mnist-subset").
    split : str
        "train" or "test".
    classes : tuple of str
        Class names, indexed by label.
    source : str
        Directory (or files) the data were read from.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        # Checked here so that every loader, present and future, hands out the same contract.
        if self.images.dtype.name != "uint8" or self.images.ndim != 4:
            raise ValueError(f"images must be a uint8 array (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.dtype.name != "int64" or self.labels.ndim != 1:
            raise ValueError(f"labels must be an int64 array (N,), got {self.labels.dtype} {self.labels.shape}")
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={tuple(self.images.shape[1:])}, classes={len(self.classes)}, source={self.source!r})"
        )


def default_data_dir() -> Path:
    """Return the data root used when no ``data_dir`` is given.

    Returns
    -------
    pathlib.Path
        ``$EPFORGE_DATA`` if set, else ``$XDG_CACHE_HOME/epforge/data``, else
        ``~/.cache/epforge/data``. The directory is not created.
    """
    env = os.environ.get("EPFORGE_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "epforge" / "data"
    return Path.home() / ".cache" / "epforge" / "data"


def offline() -> bool:
    """Whether ``EPFORGE_OFFLINE`` forbids any network access."""
    return os.environ.get("EPFORGE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_IDX_NAMES = (
    ("train-images-idx3-ubyte.gz", "train images"),
    ("train-labels-idx1-ubyte.gz", "train labels"),
    ("t10k-images-idx3-ubyte.gz", "test images"),
    ("t10k-labels-idx1-ubyte.gz", "test labels"),
)


def _idx_files(
    title: str, sha256: tuple[str, ...], md5: tuple[str | None, ...], mirrors: tuple[str, ...]
) -> tuple[tuple[FileSpec, ...], tuple[FileSpec, ...]]:
    specs = [
        FileSpec(name, f"{title} {what}", sha, m, tuple(mirror + name for mirror in mirrors))
        for (name, what), sha, m in zip(_IDX_NAMES, sha256, md5, strict=True)
    ]
    return (specs[0], specs[1]), (specs[2], specs[3])


_MNIST_TRAIN, _MNIST_TEST = _idx_files(
    "MNIST",
    (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    _MNIST_MIRRORS,
)
_FASHION_TRAIN, _FASHION_TEST = _idx_files(
    "Fashion-MNIST",
    (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
    _FASHION_MIRRORS,
)
# Content hashes of the embedded subset; `python -m golden.data make-subset` reproduces them
# from the real MNIST and tests/test_data.py checks that mnist_subset/SHA256SUMS agrees.
_SUBSET_TRAIN, _SUBSET_TEST = _idx_files(
    "MNIST subset",
    (
        "5742f398058fe36aaf1b8edb1051aa6ed96831e24fd15bf6ac80362ceb9942bc",
        "5845824a1405e379f337fe3db6e4fa8614766ce3767bbb4825466b35c5ac044b",
        "97ec3e530cd55441a2c634c869ee2db6ac4224e52db5b7b8f60743ac7c976ec7",
        "ff9110acc0bd87bce7a4ef183f1e00fcd66145d7f0db2ed8cd3aee4b1f6d5b03",
    ),
    (None, None, None, None),
    (),
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_BATCHES_DIR = "cifar-10-batches-py"


def _cifar(name: str, md5: str) -> FileSpec:
    # Batches come out of the archive, so there is nothing to download one by one.
    return FileSpec(name, f"CIFAR-10 {name}", md5, None, ())


_CIFAR_TRAIN = (
    _cifar("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    _cifar("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    _cifar("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    _cifar("data_batch_4", "634d18415352ddfa80567beed471001a"),
    _cifar("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    _cifar("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
)
_CIFAR_TEST = (_cifar("test_batch", "40351d587109b95175f43aff81a1287e"), _CIFAR_TRAIN[-1])

_DIGITS = tuple(str(d) for d in range(10))

_DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "MNIST", _DIGITS, (1, 28, 28), 60000, 10000, _MNIST_TRAIN, _MNIST_TEST,
        subdirs=("MNIST/raw", "MNIST", "mnist", ""),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"),
        (1, 28, 28), 60000, 10000, _FASHION_TRAIN, _FASHION_TEST,
        subdirs=("FashionMNIST/raw", "FashionMNIST", "fashion-mnist", ""),
        # `apt-get install dataset-fashion-mnist` puts the four IDX files here.
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (3, 32, 32), 50000, 10000, _CIFAR_TRAIN, _CIFAR_TEST,
        subdirs=(CIFAR10_BATCHES_DIR, f"CIFAR10/{CIFAR10_BATCHES_DIR}", f"cifar10/{CIFAR10_BATCHES_DIR}"),
        archive=FileSpec("cifar-10-python.tar.gz", "CIFAR-10 archive", "c58f30108f718f92721af3b95e74349a",
                         None, (CIFAR10_URL,)),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "mnist-subset": DatasetInfo(
        "mnist-subset", "MNIST subset (embedded)", _DIGITS, (1, 28, 28), 2000, 500, _SUBSET_TRAIN,
        _SUBSET_TEST, subdirs=(),
        homepage="first 200 train / 50 test images per class of MNIST, shipped in golden/data/mnist_subset",
    ),
}  # fmt: skip

#: The supported data sets by name (read-only view).
DATASETS: Mapping[str, DatasetInfo] = MappingProxyType(_DATASETS)


def get_info(name: str) -> DatasetInfo:
    """Return the registry entry of ``name``, or raise a ``ValueError`` listing the choices."""
    if not isinstance(name, str) or name not in _DATASETS:
        allowed = ", ".join(repr(n) for n in _DATASETS)
        raise ValueError(f"name must be one of {allowed}; got name={name!r}")
    return _DATASETS[name]


def check_split(split: str) -> None:
    """Raise a ``ValueError`` naming the allowed values unless ``split`` is "train" or "test"."""
    if not isinstance(split, str) or split not in SPLITS:
        allowed = ", ".join(repr(s) for s in SPLITS)
        raise ValueError(f"split must be one of {allowed}; got split={split!r}")


_HEX = re.compile(r"[0-9a-f]+")


def apply_checksums(info: DatasetInfo, checksums: Mapping[str, str] | None) -> DatasetInfo:
    """Return ``info`` with the expected digests replaced by ``checksums``.

    Parameters
    ----------
    info : DatasetInfo
        The registry entry.
    checksums : mapping of str to str, or None
        File name (as in the registry, e.g. ``"train-images-idx3-ubyte.gz"``, ``"data_batch_1"``,
        ``"cifar-10-python.tar.gz"``) to hex digest: 64 hex digits are a sha256, 32 an md5. For
        IDX files the digest is of the uncompressed content, for every other file of the file.

    Returns
    -------
    DatasetInfo
        A copy whose overridden files carry the given digest and no published download md5
        (that md5 describes the official file, not the stand-in).
    """
    if not checksums:
        return info
    known = {spec.name: spec for spec in info.all_files()}
    if info.archive is not None:
        known[info.archive.name] = info.archive
    unknown = sorted(set(checksums) - set(known))
    if unknown:
        raise ValueError(
            f"checksums has entries for files that {info.name!r} does not have: {unknown}; "
            f"allowed file names: {sorted(known)}"
        )
    new: dict[str, FileSpec] = {}
    for fname, digest in checksums.items():
        digest = str(digest).lower()
        if len(digest) not in (32, 64) or not _HEX.fullmatch(digest):
            raise ValueError(
                f"checksums[{fname!r}] must be a 32-digit md5 or 64-digit sha256 hex digest; got {digest!r}"
            )
        new[fname] = replace(known[fname], digest=digest, download_md5=None)
    return replace(
        info,
        train_files=tuple(new.get(s.name, s) for s in info.train_files),
        test_files=tuple(new.get(s.name, s) for s in info.test_files),
        archive=new.get(info.archive.name, info.archive) if info.archive is not None else None,
    )


def identify_digest(digest: str) -> FileSpec | None:
    """Return the registered file (of any data set) that has this digest, if any."""
    for info in _DATASETS.values():
        for spec in info.all_files():
            if spec.digest == digest:
                return spec
    return None
