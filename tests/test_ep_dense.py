"""The dense-MLP relaxation loop (golden/ep/dense.py) against the generic EPNet.step loop.

DenseRelax replays the generic step's float operations in the same order (same ATen kernels, same
operands, only written into preallocated buffers), so on one machine its states -- and everything
computed from them: updates, optimiser steps, the next batch -- are equal bit for bit; ``torch.equal``
is the right check here, not a tolerance.
"""

from __future__ import annotations

import pytest
import torch

from golden.ep import EPNet, NetSpec, mnist_mlp
from golden.ep.estimators import EPSchedule, apply_update, ep_step

SPECS = {
    "mnist-mlp": mnist_mlp(),  # the speed bench's network: 784-512-10, my_sigmoid, MSE
    "mse-deep-hardsig": NetSpec(kind="mlp", layers=(30, 16, 12, 5), activation="hard_sigmoid"),
    "ce-deep": NetSpec(kind="mlp", layers=(30, 16, 12, 5), loss="ce"),
    "ce-tanh": NetSpec(kind="mlp", layers=(30, 9, 4), loss="ce", activation="tanh"),
    "vf": NetSpec(kind="mlp", layers=(30, 16, 12, 5), connections="vf", activation="my_hard_sig"),
    "vf-same-update": NetSpec(kind="mlp", layers=(30, 16, 12, 5), connections="vf", same_update=True,
                              activation="ctrd_hard_sig"),
    "one-layer": NetSpec(kind="mlp", layers=(30, 5), activation="sigmoid"),
}


def _data(spec: NetSpec, n: int, batches: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batches, n, spec.layers[0]), generator=g)
    y = torch.randint(0, spec.n_classes, (batches, n), generator=g)
    return x, y


def _equal_lists(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_supports_only_dense_mlps():
    assert EPNet(mnist_mlp()).uses_dense_fast()
    conv = EPNet(NetSpec(kind="conv", in_shape=(1, 8, 8), channels=(2,), kernels=(3,), pools="m", fc=(3,)))
    assert not conv.uses_dense_fast()


def test_mlp_algo_is_validated():
    net = EPNet(NetSpec(kind="mlp", layers=(6, 3)))
    net.mlp_algo = "turbo"
    with pytest.raises(ValueError, match="mlp_algo must be one of"):
        net.relax(net.clamp(torch.rand(2, 6)), net.init_state(2), 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_relax_phases_bit_identical(name, dtype):
    """Free phase from zero, ±β nudged phases from the free state, one step, and an early-ended phase."""
    spec = SPECS[name]
    net = EPNet(spec, dtype=dtype, seed=3)
    x, y = _data(spec, 7, 1)
    clamped, target = net.clamp(x[0]), net.one_hot(y[0])
    out = {}
    for algo in ("generic", "fast"):
        net.mlp_algo = algo
        free = net.relax(clamped, net.init_state(7), 12)
        plus = net.relax(clamped, free, 5, 0.3, target)
        minus = net.relax(clamped, free, 5, -0.3, target)
        one = net.relax(clamped, free, 1, 0.3, target)
        settled = net.relax(clamped, net.init_state(7), 200, settle_tol=1e-3)
        out[algo] = (free, plus, minus, one, settled, net.last_steps)
    g, f = out["generic"], out["fast"]
    for i in range(5):
        assert _equal_lists(g[i], f[i]), f"phase {i} differs"
    assert g[5] == f[5] < 200  # the early end happened, at the same step
    assert all(s.dtype == dtype for s in f[0])


def test_relax_leaves_its_input_states_alone():
    spec = SPECS["ce-deep"]
    net = EPNet(spec, seed=1)
    x, y = _data(spec, 4, 1)
    clamped, target = net.clamp(x[0]), net.one_hot(y[0])
    free = net.relax(clamped, net.init_state(4), 10)
    keep = [s.clone() for s in free]
    a = net.relax(clamped, free, 3, 0.5, target)
    b = net.relax(clamped, free, 4, -0.5, target)
    assert _equal_lists(free, keep)
    assert all(u.data_ptr() != v.data_ptr() for u in a for v in b + free)


@pytest.mark.parametrize("estimator", ["one-sided", "symmetric"])
@pytest.mark.parametrize("name", ["mnist-mlp", "ce-deep", "vf", "vf-same-update"])
def test_training_bit_identical(name, estimator):
    """Several EP steps with Adam: updates, logits and parameters equal after every batch."""
    spec = SPECS[name]
    n = 50 if name == "mnist-mlp" else 9
    x, y = _data(spec, n, 3, seed=5)
    sched = EPSchedule(T1=15 if name == "mnist-mlp" else 8, T2=4, beta=0.2, estimator=estimator)
    nets = {}
    for algo in ("generic", "fast"):
        net = EPNet(spec, seed=2)
        net.mlp_algo = algo
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        nets[algo] = (net, opt)
    for b in range(len(x)):
        res = {}
        for algo, (net, opt) in nets.items():
            r = ep_step(net, x[b], y[b], sched)
            apply_update(net, r.update, opt)
            res[algo] = r
        g, f = res["generic"], res["fast"]
        assert g.update.keys() == f.update.keys()
        assert all(torch.equal(g.update[k], f.update[k]) for k in g.update), f"batch {b}: update differs"
        assert torch.equal(g.logits, f.logits) and _equal_lists(g.free, f.free)
        pg, pf = nets["generic"][0].params(), nets["fast"][0].params()
        assert all(torch.equal(pg[k], pf[k]) for k in pg), f"batch {b}: parameters differ"


def test_speed_bench_times_fast_generic_and_settled_rows(tmp_path, monkeypatch):
    """bench/ep_speed.py --with-generic --rounds 2 --mlp-settle-tol: the extra figures land in the JSON."""
    import importlib.util
    import json
    import sys
    from pathlib import Path

    for var in ("EPFORGE_REFERENCE", "EPFORGE_EBL", "EPFORGE_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    (tmp_path / "data").mkdir()
    name = "epforge_bench_ep_speed"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "bench" / "ep_speed.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    out = tmp_path / "speed.json"
    assert sys.modules[name].main(["--skip-conv", "--mlp-samples", "60", "--threads", "1", "--warmup-batches", "0",
                                   "--with-generic", "--rounds", "2", "--mlp-settle-tol", "1e-4",
                                   "--data-dir", str(tmp_path / "data"), "--json", str(out)]) == 0
    rows = {r["config"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {f"mlp train b{b} {e}" for b in (50, 256) for e in ("one-sided", "symmetric")} | {
        f"mlp train b{b} {e}, ours settle_tol=0.0001" for b in (50, 256) for e in ("one-sided", "symmetric")} | {
        "mlp infer b200"}
    for cfg, r in rows.items():
        o = r["ours"]
        assert o["relaxation"] == "dense-fast" and len(o["rounds_samples_per_s"]) == 2
        if "settle_tol" in cfg:
            assert r["settle_tol"] == 1e-4 and 1 <= o["mean_free_steps"] <= 30
        else:
            assert o["generic_samples_per_s"] > 0 and o["fast_over_generic"] > 0
            assert len(o["generic_rounds_samples_per_s"]) == 2
