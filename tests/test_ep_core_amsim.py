"""EP core RTL == twin in the Amaranth simulator (the fast tier): states after every phase,
predictions, and all weights and biases after every training step, with and without random stalls."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.ep_core import EPCoreTwin, Registers, unpack_memory
from golden.ep_core import random_weights as scaled_weights
from hdl.ep_core import EPCore
from hdl.ep_core_host import AmaranthHost, dump_to_states
from spec.ep_core import REG_CTRL, REG_CYCLES, REG_SAMPLES, REG_SEED, REG_SPEC_ID, REG_STATUS, EPCoreSpec


def run_rtl(spec, weights, xs, ys, regs_inf, regs_tr, n_inf, n_train, *, seed=0, idle=0.0, stall=0.0,
            register_reads=True, **core_kw):
    dut = EPCore(spec, register_reads=register_reads, **core_kw)
    twin = EPCoreTwin(spec, weights)
    res: dict = {}

    async def bench(ctx):
        host = AmaranthHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        res["spec_id"] = await host.read_reg(ctx, REG_SPEC_ID)
        await host.load_words(ctx, twin.memory_words())
        res["readback"] = await host.read_words(ctx)
        await host.set_regs(ctx, regs_inf)
        res["inf"] = []
        for i in range(n_inf):
            await host.send_sample(ctx, xs[i].tolist(), int(ys[i]))
            d = await host.recv_dump(ctx) if regs_inf.dump else None
            res["inf"].append((await host.recv_pred(ctx), d))
        res["cycles_inf"] = await host.read_reg(ctx, REG_CYCLES)
        await host.set_regs(ctx, regs_tr)
        res["train"] = []
        for i in range(n_train):
            await host.send_sample(ctx, xs[i].tolist(), int(ys[i]))
            dumps = [await host.recv_dump(ctx) for _ in range(3 if regs_tr.symmetric else 2)]
            pred = await host.recv_pred(ctx)
            res["train"].append((pred, dumps, await host.read_words(ctx)))
        res["samples"] = await host.read_reg(ctx, REG_SAMPLES)
        res["status"] = await host.read_reg(ctx, REG_STATUS)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def check_against_twin(spec, weights, n_inf=2, n_train=3, *, symmetric=True, seed=0, idle=0.0, stall=0.0,
                       T1=7, T2=3, beta_shift=0, lr_shift=0, register_reads=True, **core_kw):
    """Run the RTL and the twin side by side; return counts that show the check was not vacuous."""
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, 1 << spec.input_bits, size=(max(n_inf, n_train), spec.layers[0]))
    ys = rng.integers(0, spec.n_classes, size=len(xs))
    regs_inf = Registers.from_spec(spec, T1=T1, dump=True, beta_shift=beta_shift, lr_shift=lr_shift)
    regs_tr = Registers.from_spec(spec, T1=T1, T2=T2, train=True, dump=True, symmetric=symmetric,
                                  beta_shift=beta_shift, lr_shift=lr_shift)
    res = run_rtl(spec, weights, xs, ys, regs_inf, regs_tr, n_inf, n_train, seed=seed, idle=idle, stall=stall,
                  register_reads=register_reads, **core_kw)
    twin = EPCoreTwin(spec, weights)
    start = {k: v.copy() for k, v in twin.weights.items()}
    assert res["spec_id"] == spec.spec_id
    assert res["readback"] == twin.memory_words()
    preds, free = twin.infer(xs[:n_inf], regs_inf)
    for i, (pred, dump) in enumerate(res["inf"]):
        assert pred == preds[i], f"inference sample {i}: prediction {pred} != twin {preds[i]}"
        assert dump["phase"] == 0
        assert dump_to_states(spec, dump) == [f[i].tolist() for f in free], f"inference sample {i}: free states"
    stats = {"nonzero_states": sum(int((f != 0).sum()) for f in free),
             "clipped_states": sum(int(((f == 0) | (f == (1 << spec.state_bits) - 1)).sum()) for f in free),
             "weight_changes": 0}
    for i, (pred, dumps, words) in enumerate(res["train"]):
        before = {k: v.copy() for k, v in twin.weights.items()}
        rec = twin.train_sample(xs[i], int(ys[i]), regs_tr)
        assert pred == rec.pred, f"training sample {i}: prediction"
        assert [d["phase"] for d in dumps] == list(rec.phases), f"training sample {i}: phases"
        for j, dump in zip(rec.phases, dumps, strict=True):
            assert dump_to_states(spec, dump) == [s[0].tolist() for s in rec.phases[j]], \
                f"training sample {i}: states after phase {j}"
        got = unpack_memory(spec, words)
        for k in got:
            assert np.array_equal(got[k], twin.weights[k]), f"training sample {i}: {k} after the update"
        stats["weight_changes"] += sum(int((twin.weights[k] != before[k]).sum()) for k in before)
    stats["saturated_weights"] = sum(int(((twin.weights[k] == spec.element_range(k)[0])
                                          | (twin.weights[k] == spec.element_range(k)[1])).sum()) for k in start)
    assert res["samples"] == n_inf + n_train and res["status"] == 0
    assert res["cycles_inf"] > 0
    stats["cycles_inf"] = res["cycles_inf"]
    return stats


TRAIN_FMT = dict(weight_bits=(16,), weight_frac=(12,), bias_bits=20, bias_frac=(12,))

CASES = {
    # name: (spec kwargs, gain)
    "2layer-P4": (dict(layers=(20, 7, 3), lanes=4, **TRAIN_FMT), 1.0),
    "3layer-P3-odd": (dict(layers=(13, 6, 5, 3), lanes=3, **TRAIN_FMT, update_rounding="half_up"), 1.0),
    "4layer-P2": (dict(layers=(9, 11, 4, 2, 5), lanes=2, **TRAIN_FMT, activation_rounding="floor"), 1.0),
    "P-wider-than-layers": (dict(layers=(5, 3, 2), lanes=8, **TRAIN_FMT), 1.0),
    "P1": (dict(layers=(6, 4, 3), lanes=1, **TRAIN_FMT), 1.0),
    "mixed-widths": (dict(layers=(11, 9, 4), lanes=4, weight_bits=(12, 16), weight_frac=(9, 10), bias_bits=14,
                          beta_shift_max=2, bias_frac=(8, 10), input_bits=6, state_bits=7), 1.0),
    # 6-bit weights/biases with large updates: the update's saturation and the clip of ρ both act
    "saturating": (dict(layers=(16, 8, 4), lanes=4, weight_bits=(6,), weight_frac=(7,), bias_bits=6,
                        bias_frac=(7,), beta_shift_max=2), 1.5),
}


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "random-stalls"])
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "one-sided"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rtl_matches_twin(name, symmetric, stalls):
    kwargs, gain = CASES[name]
    spec = EPCoreSpec(**kwargs)
    seed = zlib.crc32(f"{name}/{symmetric}/{stalls}".encode()) % 1000  # stable across runs (not hash())
    weights = scaled_weights(spec, np.random.default_rng(seed), gain)
    # the 5-3-2 net moves few weights per sample: more samples keep the weight check from being vacuous
    n_train = 6 if name == "P-wider-than-layers" else 3
    stats = check_against_twin(spec, weights, n_train=n_train, symmetric=symmetric, seed=seed,
                               idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0,
                               beta_shift=0 if name != "saturating" else 2, lr_shift=0)
    assert stats["nonzero_states"] > 0
    if name == "saturating":
        assert stats["clipped_states"] > 0 and stats["saturated_weights"] > 0
    else:
        assert stats["weight_changes"] > 5, stats  # the weight comparison is not vacuous


@pytest.mark.parametrize("name", ["2layer-P4", "3layer-P3-odd", "saturating"])
def test_core_without_the_read_stage_matches_twin(name):
    """register_reads=False (memories read straight into the operand multiplexers): same results, with stalls."""
    kwargs, gain = CASES[name]
    spec = EPCoreSpec(**kwargs)
    seed = zlib.crc32(f"{name}/no-read-stage".encode()) % 1000
    weights = scaled_weights(spec, np.random.default_rng(seed), gain)
    stats = check_against_twin(spec, weights, symmetric=True, seed=seed, idle=0.3, stall=0.3,
                               beta_shift=0 if name != "saturating" else 2, register_reads=False)
    assert stats["nonzero_states"] > 0 and stats["weight_changes"] > 5, stats


# weight read stages (EPCore weight_read_stages, hdl.kit.weights.banked_memory): small banks so that the small
# nets' memories span several of them
STAGED = {"1 stage, banks of 4": dict(weight_read_stages=1, weight_bank_words=4),
          "2 stages, banks of 2": dict(weight_read_stages=2, weight_bank_words=2)}


@pytest.mark.parametrize("stages", sorted(STAGED))
@pytest.mark.parametrize("name", ["2layer-P4", "3layer-P3-odd", "4layer-P2"])
def test_core_with_weight_read_stages_matches_twin(name, stages):
    """Weight read stages: the same states, predictions and weights as the twin, with stalls; with one
    more cycle per stage and drain (inference: a drain after c1, after every middle layer's partial sums
    and after every step)."""
    kwargs, gain = CASES[name]
    spec = EPCoreSpec(**kwargs)
    seed = zlib.crc32(f"{name}/{stages}".encode()) % 1000
    weights = scaled_weights(spec, np.random.default_rng(seed), gain)
    stats = check_against_twin(spec, weights, symmetric=True, seed=seed, idle=0.3, stall=0.3, **STAGED[stages])
    assert stats["nonzero_states"] > 0 and stats["weight_changes"] > 5, stats
    base = check_against_twin(spec, weights, n_train=0, seed=seed)["cycles_inf"]
    staged = check_against_twin(spec, weights, n_train=0, seed=seed, **STAGED[stages])["cycles_inf"]
    drains = 1 + 7 * (spec.n_layers - 1)  # T1 = 7 steps, each with a drain per middle layer and one at its end
    assert staged == base + STAGED[stages]["weight_read_stages"] * drains, (staged, base)


@pytest.mark.parametrize("register_reads", [True, False], ids=["read-stage", "no-read-stage"])
def test_inference_only_core_matches_twin(register_reads):
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, training=False)
    rng = np.random.default_rng(3)
    weights = scaled_weights(spec, rng, 1.0)
    xs = rng.integers(0, 256, size=(4, 20))
    ys = rng.integers(0, 3, size=4)
    regs = Registers.from_spec(spec, T1=9, dump=True)
    res = run_rtl(spec, weights, xs, ys, regs, Registers.from_spec(spec), 4, 0, register_reads=register_reads)
    twin = EPCoreTwin(spec, weights)
    preds, free = twin.infer(xs, regs)
    assert [p for p, _ in res["inf"]] == preds.tolist()
    for i, (_, dump) in enumerate(res["inf"]):
        assert dump_to_states(spec, dump) == [f[i].tolist() for f in free]


def test_cycles_match_the_schedule():
    """The cycle counter reports the sample's compute latency, close to the issued micro-ops."""
    spec = EPCoreSpec(layers=(32, 16, 4), lanes=4)
    rng = np.random.default_rng(0)
    weights = scaled_weights(spec, rng, 1.0)
    xs, ys = rng.integers(0, 256, size=(1, 32)), np.array([1])
    regs = Registers.from_spec(spec, T1=10)
    res = run_rtl(spec, weights, xs, ys, regs, Registers.from_spec(spec), 1, 0)
    ops = spec.layers[1] * spec.tiles(0) + 10 * (2 * spec.layers[2] * spec.tiles(1))
    assert ops <= res["cycles_inf"] <= ops + 10 * 14 + 30, (res["cycles_inf"], ops)


