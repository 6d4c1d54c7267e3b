"""Export of trained float weights for the hardware flow, and its strict loader.

An export is a directory::

    manifest.json   format, network spec, input preprocessing, schedule, per-array shape/dtype/sha256
    w0.npy b0.npy … one little-endian C-order .npy per parameter

The sha256 is taken over the array's raw bytes (C order, little-endian), so it identifies the
numbers, not the file. :func:`load_export` refuses a manifest that does not match the data:
missing or extra arrays, wrong shapes or dtypes for the declared network, or changed bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

EXPORT_FORMAT = "epforge-export/1"


class ExportError(ValueError):
    """An export directory is malformed or does not match its manifest."""


def array_sha256(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def expected_shapes(spec) -> dict[str, tuple[int, ...]]:
    """Parameter name → shape for a :class:`golden.ep.NetSpec` (see :meth:`NetSpec.parameter_shapes`)."""
    return spec.parameter_shapes()


MANIFEST_DIGEST_KEY = "manifest_sha256"


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no spaces), without its own digest field.

    It covers every field — network, preprocessing, schedule, formats, alpha_shift, the per-array
    sha256 table and the extra files' sha256s — so an edited field is refused like an edited array."""
    body = {k: v for k, v in manifest.items() if k != MANIFEST_DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def output_kind_of(fmt: str) -> str:
    """The output-directory kind of a manifest format (``epforge-export/1`` → ``epforge-export``)."""
    return fmt.split("/")[0]


def _legacy_manifest(fmt: str):
    def is_ours(path: Path) -> bool:
        try:
            return json.loads((path / "manifest.json").read_text()).get("format") == fmt
        except (OSError, ValueError, AttributeError):
            return False
    return is_ours


def check_array_out(out: str | os.PathLike, fmt: str, *, force: bool = False, option: str = "--out") -> None:
    """Refuse an ``out`` that :func:`write_array_dir` would refuse, before any work is done."""
    from .fileio import check_output_dir

    check_output_dir(out, output_kind_of(fmt), force=force, option=option, legacy=_legacy_manifest(fmt))


def write_array_dir(out: str | os.PathLike, arrays: dict[str, np.ndarray], manifest: dict[str, Any],
                    extra_files: dict[str, bytes] | None = None, *, force: bool = True,
                    option: str = "--out") -> Path:
    """Write ``manifest.json`` (+ an ``arrays`` table with sha256s, the extra files' sha256s and the
    manifest's own digest) and one .npy per array, atomically.

    The directory is built under a temporary name and put in place by
    :class:`golden.fileio.OutputDir`: ``out`` must be missing, empty or a previous output of the same
    format (replaced only with ``force``; the CLIs pass their ``--force``), never a foreign directory.
    Non-finite values are refused (they would make the hardware flow meaningless).
    """
    from .fileio import OutputDir

    fmt = manifest.get("format", "epforge-arrays/1")
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int((~np.isfinite(a)).sum())
            raise ExportError(f"array {name}: {bad} of {a.size} values are not finite (NaN or inf); "
                              "nothing was written")
    with OutputDir(out, output_kind_of(fmt), force=force, option=option, legacy=_legacy_manifest(fmt)) as tmp:
        entries = {}
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            a = a.astype(a.dtype.newbyteorder("<"))
            np.save(tmp / f"{name}.npy", a, allow_pickle=False)
            entries[name] = {"file": f"{name}.npy", "shape": list(a.shape), "dtype": a.dtype.name,
                             "sha256": array_sha256(a)}
        files = {}
        for fname, data in (extra_files or {}).items():
            (tmp / fname).write_bytes(data)
            files[fname] = hashlib.sha256(data).hexdigest()
        body = {k: v for k, v in manifest.items() if k not in (MANIFEST_DIGEST_KEY, "arrays", "files")}
        body = {**body, "arrays": entries, **({"files": files} if files else {})}
        body[MANIFEST_DIGEST_KEY] = manifest_digest(body)
        (tmp / "manifest.json").write_text(json.dumps(body, indent=2, sort_keys=True))
    return Path(out)


def read_array_dir(path: str | os.PathLike, fmt: str,
                   expected: dict[str, tuple[int, ...]] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a directory written by :func:`write_array_dir`, verifying everything the manifest says.

    ``expected`` (name → shape), when given, must match the manifest's arrays exactly.
    """
    path = Path(path)
    mpath, manifest = _peek_manifest(path, fmt)
    entries = manifest.get("arrays", {})
    if expected is not None and set(entries) != set(expected):
        raise ExportError(f"{mpath}: arrays {sorted(entries)} do not match the declared network's parameters "
                          f"{sorted(expected)}")
    arrays = {}
    for fname, digest in (manifest.get("files") or {}).items():
        f = path / fname
        if not f.is_file() or f.parent != path:
            raise ExportError(f"{mpath}: file {fname!r} is missing")
        if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            raise ExportError(f"{path / fname}: {fname} does not match the manifest's sha256 (the file was changed "
                              "after export)")
    for name, e in entries.items():
        missing = [k for k in ("file", "shape", "dtype", "sha256") if not isinstance(e, dict) or k not in e]
        if missing:
            raise ExportError(f"{mpath}: array {name}: the manifest entry lacks {missing}")
        f = path / str(e["file"])
        if not f.is_file() or f.parent != path:
            raise ExportError(f"{mpath}: array {name}: file {e['file']!r} is missing")
        try:
            a = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ExportError(f"array {name}: {f} is not a readable .npy file ({err})") from None
        if list(a.shape) != list(e["shape"]) or (expected is not None and tuple(a.shape) != tuple(expected[name])):
            need = f", the network needs {tuple(expected[name])}" if expected is not None else ""
            raise ExportError(f"array {name}: shape {tuple(a.shape)} in {f.name}, manifest says "
                              f"{tuple(e['shape'])}{need}")
        if a.dtype.name != e["dtype"]:
            raise ExportError(f"array {name}: dtype {a.dtype.name} in {f.name}, manifest says {e['dtype']}")
        digest = array_sha256(a)
        if digest != e["sha256"]:
            raise ExportError(f"array {name}: sha256 of {f.name} is {digest}, manifest says {e['sha256']} "
                              "(the file was changed after export)")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ExportError(f"array {name}: {int((~np.isfinite(a)).sum())} of {a.size} values in {f.name} are not "
                              "finite (NaN or inf)")
        arrays[name] = a
    return arrays, manifest


def write_spec_image(out: str | os.PathLike, fmt: str, spec, weights: dict[str, np.ndarray],
                     source: dict[str, Any] | None = None, *, manifest: dict[str, Any] | None = None,
                     extra_files: dict[str, bytes] | None = None, force: bool = True,
                     option: str = "--out") -> Path:
    """A hardware weight image (format ``fmt``): integer ``weights`` as int32 .npy files, the full spec,
    its digest, ``source`` (provenance), ``manifest`` (extra fields) and ``spec.toml`` + ``extra_files``,
    through :func:`write_array_dir`. The EP core's and EqSpike's images both use it."""
    arrays = {k: np.asarray(v).astype(np.int32) for k, v in weights.items()}
    body = {"format": fmt, "spec": spec.to_dict(), "spec_digest": spec.digest(), **(manifest or {}),
            "source": source or {}}
    files = {**(extra_files or {}), "spec.toml": spec.to_toml().encode()}
    return write_array_dir(out, arrays, body, extra_files=files, force=force, option=option)


def read_spec_image(path: str | os.PathLike, fmt: str, spec_cls, what: str,
                    make_twin) -> tuple[Any, Any, dict[str, np.ndarray], dict[str, Any]]:
    """Read an image written by :func:`write_spec_image` and verify it: the spec (``spec_cls.from_dict``,
    ``what`` names it in errors) and its digest, then ``make_twin(spec, arrays)`` (int64 arrays), whose
    ``ValueError`` (shapes, ranges) becomes an :class:`ExportError` naming ``path``.
    Returns ``(spec, twin, arrays, manifest)``."""
    path = Path(path)
    arrays, manifest = read_array_dir(path, fmt)
    try:
        spec = spec_cls.from_dict(manifest["spec"])
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{path}/manifest.json: invalid {what} spec: {e}") from None
    if spec.digest() != manifest.get("spec_digest"):
        raise ExportError(f"{path}/manifest.json: spec_digest {manifest.get('spec_digest')} does not match its "
                          f"spec ({spec.digest()})")
    try:
        twin = make_twin(spec, {k: v.astype(np.int64) for k, v in arrays.items()})
    except ValueError as e:
        raise ExportError(f"{path}: {e}") from None
    return spec, twin, arrays, manifest


def write_export(out: str | os.PathLike, spec, arrays: dict[str, np.ndarray], *, preprocessing: dict[str, Any],
                 extra: dict[str, Any] | None = None, force: bool = True) -> Path:
    """Write a float export directory atomically."""
    shapes = expected_shapes(spec)
    if set(arrays) != set(shapes):
        raise ExportError(f"arrays {sorted(arrays)} do not match the network's parameters {sorted(shapes)}")
    for name, a in arrays.items():
        if tuple(a.shape) != shapes[name]:
            raise ExportError(f"array {name} has shape {a.shape}, the network needs {shapes[name]}")
    manifest = {"format": EXPORT_FORMAT, "net": spec.to_dict(), "preprocessing": preprocessing, **(extra or {})}
    return write_array_dir(out, arrays, manifest, force=force)


def load_export(path: str | os.PathLike) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a float export: returns ``(NetSpec, arrays, manifest)``.

    Raises
    ------
    ExportError
        When the manifest is missing or malformed, or any array is missing, extra, of the wrong
        shape/dtype for the declared network, or its bytes do not hash to the recorded sha256.
    """
    from .ep.config import NetSpec

    path = Path(path)
    _, manifest = _peek_manifest(path, EXPORT_FORMAT)
    try:
        spec = NetSpec.from_dict(manifest["net"])
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{path / 'manifest.json'}: invalid network description: {e}") from None
    arrays, manifest = read_array_dir(path, EXPORT_FORMAT, expected_shapes(spec))
    return spec, arrays, manifest


def _peek_manifest(path: Path, fmt: str) -> tuple[Path, dict[str, Any]]:
    """Read ``path/manifest.json``, check its format and its digest over every field."""
    mpath = path / "manifest.json"
    if not path.is_dir():
        raise ExportError(f"{path} is not an export directory" + (" (it is a file)" if path.exists() else
                                                                  " (it does not exist)"))
    if not mpath.is_file():
        raise ExportError(f"{path} is not an export: {mpath} is missing")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"{mpath} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ExportError(f"{mpath}: must hold a JSON object, not a {type(manifest).__name__}")
    if manifest.get("format") != fmt:
        raise ExportError(f"{mpath}: format is {manifest.get('format')!r}, expected {fmt!r}")
    recorded = manifest.get(MANIFEST_DIGEST_KEY)
    if recorded is None:
        raise ExportError(f"{mpath}: no {MANIFEST_DIGEST_KEY}: written before epforge hashed whole manifests, so "
                          "its fields cannot be verified; re-export it with the current version")
    try:
        digest = manifest_digest(manifest)
    except ValueError as e:  # NaN/inf in a field
        raise ExportError(f"{mpath}: {e}") from None
    if digest != recorded:
        raise ExportError(f"{mpath}: {MANIFEST_DIGEST_KEY} {recorded} does not match its fields ({digest}): the "
                          "manifest was edited after export; re-export instead of editing it")
    if not isinstance(manifest.get("arrays", {}), dict):
        raise ExportError(f"{mpath}: 'arrays' must be a table")
    return mpath, manifest
