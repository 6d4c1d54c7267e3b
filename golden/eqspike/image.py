"""Fixed-point weight images of the EqSpike core: quantisation of a float EqSpike export, writing and loading.

An image directory is written by :func:`golden.export.write_array_dir` (the helpers the EP core's
images use, not a copy): ``manifest.json`` with the format, the full :class:`spec.eqspike.EqSpikeSpec`,
its digest, per-array sha256 and the whole manifest's own sha256, one integer ``.npy`` per
``w{l}``/``b{l}`` array, and ``spec.toml``. :func:`load_image` refuses an image whose spec digest or
arrays do not agree (shapes, integer ranges).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from golden.ep_core.image import choose_weight_frac
from golden.export import ExportError, read_spec_image, write_spec_image
from spec.eqspike import EqSpikeSpec

IMAGE_FORMAT = "epforge-eqspike-image/1"


def write_image(out: str | os.PathLike, spec: EqSpikeSpec, weights: dict[str, np.ndarray],
                source: dict[str, Any] | None = None, *, force: bool = True, option: str = "--out") -> Path:
    from .twin import EqSpikeTwin

    twin = EqSpikeTwin(spec, weights)  # validates names, shapes and ranges
    return write_spec_image(out, IMAGE_FORMAT, spec, twin.weights, source, force=force, option=option)


def load_image(path: str | os.PathLike) -> tuple[EqSpikeSpec, dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify an image: ``(spec, weights, manifest)``."""
    from .twin import EqSpikeTwin

    spec, twin, _, manifest = read_spec_image(path, IMAGE_FORMAT, EqSpikeSpec, "EqSpike", EqSpikeTwin)
    return spec, twin.weights, manifest


def quantize_export(export_dir: str | os.PathLike, base: EqSpikeSpec, auto_frac: bool = True
                    ) -> tuple[EqSpikeSpec, dict[str, np.ndarray], dict[str, Any]]:
    """Quantise a float EqSpike export (``python -m golden.eqspike export``) for the core.

    The export's EqSpike constants (ε, λ, trace stages, encoder, residues, update, T1, T2, estimator)
    replace the base spec's, β must be a power of two. The float model's input spikes have rate
    pixel/255 and the core's pixel/M_in, the same for 8-bit inputs, so weights need no input scaling.
    With ``auto_frac`` each connection gets the finest weight format that holds its largest weight
    (biases likewise), capped (training specs) so the update shifts stay ≥ 0; otherwise the base
    formats are kept and out-of-range values saturate. Rounding is to nearest.
    """
    import math

    from golden.export import load_export

    net, arrays, manifest = load_export(export_dir)
    eq = manifest.get("eqspike")
    if not isinstance(eq, dict):
        raise ExportError(f"{export_dir} is not an EqSpike export (its manifest has no 'eqspike' section): "
                          "use python -m golden.eqspike export")
    problems = []
    if tuple(net.layers) != tuple(base.layers):
        problems.append(f"layers={list(net.layers)} but the spec has {list(base.layers)}")
    if manifest.get("preprocessing", {}).get("input") != "pixel/255":
        problems.append(f"input preprocessing {manifest.get('preprocessing', {}).get('input')!r} (need 'pixel/255')")
    if base.input_bits != 8:
        problems.append(f"input_bits={base.input_bits} (the export's inputs are 8-bit pixels)")
    beta = float(eq.get("beta", 0.5))
    bs = -math.log2(beta) if beta > 0 else float("nan")
    if not (math.isfinite(bs) and bs == int(bs) and bs >= 0):
        problems.append(f"beta={beta} is not a power of two 2^-k (k >= 0)")
    if eq.get("estimator") not in ("one-sided", "symmetric"):
        problems.append(f"estimator={eq.get('estimator')!r} (the core implements one-sided and symmetric)")
    if problems:
        raise ExportError(f"{export_dir} cannot run on the EqSpike core: " + "; ".join(problems))
    d = {**base.to_dict(), "eps_shift": eq["eps_shift"], "trace_shift": eq["trace_shift"],
         "trace_stages": eq["trace_stages"], "encoder": eq["encoder"], "encoder_phase": eq["encoder_phase"],
         "update": eq["update"], "T1": eq.get("T_eval") or eq["T1"], "T2": eq["T2"], "beta_shift": int(bs),
         "estimator": eq["estimator"]}
    if eq["update"] == "ternary":
        d["update_theta"] = int(round(float(eq["theta"]) * (1 << base.trace_frac)))
    f = {k: v.astype(np.float64) for k, v in arrays.items()}
    n = base.n_layers
    if auto_frac:
        def cap(l, bits_frac):
            if not base.training or eq["update"] != "spike":
                return bits_frac
            return min(bits_frac, base.trace_frac + base.lr_shift[l] + int(eq["estimator"] == "symmetric") - int(bs))
        d["weight_frac"] = [cap(l, choose_weight_frac(f[f"w{l}"], base.weight_bits[l], 24)) for l in range(n)]
        d["bias_frac"] = [cap(l, choose_weight_frac(f[f"b{l}"], base.bias_bits, 24)) for l in range(n)]
    try:
        spec = EqSpikeSpec.from_dict(d)
    except ValueError as e:
        raise ExportError(f"{export_dir}: the quantised spec is invalid: {e}") from None
    ints, clipped = {}, {}
    for name, a in f.items():
        frac = spec.weight_frac[int(name[1:])] if name.startswith("w") else spec.bias_frac[int(name[1:])]
        lo, hi = spec.element_range(name)
        q = np.rint(a * 2.0 ** frac)
        clipped[name] = int(((q < lo) | (q > hi)).sum())
        ints[name] = np.clip(q, lo, hi).astype(np.int64)
    info = {"export": str(export_dir), "export_source": manifest.get("source", {}), "saturated": clipped,
            "eqspike": eq}
    return spec, ints, info


