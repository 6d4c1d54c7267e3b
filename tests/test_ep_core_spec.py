"""EP core spec, fixed-point primitives (spec ↔ numpy ↔ Amaranth, exhaustive), twin, images, hdl.build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

import golden.fixed as gfixed
import hdl.fixed as hfixed
import spec.fixed as sfixed
from golden.ep_core import EPCoreTwin, Registers, init_weights, load_image, pack_memory, unpack_memory, write_image
from golden.export import ExportError
from spec.ep_core import EPCoreSpec, pack_fields, unpack_fields

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------- fixed point
@pytest.mark.parametrize("mode", ["floor", "half_up"])
@pytest.mark.parametrize("shift", [-2, 0, 1, 3])
def test_numpy_shift_round_equals_spec_on_every_value(mode, shift):
    xs = np.arange(-512, 512)
    got = gfixed.shift_round(xs, shift, mode)
    assert got.tolist() == [sfixed.shift_round(int(x), shift, mode) for x in xs]


def test_stochastic_rounding_definition():
    xs = np.arange(-64, 64)
    r = np.arange(128) * 7 % 8
    got = gfixed.shift_round(xs, 3, "stochastic", r)
    assert got.tolist() == [sfixed.shift_round(int(x), 3, "stochastic", int(b)) for x, b in zip(xs, r, strict=True)]
    # unbiased: averaging over all random values returns x / 2^s exactly
    for x in range(-20, 20):
        assert sum(sfixed.shift_round(x, 3, "stochastic", b) for b in range(8)) / 8 == x / 8


def test_lane_stream_equals_the_prng_bank_step_by_step():
    """The twin's block-parallel PRNG stream is the xorshift bank stepped once per draw, with reseeds."""
    from golden.prng import LaneStream, XorshiftBank

    s = EPCoreSpec(layers=(20, 7, 3), lanes=5, update_rounding="stochastic", seed=77)
    fast, ref = LaneStream(s.prng_spec()), XorshiftBank(s.prng_spec())
    rng = np.random.default_rng(0)
    for n in list(rng.integers(0, 5000, size=20)) + [LaneStream.BLOCK * LaneStream.BLOCKS + 3, 0, 1]:
        assert np.array_equal(fast.take(int(n)), ref.stream(int(n)))
    fast.reseed(0xDEADBEEF)
    assert fast.draws == 0
    assert np.array_equal(fast.take(40000), XorshiftBank(s.prng_spec(), 0xDEADBEEF).stream(40000))


def test_stochastic_update_rounding_is_unbiased():
    """The twin's stochastic update (the core's PRNG bits, spec.ep_core's draw order): over many draws
    the mean weight change is the exact product difference · 2^-k within 4σ, every single change is
    floor or floor + 1, and the mean is far (> 4σ) from floor wherever the exact value is fractional."""
    s = EPCoreSpec(layers=(6, 5, 3), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                   update_rounding="stochastic", estimator="one-sided")
    rng = np.random.default_rng(2)
    twin = EPCoreTwin(s)
    regs = Registers.from_spec(s, train=True, lr_shift=7, beta_shift=0)
    x = rng.integers(0, 256, size=(1, 6))
    a = [rng.integers(0, 256, size=(1, n)) for n in s.layers[1:]]
    b = [rng.integers(0, 256, size=(1, n)) for n in s.layers[1:]]
    la, lb = [x] + a, [x] + b
    exact, k = {}, {}
    for l in range(s.n_layers):
        k[f"w{l}"] = s.update_shift(l, regs.lr_shift, regs.beta_shift, False)
        pre_a, pre_b = la[l][0], lb[l][0]
        exact[f"w{l}"] = np.outer(lb[l + 1][0], pre_b) - np.outer(la[l + 1][0], pre_a)
        k[f"b{l}"] = s.bias_update_shift(l, regs.lr_shift, regs.beta_shift, False)
        exact[f"b{l}"] = (lb[l + 1][0] - la[l + 1][0]) << s.state_bits
    n = 4000
    total = {name: np.zeros(v.shape) for name, v in exact.items()}
    for _ in range(n):
        twin.weights = {name: np.zeros_like(w) for name, w in twin.weights.items()}
        twin.update(x, a, b, regs)
        for name, w in twin.weights.items():
            lo = exact[name] >> k[name]
            assert np.all((w == lo) | (w == lo + 1)), name
            total[name] += w
    fractional = 0
    for name, v in exact.items():
        target = v / 2.0 ** k[name]
        p = target - np.floor(target)
        sigma = np.sqrt(p * (1 - p) / n)
        mean = total[name] / n
        assert np.all(np.abs(mean - target) <= 4 * sigma + 1e-12), name
        frac = p > 0.05
        assert np.all(mean[frac] - np.floor(target[frac]) > 4 * sigma[frac]), name  # differs from floor
        fractional += int(frac.sum())
    assert fractional > 20
    assert twin.prng.draws == n * sum(d for _, d in s.update_draws())


