"""Fixed-point weight images of the EP core: quantisation from a float export, writing and loading.

An image directory holds ``manifest.json`` (format, the full :class:`EPCoreSpec`, its digest,
per-array sha256, provenance), one integer ``.npy`` per weight/bias array, ``memory.hex`` (the
core's load-port word image in address order, one hex word per line, for ``$readmemh``) and
``spec.toml``. :func:`load_image` refuses an image whose spec digest, arrays or memory words do
not agree, and :func:`check_spec` refuses an image built for different numbers than a given spec.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from golden.export import ExportError, read_spec_image, write_spec_image
from spec.ep_core import EPCoreSpec

IMAGE_FORMAT = "epforge-ep-core-image/1"


def memory_hex(spec: EPCoreSpec, words: list[int]) -> bytes:
    digits = -(-spec.lanes * spec.word_elem_bits // 4)
    return "".join(f"{w:0{digits}x}\n" for w in words).encode()


def write_image(out: str | os.PathLike, spec: EPCoreSpec, weights: dict[str, np.ndarray],
                source: dict[str, Any] | None = None, *, force: bool = True, option: str = "--out") -> Path:
    """Write a verified image directory atomically (:func:`golden.export.write_spec_image`; ``force``
    replaces a previous image, never a foreign directory)."""
    from .twin import EPCoreTwin

    twin = EPCoreTwin(spec, weights)  # validates shapes and ranges
    memory = {"file": "memory.hex", "words": spec.memory_words, "word_bits": spec.lanes * spec.word_elem_bits}
    return write_spec_image(out, IMAGE_FORMAT, spec, twin.weights, source, manifest={"memory": memory},
                            extra_files={"memory.hex": memory_hex(spec, twin.memory_words())},
                            force=force, option=option)


def load_image(path: str | os.PathLike) -> tuple[EPCoreSpec, dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify an image: returns ``(spec, weights, manifest)``."""
    from .twin import EPCoreTwin

    def make_twin(spec, arrays):
        if set(arrays) != set(spec.weight_shapes()):
            raise ValueError(f"arrays {sorted(arrays)} do not match the spec's {sorted(spec.weight_shapes())}")
        return EPCoreTwin(spec, arrays)

    path = Path(path)
    spec, twin, _, manifest = read_spec_image(path, IMAGE_FORMAT, EPCoreSpec, "EP core", make_twin)
    try:
        mem = path / str(manifest["memory"]["file"])
    except (KeyError, TypeError):
        raise ExportError(f"{path}/manifest.json: no memory file entry") from None
    if not mem.is_file() or mem.read_bytes() != memory_hex(spec, twin.memory_words()):
        raise ExportError(f"{path}: memory.hex does not match the arrays")
    return spec, twin.weights, manifest


def check_spec(manifest: dict[str, Any], spec: EPCoreSpec, where: str = "image") -> None:
    """Refuse an image whose numbers are not exactly ``spec``'s."""
    if manifest.get("spec_digest") != spec.digest():
        theirs = EPCoreSpec.from_dict(manifest["spec"]).to_dict()
        diff = sorted(k for k, v in spec.to_dict().items() if theirs.get(k) != v)
        raise ExportError(f"the {where} was built for a different EP core spec (digest "
                          f"{manifest.get('spec_digest', '?')[:12]}…, this spec {spec.digest()[:12]}…); "
                          f"fields that differ: {diff}. The image's own spec is saved beside it as spec.toml")


def choose_weight_frac(w: np.ndarray, bits: int, max_frac: int = 24) -> int:
    """Finest fractional width whose range holds max|w| (no saturation)."""
    m = float(np.abs(w).max(initial=0.0))
    if m == 0.0:
        return max_frac
    return int(min(max_frac, math.floor(math.log2(((1 << (bits - 1)) - 1) / m))))


