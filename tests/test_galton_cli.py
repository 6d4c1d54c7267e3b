# amaranth: UnusedElaboratable=no
# (test_generator_rejects_other_specs makes the constructor raise, which leaves an unused object behind)
"""The Galton-board tools: ``python -m golden.domainwall`` (spec, exact, histogram) and
``python -m hdl.build galton``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden.domainwall import DomainWallBoard, binomial_pmf, threshold_distribution
from golden.domainwall.cli import main
from hdl.build import main as build_main
from spec.galton import GaltonSpec

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [[], ["spec"], ["exact"], ["histogram"]])
def test_help_for_every_command(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "usage: python -m golden.domainwall" in text
    if argv == ["histogram"]:
        for opt in ("--fields", "--balls", "--seed", "--H0", "--width", "--edit", "--stickiness", "--out", "--set"):
            assert opt in text


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "golden.domainwall", "--help"], capture_output=True, text=True,
                       cwd=REPO, timeout=60)
    assert r.returncode == 0 and "histogram" in r.stdout and "exact" in r.stdout


def test_spec_command_round_trips(tmp_path):
    out = tmp_path / "g.toml"
    assert main(["spec", "--set", "rows=6", "--set", "boards=2", "--set", "correlated=true", "--out", str(out)]) == 0
    s = GaltonSpec.load(out)
    assert (s.rows, s.boards, s.correlated) == (6, 2, True)


def test_exact_command(tmp_path, capsys):
    js = tmp_path / "e.json"
    assert main(["exact", "--rows", "5", "--field", "0", "1.5", "--prob-bits", "6", "--json", str(js)]) == 0
    d = json.loads(js.read_text())
    assert [f["H"] for f in d["fields"]] == [0.0, 1.5]
    assert np.allclose(d["fields"][0]["float"], binomial_pmf(5, 0.5))
    assert d["fields"][0]["quantised"] == binomial_pmf(5, 0.5).tolist()
    assert np.allclose(d["fields"][1]["binomial"], d["fields"][1]["float"])
    board = DomainWallBoard(5)
    assert d["fields"][1]["quantised"] == threshold_distribution(board.thresholds(1.5, 6), 6, False).tolist()
    assert "H = 1.5" in capsys.readouterr().out


def test_histogram_command_writes_png_and_json(tmp_path):
    out = tmp_path / "run"
    argv = ["histogram", "--set", "rows=6", "--set", "boards=2", "--fields", "-1", "0.5", "--balls", "3000",
            "--edit", "3,1,0.8", "--stickiness", "0.3", "--seed", "9", "--out", str(out)]
    assert main(argv) == 0
    assert (out / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = json.loads((out / "histogram.json").read_text())
    assert d["balls_per_board"] == 3000 and d["seed"] == 9 and d["edits"] == [[3, 1, 0.8]]
    for rec in d["fields"]:
        assert sum(rec["counts"]) == 6000 == rec["balls"]
        assert np.array_equal(np.sum(rec["counts_per_board"], axis=0), rec["counts"])
        assert 0 <= rec["chi_square"]["p_value"] <= 1 and len(rec["exact_quantised"]) == 7
    # the same run again gives the same numbers (deterministic); a previous histogram is replaced only with --force
    assert main(argv) == 2
    assert main(argv + ["--force"]) == 0
    assert json.loads((out / "histogram.json").read_text())["fields"][1]["counts"] == d["fields"][1]["counts"]
    assert sorted(p.name for p in out.iterdir()) == [".epforge-output.json", "histogram.json", "histogram.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary directories left


@pytest.mark.parametrize("argv,message", [
    (["histogram", "--set", "rows=0", "--out", "x"], "error: rows must be a positive integer (at most 64), not 0"),
    (["histogram", "--balls", "0", "--out", "x"], "error: --balls must be a positive integer, not 0"),
    (["histogram", "--set", "rows=4", "--edit", "2,3,1.0", "--out", "x"],
     "error: --edit 2,3,1.0: junction (2, 3) does not exist"),
    (["exact", "--rows", "4", "--stickiness", "1.5"], "error: stickiness must be in (-1, 1), not 1.5"),
    (["exact", "--field", "0"], "error: give --rows N or --spec FILE"),
])
def test_cli_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_edit_syntax_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["exact", "--rows", "3", "--edit", "1;0;2"])
    assert e.value.code == 2
    assert "--edit expects ROW,JUNCTION,DH" in capsys.readouterr().err


def test_hdl_build_lists_and_builds_galton(tmp_path, capsys):
    assert build_main(["list"]) == 0
    assert "galton" in capsys.readouterr().out
    spec = GaltonSpec(rows=4, boards=2, prob_bits=6, correlated=True)
    (tmp_path / "g.toml").write_text(spec.to_toml())
    assert build_main(["galton", "--spec", str(tmp_path / "g.toml"), "--out", str(tmp_path / "b")]) == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["design"] == "galton" and m["spec_digest"] == spec.digest() and m["spec_id"] == spec.spec_id
    assert GaltonSpec.load(tmp_path / "b" / "spec.toml") == spec
    verilog = (tmp_path / "b" / "galton.v").read_text()
    assert "module galton(" in verilog
    ports = {p["name"]: p for p in m["ports"]}
    assert ports["out__payload"]["width"] == 2 * spec.bin_index_bits
    assert ports["cmd__payload"]["width"] == spec.data_bits + spec.addr_bits + 1
    assert m["random_bits"]["per_ball_per_board"] == 24 and m["registers"]["REG_SPEC_ID"] == 11
    assert build_main(["galton", "--spec", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "c")]) == 2
    assert "missing.toml" in capsys.readouterr().err


def test_generator_rejects_other_specs():
    from hdl.galton import GaltonBoard
    from spec.ep_core import EPCoreSpec

    with pytest.raises(TypeError, match="spec must be a GaltonSpec, not EPCoreSpec"):
        GaltonBoard(EPCoreSpec())
