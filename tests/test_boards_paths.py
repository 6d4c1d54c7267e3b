"""boards/paths.py: the failing paths of a routed build from nextpnr's SDF (a hand-written SDF here)."""

from __future__ import annotations

from boards.paths import analyse, group, signal_name

SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL (CELLTYPE "top") (INSTANCE )
    (DELAY (ABSOLUTE
      (INTERCONNECT \$gbuf\$clk/CLKO a.x_TRELLIS_FF_Q/CLK (0:0:0) (0:0:0))
      (INTERCONNECT a.x_TRELLIS_FF_Q/Q lut1/A (900:1000:1100) (900:1000:1100))
      (INTERCONNECT b.y\[3\]_TRELLIS_FF_Q_2/Q lut1/B (100:200:300) (100:200:300))
      (INTERCONNECT lut1/F c.z\[0\]_TRELLIS_FF_Q/DI (200:200:200) (200:200:200))
      (INTERCONNECT b.y\[3\]_TRELLIS_FF_Q_2/Q c.w_TRELLIS_FF_Q/DI (100:100:100) (100:100:100))
    )))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE a.x_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (500:500:500) (500:500:500))))
    (TIMINGCHECK (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (100:100:100))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE b.y\[3\]_TRELLIS_FF_Q_2)
    (DELAY (ABSOLUTE (IOPATH CLK Q (500:500:500) (500:500:500)))))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE lut1)
    (DELAY (ABSOLUTE (IOPATH A F (300:300:300) (300:300:300)) (IOPATH B F (250:250:250) (250:250:250)))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE c.z\[0\]_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (500:500:500) (500:500:500))))
    (TIMINGCHECK (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (100:100:100))))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE c.w_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE (IOPATH CLK Q (500:500:500) (500:500:500))))
    (TIMINGCHECK (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (100:100:100))))
)
"""


def test_worst_path_per_endpoint_and_groups():
    # c.z: a.x's path 0.5 + 1.1 + 0.3 + 0.2 = 2.1 ns (+ 0.1 set-up) beats b.y's 0.5 + 0.3 + 0.25 + 0.2
    res = analyse(SDF, 2.0)
    assert res["endpoints"] == 2  # c.z and c.w (a.x has a set-up check but no path into it)
    (t, end, path), = res["failing"]
    assert end == ("c.z[0]_TRELLIS_FF_Q", "DI") and abs(t - 2.2) < 1e-9
    assert [(c, p) for c, p, _ in path] == [("a.x_TRELLIS_FF_Q", "Q"), ("lut1", "A"), ("lut1", "F"),
                                            ("c.z[0]_TRELLIS_FF_Q", "DI")]
    assert analyse(SDF, 2.3)["failing"] == []
    (g,) = group(res["failing"])
    assert (g["from"], g["to"], g["count"]) == ("a.x", "c.z[]", 1)
    assert len(analyse(SDF, 0.5)["failing"]) == 2  # c.w too: 0.5 + 0.1 + 0.1
    assert signal_name("top.core.prod[2]_TRELLIS_FF_Q_18_DI_MULT18X18D_P18") == "top.core.prod[]"
