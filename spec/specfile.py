"""File format shared by every block's spec: canonical JSON, TOML, loading by suffix, digest and id.

A spec dataclass inherits :class:`SpecFile`, sets ``FORMAT`` (e.g. ``"epforge-ep-core-spec/1"``)
and provides ``to_dict()`` / ``from_dict()``. The digest is the sha256 of the canonical JSON
(sorted keys, with ``format``): it names these numbers in every manifest, and its first 32 bits
are the ``spec_id`` a host reads back from the hardware.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar


class SpecFile:
    FORMAT: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """Every dataclass field by name (spec classes with tuples or optional fields override this)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """The spec of a dict from :meth:`to_dict` (a ``format`` key must name this class's FORMAT)."""
        cls.check_dict(d)
        d = dict(d)
        fmt = d.pop("format", cls.FORMAT)
        if fmt != cls.FORMAT:
            raise ValueError(f"format must be {cls.FORMAT!r}, not {fmt!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; allowed: {sorted(known)}")
        try:
            return cls(**d)
        except TypeError as e:  # a value of the wrong type met by arithmetic in the checks
            raise ValueError(f"invalid {cls.__name__}: {e}") from None

    @classmethod
    def check_dict(cls, d: Any) -> None:
        """Refuse what no spec can be made of: a non-table, or a flag that is not true/false (e.g. "no")."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}: must be a table of fields, not a {type(d).__name__}")
        for f in dataclasses.fields(cls):
            if isinstance(f.default, bool) and f.name in d and not isinstance(d[f.name], bool):
                raise ValueError(f"{f.name} must be true or false, not {d[f.name]!r}")

    def to_json(self) -> str:
        return json.dumps({"format": self.FORMAT, **self.to_dict()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps({"format": self.FORMAT, **self.to_dict()})

    @classmethod
    def from_toml(cls, text: str):
        import tomllib

        return cls.from_dict(tomllib.loads(text))

    @classmethod
    def load(cls, path):
        """Read a spec from a ``.toml`` or ``.json`` file."""
        p = Path(path)
        if p.is_dir():
            raise ValueError(f"{p}: is a directory, not a spec file")
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            raise ValueError(f"{p}: not a text file (a spec is .toml or .json)") from None
        kind = "JSON" if p.suffix == ".json" else "TOML"
        try:
            data = json.loads(text) if p.suffix == ".json" else __import__("tomllib").loads(text)
        except ValueError as e:
            raise ValueError(f"{p}: not valid {kind}: {e}") from None
        try:
            cls.check_dict(data)
            return cls.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{p}: {e}") from None

    def digest(self) -> str:
        """sha256 of the canonical JSON: identifies these numbers in every manifest."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @property
    def spec_id(self) -> int:
        return int(self.digest()[:8], 16)