def quantize_export(export_dir: str | os.PathLike, base: EPCoreSpec, auto_frac: bool = True
                    ) -> tuple[EPCoreSpec, dict[str, np.ndarray], dict[str, Any]]:
    """Quantise a float export (hard-sigmoid MLP, MSE read-out, symmetric weights) for the core.

    The float model sees ``pixel/255``; the core sees ``pixel/2^input_bits``, so W0 is scaled by
    2^input_bits/255. With ``auto_frac`` each connection gets the finest weight format that holds
    its largest weight (biases likewise, at most the layer's accumulator precision); otherwise the
    base spec's formats are kept and out-of-range values saturate. Rounding is to nearest.
    Returns ``(spec, integer weights, info)``.
    """
    from golden.export import load_export

    net, arrays, manifest = load_export(export_dir)
    problems = []
    if net.kind != "mlp":
        problems.append(f"kind={net.kind!r} (need 'mlp')")
    if net.activation != "hard_sigmoid":
        problems.append(f"activation={net.activation!r} (the core implements 'hard_sigmoid')")
    if net.loss != "mse":
        problems.append(f"loss={net.loss!r} (need 'mse')")
    if net.connections != "symmetric":
        problems.append(f"connections={net.connections!r} (need 'symmetric')")
    if tuple(net.layers) != tuple(base.layers):
        problems.append(f"layers={tuple(net.layers)} but the spec has {tuple(base.layers)}")
    pre = manifest.get("preprocessing", {})
    if pre.get("input") != "pixel/255":
        problems.append(f"input preprocessing {pre.get('input')!r} (need 'pixel/255')")
    if problems:
        raise ExportError(f"{export_dir} cannot run on the EP core: " + "; ".join(problems))
    f = {k: v.astype(np.float64) for k, v in arrays.items()}
    f["w0"] = f["w0"] * ((1 << base.input_bits) / 255.0)
    n = base.n_layers
    if auto_frac:
        wf = tuple(choose_weight_frac(f[f"w{l}"], base.weight_bits[l]) for l in range(n))
        spec = EPCoreSpec.from_dict({**base.to_dict(), "weight_frac": list(wf), "bias_frac": None})
        bf = []
        for l in range(n):
            cap = spec.acc_frac(l + 1)
            if spec.training:  # keep the bias update shift exact
                cap = min(cap, 2 * spec.state_bits - spec.beta_shift_max)
            bf.append(min(cap, choose_weight_frac(f[f"b{l}"], base.bias_bits)))
        spec = EPCoreSpec.from_dict({**spec.to_dict(), "bias_frac": bf})
    else:
        spec = base
    ints, clipped = {}, {}
    for name, a in f.items():
        frac = spec.weight_frac[int(name[1:])] if name.startswith("w") else spec.bias_frac[int(name[1:])]
        lo, hi = spec.element_range(name)
        q = np.rint(a * 2.0 ** frac)
        clipped[name] = int(((q < lo) | (q > hi)).sum())
        ints[name] = np.clip(q, lo, hi).astype(np.int64)
    info = {"export": str(export_dir), "export_source": manifest.get("source", {}), "saturated": clipped,
            "schedule": manifest.get("schedule", {})}
    return spec, ints, info


def quantize_ternary_export(export_dir: str | os.PathLike, base: EPCoreSpec
                            ) -> tuple[EPCoreSpec, dict[str, np.ndarray], dict[str, Any]]:
    """A ternary core's image from a :mod:`golden.ternary` export (ternary or binary weights).

    The stored values ``t{l}`` become the weights of a ``weight_kind="ternary"`` spec with
    ``weight_frac = alpha_shift`` (W_l = T_l·2^-alpha_shift[l] exactly); biases are rounded to the
    finest format that holds them (at most the layer's accumulator precision). The export's
    model sees ``pixel/255`` and the core ``pixel/2^input_bits``; a ternary W0 cannot absorb that
    factor (255/256 for 8-bit inputs), so layer 1's input drive is 0.4 % weaker on the core —
    the twin's accuracy of the image is the number to quote.
    """
    from golden.ternary.export import load_ternary_export

    return ternary_image(load_ternary_export(export_dir), base, where=str(export_dir))


