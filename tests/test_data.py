"""Tests of golden.data: IDX and CIFAR-10 loaders, checksums, downloads, embedded subset, CLI.

Real data are used where this machine has them (MNIST in ../shared/data/mnist beside the repo,
Fashion-MNIST from Debian's dataset-fashion-mnist); CIFAR-10 and all failure cases use tiny
files written here in the exact formats. No test touches the network: urlopen is replaced.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from datafiles import (  # noqa: I001  (tests/ is on sys.path)
    CIFAR_NAMES,
    N_PER_BATCH,
    cifar_files,
    cifar_labels,
    cifar_pixels,
    write_cifar_dir,
)

import golden.data as gd
from golden.data import DATASETS, DataError, DataMissingError, Dataset, _core, _files, default_data_dir, load_dataset
from golden.data.__main__ import main as cli_main
from golden.data.idx import decode_idx, encode_idx

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist"
FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")
SUBSET_DIR = REPO / "golden/data/mnist_subset"

needs_mnist = pytest.mark.skipif(
    not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"real MNIST not available at {SHARED_MNIST} (shared/ must sit beside the repository)",
)
needs_fashion = pytest.mark.skipif(
    not (FASHION_SYSTEM / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed in {FASHION_SYSTEM} (apt-get install dataset-fashion-mnist)",
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No network, no user cache, no offline flag inherited from the environment."""
    calls: list[tuple[str, float | None]] = []

    def no_network(url, *args, timeout=None, **kwargs):
        calls.append((url, timeout))
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("EPFORGE_DATA", str(tmp_path / "default-root"))
    monkeypatch.delenv("EPFORGE_OFFLINE", raising=False)
    return calls


# --------------------------------------------------------------------------------------------
# helpers: tiny files in the real formats
# --------------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tiny_idx_split(n: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, bytes, bytes]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels, encode_idx(images), encode_idx(labels)


def write_tiny_mnist(directory: Path, split: str = "train", *, gz: bool = True, n: int = 7) -> dict[str, str]:
    """Write a tiny images/labels pair; return the checksums override for it."""
    images, labels, img, lbl = tiny_idx_split(n)
    prefix = "train" if split == "train" else "t10k"
    names = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in zip(names, (img, lbl), strict=True):
        path = directory / (name if gz else name[:-3])
        path.write_bytes(gzip.compress(content) if gz else content)
    return {names[0]: sha256(img), names[1]: sha256(lbl)}