# ------------------------------------------------------------------------------ shared randomness (issue 5)
def run_program(spec, weights, program, *, seed=0, idle=0.0, stall=0.0):
    """Drive the RTL through ``program``: ("regs", Registers), ("reseed", seed), ("infer"|"train", x, y)
    or ("train", x, y, seed): REG_SEED written in the very cycle the sample's last beat is offered.
    Returns one observation per entry: the CTRL/SEED read-back, or (pred, dumps, weight words)."""
    dut = EPCore(spec)
    words0 = EPCoreTwin(spec, weights).memory_words()
    out: list = []

    async def bench(ctx):
        host = AmaranthHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        await host.load_words(ctx, words0)
        regs = None
        for item in program:
            if item[0] == "regs":
                regs = item[1]
                await host.set_regs(ctx, regs)
                out.append(await host.read_reg(ctx, REG_CTRL))
            elif item[0] == "reseed":
                await host.reseed(ctx, item[1])
                out.append(await host.read_reg(ctx, REG_SEED))
            elif len(item) == 4:
                _, x, y, seed_now = item
                beats = host.sample_beats(x.tolist(), int(y))
                for b in beats[:-1]:
                    await host.put(ctx, dut.inp, b)
                ctx.set(dut.inp.payload.as_value(), beats[-1])
                ctx.set(dut.inp.valid, 1)
                ctx.set(dut.reg.addr, REG_SEED)
                ctx.set(dut.reg.wdata, seed_now)
                ctx.set(dut.reg.we, 1)
                *_, taken = await ctx.tick().sample(dut.inp.ready)
                ctx.set(dut.reg.we, 0)
                if not taken:
                    await ctx.tick().until(dut.inp.ready)
                ctx.set(dut.inp.valid, 0)
                out.append((await host.recv_pred(ctx), [], await host.read_words(ctx)))
            else:
                _, x, y = item
                await host.send_sample(ctx, x.tolist(), int(y))
                n_dumps = (1 + (2 if regs.symmetric else 1) * int(regs.train)) if regs.dump else 0
                dumps = [await host.recv_dump(ctx) for _ in range(n_dumps)]
                pred = await host.recv_pred(ctx)
                out.append((pred, dumps, await host.read_words(ctx) if item[0] == "train" else None))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def _update_pair(rec):
    """(a, b) of the update from a training record: symmetric, random sign −β, or +β."""
    if 1 in rec.phases and 2 in rec.phases:
        return rec.minus, rec.plus
    if 2 in rec.phases:
        return rec.minus, rec.free
    return rec.free, rec.plus