def ternary_image(exp, base: EPCoreSpec, where: str = "export", latent: list[np.ndarray] | None = None
                  ) -> tuple[EPCoreSpec, dict[str, np.ndarray], dict[str, Any]]:
    """:func:`quantize_ternary_export` of an already loaded :class:`golden.ternary.export.TernaryExport`.

    With ``base.training`` the image is for a ternary core that trains on chip (latent weights
    ``v{l}`` beside the cells, ``base``'s latent formats and β range): ``latent`` gives the float
    latent weights (a :class:`golden.ternary.network.TernaryEPNet`'s ``w{l}``, in units of α_l),
    rounded to ``latent_frac`` and saturated; without them each latent weight starts at
    ``t·2Δ_l`` (twice the threshold, on the side of its ternary value). The cells are then the
    latent weights' ternary values (:meth:`EPCoreSpec.ternarize_latent`), which may differ from the
    export's ``t`` where rounding moved a latent weight across ±Δ (counted in ``info``).
    """
    train = base.training
    if train and exp.kind != "ternary":
        raise ExportError(f"{where}: on-chip training needs a ternary export (binary latent weights are not "
                          f"supported by the core), not kind={exp.kind!r}")
    if tuple(exp.layers) != tuple(base.layers):
        raise ExportError(f"{where}: layers={tuple(exp.layers)} but the spec has {tuple(base.layers)}")
    if exp.manifest.get("preprocessing", {}).get("input") != "pixel/255":
        raise ExportError(f"{where}: input preprocessing must be 'pixel/255'")
    n = base.n_layers
    d = {**base.to_dict(), "weight_kind": "ternary", "weight_bits": [2] * n, "weight_frac": list(exp.alpha_shift),
         "bias_frac": None, "beta_shift": 0, "beta_shift_max": 0}
    # keep the β registers within what the output format holds exactly (an inference core never nudges)
    bmax = min(base.beta_shift_max, EPCoreSpec.from_dict(d).beta_shift_room)
    spec = EPCoreSpec.from_dict({**d, "beta_shift_max": bmax, "beta_shift": min(base.beta_shift, bmax)})
    # biases: the finest format that holds them, at most the layer's accumulator precision (and, in a
    # training core, fine enough for an exact bias update shift)
    bf = [min(spec.acc_frac(l + 1), choose_weight_frac(exp.b[l].astype(np.float64), spec.bias_bits),
              *([2 * spec.state_bits - bmax] if train else [])) for l in range(n)]
    spec = EPCoreSpec.from_dict({**spec.to_dict(), "bias_frac": bf})
    ints, clipped, moved = {}, {}, {}
    for l in range(n):
        if train:
            lo, hi = spec.element_range(f"v{l}")
            if latent is not None:
                q = np.rint(np.asarray(latent[l], np.float64) * 2.0 ** spec.latent_frac[l])
            else:
                q = exp.t[l].astype(np.float64) * 2 * spec.latent_threshold[l]
            clipped[f"v{l}"] = int(((q < lo) | (q > hi)).sum())
            ints[f"v{l}"] = np.clip(q, lo, hi).astype(np.int64)
            ints[f"w{l}"] = spec.ternarize_latent(l, ints[f"v{l}"]).astype(np.int64)
            moved[f"w{l}"] = int((ints[f"w{l}"] != exp.t[l]).sum())
        else:
            ints[f"w{l}"] = exp.t[l].astype(np.int64)
        lo, hi = spec.element_range(f"b{l}")
        q = np.rint(exp.b[l].astype(np.float64) * 2.0 ** spec.bias_frac[l])
        clipped[f"b{l}"] = int(((q < lo) | (q > hi)).sum())
        ints[f"b{l}"] = np.clip(q, lo, hi).astype(np.int64)
    info = {"export": str(where), "kind": exp.kind, "delta": exp.delta, "alpha_shift": list(exp.alpha_shift),
            "export_source": exp.manifest.get("source", {}), "saturated": clipped,
            "schedule": exp.manifest.get("schedule", {})}
    if train:
        info.update({"latent": "trained latent weights" if latent is not None else "t * 2 * latent_threshold",
                     "ternary_values_moved_by_rounding": moved})
    return spec, ints, info


def is_ternary_export(export_dir: str | os.PathLike) -> bool:
    import json

    try:
        return json.loads((Path(export_dir) / "manifest.json").read_text()).get("format", "").startswith(
            "epforge-ternary-export/")
    except (OSError, ValueError):
        return False