def quantize_export_ternary(export_dir: str | os.PathLike, base: EqSpikeSpec, delta_factor: float | None = None
                            ) -> tuple[EqSpikeSpec, dict[str, np.ndarray], dict[str, Any]]:
    """A float EqSpike export as a ternary image: :func:`quantize_export` for the constants and biases,
    then the weights by :func:`golden.eqspike.ternary.ternarize_arrays` (weight_frac[l] = a_l; ``delta_factor``
    default :data:`golden.eqspike.ternary.DELTA_FACTOR`)."""
    from golden.export import load_export

    from .ternary import DELTA_FACTOR, ternarize_arrays

    delta_factor = DELTA_FACTOR if delta_factor is None else delta_factor
    if base.weight_kind != "ternary":
        raise ValueError(f"the base spec must have weight_kind='ternary', not {base.weight_kind!r}")
    fixed_base = EqSpikeSpec.from_dict({**base.to_dict(), "weight_kind": "fixed", "fault_injection": False,
                                        "weight_bits": [16] * base.n_layers, "weight_frac": [14] * base.n_layers,
                                        "latent_bits": None, "latent_frac": None, "latent_threshold": None})
    fspec, ints, info = quantize_export(export_dir, fixed_base)
    _, arrays, _ = load_export(export_dir)
    t, shifts, tinfo = ternarize_arrays(arrays, base.n_layers, delta_factor)
    d = {**fspec.to_dict(), "weight_kind": "ternary", "fault_injection": base.fault_injection,
         "weight_bits": [2] * base.n_layers, "weight_frac": shifts, "latent_bits": base.latent_bits,
         "latent_frac": base.latent_frac, "latent_threshold": base.latent_threshold}
    try:
        spec = EqSpikeSpec.from_dict(d)
    except ValueError as e:
        raise ExportError(f"{export_dir}: the ternary spec is invalid: {e}") from None
    out = {**t, **{f"b{l}": np.clip(np.rint(np.asarray(arrays[f"b{l}"], np.float64) * 2.0 ** spec.bias_frac[l]),
                                    *spec.element_range(f"b{l}")).astype(np.int64) for l in range(base.n_layers)}}
    for l in range(base.n_layers if spec.ternary_training else 0):  # latents start at t·2Δ_l (as the EP core's)
        out[f"v{l}"] = t[f"w{l}"] * 2 * spec.latent_threshold[l]
    info = {**info, "ternary": {"rule": f"delta = {delta_factor}*mean|W|, alpha = 2^-round(-log2 mean|W_kept|)",
                                **tinfo}}
    return spec, out, info
