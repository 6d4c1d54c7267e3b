"""`make demo`'s flow end to end at a tiny size: train → export → quantise → twin → Verilog → cocotb."""

from __future__ import annotations

import json

import pytest

from sim.demo import main
from sim.runner import sim_available


@pytest.mark.cocotb
@pytest.mark.skipif(not sim_available("icarus"), reason="Icarus Verilog not installed")
def test_demo_flow_agrees_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setenv("EPFORGE_DATA", str(tmp_path / "no-data"))  # forces the shipped subset
    rc = main(["--out", str(tmp_path / "demo"), "--hidden", "16", "--epochs", "1", "--rtl-images", "6",
               "--simulator", "icarus"])
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert rc == 0
    assert summary["dataset"] == "mnist-subset"
    assert summary["rtl_twin_mismatches"] == 0 and summary["rtl_images"] == 6
    assert summary["twin_accuracy"] > 0.3 and summary["float_accuracy"] > 0.3
    assert (tmp_path / "demo" / "verilog" / "ep_core.v").exists()


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["--rtl-images", "0"])
    assert "--rtl-images must be a positive integer, not 0" in capsys.readouterr().err
