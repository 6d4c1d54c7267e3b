"""Export of a trained ternary/binary net for the hardware flow, its strict loader, and the float engine.

An export is a directory written by :func:`golden.export.write_array_dir` (atomic, sha256 per
array over its raw little-endian C-order bytes)::

    manifest.json   format "epforge-ternary-export/1", kind, delta, alpha_shift, layers, ...
    t0.npy t1.npy   int8 stored values T_l, shape (n_{l+1}, n_l) (row = postsynaptic neuron),
                    in {−1, 0, +1} (binary: {−1, +1})
    b0.npy b1.npy   float32 biases of layers 1 … L (real; the hardware flow quantises them)

The effective weight is ``W_l = T_l · 2^-alpha_shift[l]``: the integer core stores T_l with
``weight_frac = alpha_shift[l]``. :func:`load_ternary_export` refuses missing/extra arrays,
shapes that do not fit ``layers``, values outside the kind's set and changed bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..export import ExportError, read_array_dir, write_array_dir

EXPORT_FORMAT = "epforge-ternary-export/1"


@dataclass
class TernaryExport:
    """A verified export: ``t[l]`` int8 and ``b[l]`` float32 arrays, and the manifest's numbers."""

    layers: tuple[int, ...]
    kind: str
    delta: float
    alpha_shift: tuple[int, ...]
    t: list[np.ndarray]
    b: list[np.ndarray]
    T1: int
    manifest: dict[str, Any]


def expected_shapes(layers: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for l in range(len(layers) - 1):
        shapes[f"t{l}"] = (layers[l + 1], layers[l])
        shapes[f"b{l}"] = (layers[l + 1],)
    return shapes


def write_ternary_export(out: str | os.PathLike, net, cfg, *, source: dict[str, Any] | None = None,
                         force: bool = True) -> Path:
    """Write the effective net of a :class:`TernaryEPNet` trained with :class:`TernaryConfig` ``cfg``."""
    ts = [t.detach().cpu().numpy().astype(np.int8) for t in net.stored_values()]
    arrays: dict[str, np.ndarray] = {}
    for l, t in enumerate(ts):
        arrays[f"t{l}"] = t
        arrays[f"b{l}"] = getattr(net, f"b{l}").detach().cpu().numpy().astype(np.float32)
    manifest = {
        "format": EXPORT_FORMAT,
        "kind": net.kind,
        "delta": net.delta,
        "alpha_shift": list(net.alpha_shift),
        "weight_frac": list(net.alpha_shift),
        "effective_weight": "t{l} * 2**-alpha_shift[l]",
        "layers": list(net.layers),
        "activation": "hard_sigmoid",
        "loss": "mse",
        "nudge": "inside the activation: s_L <- clip(W s_{L-1} + b + beta (y - s_L), 0, 1)",
        "zero_fraction": [float((t == 0).mean()) for t in ts],
        "preprocessing": {"dataset": cfg.dataset, "input": "pixel/255"},
        "schedule": {"T1": cfg.T1, "T2": cfg.T2, "beta": cfg.beta, "estimator": "symmetric"},
        "training_errors": {"p": cfg.train_error_rate, "mode": cfg.train_error_mode},
        "source": source or {},
    }
    return write_array_dir(out, arrays, manifest, force=force)


def load_ternary_export(path: str | os.PathLike) -> TernaryExport:
    """Read and verify an export (see the module docstring).

    Raises
    ------
    ExportError
        When the manifest is missing or malformed, or any array is missing, extra, of the wrong
        shape, dtype or values, or its bytes do not hash to the recorded sha256.
    """
    from ..export import _peek_manifest
    from .ternarize import check_alpha_shift, check_delta, check_kind

    path = Path(path)
    mpath, manifest = _peek_manifest(path, EXPORT_FORMAT)
    try:
        layers = tuple(int(n) for n in manifest["layers"])
        kind = check_kind(manifest["kind"])
        delta = check_delta(manifest["delta"])
        shifts = check_alpha_shift(tuple(manifest["alpha_shift"]), len(layers) - 1)
        T1 = int(manifest["schedule"]["T1"])
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{mpath}: invalid ternary export description: {e}") from None
    arrays, manifest = read_array_dir(path, EXPORT_FORMAT, expected_shapes(layers))
    allowed = {-1, 0, 1} if kind == "ternary" else {-1, 1}
    ts, bs = [], []
    for l in range(len(layers) - 1):
        t, b = arrays[f"t{l}"], arrays[f"b{l}"]
        if t.dtype != np.int8 or b.dtype != np.float32:
            raise ExportError(f"{mpath}: t{l} must be int8 and b{l} float32, not {t.dtype} and {b.dtype}")
        bad = set(np.unique(t).tolist()) - allowed
        if bad:
            raise ExportError(f"{mpath}: t{l} holds {sorted(bad)}, not allowed for kind {kind!r} ({sorted(allowed)})")
        ts.append(t)
        bs.append(b)
    return TernaryExport(layers, kind, delta, shifts, ts, bs, T1, manifest)


def float_predict(
    export: TernaryExport,
    p: float,
    mode: str,
    kind: str,
    seed: int,
    images: np.ndarray,
    T: int | None = None,
    batch_size: int = 500,
) -> np.ndarray:
    """The float engine: predictions of ``export`` on uint8 ``images`` (N, 1, 28, 28) or (N, 784)
    with read errors of rate ``p`` in ``mode``, drawn from a torch generator seeded with ``seed``
    (static: the net is programmed once for this call). Inputs are pixel/255, T defaults to T1.

    The signature ``(export, p, mode, kind, seed, images) → predictions`` is the engine interface
    of ``bench/ternary_sweep.py``.
    """
    import torch

    from .errors import StoredWeights
    from .network import predict

    if kind != export.kind:
        raise ValueError(f"kind {kind!r} does not match the export's kind {export.kind!r}")
    gen = torch.Generator().manual_seed(int(seed))
    T = T or export.T1
    ts = [torch.from_numpy(t.astype(np.float32)) for t in export.t]
    stored = StoredWeights(ts, export.alpha_shift, export.kind, p, mode, gen, block=T)
    x = torch.from_numpy(np.asarray(images).reshape(len(images), -1).astype(np.float32) / np.float32(255.0))
    biases = [torch.from_numpy(b) for b in export.b]
    return predict(stored, biases, x, T, batch_size).numpy()