def test_random_sign_picks_both_signs_and_matches_the_one_sided_update():
    """The random-sign estimator: the sign is bit 31 of lane P − 1 of one draw per sample; +β trains
    exactly like one-sided, −β runs the −β phase and updates with (s^0 − s^−β)."""
    from golden.prng import XorshiftBank

    s = EPCoreSpec(layers=(12, 6, 3), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                   estimator="random-sign", seed=99)
    rng = np.random.default_rng(4)
    w0 = init_weights(s, 4)
    twin = EPCoreTwin(s, w0)
    regs = Registers.from_spec(s, train=True, T1=8, T2=4, beta_shift=0, lr_shift=3)
    assert regs.random_sign and regs.estimator == "random-sign" and regs.ctrl_word() == 0b1001
    ref = XorshiftBank(s.prng_spec())
    signs = []
    for _ in range(12):
        x, y = rng.integers(0, 256, size=12), int(rng.integers(0, 3))
        before = {k: v.copy() for k, v in twin.weights.items()}
        rec = twin.train_sample(x, y, regs)
        neg = bool(int(ref.next()[s.lanes - 1]) >> 31)
        signs.append(neg)
        assert list(rec.phases) == ([0, 2] if neg else [0, 1])
        other = EPCoreTwin(s, before)
        if neg:
            other.update(x[None], rec.minus, rec.free, regs)
        else:
            other.update(x[None], rec.free, rec.plus, Registers.from_spec(s, train=True, symmetric=False,
                                                                        random_sign=False, lr_shift=3, beta_shift=0))
        for k in before:
            assert np.array_equal(other.weights[k], twin.weights[k])
    assert any(signs) and not all(signs)
    assert twin.prng.draws == 12


def test_registers_for_randomness():
    plain = EPCoreSpec(layers=(20, 7, 3), lanes=4)
    with pytest.raises(ValueError, match="random_sign=True needs a core with a PRNG"):
        Registers.from_spec(plain, random_sign=True).check(plain)
    s = EPCoreSpec(layers=(20, 7, 3), lanes=4, update_rounding="stochastic")
    r = Registers.from_spec(s, random_sign=True)
    r.check(s)
    assert r.estimator == "symmetric"  # the spec's estimator: REG_CTRL bit 1 wins over bit 3
    r.symmetric = False
    assert r.estimator == "random-sign" and r.ctrl_word() == 0b1000
    assert not Registers.from_spec(EPCoreSpec(layers=(20, 7, 3), lanes=4, estimator="random-sign",
                                              training=False)).random_sign
    twin = EPCoreTwin(s)
    twin.prng.take(3)
    twin.reseed(s.seed)
    assert twin.prng.draws == 0
    with pytest.raises(ValueError, match=r"seed must be in 0..2\^32-1"):
        twin.reseed(1 << 32)


@pytest.mark.parametrize("mode", ["floor", "half_up"])
def test_amaranth_shift_round_and_saturate_equal_spec_exhaustively(mode):
    """Every 8-bit input × every shift 0..5 (a variable barrel shift) and constant shifts."""
    m = Module()
    x = Signal(signed(8))
    k = Signal(range(6))
    var = Signal(signed(10))
    const = [Signal(signed(10), name=f"c{s}") for s in (-1, 0, 2, 4)]
    sat = Signal(signed(6))
    usat = Signal(unsigned(4))
    ssat = Signal(signed(5))
    m.d.comb += var.eq(hfixed.shift_round(x, k, mode, 10))
    for sh, c in zip((-1, 0, 2, 4), const, strict=True):
        m.d.comb += c.eq(hfixed.shift_round(x, sh, mode, 10))
    m.d.comb += [sat.eq(hfixed.saturate(x, -20, 17, 6)), usat.eq(hfixed.saturate(x, 0, 15, 4)),
                 ssat.eq(hfixed.saturate(x, -16, 15, 5))]
    bad = []

    async def bench(ctx):
        for xv in range(-128, 128):
            ctx.set(x, xv)
            for kv in range(6):
                ctx.set(k, kv)
                await ctx.delay(1e-9)
                if ctx.get(var) != sfixed.shift_round(xv, kv, mode):
                    bad.append(("var", xv, kv))
            for sh, c in zip((-1, 0, 2, 4), const, strict=True):
                if ctx.get(c) != sfixed.shift_round(xv, sh, mode):
                    bad.append(("const", xv, sh))
            if (ctx.get(sat) != sfixed.saturate(xv, -20, 17) or ctx.get(usat) != sfixed.saturate(xv, 0, 15)
                    or ctx.get(ssat) != sfixed.saturate(xv, -16, 15)):
                bad.append(("sat", xv))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert bad == []


