"""The EqSpike core's ternary weight kind in RTL (hdl/eqspike.py, hdl/eqspike_kit/ternary.py) == the twin
(golden/eqspike/ternary.py) in the Amaranth simulator: weights as 2T2R cells in one
:class:`hdl.ternary_mem.TernaryWeightMemory` (the EP core's, reused), programmed on ``tcmd`` in address order,
read through its PCSA (add α / subtract α / skip per lane); the top-down copies follow the stored cells; the
memory's registers through ``REG_TMEM``; static faults == the twin's memory model."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator
from test_eqspike_core import (  # noqa: I001  (tests/ is on sys.path)
    infer_all,
    infer_with_counters,
    mismatches,
    sample_inputs,
    signal_products,
    sweep_cycles,
    words_read,
)

from golden.eqspike.ternary import configure_faults, pack_memory
from golden.eqspike.twin import EqSpikeTwin, init_weights
from hdl.eqspike import (
    REG_SAMPLES,
    REG_STATUS,
    REG_TMEM,
    STATUS_WCMD_ERROR,
    TMEM_NOWRITE,
    EqSpikeCore,
    tcmd_beats,
    tcmd_fields,
)
from hdl.eqspike_host import EqSpikeHost, pack
from spec import ternary as tm
from spec.eqspike import EqSpikeSpec
from spec.ternary import ctrl_value, rate_thresholds

CASES = {
    # two connections (one top-down copy), P dividing no layer
    "20-12-5-P4": dict(layers=(20, 12, 5), lanes=4, weight_frac=(3, 2)),
    # three connections (two top-down copies), odd P
    "24-9-7-4-P3": dict(layers=(24, 9, 7, 4), lanes=3, weight_frac=(1, 1, 1)),
}


def make_spec(name: str, **kw) -> EqSpikeSpec:
    return EqSpikeSpec(**{"training": False, "T1": 10, "weight_kind": "ternary", "weight_bits": (2,),
                          **CASES[name], **kw})


def ternary_weights(spec: EqSpikeSpec, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = init_weights(EqSpikeSpec(**{**spec.to_dict(), "weight_kind": "fixed", "fault_injection": False,
                                    "weight_bits": (8,), "weight_frac": (6,)}), seed, 4.0)
    out = {k: v for k, v in w.items() if k.startswith("b")}
    for l in range(spec.n_layers):
        out[f"w{l}"] = rng.choice([-1, 0, 1], size=spec.weight_shapes()[f"w{l}"], p=[0.35, 0.3, 0.35]).astype(np.int64)
    return out


class TernaryHost(EqSpikeHost):
    """EqSpikeHost plus the cell memory's program port (``tcmd``/``trsp``) and register window."""

    async def program(self, ctx, weights) -> None:
        tf = tcmd_fields(self.spec)
        for b in tcmd_beats(self.spec, weights):
            await self.put(ctx, self.dut.tcmd, pack([(b[k], w) for k, w in tf.items()]))
        L = self.spec.n_layers
        for l in range(L):
            for i in range(self.spec.layers[l + 1]):
                await self.write_element(ctx, L + l, i, 0, int(weights[f"b{l}"][i]))

    async def read_cells(self, ctx, addr: int) -> int:
        tf = tcmd_fields(self.spec)
        await self.put(ctx, self.dut.tcmd, pack([({"addr": addr}.get(k, 0), w) for k, w in tf.items()]))
        return await self.recv(ctx, self.dut.trsp)

    async def write_tmem(self, ctx, addr: int, value: int) -> None:
        await self.write_reg(ctx, REG_TMEM, addr | value << 5)

    async def read_tmem(self, ctx, addr: int) -> int:
        await self.write_reg(ctx, REG_TMEM, addr | TMEM_NOWRITE)
        return await self.read_reg(ctx, REG_TMEM)


