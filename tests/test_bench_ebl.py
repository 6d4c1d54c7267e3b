"""bench/_ebl_reference.py without the energy-based-learning library: it is optional, so its absence
(or a directory that is not the library) is reported in one clear line and bench/ep_speed.py skips
the EBL rows. No test here needs the network or the library."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    mod_name = f"epforge_bench_{name.lstrip('_')}"
    if mod_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(mod_name, REPO / "bench" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[mod_name]


def test_resolve_without_library(tmp_path, monkeypatch):
    eh = _load("_ebl_reference")
    monkeypatch.delenv("EPFORGE_EBL", raising=False)
    path, note = eh.resolve(None)
    assert path is None and "--ebl PATH" in note and "EPFORGE_EBL" in note
    path, note = eh.resolve(tmp_path)  # a directory that is not the library
    assert path is None and str(tmp_path) in note and "model/hopfield/network.py" in note
    monkeypatch.setenv("EPFORGE_EBL", str(tmp_path))
    path, note = eh.resolve(None)
    assert path is None and "not found" in note


def test_resolve_accepts_library_layout(tmp_path):
    eh = _load("_ebl_reference")
    for m in eh._MARKERS:
        (tmp_path / m).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / m).write_text("")
    path, note = eh.resolve(tmp_path)
    assert path == tmp_path.resolve() and "from" in note


def test_ep_speed_skips_ebl_when_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EPFORGE_REFERENCE", raising=False)
    monkeypatch.delenv("EPFORGE_DATA", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    ep_speed = _load("ep_speed")
    out = tmp_path / "speed.json"
    assert ep_speed.main(["--skip-mlp", "--skip-conv", "--threads", "1", "--data-dir", str(data),
                          "--ebl", str(tmp_path / "nowhere"), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["ebl"]["used"] is False and "not found" in res["ebl"]["note"]
    assert res["ebl"]["differences"] and res["rows"] == []
    assert "EBL skipped" in capsys.readouterr().out