# ---------------------------------------------------------------------------------------- spec
@pytest.mark.parametrize("kwargs, match", [
    (dict(layers=(784, 10)), "at least one hidden layer"),
    (dict(layers=(784, 0, 10)), "layers entries must be a positive integer, not 0"),
    (dict(lanes=0), "lanes must be a positive integer, not 0"),
    (dict(weight_bits=(8, 8, 8)), r"weight_bits must have 1 or 2 entries \(one per connection\), not 3"),
    (dict(activation_rounding="stochastic"), "activation_rounding must be one of"),
    (dict(update_rounding="nearest"), "update_rounding must be one of"),
    (dict(update_rounding="stochastic", state_bits=16, input_bits=16),
     r"update_rounding='stochastic' draws k random bits .* reaches 40 .*allowed: k <= 32"),
    (dict(estimator="random"), r"estimator must be one of \('one-sided', 'symmetric', 'random-sign'\), not 'random'"),
    (dict(seed=1 << 32), r"seed must be in 0..2\^32-1 \(the seed register's width\), not 4294967296"),
    (dict(seed=-1), "seed must be a non-negative integer, not -1"),
    (dict(T1=0), "T1 must be a positive integer, not 0"),
    (dict(T1=5000, step_bits=12), "does not fit step_bits=12"),
    (dict(beta_shift=5), "beta_shift=5 exceeds beta_shift_max=4"),
    (dict(weight_frac=(1,)), "beta_shift_max=4 exceeds what the output layer's accumulator"),
    (dict(weight_frac=(14,), weight_bits=(16,)), "too fine for an exact update shift"),
    (dict(bias_frac=(40,), training=False), r"the accumulators would need \d+ bits \(> 48\)"),
])
def test_spec_validation_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EPCoreSpec(**kwargs)


def test_spec_round_trips_and_digest():
    s = EPCoreSpec(layers=(20, 7, 3), lanes=4, weight_bits=(8, 10), weight_frac=(6, 8))
    assert EPCoreSpec.from_json(s.to_json()) == s
    assert EPCoreSpec.from_toml(s.to_toml()) == s
    assert s.digest() == EPCoreSpec.from_toml(s.to_toml()).digest()
    assert s.digest() != EPCoreSpec(layers=(20, 7, 3), lanes=8).digest()
    with pytest.raises(ValueError, match=r"unknown EP core spec fields \['width'\]"):
        EPCoreSpec.from_dict({"width": 3})


def test_existing_specs_keep_their_digest_and_new_options_change_it():
    """The randomness options are new values of existing fields: old specs keep their digest (the
    value below is the default spec's digest before issue 5), specs using them get new ones."""
    base = EPCoreSpec()
    assert base.digest() == "a52b78a0670a9d158a13b3e592c62f0ce954f89634e0421235a672fbe2ea97b6"
    assert not base.uses_prng
    digests = {base.digest()}
    for kw in (dict(update_rounding="stochastic"), dict(estimator="random-sign"),
               dict(update_rounding="stochastic", estimator="random-sign")):
        s = EPCoreSpec(**kw)
        assert s.uses_prng
        assert EPCoreSpec.from_json(s.to_json()) == s and EPCoreSpec.from_toml(s.to_toml()) == s
        digests.add(s.digest())
    assert len(digests) == 4
    # an inference-only core never draws random bits: no PRNG whatever the update options say
    assert not EPCoreSpec(training=False, update_rounding="stochastic", estimator="random-sign").uses_prng


