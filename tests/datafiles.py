"""Writers of small data files in the exact on-disk formats (shared by the data and training tests)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def py2_pickle(obj) -> bytes:
    """Serialise like Python 2's ``cPickle.dump(obj, f, 2)``, as the CIFAR-10 batches were.

    Python 2 ``str`` (here: bytes) becomes SHORT_BINSTRING/BINSTRING, and a numpy array is
    ``numpy.core.multiarray._reconstruct`` + BUILD with the raw data, dtype args as ints.
    """
    out = bytearray(b"\x80\x02")

    def put(o):
        if o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            if 0 <= o < 256:
                out.extend(b"K" + bytes([o]))
            elif 0 <= o < 65536:
                out.extend(b"M" + struct.pack("<H", o))
            else:
                out.extend(b"J" + struct.pack("<i", o))
        elif isinstance(o, bytes):
            out.extend(b"U" + bytes([len(o)]) if len(o) < 256 else b"T" + struct.pack("<I", len(o)))
            out.extend(o)
        elif isinstance(o, tuple):
            out.extend(b"(")
            for x in o:
                put(x)
            out.extend(b"t")
        elif isinstance(o, list):
            out.extend(b"](")
            for x in o:
                put(x)
            out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                put(k)
                put(v)
            out.extend(b"u")
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n")
            put((0,))
            put(b"b")
            out.extend(b"tR(")
            put(1)
            put(tuple(o.shape))
            out.extend(b"cnumpy\ndtype\n")
            put((b"u1", 0, 1))
            out.extend(b"R")
            put((3, b"|", None, None, None, -1, -1, 0))
            out.extend(b"b")
            put(False)
            put(np.ascontiguousarray(o).tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    put(obj)
    out.extend(b".")
    return bytes(out)


CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
N_PER_BATCH = 6


def cifar_pixels(batch: int) -> np.ndarray:
    """N x 3072 rows whose value encodes (batch, image, channel, row, col) predictably."""
    i, c, r, k = np.meshgrid(np.arange(N_PER_BATCH), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return ((batch * 37 + i * 11 + c * 101 + r * 3 + k) % 256).astype(np.uint8).reshape(N_PER_BATCH, 3072)


def cifar_labels(batch: int) -> list[int]:
    return [(batch + i) % 10 for i in range(N_PER_BATCH)]


def cifar_files(dumps=py2_pickle) -> dict[str, bytes]:
    files = {}
    for b, name in enumerate([*CIFAR_TRAIN, "test_batch"]):
        files[name] = dumps(
            {
                b"batch_label": f"batch {b}".encode(),
                b"labels": cifar_labels(b),
                b"data": cifar_pixels(b),
                b"filenames": [f"img_{b}_{i}.png".encode() for i in range(N_PER_BATCH)],
            }
        )
    files["batches.meta"] = dumps({b"num_cases_per_batch": N_PER_BATCH, b"label_names": CIFAR_NAMES, b"num_vis": 3072})
    return files


def write_cifar_dir(directory: Path, files: dict[str, bytes]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return {name: md5(data) for name, data in files.items()}