def make_tar(path: Path, members: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------------------------
# API surface, arguments, import cost
# --------------------------------------------------------------------------------------------


def test_import_does_not_pull_in_torch():
    code = "import sys, golden.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_cli_runs_as_module_and_documents_options():
    cmd = [sys.executable, "-m", "golden.data", "make-subset", "--help"]
    out = subprocess.run(cmd, check=True, cwd=REPO, capture_output=True, text=True).stdout
    assert "--from DIR" in out and "--out DIR" in out and "data root holding the real MNIST" in out


def test_registry_lists_the_four_datasets():
    assert list(DATASETS) == ["mnist", "fashion-mnist", "cifar10", "mnist-subset"]
    assert DATASETS["cifar10"].image_shape == (3, 32, 32)
    with pytest.raises(TypeError):
        DATASETS["x"] = DATASETS["mnist"]  # type: ignore[index]


@pytest.mark.parametrize("bad", ["MNIST", "cifar-10", "", 3])
def test_bad_name_is_a_value_error_naming_choices(bad):
    allowed = "'mnist', 'fashion-mnist', 'cifar10', 'mnist-subset'"
    with pytest.raises(ValueError, match=rf"name must be one of {allowed}; got name={bad!r}"):
        load_dataset(bad)


@pytest.mark.parametrize("bad", ["val", "Train", None])
def test_bad_split_is_a_value_error_naming_choices(bad):
    with pytest.raises(ValueError, match=rf"split must be one of 'train', 'test'; got split={bad!r}"):
        load_dataset("mnist-subset", bad)
    with pytest.raises(ValueError, match="split must be one of"):
        gd.load_mnist_or_subset(bad)


def test_bad_checksums_override_is_rejected():
    with pytest.raises(ValueError, match=r"checksums has entries for files that 'mnist' does not have: \['nope'\]"):
        load_dataset("mnist", checksums={"nope": "0" * 64})
    with pytest.raises(ValueError, match=r"checksums\['data_batch_1'\] must be a 32-digit md5 or 64-digit sha256"):
        load_dataset("cifar10", checksums={"data_batch_1": "xyz"})


def test_default_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("EPFORGE_DATA", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "a"
    monkeypatch.delenv("EPFORGE_DATA")
    assert default_data_dir() == tmp_path / "xdg" / "epforge" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "epforge" / "data"


def test_dataset_validates_its_arrays():
    ok = np.zeros((2, 1, 3, 3), np.uint8)
    ds = Dataset(ok, np.zeros(2, np.int64), "x", "train", ("a",), "here")
    assert len(ds) == 2 and "n=2" in repr(ds)
    with pytest.raises(ValueError, match="images must be a uint8 array"):
        Dataset(ok.astype(np.float32), np.zeros(2, np.int64), "x", "train", ("a",), "here")
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        Dataset(ok, np.zeros(3, np.int64), "x", "train", ("a",), "here")


# --------------------------------------------------------------------------------------------
# Real MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------


@needs_mnist
@pytest.mark.parametrize(
    ("split", "n", "counts"), [("train", 60000, MNIST_TRAIN_COUNTS), ("test", 10000, MNIST_TEST_COUNTS)]
)
def test_real_mnist(split, n, counts):
    ds = load_dataset("mnist", split, SHARED_MNIST, download=False)  # verify=True: checksums checked
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
    assert np.bincount(ds.labels).tolist() == counts
    assert ds.classes == tuple("0123456789") and ds.name == "mnist" and ds.split == split
    assert ds.source == str(SHARED_MNIST)
    assert ds.images.flags.writeable and ds.images.max() == 255


@needs_mnist
def test_real_mnist_checksum_is_really_checked():
    with pytest.raises(
        DataError, match=r"checksum mismatch for .*t10k-labels-idx1-ubyte.gz: sha256 of the uncompressed"
    ):
        load_dataset("mnist", "test", SHARED_MNIST, download=False, checksums={"t10k-labels-idx1-ubyte.gz": "0" * 64})


@needs_mnist
def test_load_mnist_or_subset_prefers_full_mnist(caplog):
    caplog.set_level("INFO", logger="golden.data")
    ds = gd.load_mnist_or_subset("test", SHARED_MNIST)
    assert ds.name == "mnist" and len(ds) == 10000
    assert "using full MNIST test" in caplog.text


def test_load_mnist_or_subset_falls_back_to_subset(tmp_path, caplog, isolated):
    ds = gd.load_mnist_or_subset("train", tmp_path)
    assert ds.name == "mnist-subset" and len(ds) == 2000
    assert "using the embedded train subset" in caplog.text
    assert isolated == []  # no download attempted


def test_load_mnist_or_subset_reports_corrupt_mnist(tmp_path):
    write_tiny_mnist(tmp_path / "MNIST" / "raw", "test")  # real registry checksums will not match
    with pytest.raises(DataError, match="checksum mismatch"):
        gd.load_mnist_or_subset("test", tmp_path)


@needs_fashion
def test_fashion_mnist_from_debian_package(tmp_path):
    ds = load_dataset("fashion-mnist", "test", tmp_path, download=False)
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.source == str(FASHION_SYSTEM)


@needs_fashion
@needs_mnist
def test_fashion_skips_mnist_files_in_a_shared_root():
    # MNIST and Fashion-MNIST share file names: MNIST's files in the root are not Fashion-MNIST.
    ds = load_dataset("fashion-mnist", "test", SHARED_MNIST, download=False)
    assert ds.source == str(FASHION_SYSTEM)


def test_fashion_missing_lists_debian_dir(tmp_path, monkeypatch):
    info = _core.DATASETS["fashion-mnist"]
    monkeypatch.setitem(_core._DATASETS, "fashion-mnist", _core.replace(info, system_dirs=(str(tmp_path / "deb"),)))
    with pytest.raises(DataMissingError) as exc:
        load_dataset("fashion-mnist", "test", tmp_path / "root", download=False)
    msg = str(exc.value)
    assert f"{tmp_path / 'root' / 'FashionMNIST' / 'raw'}/" in msg and str(tmp_path / "deb") in msg
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz" in msg


# --------------------------------------------------------------------------------------------
# Embedded subset
# --------------------------------------------------------------------------------------------


def test_subset_contents():
    train, test = load_dataset("mnist-subset", "train"), load_dataset("mnist-subset", "test")
    assert train.images.shape == (2000, 1, 28, 28) and test.images.shape == (500, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [200] * 10
    assert np.bincount(test.labels).tolist() == [50] * 10
    assert train.classes == tuple("0123456789")
    files = [p for p in SUBSET_DIR.iterdir() if p.is_file()]
    assert sorted(p.name for p in files) == sorted(
        ["SHA256SUMS"] + [s.name for s in DATASETS["mnist-subset"].all_files()]
    )
    assert sum(p.stat().st_size for p in files) <= 1_000_000


def test_subset_sums_file_matches_registry():
    lines = (SUBSET_DIR / "SHA256SUMS").read_text().splitlines()
    sums = {line.split()[1]: line.split()[0] for line in lines}
    assert sums == {s.name: s.digest for s in DATASETS["mnist-subset"].all_files()}
    for name, digest in sums.items():
        assert sha256(gzip.decompress((SUBSET_DIR / name).read_bytes())) == digest


def test_subset_is_verified():
    with pytest.raises(DataError, match="MNIST subset test labels: checksum mismatch"):
        load_dataset("mnist-subset", "test", checksums={"t10k-labels-idx1-ubyte.gz": "1" * 64})


@needs_mnist
def test_subset_regenerates_bit_identically(tmp_path, capsys):
    assert cli_main(["make-subset", "--from", str(SHARED_MNIST), "--out", str(tmp_path)]) == 0
    for name in ["SHA256SUMS"] + [s.name for s in DATASETS["mnist-subset"].all_files()]:
        assert (tmp_path / name).read_bytes() == (SUBSET_DIR / name).read_bytes(), name
    assert "(uncompressed)" in capsys.readouterr().out
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [".epforge-output.json"]  # the output marker, no temp files left


# --------------------------------------------------------------------------------------------
# IDX format and MNIST-style loading from tiny files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    data = encode_idx(arr)
    assert data[:4] == bytes((0, 0, data[2], 3)) and struct.unpack(">3I", data[4:16]) == (2, 3, 4)
    out = decode_idx(data, "x")
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, arr) and out.flags.writeable


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d[:-1], "truncated IDX data"),
        (lambda d: d[:10], "truncated IDX header"),
        (lambda d: b"\x01" + d[1:], "bad magic number 0x01000803"),
        (lambda d: d[:2] + b"\x07" + d[3:], "bad magic number 0x00000703"),
        (lambda d: d + b"\0", "1 unexpected bytes"),
        (lambda d: b"", "shorter than the 4-byte magic"),
    ],
)
def test_idx_malformed_is_refused(mutate, match):
    data = encode_idx(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=match):
        decode_idx(mutate(data), "some-file")


