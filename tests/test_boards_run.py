"""``python -m boards run`` and ``python -m boards program`` (boards/run.py, boards/program.py).

The run cases drive a simulated board (the gateware in the Amaranth simulator; one case on Verilator)
through the same host code as a serial port, compare with the twin and check the report; the
program cases use a fake programmer the test writes onto PATH (no board is attached here).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from boards.__main__ import main
from golden.ep_core import init_weights, random_weights
from golden.ep_core.image import write_image
from spec.ep_core import EPCoreSpec

INF = EPCoreSpec(layers=(784, 8, 10), lanes=16, training=False, T1=8)
TRAIN = EPCoreSpec(layers=(784, 8, 10), lanes=16, training=True, T1=8, T2=4, weight_bits=(16,), weight_frac=(12,),
                   bias_bits=20, lr_shift=6, beta_shift=1, update_rounding="half_up")
TERN = EPCoreSpec(layers=(784, 8, 10), lanes=16, training=False, T1=8, weight_kind="ternary", weight_bits=(2,),
                  weight_frac=(4,), fault_injection=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image(root / "inf", INF, random_weights(INF, np.random.default_rng(1), gain=4.0), source={"test": 1})
    write_image(root / "train", TRAIN, init_weights(TRAIN, 1), source={"test": 1})
    rng = np.random.default_rng(2)
    tw = {k: (rng.integers(-1, 2, s) if k.startswith("w") else
              np.clip(rng.integers(-8, 9, s), *TERN.element_range(k))) for k, s in TERN.weight_shapes().items()}
    write_image(root / "tern", TERN, tw, source={"test": 1})
    (root / "other.toml").write_text(EPCoreSpec(layers=(784, 8, 10), lanes=16, training=False, T1=9).to_toml())
    return root


def run(argv, capsys):
    rc = main(["run", "--board", "icebreaker", "--dataset", "mnist-subset", "--no-progress", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_inference_equals_twin_and_report(images, tmp_path, capsys):
    rep_dir = tmp_path / "rep"
    rc, out, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--limit", "4", "--report",
                        str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["samples"] == 4 and rep["compared"]["preds"] == 4
    assert rep["spec_id"] == f"0x{INF.spec_id:08x}" and rep["mode"] == "inference"
    # every sample: its pixels to the board, a prediction back
    assert rep["link"]["bytes_to_device_per_sample"] > 0 and rep["link"]["sample_bytes_from_device"] >= 4 * 2
    assert rep["core_cycles_per_sample"] > 0 and rep["simulated_cycles"]["samples"] > 0
    assert "0 mismatches" in (rep_dir / "report.md").read_text() and "0 mismatches" in out
    assert "spec id" in err and "matches" in err
    # the same report again only with --force
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--limit", "1", "--report",
                      str(rep_dir)], capsys)
    assert rc == 2 and "--force" in one_error_line(err)


def test_training_weights_read_back_equal_twin(images, tmp_path, capsys):
    rep_dir = tmp_path / "rep"
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "train"), "--train", "--limit", "3",
                      "--readback-every", "2", "--report", str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["mode"] == "train"
    assert rep["compared"]["weight_readbacks"] == 3  # after loading, after step 2, after step 3 (the end)
    assert rep["compared"]["preds"] == 3


def test_from_ram_equals_twin(images, tmp_path, capsys):
    """--from-ram: the set goes into the simulated board's sample store in parts (3 slots, 4 samples: two
    parts) and runs from there; the predictions == the twin, and the report gives the run's own rate."""
    rep_dir = tmp_path / "rep"
    rc, out, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--limit", "4", "--from-ram",
                        "--store-samples", "3", "--report", str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["compared"]["preds"] == 4
    ram = rep["from_ram"]
    assert ram["parts"] == 2 and ram["store_samples"] == 3 and ram["store_bytes_to_device"] > 0
    # while running from the store only the RUN_STORED frame and SYNCs cross the link: the board's own rate
    assert ram["run_cycles_per_sample"] < rep["simulated_cycles"]["samples"] / 4
    assert "--from-ram" in out
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--limit", "1", "--from-ram",
                      "--store-samples", "0"], capsys)
    assert rc == 2 and "no sample store" in one_error_line(err)