def run_rtl(spec, weights, xs, *, seed=0, idle=0.0, stall=0.0, faults=None, readback=False):
    dut = EqSpikeCore(spec)
    res: dict = {"samples": []}

    async def bench(ctx):
        host = TernaryHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        if faults is not None:  # as golden.eqspike.ternary.configure_faults: registers, seed last, counter cleared
            ctrl, rz, rnz, fseed = faults
            await host.write_tmem(ctx, tm.REG_CTRL, ctrl)
            await host.write_tmem(ctx, tm.REG_RATE_ZERO, rz)
            await host.write_tmem(ctx, tm.REG_RATE_NONZERO, rnz)
            await host.write_tmem(ctx, tm.REG_SEED, fseed)
            await host.write_tmem(ctx, tm.REG_INJECTED, 0)
        await host.program(ctx, weights)
        res["injected"] = await host.read_tmem(ctx, tm.REG_INJECTED)
        res["tspec_id"] = await host.read_tmem(ctx, tm.REG_SPEC_ID)
        res["digest"] = await host.read_digest(ctx)
        if readback:
            res["readback"] = await host.read_weights(ctx)
            res["cells"] = [await host.read_cells(ctx, a) for a in range(spec.ternary_memory_spec().depth)]
        for x in xs:
            res["samples"].append(await infer_with_counters(host, ctx, x))
        res["reads"] = await host.read_tmem(ctx, tm.REG_READS)
        res["n"] = await host.read_reg(ctx, REG_SAMPLES)
        res["status"] = await host.read_reg(ctx, REG_STATUS)
        await host.write_element(ctx, 0, 0, 0, 1)  # a weight element write: refused on a ternary core
        res["status_after_wwrite"] = await host.read_reg(ctx, REG_STATUS)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def check(spec, twin, xs, res):
    L, up = spec.n_layers, 0
    for n, (x, got) in enumerate(zip(xs, res["samples"], strict=True)):
        rec = twin.infer(x)
        ph = rec.phases[0]
        want = {"pred": rec.pred, "states": ph.s[-1][0].tolist(), "spikes": sum(ph.spikes),
                "syn": ph.synaptic_events, "words": words_read(spec, ph.spikes)}
        assert {k: got[k] for k in want} == want, f"sample {n}"
        up += sum(ph.spikes[l] * spec.tiles(l + 1) for l in range(L))
    assert res["n"] == len(xs) and res["status"] == 0
    assert res["status_after_wwrite"] == STATUS_WCMD_ERROR
    states = np.array([r["states"] for r in res["samples"]])
    assert (states != 0).any() and len({tuple(r) for r in states}) > 1
    for r in res["samples"]:
        assert r["cycles"] == r["words"] + sweep_cycles(spec, spec.T1)  # the fixed kind's cycle model
    # one PCSA read per bottom-up row word (top-down words come from the mirrored copies) and per weight
    # element read on wcmd; raw read-backs on tcmd are not sensed (the memory's REG_READS)
    elems = sum(int(np.prod(spec.weight_shapes()[f"w{l}"])) for l in range(L)) if "readback" in res else 0
    assert res["reads"] == up + elems + spec.ternary_memory_spec().depth  # (+ the digest sweep: every word)
    assert res["digest"] == twin.digest()


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "random-stalls"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_ternary_rtl_matches_twin(name, stalls):
    spec = make_spec(name)
    seed = zlib.crc32(f"t/{name}/{stalls}".encode()) % 1000
    w = ternary_weights(spec, seed)
    xs = sample_inputs(spec, 6, seed)
    res = run_rtl(spec, w, xs, seed=seed, idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0,
                  readback=not stalls)
    twin = EqSpikeTwin(spec, w)
    check(spec, twin, xs, res)
    # == the fixed-point twin with the same values (weight_bits 2)
    fixed = EqSpikeTwin(EqSpikeSpec(**{**spec.to_dict(), "weight_kind": "fixed"}), w)
    assert mismatches(spec, fixed, xs, res) == []
    assert res["tspec_id"] == spec.ternary_memory_spec().spec_id and res["injected"] == 0
    if not stalls:
        for k in w:
            assert np.array_equal(res["readback"][k], w[k]), k
        from spec.ternary import pack_cells
        assert res["cells"] == [pack_cells([int(c) for c in row]) for row in pack_memory(spec, w)]