def check_program(spec, weights, program, out):
    """Replay ``program`` on the twin and compare every observation with ``==``; return counts
    that show the comparison was not vacuous."""
    twin = EPCoreTwin(spec, weights)
    floor_spec = dataclasses.replace(spec, update_rounding="floor")
    stats = {"train": 0, "signs": set(), "weight_changes": 0, "not_floor": 0, "draws": 0}
    regs = None
    for n, (item, got) in enumerate(zip(program, out, strict=True)):
        where = f"program entry {n} ({item[0]})"
        if item[0] == "regs":
            regs = item[1]
            assert got == regs.ctrl_word(), where
        elif item[0] == "reseed":
            twin.reseed(item[1])
            assert got == item[1], where
        elif item[0] == "infer":
            d0 = twin.prng.draws
            preds, free = twin.infer(item[1][None], regs)
            assert twin.prng.draws == d0, "inference draws no random bits"
            assert got[0] == preds[0], where
            if regs.dump:
                assert [d["phase"] for d in got[1]] == [0]
                assert dump_to_states(spec, got[1][0]) == [f[0].tolist() for f in free], where
        else:
            x, y = item[1], item[2]
            if len(item) == 4:  # reseeded as the sample started: the seed applies to this sample
                twin.reseed(item[3])
            before = {k: v.copy() for k, v in twin.weights.items()}
            d0 = twin.prng.draws
            rec = twin.train_sample(x, int(y), regs)
            # draws of one sample: one for the random sign, one per update word for stochastic rounding
            expect = int(regs.estimator == "random-sign")
            if spec.update_rounding == "stochastic":
                expect += sum(n for _, n in spec.update_draws())
            assert twin.prng.draws - d0 == expect, where
            stats["draws"] += expect
            pred, dumps, words = got
            assert pred == rec.pred, where
            assert [d["phase"] for d in dumps] == (list(rec.phases) if regs.dump else []), f"{where}: phases"
            for ph, dump in zip(rec.phases if regs.dump else [], dumps, strict=True):
                assert dump_to_states(spec, dump) == [s[0].tolist() for s in rec.phases[ph]], f"{where}: phase {ph}"
            rtl = unpack_memory(spec, words)
            for k in rtl:
                assert np.array_equal(rtl[k], twin.weights[k]), f"{where}: {k} after the update"
            stats["train"] += 1
            if regs.estimator == "random-sign":
                stats["signs"].add(2 if 2 in rec.phases else 1)
            stats["weight_changes"] += sum(int((twin.weights[k] != before[k]).sum()) for k in before)
            # the same update with floor rounding: stochastic rounding must differ from it somewhere
            floor_twin = EPCoreTwin(floor_spec, before)
            a, b = _update_pair(rec)
            floor_twin.update(x[None].astype(np.int64), a, b, regs)
            stats["not_floor"] += sum(int((twin.weights[k] != floor_twin.weights[k]).sum()) for k in before)
    stats["final"] = twin.weights
    return stats


