"""The IDX file format (MNIST, Fashion-MNIST): strict decoding and encoding.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (TT: element type code, NN: number of
dimensions), NN big-endian uint32 dimension sizes, then the elements in row-major order,
big-endian.
"""

from __future__ import annotations

import struct
from math import prod

import numpy as np

from ._core import DataError

#: IDX element type codes and their (big-endian) numpy dtypes.
IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}


def decode_idx(data: bytes, source: str) -> np.ndarray:
    """Decode the (uncompressed) bytes of an IDX file.

    Parameters
    ----------
    data : bytes
        The whole file content.
    source : str
        File name used in error messages.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order with the dimensions given by the header.

    Raises
    ------
    DataError
        Bad magic number, unknown element type, truncated header or data, trailing bytes.
    """
    if len(data) < 4:
        raise DataError(f"{source}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{source}: not an IDX file: bad magic number 0x{magic:08x} (expected 0x0000TTNN with type "
            f"TT in {{{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}}} and NN >= 1 dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    count = prod(dims)
    need = count * dtype.itemsize
    have = len(data) - header
    if have < need:
        raise DataError(
            f"{source}: truncated IDX data: header says {'x'.join(map(str, dims))} {dtype.name} elements "
            f"({need} bytes), file has {have} bytes after the header"
        )
    if have > need:
        raise DataError(
            f"{source}: malformed IDX file: {have - need} unexpected bytes after the "
            f"{'x'.join(map(str, dims))} elements the header announces"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    # A copy: frombuffer over bytes is read-only, and big-endian multi-byte data becomes native.
    return arr.astype(dtype.newbyteorder("="), copy=True)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as an IDX file (uncompressed bytes).

    Parameters
    ----------
    array : numpy.ndarray
        At least one dimension, each smaller than 2**32, of dtype uint8, int8, int16, int32,
        float32 or float64.

    Returns
    -------
    bytes
        Magic number, dimensions and big-endian data.
    """
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=")
    if key not in _CODES:
        raise ValueError(
            f"array dtype must be one of {sorted({np.dtype(v).name for v in IDX_DTYPES.values()})}; got {arr.dtype}"
        )
    if arr.ndim == 0 or arr.ndim > 255 or any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"array shape {arr.shape} cannot be stored in an IDX file")
    code = _CODES[key]
    header = bytes((0, 0, code, arr.ndim)) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
