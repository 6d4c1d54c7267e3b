"""GaltonSpec: validation messages, serialisation and digest, the field → threshold quantiser, the
random-bit mapping and the memory map."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from spec.galton import GaltonSpec, probability, quantize_probability, threshold


def test_defaults_and_derived_numbers():
    s = GaltonSpec()
    assert (s.rows, s.boards, s.prob_bits, s.prng_width) == (16, 1, 8, 64)
    assert s.fields_per_word == 8 and s.lanes_per_board == 2 and s.lanes == 2
    assert s.random_bits_per_ball == 16 * 8 and s.generated_bits_per_ball == 128
    assert s.threshold_max == 256 and s.threshold_bits == 9 and s.n_bins == 17 and s.bin_index_bits == 5
    # k does not divide w: 5-bit fields, 3 per 16-bit word, 1 bit per word discarded
    s = GaltonSpec(rows=10, boards=3, prob_bits=5, prng_width=16)
    assert s.fields_per_word == 3 and s.lanes_per_board == 4 and s.lanes == 12
    assert s.random_bits_per_ball == 50 and s.generated_bits_per_ball == 64
    assert s.random_field(0, 0) == (0, 0)
    assert s.random_field(1, 7) == (4 + 2, 5)
    assert s.random_field(2, 9) == (8 + 3, 0)


@pytest.mark.parametrize("width,lanes_kw", [(16, dict(rows=40, boards=3)), (32, dict(rows=5)),
                                             (16, dict(rows=64, boards=64, prob_bits=16)),  # 4096 lanes, jump 8
                                             (64, dict(rows=64, boards=64, prob_bits=16))])
def test_auto_jump_is_the_largest_power_of_two_that_fits(width, lanes_kw):
    s = GaltonSpec(prng_width=width, **lanes_kw)
    j = s.prng_jump
    assert j & (j - 1) == 0 and j <= 1 << 62
    assert s.lanes * j <= (1 << width) - 2
    assert s.lanes * 2 * j > (1 << width) - 2 or j == 1 << 62
    s.prng_spec()  # a valid PRNGSpec


@pytest.mark.parametrize("kwargs,message", [
    (dict(rows=0), "rows must be a positive integer (at most 64), not 0"),
    (dict(rows=65), "rows must be a positive integer (at most 64), not 65"),
    (dict(rows=True), "rows must be a positive integer (at most 64), not True"),
    (dict(rows=2.0), "rows must be a positive integer (at most 64), not 2.0"),
    (dict(boards=0), "boards must be a positive integer (at most 64), not 0"),
    (dict(prob_bits=0), "prob_bits must be an integer in 1..16, not 0"),
    (dict(prob_bits=17), "prob_bits must be an integer in 1..16, not 17"),
    (dict(prng_width=24), "prng_width must be one of [16, 32, 64], not 24"),
    (dict(seed=-1), "seed must be an integer in 0..4294967295, not -1"),
    (dict(seed=1 << 32), "seed must be an integer in 0..4294967295, not 4294967296"),
    (dict(correlated="yes"), "correlated must be a bool (true/false), not 'yes'"),
    (dict(bin_bits=0), "bin_bits must be an integer in 1..32, not 0"),
    (dict(bin_bits=33), "bin_bits must be an integer in 1..32, not 33"),
    (dict(count_bits=0), "count_bits must be an integer in 1..32, not 0"),
    (dict(prng_jump=0), "prng_jump must be a positive integer below 2^63, not 0"),
    (dict(prng_width=16, rows=16, boards=4, prng_jump=10000),
     "prng_jump=10000 does not fit 32 lanes of a 16-bit xorshift"),
])
def test_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        GaltonSpec(**kwargs)


def test_json_toml_round_trip_and_digest(tmp_path):
    s = GaltonSpec(rows=7, boards=3, prob_bits=6, prng_width=64, seed=12345, correlated=True, bin_bits=20)
    assert GaltonSpec.from_json(s.to_json()) == s
    assert GaltonSpec.from_toml(s.to_toml()) == s
    (tmp_path / "g.toml").write_text(s.to_toml())
    (tmp_path / "g.json").write_text(s.to_json())
    assert GaltonSpec.load(tmp_path / "g.toml") == s == GaltonSpec.load(tmp_path / "g.json")
    assert s.digest() == GaltonSpec.from_json(s.to_json()).digest()
    assert s.digest() != GaltonSpec(rows=7, boards=3, prob_bits=6, prng_width=64, seed=12346, correlated=True,
                                    bin_bits=20).digest()
    assert s.spec_id == int(s.digest()[:8], 16)
    with pytest.raises(ValueError, match=r"unknown Galton spec fields \['lanes'\]"):
        GaltonSpec.from_dict({**s.to_dict(), "lanes": 3})
    with pytest.raises(ValueError, match="format must be 'epforge-galton-spec/1', not 'epforge-ep-core-spec/1'"):
        GaltonSpec.from_dict({"format": "epforge-ep-core-spec/1"})


@pytest.mark.parametrize("k", range(1, 17))
def test_threshold_is_one_half_at_H0(k):
    for H0, w in ((0.0, 1.0), (3.7, 0.25), (-120.5, 40.0)):
        assert probability(H0, H0, w) == 0.5
        assert threshold(H0, H0, w, k) == 1 << (k - 1)


@pytest.mark.parametrize("k", [1, 3, 8, 12, 16])
def test_threshold_monotone_and_saturating(k):
    H = np.linspace(-40, 40, 4001)
    t = [threshold(float(h), 0.5, 2.0, k) for h in H]
    assert all(a <= b for a, b in zip(t, t[1:], strict=False))
    assert t[0] == 0 and t[-1] == 1 << k  # p = 0 and p = 1 are representable (k + 1-bit thresholds)
    assert threshold(1e300, 0.0, 1.0, k) == 1 << k and threshold(-1e300, 0.0, 1.0, k) == 0
    # t / 2^k is within half an LSB of p
    for h in H[::97]:
        assert abs(threshold(float(h), 0.5, 2.0, k) / (1 << k) - probability(float(h), 0.5, 2.0)) <= 0.5 / (1 << k)


def test_quantiser_rounds_half_up_exactly():
    # p = (m + 1/2) / 2^k lies exactly on a half: it rounds up
    assert quantize_probability(0.375, 2) == 2 and quantize_probability(0.125, 2) == 1
    assert quantize_probability(1 / 512, 8) == 1
    # just below a half it must round down; float arithmetic 2^k·p + 0.5 would round the sum up to 1.0
    below = math.nextafter(0.25, 0.0)
    assert 2 * below + 0.5 == 1.0  # the trap the exact evaluation avoids
    assert quantize_probability(below, 1) == 0 and quantize_probability(0.25, 1) == 1
    assert quantize_probability(0.0, 5) == 0 and quantize_probability(1.0, 5) == 32


@pytest.mark.parametrize("call,message", [
    (lambda: threshold(0.0, 0.0, 0.0, 8), "w must be a positive finite number, not 0.0"),
    (lambda: threshold(0.0, 0.0, -1.0, 8), "w must be a positive finite number, not -1.0"),
    (lambda: threshold(float("nan"), 0.0, 1.0, 8), "H must be a finite real number, not nan"),
    (lambda: threshold(0.0, "x", 1.0, 8), "H0 must be a finite real number, not 'x'"),
    (lambda: threshold(0.0, 0.0, 1.0, 0), r"k must be an integer in 1..16, not 0"),
    (lambda: quantize_probability(1.5, 4), r"p must be a probability in \[0, 1\], not 1.5"),
])
def test_threshold_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("kwargs", [dict(rows=1), dict(rows=5, boards=3), dict(rows=16, boards=5), dict(rows=64)])
def test_memory_map_is_dense_enough_and_collision_free(kwargs):
    s = GaltonSpec(**kwargs)
    thr = [s.threshold_addr(c, i, j) for c in range(2) for i in range(s.rows) for j in range(i + 1)]
    hist = [s.hist_addr(b, n) for b in range(s.boards) for n in range(s.n_bins)]
    addrs = thr + hist
    assert len(set(addrs)) == len(addrs)
    assert all(0 <= a < (1 << s.addr_bits) for a in addrs)
    assert all(a < s.hist_base for a in thr) and all(a >= s.hist_base for a in hist)
    regions = {r["name"]: r for r in s.memory_map()}
    assert all(a < regions["thresholds"]["words"] for a in thr)
    assert all(a - s.hist_base < regions["histogram"]["words"] for a in hist)
    assert [w for _, w in s.cmd_fields()] == [s.data_bits, s.addr_bits, 1]
    assert s.data_bits >= max(s.threshold_bits, s.bin_bits)
    assert s.out_fields() == [(f"bins[{b}]", s.bin_index_bits) for b in range(s.boards)]


def test_memory_map_errors():
    s = GaltonSpec(rows=4, boards=2)
    with pytest.raises(ValueError, match=r"junction must be an integer in 0..row=2, not 3"):
        s.threshold_addr(0, 2, 3)
    with pytest.raises(ValueError, match=r"table must be an integer in 0..1, not 2"):
        s.threshold_addr(2, 0, 0)
    with pytest.raises(ValueError, match=r"board must be an integer in 0..1, not 2"):
        s.hist_addr(2, 0)
    with pytest.raises(ValueError, match=r"bin must be an integer in 0..4, not 5"):
        s.hist_addr(0, 5)
    with pytest.raises(ValueError, match=r"row must be an integer in 0..3, not 4"):
        s.random_field(0, 4)