def test_training_from_ram_then_eval_equal_twin(images, tmp_path, capsys):
    """--train --from-ram --eval: training steps from the store (read-backs between parts), then the
    trained weights on test samples; all == the twin."""
    rep_dir = tmp_path / "rep"
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "train"), "--train", "--limit", "3",
                      "--readback-every", "2", "--from-ram", "--store-samples", "4", "--eval", "2",
                      "--report", str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["compared"]["weight_readbacks"] == 3
    assert rep["compared"]["eval_preds"] == 2 and rep["eval"]["samples"] == 2
    assert rep["from_ram"]["parts"] == 2  # steps 1-2, then step 3 (a read-back after step 2)
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--limit", "1", "--eval", "2"], capsys)
    assert rc == 2 and "--eval 2: only with --train" in one_error_line(err)


def test_planted_mismatch_is_reported(images, tmp_path, capsys):
    rep_dir = tmp_path / "rep"
    rc, out, _ = run(["--sim", "amaranth", "--image", str(images / "train"), "--train", "--limit", "1",
                      "--readback-every", "1", "--corrupt-word", "5", "--report", str(rep_dir)], capsys)
    assert rc == 1
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] >= 1
    assert any("after training step 0: w0 differs from the twin in 1 element" in m for m in rep["mismatch_examples"])
    assert "MISMATCHES" in out


def test_ternary_static_faults_equal_twin(images, tmp_path, capsys):
    rep_dir = tmp_path / "rep"
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "tern"), "--limit", "2", "--fault-mode", "static",
                      "--error-rate", "0.05", "--report", str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["compared"]["memory_counters"] == 1
    assert rep["memory_counters"]["injected"] > 0  # faults were drawn while loading, as in the twin
    assert rep["faults"]["mode"] == "static"


def test_galton_histograms_equal_twin_with_chi_square(tmp_path, capsys):
    from spec.galton import GaltonSpec

    gspec = tmp_path / "g.toml"
    gspec.write_text(GaltonSpec(rows=6, boards=2).to_toml())
    rep_dir = tmp_path / "rep"
    rc, _, err = run(["--design", "galton", "--galton-spec", str(gspec), "--sim", "amaranth", "--balls", "300",
                      "--limit", "2", "--report", str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["compared"]["runs"] == 2
    assert rep["balls_total"] == 2 * 2 * 300 and sum(rep["histogram_total"]) == 1200
    assert rep["chi_square_dof"] >= 1 and 0 <= rep["chi_square_p"] <= 1


def test_eqspike_equals_twin(tmp_path, capsys):
    from golden.eqspike.image import write_image as write_eqs
    from golden.eqspike.twin import init_weights as eqs_init
    from spec.eqspike import EqSpikeSpec

    spec = EqSpikeSpec(layers=(784, 4, 10), lanes=4, training=False, T1=8)
    write_eqs(tmp_path / "img", spec, eqs_init(spec, 1, scale=3.0), source={"test": 1})
    rc, out, err = run(["--design", "eqspike", "--sim", "amaranth", "--image", str(tmp_path / "img"), "--limit", "2"],
                       capsys)
    assert rc == 0, err
    assert "0 mismatches" in out


@pytest.mark.cocotb
@pytest.mark.slow
def test_verilator_inference_equals_twin(images, tmp_path, capsys):
    from sim.runner import sim_available

    if not sim_available("verilator"):
        pytest.skip("Verilator not available")
    rep_dir = tmp_path / "rep"
    rc, _, err = run(["--sim", "verilator", "--image", str(images / "inf"), "--limit", "2", "--baud", "3000000",
                      "--report", str(rep_dir)], capsys)
    assert rc == 0, err
    rep = json.loads((rep_dir / "report.json").read_text())
    assert rep["mismatches"] == 0 and rep["samples"] == 2 and "verilator" in rep["backend"]
    # the link is paced at the baud rate: every byte takes 10 bit times on the board
    assert rep["board_time_s"]["samples"] >= rep["link"]["sample_bytes_to_device"] * 10 / 3_000_000


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_one_line(images, tmp_path, capsys):
    rc, _, err = run(["--sim", "amaranth", "--image", str(tmp_path / "nope")], capsys)
    assert rc == 2 and "--image" in one_error_line(err) and "no such directory" in err
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--sim-spec", str(images / "other.toml"),
                      "--limit", "1"], capsys)
    line = one_error_line(err)
    assert rc == 2 and "spec id" in line and f"0x{INF.spec_id:08x}" in line
    rc, _, err = run(["--port", str(tmp_path / "ttyUSB9"), "--image", str(images / "inf")], capsys)
    assert rc == 2 and "--port" in one_error_line(err) and "no such device" in err
    rc, _, err = run(["--image", str(images / "inf")], capsys)
    assert rc == 2 and "--port" in one_error_line(err)
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--train"], capsys)
    assert rc == 2 and "--train" in one_error_line(err)
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--baud", "5000000"], capsys)
    assert rc == 2 and "--baud 5000000" in one_error_line(err)
    rc, _, err = run(["--sim", "amaranth", "--image", str(images / "inf"), "--fault-mode", "static"], capsys)
    assert rc == 2 and "no fault injector" in one_error_line(err)