def test_tiny_mnist_loads_with_checksum_override(tmp_path):
    sums = write_tiny_mnist(tmp_path / "MNIST" / "raw", "train")
    images, labels, _, _ = tiny_idx_split()
    ds = load_dataset("mnist", "train", tmp_path, checksums=sums)
    assert np.array_equal(ds.images[:, 0], images) and np.array_equal(ds.labels, labels)
    assert ds.source == str(tmp_path / "MNIST" / "raw")


def test_uncompressed_idx_accepted_and_search_order(tmp_path):
    sums = write_tiny_mnist(tmp_path, "test", gz=False)  # root, uncompressed
    assert load_dataset("mnist", "test", tmp_path, checksums=sums).source == str(tmp_path)
    # The torchvision layout comes first in the search.
    write_tiny_mnist(tmp_path / "MNIST" / "raw", "test")
    assert load_dataset("mnist", "test", tmp_path, checksums=sums).source == str(tmp_path / "MNIST" / "raw")


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("truncated", r"t10k-images-idx3-ubyte.gz: truncated IDX data"),
        ("bad_magic", r"t10k-images-idx3-ubyte.gz: not an IDX file: bad magic number"),
        ("bad_gzip", r"t10k-images-idx3-ubyte.gz is not a valid gzip file"),
        ("label_range", r"t10k-labels-idx1-ubyte.gz: label 10 at index 3 is out of range 0..9"),
        ("count", r"t10k-images-idx3-ubyte.gz has 7 images but .*t10k-labels-idx1-ubyte.gz has 6 labels"),
        ("dims", r"t10k-images-idx3-ubyte.gz: expected MNIST images \(unsigned byte, N x 28 x 28\), got uint8 7x28x27"),
        ("labels_2d", r"t10k-labels-idx1-ubyte.gz: expected MNIST labels"),
    ],
)
def test_malformed_mnist_files_raise_data_error_naming_the_file(tmp_path, case, match):
    d = tmp_path / "MNIST" / "raw"
    write_tiny_mnist(d, "test")
    img_path, lbl_path = d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz"
    images, labels, img, lbl = tiny_idx_split()
    if case == "truncated":
        img_path.write_bytes(gzip.compress(img[:-100]))
    elif case == "bad_magic":
        img_path.write_bytes(gzip.compress(b"\x00\x00\x08\x00" + img[4:]))
    elif case == "bad_gzip":
        img_path.write_bytes(gzip.compress(img)[:-20])
    elif case == "label_range":
        bad = labels.copy()
        bad[3] = 10
        lbl_path.write_bytes(gzip.compress(encode_idx(bad)))
    elif case == "count":
        lbl_path.write_bytes(gzip.compress(encode_idx(labels[:6])))
    elif case == "dims":
        img_path.write_bytes(gzip.compress(encode_idx(images[:, :, :27])))
    elif case == "labels_2d":
        lbl_path.write_bytes(gzip.compress(encode_idx(labels.reshape(7, 1))))
    with pytest.raises(DataError, match=match):
        load_dataset("mnist", "test", tmp_path, verify=False)