@pytest.mark.parametrize("lanes", [1, 3, 16, 64])
def test_prng_spec_of_the_core(lanes):
    s = EPCoreSpec(layers=(20, 7, 3), lanes=lanes, update_rounding="stochastic", seed=0xABCDEF)
    p = s.prng_spec()
    assert (p.width, p.lanes, p.seed) == (32, lanes, 0xABCDEF) and s.prng_spec(5).seed == 5
    assert p.jump & (p.jump - 1) == 0 and lanes * p.jump <= (1 << 32) - 2 < lanes * 2 * p.jump
    assert s.sign_lane == lanes - 1
    assert s.update_draws() == [("w0", 7 * s.tiles(0)), ("w1", 3 * s.tiles(1)), ("b0", s.tiles(1)), ("b1", s.tiles(2))]


def test_accumulator_width_holds_the_worst_case():
    s = EPCoreSpec(layers=(784, 500, 10), lanes=16)
    for k in (1, 2):
        assert s.acc_bound(k) < 1 << (s.acc_bits(k) - 1)
    # worst case of layer 1: every weight at its most negative value, every input at its maximum
    worst = 784 * (1 << 7) * 255 << s.bottom_up_shift(1)
    assert s.acc_bound(1) >= worst


def test_roofline_matches_design_formula():
    s = EPCoreSpec(layers=(784, 500, 10), lanes=16, T1=30, T2=10)
    r = s.roofline(training=True)
    assert r["A"] == 784 * 500 + (30 + 2 * 10) * 2 * 500 * 10
    assert r["U"] == 784 * 500 + 500 * 10
    assert r["cycles"] == (r["A"] + r["U"]) / 16
    assert s.roofline(training=False)["A"] == 784 * 500 + 30 * 2 * 500 * 10


def test_payload_packing():
    s = EPCoreSpec(layers=(20, 7, 3), lanes=4)
    f = s.input_fields()
    word = pack_fields(f, {"pixels[0]": 1, "pixels[3]": 255, "label": 2})
    assert word == 1 | (255 << 24) | (2 << 32)
    assert unpack_fields(f, word)["pixels[3]"] == 255
    with pytest.raises(ValueError, match="does not fit 8 unsigned bits"):
        pack_fields(f, {"pixels[1]": 256})


# ---------------------------------------------------------------------------------------- twin
def test_memory_image_round_trip_and_padding():
    s = EPCoreSpec(layers=(13, 6, 5, 3), lanes=4, weight_bits=(6, 8, 10), weight_frac=(5, 6, 7), bias_bits=12)
    w = init_weights(s, 3)
    rng = np.random.default_rng(0)
    for k in w:
        lo, hi = s.element_range(k)
        w[k] = rng.integers(lo, hi, size=w[k].shape, endpoint=True)
    words = pack_memory(s, w)
    assert len(words) == s.memory_words
    back = unpack_memory(s, words)
    for k in w:
        assert np.array_equal(back[k], w[k])
    # the last tile of w0's first row holds 13 - 12 = 1 real weight; the other lanes are zero
    last = words[s.tiles(0) - 1]
    assert last >> s.word_elem_bits == 0


def test_twin_rejects_bad_inputs():
    s = EPCoreSpec(layers=(20, 7, 3), lanes=4)
    twin = EPCoreTwin(s)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 20\)"):
        twin.infer(np.zeros((2, 19), np.int64))
    with pytest.raises(ValueError, match="unsigned 8-bit"):
        twin.infer(np.full((1, 20), 256))
    with pytest.raises(ValueError, match="T1 must be in 1..4095"):
        twin.infer(np.zeros((1, 20), np.int64), Registers.from_spec(s, T1=0))
    with pytest.raises(ValueError, match=r"weights\['w0'\] has values outside"):
        EPCoreTwin(s, {**init_weights(s), "w0": np.full((7, 20), 1000)})
    with pytest.raises(ValueError, match="train_sample needs regs.train=True"):
        twin.train_sample(np.zeros(20, np.int64), 0, Registers.from_spec(s))


def test_twin_nudge_moves_output_towards_label():
    """A positive β never lowers the label's output state and a negative one never raises it
    (a state clipped far below zero may not move at all)."""
    s = EPCoreSpec(layers=(20, 12, 4), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20)
    twin = EPCoreTwin(s, init_weights(s, 1))
    regs = Registers.from_spec(s, train=True, beta_shift=0, lr_shift=15, T1=20, T2=8)
    rng = np.random.default_rng(1)
    ups = downs = 0
    for _ in range(10):
        x, label = rng.integers(0, 256, size=20), int(rng.integers(0, 4))
        rec = twin.train_sample(x, label, regs)
        free, plus, minus = (r[-1][0, label] for r in (rec.free, rec.plus, rec.minus))
        assert minus <= free <= plus
        ups += plus > free
        downs += minus < free
    assert ups > 0 and downs > 0