@pytest.mark.parametrize("kind", ["adjacent", "flip"])
def test_ternary_static_faults_match_twin(kind):
    spec = make_spec("24-9-7-4-P3", fault_injection=True)
    w = ternary_weights(spec, 11)
    xs = sample_inputs(spec, 5, 11)
    twin = EqSpikeTwin(spec, w)
    info = configure_faults(twin, w, 0.2, "static", kind, seed=7)
    assert info["injected"] > 0
    res = run_rtl(spec, w, xs, seed=3, idle=0.3, stall=0.3, readback=True,
                  faults=(ctrl_value("static", kind), info["rate_zero"], info["rate_nonzero"], 7))
    assert res["injected"] == info["injected"]
    stored = twin.weights
    assert any(not np.array_equal(stored[f"w{l}"], w[f"w{l}"]) for l in range(spec.n_layers))
    for k in w:
        assert np.array_equal(res["readback"][k], stored[k]), k
    assert res["cells"] == [int(sum(int(c) << (2 * i) for i, c in enumerate(row))) for row in twin.memory.cells]
    check(spec, twin, xs, res)


def test_hdl_build_ternary_has_no_multiplier_and_built_in_weights_infer(tmp_path):
    """python -m hdl.build eqspike builds a ternary spec (with a weight image: the cells and the top-down
    copies initialised); its Verilog multiplies no two signals (add/sub/skip lanes); the built-in core infers
    == the twin without a load."""
    from golden.eqspike.image import write_image
    from hdl.build import load_build_manifest, main

    spec = make_spec("24-9-7-4-P3", fault_injection=True)
    w = ternary_weights(spec, 4)
    (tmp_path / "spec.toml").write_text(spec.to_toml())
    write_image(tmp_path / "img", spec, w)
    assert main(["eqspike", "--spec", str(tmp_path / "spec.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "build")]) == 0
    m = load_build_manifest(tmp_path / "build")
    assert m["spec_digest"] == spec.digest() and "weights" in m["inputs"]
    text = (tmp_path / "build" / "eqspike_core.v").read_text()
    assert "module eqspike_core" in text and signal_products(text) == []
    assert signal_products(verilog.convert(EqSpikeCore(make_spec("20-12-5-P4")), name="x", emit_src=False)) == []

    xs = sample_inputs(spec, 3, 4)
    got = infer_all(EqSpikeCore(spec, weights=w),
                    lambda dut: TernaryHost(dut, spec, seed=1, idle_prob=0.2, stall_prob=0.2), xs)
    twin = EqSpikeTwin(spec, w)
    for x, (pred, states) in zip(xs, got, strict=True):
        rec = twin.infer(x)
        assert pred == rec.pred and states == rec.phases[0].s[-1][0].tolist()


def test_register_window_reaches_the_memory_registers():
    """REG_TMEM: select (TMEM_NOWRITE) and read, or write, the cell memory's registers; CTRL/rates read back."""
    spec = make_spec("20-12-5-P4", fault_injection=True)
    dut = EqSpikeCore(spec)
    got = {}

    async def bench(ctx):
        host = TernaryHost(dut, spec)
        got["ctrl0"] = await host.read_tmem(ctx, tm.REG_CTRL)
        await host.write_tmem(ctx, tm.REG_CTRL, ctrl_value("static", "flip"))
        await host.write_tmem(ctx, tm.REG_RATE_ZERO, 12345)
        await host.write_tmem(ctx, tm.REG_RATE_NONZERO, 1 << 24)
        got["ctrl"] = await host.read_tmem(ctx, tm.REG_CTRL)
        got["rz"] = await host.read_tmem(ctx, tm.REG_RATE_ZERO)
        got["rnz"] = await host.read_tmem(ctx, tm.REG_RATE_NONZERO)
        got["id"] = await host.read_tmem(ctx, tm.REG_SPEC_ID)
        got["status"] = await host.read_reg(ctx, REG_STATUS)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == {"ctrl0": 0, "ctrl": ctrl_value("static", "flip"), "rz": 12345, "rnz": 1 << 24,
                   "id": spec.ternary_memory_spec().spec_id, "status": 0}
    assert rate_thresholds(0.1, 0.3)[1] < 1 << 27  # the window's 27-bit values hold every rate


def test_ternary_block_readback_and_digest_match_twin():
    """A ternary core built with ``dump=True``: the block read-back (REG_DUMP, ``wdump``: the digest sweep's
    words, the cells through the PCSA) == the twin's stored weights under static faults, and REG_DIGEST too."""
    from hdl.eqspike import REG_DIGEST
    from hdl.eqspike_host import dump_to_weights

    spec = make_spec("20-12-5-P4", fault_injection=True)
    w = ternary_weights(spec, 21)
    twin = EqSpikeTwin(spec, w)
    info = configure_faults(twin, w, 0.15, "static", "adjacent", seed=3)
    dut = EqSpikeCore(spec, dump=True)
    got = {}

    async def bench(ctx):
        host = TernaryHost(dut, spec, seed=5, idle_prob=0.3, stall_prob=0.3)
        await host.write_tmem(ctx, tm.REG_CTRL, ctrl_value("static", "adjacent"))
        await host.write_tmem(ctx, tm.REG_RATE_ZERO, info["rate_zero"])
        await host.write_tmem(ctx, tm.REG_RATE_NONZERO, info["rate_nonzero"])
        await host.write_tmem(ctx, tm.REG_SEED, 3)
        await host.program(ctx, w)
        got["dump"] = await host.read_dump(ctx)
        got["digest"] = await host.read_reg(ctx, REG_DIGEST)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    back, pad = dump_to_weights(spec, got["dump"])
    stored = twin.weights
    assert pad == 0 and info["injected"] > 0
    assert any(not np.array_equal(stored[f"w{l}"], w[f"w{l}"]) for l in range(spec.n_layers))
    for k in w:
        assert np.array_equal(back[k], stored[k]), k
    assert got["digest"] == twin.digest()


def test_hdl_build_ternary_manifest_and_tcmd_image(tmp_path):
    """python -m hdl.build eqspike for a ternary spec: the manifest lists the cell memory (not wup{l}) and the
    mirrored wdn{l}, the tcmd/trsp payloads, the REG_TMEM window and the programming rule; with --weights it
    writes tcmd.hex (one beat a line, hashed in the manifest). A host that only reads the manifest and
    tcmd.hex programs a core built without weights, after static faults set through the window as the
    manifest says: raw cells, injected count and inference == the twin with the same faults."""
    from golden.eqspike.image import write_image
    from hdl.build import load_build_manifest, main

    spec = make_spec("24-9-7-4-P3", fault_injection=True)
    w = ternary_weights(spec, 8)
    (tmp_path / "spec.toml").write_text(spec.to_toml())
    write_image(tmp_path / "img", spec, w)
    assert main(["eqspike", "--spec", str(tmp_path / "spec.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "build")]) == 0
    m = load_build_manifest(tmp_path / "build")  # checks every output's hash, tcmd.hex included
    ms = spec.ternary_memory_spec()
    L = spec.n_layers
    assert set(m["weight_memories"]) == {"tmem"} | {f"wdn{l}" for l in range(1, L)}
    tmem = m["weight_memories"]["tmem"]
    assert tmem["words"] == ms.depth and tmem["bits"] == ms.word_bits == 2 * spec.lanes
    assert tmem["connections"] == {f"w{l}": {"base": spec.ternary_base(l), "words": spec.layers[l] * spec.tiles(l + 1)}
                                   for l in range(L)}
    assert m["payloads"]["tcmd"] == tcmd_fields(spec) and m["payloads"]["trsp"] == {"data": ms.word_bits}
    t = m["ternary"]
    assert t["memory"]["spec_id"] == ms.spec_id and t["memory"]["depth"] == ms.depth
    win = t["register_window"]
    assert win["register"] == REG_TMEM == m["registers"]["REG_TMEM"] and win["nowrite"] == TMEM_NOWRITE
    assert {k: win["registers"][k] for k in ("CTRL", "RATE_ZERO", "RATE_NONZERO", "SEED", "INJECTED", "READS")} == {
        "CTRL": tm.REG_CTRL, "RATE_ZERO": tm.REG_RATE_ZERO, "RATE_NONZERO": tm.REG_RATE_NONZERO, "SEED": tm.REG_SEED,
        "INJECTED": tm.REG_INJECTED, "READS": tm.REG_READS}
    prog = t["program"]
    assert prog["file"] == "tcmd.hex" and prog["beats"] == ms.depth and prog["fields"] == tcmd_fields(spec)
    lines = (tmp_path / "build" / "tcmd.hex").read_text().split()
    beats = [int(v, 16) for v in lines]
    tf = tcmd_fields(spec)
    assert beats == [pack([(b[k], n) for k, n in tf.items()]) for b in tcmd_beats(spec, w)]
    assert max(beats) < 1 << prog["payload_bits"] and len({len(v) for v in lines}) == 1
    # a build without weights: the same description, no programming image
    assert main(["eqspike", "--spec", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "b2")]) == 0
    m2 = load_build_manifest(tmp_path / "b2")
    assert m2["ternary"]["program"]["file"] is None and not (tmp_path / "b2" / "tcmd.hex").exists()
    assert m2["weight_memories"] == m["weight_memories"] and m2["payloads"] == m["payloads"]

    # a host: faults through the window, then the beats of tcmd.hex, then the biases
    twin = EqSpikeTwin(spec, w)
    info = configure_faults(twin, w, 0.2, "static", "flip", seed=5)
    assert info["injected"] > 0
    regs = win["registers"]
    writes = [(regs["CTRL"], ctrl_value("static", "flip")), (regs["RATE_ZERO"], info["rate_zero"]),
              (regs["RATE_NONZERO"], info["rate_nonzero"]), (regs["SEED"], 5), (regs["INJECTED"], 0)]
    dut = EqSpikeCore(spec)
    xs = sample_inputs(spec, 3, 8)
    got: dict = {"samples": []}

    async def bench(ctx):
        host = TernaryHost(dut, spec, seed=2, idle_prob=0.2, stall_prob=0.2)
        for a, v in writes:
            await host.write_reg(ctx, win["register"], a | v << 5)
        for b in beats:
            await host.put(ctx, dut.tcmd, b)
        for l in range(L):
            for i in range(spec.layers[l + 1]):
                await host.write_element(ctx, L + l, i, 0, int(w[f"b{l}"][i]))
        got["injected"] = await host.read_tmem(ctx, regs["INJECTED"])
        got["cells"] = [await host.read_cells(ctx, a) for a in range(ms.depth)]
        for x in xs:
            await host.send_pixels(ctx, x.tolist())
            got["samples"].append(await host.recv_result(ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got["injected"] == info["injected"]
    assert got["cells"] == [int(sum(int(c) << (2 * i) for i, c in enumerate(row))) for row in twin.memory.cells]
    for x, (pred, states) in zip(xs, got["samples"], strict=True):
        rec = twin.infer(x)
        assert pred == rec.pred and states == rec.phases[0].s[-1][0].tolist()
