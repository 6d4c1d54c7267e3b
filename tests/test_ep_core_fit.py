# amaranth: UnusedElaboratable=no
"""Wide EP cores (issue 14.4): the lanes' multipliers and the weight memories' block RAM against the board's
FPGA (``boards.fit.check_fits``), the spec's multiply count, and ``bench/ep_core_wide.py``."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog

from boards.fit import check_fits, lane_dsps, memory_blocks, weight_blocks
from hdl.ep_core import EPCore
from spec.ep_core import EPCoreSpec

REPO = Path(__file__).resolve().parents[1]
TRAIN12 = dict(weight_bits=(12,), weight_frac=(10,), bias_bits=16, update_rounding="half_up")


def products(text: str) -> list[tuple[int, int]]:
    """(left, right) operand widths of every product of two signals in generated Verilog."""
    out = []
    for a, b in re.findall(r"= \$signed\(\w+\[(\d+:\d+)\]\) \* \$signed\(\w+\[(\d+:\d+)\]\);", text):
        out.append(tuple(int(x.split(":")[0]) - int(x.split(":")[1]) + 1 for x in (a, b)))
    return out


@pytest.mark.parametrize("kw", [dict(training=False), dict(training=True, weight_bits=(16,), weight_frac=(12,),
                                                                        bias_bits=20),
                                dict(weight_kind="ternary", weight_bits=(2,), weight_frac=(5,), training=False)],
                         ids=["inference-8bit", "training-16bit", "ternary-inference"])
def test_lane_multipliers_are_what_the_core_builds(kw):
    """One multiplier per lane (shared by inference and training) of the spec's operand widths; none in a
    ternary inference core: the count the DSP check uses."""
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, **kw)
    got = products(verilog.convert(EPCore(spec), name="x", emit_src=False))
    assert len(got) == spec.lane_multipliers
    assert all(p == spec.lane_operand_bits for p in got), (got, spec.lane_operand_bits)


def test_multiplies_follow_the_sweep_table():
    """EPCoreSpec.multiplies == the lane products the core's sweeps issue (P divides every layer: no padding):
    c1 and every relaxation step's sweeps, the weight updates (w0: one product a weight, later connections two);
    the d pass and the bias updates multiply by 1."""
    spec = EPCoreSpec(layers=(16, 8, 8, 4), lanes=4, **TRAIN12)
    table, step, named = EPCore(spec).sweeps()
    P = spec.lanes

    def slots(name):
        sw = table[named[name]]
        return sw.outer * sw.inner * (2 if sw.two_cycle else 1) * P

    per_step = sum(slots(n) for n in named if n.startswith(("bcast", "reduce")))
    for train, steps in ((False, spec.T1), (True, spec.T1 + 2 * spec.T2)):
        m = spec.multiplies(train)
        assert m["relax"] == slots("c1") + steps * per_step
        assert m["update"] == (sum(slots(f"upw{l}") for l in range(spec.n_layers)) if train else 0)
        assert m["total"] == m["relax"] + m["update"]
    assert spec.multiplies(True)["total"] > spec.roofline(True)["ops"]  # two products a weight above w0


def test_memory_blocks_picks_the_best_shape():
    assert memory_blocks("ulx3s", 15_680, 192) == (176, 1024, 18)  # W0 of the 784-320-10 P16 build: 16 x 11
    assert memory_blocks("ulx3s", 20, 768) == (22, 512, 36)  # a shallow wide memory: 22 blocks side by side
    assert weight_blocks("ulx3s", EPCoreSpec(layers=(784, 320, 10), lanes=16, **TRAIN12))["need"] == 176 + 6


def test_dsp_check_refuses_more_lanes_than_multipliers():
    check_fits("ulx3s", "ep", EPCoreSpec(layers=(200, 20, 10), lanes=156, **TRAIN12))  # 156 MULT18X18D: fits
    with pytest.raises(ValueError, match=r"the 200-20-10 core \(P = 157, training = True\) does not fit the ulx3s: "
                       r"its 157 lane multipliers of 12 x 9 signed bits need 157 MULT18X18D \(1 per lane; .*\), "
                       r"the FPGA has 156: at most P = 156 lanes"):
        check_fits("ulx3s", "ep", EPCoreSpec(layers=(200, 20, 10), lanes=157, **TRAIN12))
    wide = EPCoreSpec(layers=(200, 20, 10), lanes=80, weight_bits=(20,), weight_frac=(12,), bias_bits=20)
    assert lane_dsps("ulx3s", wide)["per_lane"] == 2
    with pytest.raises(ValueError, match=r"need 160 MULT18X18D \(2 per lane.*at most P = 78 lanes"):
        check_fits("ulx3s", "ep", wide)
    with pytest.raises(ValueError, match=r"need 16 SB_MAC16 .* the FPGA has 8: at most P = 8 lanes"):
        check_fits("icebreaker", "ep", EPCoreSpec(layers=(16, 8, 4), lanes=16))
    # a ternary inference core has no multipliers; a ternary training core multiplies in its update
    tern = dict(weight_kind="ternary", weight_bits=(2,), weight_frac=(5,), layers=(16, 8, 4), lanes=16)
    check_fits("icebreaker", "ep", EPCoreSpec(**tern, training=False))
    with pytest.raises(ValueError, match=r"need 16 SB_MAC16"):
        check_fits("icebreaker", "ep", EPCoreSpec(**tern, training=True))


def test_block_ram_width_check_says_why_a_wider_core_does_not_fit():
    """784-275-10 trains at P = 64 on the ULX3S; P = 128 does not fit (W1's 20 words alone take 43 DP16KD
    side by side), nor does P = 96 at 784-300-10."""
    check_fits("ulx3s", "ep", EPCoreSpec(layers=(784, 275, 10), lanes=64, **TRAIN12))
    with pytest.raises(ValueError, match=r"the 784-275-10 core \(P = 128\) does not fit the ulx3s: its weight "
                       r"memories need at least 214 DP16KD \(w0 1,925 words x 1536 bits: 171 \(171 side by side as "
                       r"2048 x 9\), w1 30 words x 1536 bits: 43 \(43 side by side as 512 x 36\)\), the FPGA has "
                       r"208; one DP16KD reads and writes at most 36 bits a cycle"):
        check_fits("ulx3s", "ep", EPCoreSpec(layers=(784, 275, 10), lanes=128, **TRAIN12))
    with pytest.raises(ValueError, match=r"784-320-10 core \(P = 96\) does not fit the ulx3s: its weight memories"):
        check_fits("ulx3s", "ep", EPCoreSpec(layers=(784, 320, 10), lanes=96, **TRAIN12))


def test_bench_ep_core_wide_rows():
    name = "epforge_bench_ep_core_wide"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "ep_core_wide.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    wide = sys.modules[name]
    r = wide.row(64, False, 90.0)
    assert r["N"] <= r["N_bound"] and r["mult18x18d"] == 64
    check_fits("ulx3s", "ep", wide.spec_for(r["N_bound"], 64))
    with pytest.raises(ValueError):
        check_fits("ulx3s", "ep", wide.spec_for(r["N_bound"] + 1, 64))
    assert r["weight_dp16kd"] + r["other_dp16kd_estimate"] <= 208


def test_ebr_width_check_for_icebreaker_training_cores():
    """iCE40UP5K: a training core's weights need EBR (the SPRAM has one port), at most 16 bits a block per cycle;
    an inference core is left to the bit count (its weights might go to the SPRAM)."""
    fit = dict(layers=(64, 16, 10), lanes=8, weight_bits=(8,), weight_frac=(8,))
    check_fits("icebreaker", "ep", EPCoreSpec(**fit))  # w0 128 x 64 bits: 4 EBR as 256 x 16, w1 20 words: 4
    assert weight_blocks("icebreaker", EPCoreSpec(**fit))["need"] == 8
    big = dict(fit, layers=(256, 64, 10))  # w0 2,048 words x 64 bits: 32 EBR as 512 x 8 (or 256 x 16 ...)
    with pytest.raises(ValueError, match=r"the 256-64-10 core \(P = 8\) does not fit the icebreaker: its weight "
                       r"memories need at least \d+ EBR .* the FPGA has 30; one EBR reads and writes at most 16 bits"):
        check_fits("icebreaker", "ep", EPCoreSpec(**big))
    check_fits("icebreaker", "ep", EPCoreSpec(**big, training=False))  # 147,456 bits: the SPRAM may hold them