def restart_per_sample(spec, weights, program):
    """The twin's result if the PRNG restarted (reseeded from the seed register) at every training
    sample: the persistence the scenarios check must make a difference."""
    twin = EPCoreTwin(spec, weights)
    seed, regs = spec.seed, None
    for item in program:
        if item[0] == "regs":
            regs = item[1]
        elif item[0] == "reseed":
            seed = item[1]
        elif item[0] == "train":
            seed = item[3] if len(item) == 4 else seed
            twin.reseed(seed)
            twin.train_sample(item[1], int(item[2]), regs)
    return twin.weights


PRNG_CASES = {
    # name: spec kwargs
    "stochastic-random-sign-P4": dict(layers=(13, 6, 4), lanes=4, **TRAIN_FMT, update_rounding="stochastic",
                                      estimator="random-sign"),
    "stochastic-symmetric-3layer-P3": dict(layers=(13, 6, 5, 3), lanes=3, **TRAIN_FMT, update_rounding="stochastic",
                                           activation_rounding="floor", seed=0xC0FFEE),
    "random-sign-floor-P2": dict(layers=(9, 5, 3), lanes=2, **TRAIN_FMT, estimator="random-sign"),
    # P wider than every layer: samples are short, the reseeded bank needs P cycles to fill
    "stochastic-P8-wide": dict(layers=(5, 3, 2), lanes=8, **TRAIN_FMT, update_rounding="stochastic",
                               estimator="one-sided"),
}