# ---------------------------------------------------------------------------------------- images / build
def test_image_write_load_and_refusals(tmp_path):
    s = EPCoreSpec(layers=(20, 7, 3), lanes=4)
    w = init_weights(s, 0)
    write_image(tmp_path / "img", s, w)
    s2, w2, manifest = load_image(tmp_path / "img")
    assert s2 == s and all(np.array_equal(w[k], w2[k]) for k in w)
    hexfile = tmp_path / "img" / "memory.hex"
    lines = hexfile.read_text().splitlines()
    lines[0] = "f" * len(lines[0])
    hexfile.write_text("\n".join(lines) + "\n")
    with pytest.raises(ExportError, match="memory.hex does not match"):
        load_image(tmp_path / "img")
    write_image(tmp_path / "img", s, w)
    m = json.loads((tmp_path / "img" / "manifest.json").read_text())
    m["spec"]["lanes"] = 8
    (tmp_path / "img" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match="manifest_sha256 .* does not match its fields"):  # an edited field
        load_image(tmp_path / "img")
    from golden.export import manifest_digest

    m["manifest_sha256"] = manifest_digest(m)  # a consistent manifest is still checked against its spec
    (tmp_path / "img" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match="spec_digest .* does not match its spec"):
        load_image(tmp_path / "img")


def test_hdl_build_writes_verilog_and_refuses_foreign_weights(tmp_path):
    from hdl.build import main

    s = EPCoreSpec(layers=(20, 7, 3), lanes=4)
    (tmp_path / "s.toml").write_text(s.to_toml())
    write_image(tmp_path / "img", s, init_weights(s, 0))
    assert main(["ep", "--spec", str(tmp_path / "s.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "b")]) == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["spec_digest"] == s.digest() and "memory.hex" in m["outputs"]
    verilog = (tmp_path / "b" / "ep_core.v").read_text()
    assert "module ep_core" in verilog and "inp__payload" in verilog
    names = {p["name"] for p in m["ports"]}
    assert {"inp__valid", "out__payload", "wcmd__ready", "wrsp__payload", "dump__valid", "reg__rdata"} <= names
    other = EPCoreSpec(layers=(20, 7, 3), lanes=8)
    (tmp_path / "o.toml").write_text(other.to_toml())
    assert main(["ep", "--spec", str(tmp_path / "o.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "b2")]) == 2
    assert not (tmp_path / "b2").exists()


def test_hdl_build_cli_help():
    out = subprocess.run([sys.executable, "-m", "hdl.build", "--help"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "ep" in out.stdout
    out = subprocess.run([sys.executable, "-m", "hdl.build", "list"], capture_output=True, text=True, cwd=REPO)
    assert "fixed-point EP core" in out.stdout


@pytest.mark.parametrize("kw", [dict(), dict(layers=(30, 12, 5), lanes=4, weight_bits=(2,), weight_frac=(3,),
                                             weight_kind="ternary", training=False, beta_shift_max=2),
                                dict(activation_rounding="floor", weight_bits=(6,), weight_frac=(7,))])
def test_c1_saturation_is_exact(kw):
    """Storing c1 saturated to spec.c1_range() gives layer 1 the same state for every top-down term."""
    from golden.fixed import shift_round

    s = EPCoreSpec(**kw)
    lo, hi = s.c1_range()
    assert s.c1_bits <= s.acc_bits(1)
    b = s.acc_bound(1)
    act, top = s.activation_shift(1), (1 << s.state_bits) - 1
    wu = -s.element_range("w1")[0]
    td = s.layers[2] * wu * top << s.top_down_shift(1)
    rng = np.random.default_rng(0)
    c1 = np.concatenate([rng.integers(-b, b + 1, 20000), np.arange(lo - 50, lo + 50), np.arange(hi - 50, hi + 50)])
    t = rng.integers(-td, td + 1, len(c1))
    t[:200] = td
    t[200:400] = -td

    def state(v):
        return np.clip(shift_round(v, act, s.activation_rounding), 0, top)

    assert (state(c1 + t) == state(np.clip(c1, lo, hi) + t)).all()
    # and the range is tight enough to matter: narrower than the accumulator for a real layer
    if not kw:
        assert s.c1_bits < s.acc_bits(1)