def test_verify_true_catches_a_changed_byte(tmp_path):
    sums = write_tiny_mnist(tmp_path, "test")
    _, labels, _, _ = tiny_idx_split()
    changed = labels.copy()
    changed[0] = 9
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(changed)))
    with pytest.raises(DataError, match=r"MNIST test labels: checksum mismatch for .*t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", "test", tmp_path, checksums=sums)


# --------------------------------------------------------------------------------------------
# Missing files and downloads (urlopen is always fake)
# --------------------------------------------------------------------------------------------


def test_missing_offline_never_touches_network(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    with pytest.raises(DataMissingError) as exc:
        load_dataset("mnist", "train", tmp_path)
    msg = str(exc.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert name in msg
    assert f"Put these files in {tmp_path / 'MNIST' / 'raw'}/" in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in msg
    assert "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db" in msg
    assert "EPFORGE_OFFLINE" in msg and "EPFORGE_DATA" in msg
    assert isolated == []


def test_missing_with_failing_network_lists_files_and_destination(tmp_path, isolated):
    with pytest.raises(DataMissingError) as exc:
        load_dataset("mnist", "test", tmp_path)
    msg = str(exc.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "network disabled in tests" in msg
    assert len(isolated) == 4 and all(timeout == _files.DOWNLOAD_TIMEOUT_S for _, timeout in isolated)
    assert isolated[0][0] == "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"
    leftovers = list(tmp_path.rglob("*")) if tmp_path.exists() else []
    assert not [p for p in leftovers if p.is_file()]


def test_only_missing_file_is_downloaded_and_written_atomically(tmp_path, monkeypatch):
    d = tmp_path / "MNIST" / "raw"
    sums = write_tiny_mnist(d, "test")
    payload = (d / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    ds = load_dataset("mnist", "test", tmp_path, checksums=sums)
    assert len(ds) == 7 and requested == ["https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in d.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_bad_download_never_lands_under_final_name(tmp_path, monkeypatch):
    d = tmp_path / "MNIST" / "raw"
    sums = write_tiny_mnist(d, "test")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(b"<html>503 Service Unavailable</html>")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(DataMissingError, match="Download failed") as exc:
        load_dataset("mnist", "test", tmp_path, checksums=sums)
    assert len(requested) == 2 and "checksum mismatch" in str(exc.value)  # both mirrors tried
    assert sorted(p.name for p in d.iterdir()) == ["t10k-images-idx3-ubyte.gz"]


def test_download_checks_published_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"not the real file"))
    with pytest.raises(DataMissingError, match="md5 .* of the download, expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load_dataset("mnist", "train", tmp_path)
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(RuntimeError), _files.atomic_output(target) as (_, f):
        f.write(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    _files.atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def test_deterministic_gzip_is_standard_gzip():
    data = os.urandom(1000) + bytes(5000)
    blob = _files.deterministic_gzip(data)
    assert gzip.decompress(blob) == data and blob == _files.deterministic_gzip(data)
    assert blob[4:8] == b"\0\0\0\0"  # mtime 0


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["cifar-10-batches-py", "CIFAR10/cifar-10-batches-py", "cifar10/cifar-10-batches-py"])
def test_cifar_extracted_dir_pixel_layout(tmp_path, sub):
    sums = write_cifar_dir(tmp_path / sub, cifar_files())
    train = load_dataset("cifar10", "train", tmp_path, checksums=sums)
    assert train.images.shape == (5 * N_PER_BATCH, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert train.labels.tolist() == sum((cifar_labels(b) for b in range(5)), [])
    assert train.classes == tuple(n.decode() for n in CIFAR_NAMES)
    # Image i of batch b: the row's byte at c*1024 + r*32 + k is pixel (c, r, k).
    for b, i, c, r, k in [(0, 0, 0, 0, 0), (2, 3, 1, 5, 7), (4, 5, 2, 31, 30)]:
        row = cifar_pixels(b)[i]
        assert train.images[b * N_PER_BATCH + i, c, r, k] == row[c * 1024 + r * 32 + k]
    test = load_dataset("cifar10", "test", tmp_path, checksums=sums)
    assert len(test) == N_PER_BATCH and test.labels.tolist() == cifar_labels(5)
    assert np.array_equal(test.images.reshape(N_PER_BATCH, -1), cifar_pixels(5))
    assert test.source == str(tmp_path / sub)


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_batches_rewritten_by_python3_are_accepted(tmp_path, protocol):
    sums = write_cifar_dir(tmp_path / "cifar-10-batches-py", cifar_files(lambda o: pickle.dumps(o, protocol=protocol)))
    ds = load_dataset("cifar10", "test", tmp_path, checksums=sums)
    assert np.array_equal(ds.images.reshape(N_PER_BATCH, -1), cifar_pixels(5))


def test_cifar_from_archive_is_extracted_atomically(tmp_path):
    files = cifar_files()
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_tar(
        archive, {f"cifar-10-batches-py/{n}": d for n, d in files.items()} | {"cifar-10-batches-py/readme.html": b"x"}
    )
    sums = {n: md5(d) for n, d in files.items()} | {"cifar-10-python.tar.gz": md5(archive.read_bytes())}
    ds = load_dataset("cifar10", "train", tmp_path, checksums=sums)
    assert len(ds) == 5 * N_PER_BATCH and ds.source == str(tmp_path / "cifar-10-batches-py")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    assert load_dataset("cifar10", "test", tmp_path, checksums=sums).labels.tolist() == cifar_labels(5)


def test_cifar_archive_checksum_checked_before_extraction(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_tar(archive, {f"cifar-10-batches-py/{n}": d for n, d in cifar_files().items()})
    with pytest.raises(DataError, match=r"CIFAR-10 archive: checksum mismatch for .*cifar-10-python.tar.gz: md5"):
        load_dataset("cifar10", "train", tmp_path)  # the real md5 does not match the tiny archive
    assert not (tmp_path / "cifar-10-batches-py").exists()


@pytest.mark.parametrize("evil", ["../escaped", "/tmp/absolute-escape", "cifar-10-batches-py/../../escaped"])
def test_cifar_archive_with_unsafe_member_is_refused(tmp_path, evil):
    root = tmp_path / "root"
    root.mkdir()
    members = {f"cifar-10-batches-py/{n}": d for n, d in cifar_files().items()} | {evil: b"pwned"}
    make_tar(root / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match=r"refusing to extract unsafe member path"):
        load_dataset("cifar10", "train", root, verify=False)
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]  # nothing extracted


def test_cifar_archive_with_symlink_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="refusing to extract link member"):
        load_dataset("cifar10", "train", tmp_path, verify=False)


def test_cifar_corrupted_byte_is_caught(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    sums = write_cifar_dir(d, cifar_files())
    blob = bytearray((d / "data_batch_3").read_bytes())
    blob[-100] ^= 0xFF  # a pixel byte: still unpicklable, only the checksum sees it
    (d / "data_batch_3").write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"CIFAR-10 data_batch_3: checksum mismatch for .*data_batch_3: md5"):
        load_dataset("cifar10", "train", tmp_path, checksums=sums)
    blob[5] ^= 0xFF  # break the pickle structure as well
    (d / "data_batch_3").write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"data_batch_3: not a valid CIFAR-10 batch"):
        load_dataset("cifar10", "train", tmp_path, verify=False)


class _Evil:
    def __reduce__(self):
        return (eval, ("1/0",))  # would raise ZeroDivisionError if it were ever called


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({b"data": cifar_pixels(0), b"labels": _Evil()}, r"forbidden global (__builtin__|builtins)\.eval"),
        ({b"data": cifar_pixels(0).astype(object), b"labels": [0] * 6}, "numpy.dtype"),
        ({b"data": cifar_pixels(0)[:, :100], b"labels": [0] * 6}, r"'data' must be a uint8 array N x 3072"),
        ({b"data": cifar_pixels(0), b"labels": [0] * 5}, "6 images but 5 labels"),
        ({b"data": cifar_pixels(0), b"labels": [0, 1, 2, 3, 4, 10]}, "label 10 at index 5 is out of range 0..9"),
        ({b"labels": [0] * 6}, "no 'data' entry"),
        ([1, 2, 3], "a list, expected a dict"),
    ],
)
def test_cifar_bad_batches_are_refused(tmp_path, payload, match):
    files = cifar_files()
    files["test_batch"] = pickle.dumps(payload, protocol=2)
    write_cifar_dir(tmp_path / "cifar-10-batches-py", files)
    with pytest.raises(DataError, match=rf"test_batch: .*{match}"):
        load_dataset("cifar10", "test", tmp_path, verify=False)


def test_cifar_missing_message(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    with pytest.raises(DataMissingError) as exc:
        load_dataset("cifar10", "test", tmp_path)
    msg = str(exc.value)
    assert f"in {tmp_path}/" in msg and f"{tmp_path / 'cifar-10-batches-py'}/" in msg
    assert "cifar-10-python.tar.gz" in msg and "c58f30108f718f92721af3b95e74349a" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert "test_batch" in msg and "batches.meta" in msg and isolated == []


def test_cifar_download_then_extract(tmp_path, monkeypatch):
    files = cifar_files()
    src = tmp_path / "src.tar.gz"
    make_tar(src, {f"cifar-10-batches-py/{n}": d for n, d in files.items()})
    sums = {n: md5(d) for n, d in files.items()} | {"cifar-10-python.tar.gz": md5(src.read_bytes())}
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(src.read_bytes()))
    root = tmp_path / "root"
    ds = load_dataset("cifar10", "test", root, checksums=sums)
    assert len(ds) == N_PER_BATCH and (root / "cifar-10-python.tar.gz").read_bytes() == src.read_bytes()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_info_and_verify(tmp_path, capsys):
    write_tiny_mnist(tmp_path / "MNIST", "test")
    assert cli_main(["info", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist         test        7 samples" in out and str(tmp_path / "MNIST") in out
    assert "mnist-subset  train    2000 samples" in out
    # The tiny files do not match the real MNIST checksums: verify reports BAD and fails.
    assert cli_main(["verify", "--data-dir", str(tmp_path), "mnist-subset", "mnist"]) == 1
    out = capsys.readouterr().out
    assert "OK      mnist-subset test: 500 samples" in out
    assert "BAD     mnist test" in out and "MISSING mnist train" in out
    assert cli_main(["verify", "nope"]) == 2


def test_cli_fetch_offline_fails_cleanly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    assert cli_main(["fetch", "mnist", "--data-dir", str(tmp_path)]) == 2  # expected error: exit 2
    assert "Put these files in" in capsys.readouterr().err


def test_cifar_damaged_archive(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(gzip.compress(b"not a tar file at all" * 100)[:-30])
    with pytest.raises(DataError, match=r"cannot extract .*cifar-10-python.tar.gz into"):
        load_dataset("cifar10", "test", tmp_path, verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]