def prng_program(spec, rng):
    xs = rng.integers(0, 1 << spec.input_bits, size=(24, spec.layers[0]))
    ys = rng.integers(0, spec.n_classes, size=24)
    common = dict(T1=6, T2=3, beta_shift=0, lr_shift=2, dump=True)
    rs = Registers.from_spec(spec, train=True, symmetric=False, random_sign=True, **common)
    sym = Registers.from_spec(spec, train=True, symmetric=True, random_sign=False, **common)
    one = Registers.from_spec(spec, train=True, symmetric=False, random_sign=False, **common)
    inf = Registers.from_spec(spec, train=False, random_sign=False, T1=6, dump=True)
    s = iter(range(24))

    def samples(kind, n):
        return [(kind, xs[i], ys[i]) for i in (next(s) for _ in range(n))]

    default = Registers.from_spec(spec, train=True, **common)
    return ([("regs", default)] + samples("train", 3) + [("regs", inf)] + samples("infer", 1)
            + [("regs", rs)] + samples("train", 4) + [("regs", sym)] + samples("train", 2)
            + [("reseed", 0x5EED_0001)] + [("regs", one)] + samples("train", 2)
            + [("regs", rs)] + samples("train", 3) + [("reseed", 0)] + samples("train", 2))


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "random-stalls"])
@pytest.mark.parametrize("name", sorted(PRNG_CASES))
def test_prng_scenarios_rtl_matches_twin(name, stalls):
    """Stochastic rounding and the random-sign estimator: RTL == twin (states after every phase,
    every weight and bias after every step) over runs of samples, estimator switches, inference in
    between and reseeds through REG_SEED; with random stalls on every stream."""
    spec = EPCoreSpec(**PRNG_CASES[name])
    assert spec.uses_prng
    rng = np.random.default_rng(sum(map(ord, name)))
    weights = scaled_weights(spec, rng, 1.0)
    program = prng_program(spec, rng)
    out = run_program(spec, weights, program, seed=7, idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0)
    stats = check_program(spec, weights, program, out)
    assert stats["train"] == 16 and stats["weight_changes"] > 50, stats
    assert stats["signs"] == {1, 2}, stats  # the random sign took both values
    if spec.update_rounding == "stochastic":
        assert stats["not_floor"] > 10, stats  # the random bits changed updates
        assert stats["draws"] >= 16 * spec.layers[1] * spec.tiles(0), stats
    restarted = restart_per_sample(spec, weights, program)
    assert any(not np.array_equal(restarted[k], stats["final"][k]) for k in restarted), \
        "the scenario cannot tell a persistent PRNG stream from one restarted per sample"