# ---------------------------------------------------------------------------------------------- program
def fake_synth(tmp_path: Path, board: str) -> Path:
    out = tmp_path / f"synth-{board}"
    (out / "build").mkdir(parents=True)
    (out / "synth.json").write_text(json.dumps({"board": board}))
    (out / "build" / ("top.bit" if board == "ulx3s" else "top.bin")).write_bytes(b"\x00\xff bitstream")
    return out


def fake_tool(bindir: Path, name: str, rc: int, message: str) -> Path:
    bindir.mkdir(exist_ok=True)
    log = bindir / f"{name}.args"
    p = bindir / name
    p.write_text(f"#!/bin/sh\necho \"$@\" > {log}\necho 'some progress'\necho '{message}' >&2\nexit {rc}\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return log


@pytest.fixture
def path_only(monkeypatch, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))  # nothing else: no real programmer can be found
    return bindir


def test_program_runs_the_boards_programmer(tmp_path, capsys, path_only):
    for board, extra in (("ulx3s", []), ("icebreaker", [])):
        log = fake_tool(path_only, "openFPGALoader", 0, "done")
        build = fake_synth(tmp_path, board)
        assert main(["program", "--board", board, "--build", str(build), *extra]) == 0
        args = log.read_text().split()
        assert args[:2] == ["-b", board] and args[-1].endswith("top.bit" if board == "ulx3s" else "top.bin")
        assert "programmed" in capsys.readouterr().out
    log = fake_tool(path_only, "iceprog", 0, "done")
    assert main(["program", "--board", "icebreaker", "--programmer", "iceprog", "--build",
                 str(tmp_path / "synth-icebreaker")]) == 0
    assert log.read_text().split()[0] == "-S"  # SRAM unless --flash
    capsys.readouterr()


def test_program_errors(tmp_path, capsys, path_only):
    build = fake_synth(tmp_path, "ulx3s")

    def err_of(argv):
        rc = main(["program", *argv])
        assert rc == 2
        return one_error_line(capsys.readouterr().err)

    assert "apt-get install openfpgaloader" in err_of(["--board", "ulx3s", "--build", str(build)])
    fake_tool(path_only, "openFPGALoader", 1, "unable to open ftdi device: -4 (usb_open() failed)")
    line = err_of(["--board", "ulx3s", "--build", str(build)])
    assert "exit status 1" in line and "usb_open() failed" in line
    assert "no such directory" in err_of(["--board", "ulx3s", "--build", str(tmp_path / "none")])
    assert "built for --board ulx3s" in err_of(["--board", "icebreaker", "--build", str(build)])
    (build / "build" / "top.bit").unlink()
    assert "no top.bit" in err_of(["--board", "ulx3s", "--build", str(build)])
    assert "iceprog" in err_of(["--board", "ulx3s", "--programmer", "iceprog", "--build", str(build)])
    fake_synth(tmp_path, "icebreaker")
    assert "apt-get install fpga-icestorm" in err_of(["--board", "icebreaker", "--programmer", "iceprog", "--build",
                                                      str(tmp_path / "synth-icebreaker")])
    assert os.environ["PATH"] == str(path_only)