def test_prng_ctrl_and_seed_registers():
    """CTRL bit 3 exists only in cores with a PRNG (a plain core refuses the write: CTRL keeps its value and
    STATUS bit 1 is set); REG_SEED reads back what was written."""
    res = {}
    for name, spec in (("prng", EPCoreSpec(layers=(5, 3, 2), lanes=2, **TRAIN_FMT, update_rounding="stochastic")),
                       ("plain", EPCoreSpec(layers=(5, 3, 2), lanes=2, **TRAIN_FMT))):
        dut = EPCore(spec)

        async def bench(ctx, dut=dut, spec=spec, name=name):
            host = AmaranthHost(dut, spec)
            await host.write_reg(ctx, REG_CTRL, 0b1001)
            ctrl = await host.read_reg(ctx, REG_CTRL)
            status = await host.read_reg(ctx, REG_STATUS)
            await host.reseed(ctx, 0xFEDCBA98)
            res[name] = (ctrl, status, await host.read_reg(ctx, REG_SEED))

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
    assert res == {"prng": (0b1001, 0, 0xFEDCBA98), "plain": (0b0010, 0b10, 0xFEDCBA98)}


def test_reseed_right_before_a_short_sample():
    """A REG_SEED write directly before (or in the same cycle as) a sample's last beat, with a sample
    whose first draw comes sooner than the P cycles the bank needs to refill its lanes: the core
    holds the sample until the PRNG is seeded and primed, and the new seed applies to it."""
    spec = EPCoreSpec(layers=(3, 2, 2), lanes=64, **TRAIN_FMT, update_rounding="stochastic", estimator="random-sign")
    rng = np.random.default_rng(17)  # data whose updates round up somewhere (with the scrambled PRNG words)
    weights = scaled_weights(spec, rng, 1.0)
    xs, ys = rng.integers(0, 256, size=(6, 3)), rng.integers(0, 2, size=6)
    regs = Registers.from_spec(spec, train=True, T1=1, T2=1, beta_shift=0, lr_shift=0)
    program = [("regs", regs)]
    for i in range(6):
        if i % 2:
            program += [("train", xs[i], ys[i], 2000 + i)]
        else:
            program += [("reseed", 1000 + i % 3), ("train", xs[i], ys[i])]
    out = run_program(spec, weights, program)
    stats = check_program(spec, weights, program, out)
    assert stats["train"] == 6 and stats["signs"] == {1, 2} and stats["not_floor"] > 0, stats


# ------------------------------------------------------------------------------ wide cores (issue 14.4)
WIDE = {
    # P = 64 lanes on a net whose layers span two tiles (70 = 64 + 6, 66 = 64 + 2): padding lanes in every
    # memory word, the symmetric estimator and a plain update
    "P64": dict(layers=(70, 66, 10), lanes=64, **TRAIN_FMT),
    # the same with stochastic rounding and random signs (64 PRNG lanes) and two weight read stages
    "P64-stochastic-staged": dict(layers=(70, 66, 10), lanes=64, **TRAIN_FMT, update_rounding="stochastic",
                                  estimator="random-sign"),
}


@pytest.mark.parametrize("name", sorted(WIDE))
def test_wide_training_core_matches_twin(name):
    """A P = 64 training core (the ECP5-85F's lane count for fast training, docs/ep-core.md "Wide cores"):
    the same states, predictions and weights as the twin, with random stalls."""
    spec = EPCoreSpec(**WIDE[name])
    seed = zlib.crc32(name.encode()) % 1000
    weights = scaled_weights(spec, np.random.default_rng(seed), 1.0)
    core_kw = dict(weight_read_stages=2, weight_bank_words=32) if "staged" in name else {}
    stats = check_against_twin(spec, weights, n_inf=1, n_train=2, symmetric="stochastic" not in name, seed=seed,
                               idle=0.2, stall=0.2, T1=3, T2=2, **core_kw)
    assert stats["nonzero_states"] > 0 and stats["weight_changes"] > 100, stats
