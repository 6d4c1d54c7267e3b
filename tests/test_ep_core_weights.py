"""The EP core twin's weight stores (golden/ep_core/weights.py: one strategy per weight kind), each
against the interface and a direct integer computation of what it must give."""

import numpy as np
import pytest

from golden.ep_core.twin import EPCoreTwin, pack_memory, random_weights
from golden.ep_core.weights import (
    FixedWeights,
    TernaryTrainingWeights,
    TernaryWeights,
    weight_store,
    weight_store_class,
)
from golden.ternary.memory import encode_array
from spec.ep_core import REG_SEED, TERNARY_REGS, EPCoreSpec
from spec.ternary import CELL_ILLEGAL, REG_READS, ctrl_value
from spec.ternary import REG_CTRL as REG_TCTRL

LAYERS = (20, 9, 5)


def fixed_spec(**kw) -> EPCoreSpec:
    return EPCoreSpec(layers=LAYERS, lanes=4, **kw)


def ternary_spec(training: bool) -> EPCoreSpec:
    return EPCoreSpec(layers=LAYERS, lanes=4, weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                      training=training, fault_injection=True, beta_shift_max=2)


def ternary_weights(spec: EPCoreSpec, rng) -> dict[str, np.ndarray]:
    w = {}
    for name, shape in spec.weight_shapes().items():
        if name.startswith("v"):
            l = int(name[1:])
            d = spec.latent_threshold[l]
            w[name] = rng.integers(-3 * d, 3 * d + 1, shape)
            w[f"w{l}"] = spec.ternarize_latent(l, w[name]).astype(np.int64)
        elif name.startswith("w"):
            if not spec.ternary_training:
                w[name] = rng.integers(-1, 2, shape)
        else:
            w[name] = rng.integers(-8, 8, shape)
    return w


def int_products(s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """s · wᵀ with Python integers (no float64, no numpy matmul)."""
    return np.array([[sum(int(a) * int(b) for a, b in zip(row, col, strict=True)) for col in w] for row in s],
                    dtype=object)


def test_one_store_per_kind():
    assert weight_store_class(fixed_spec()) is FixedWeights
    assert weight_store_class(fixed_spec(training=False)) is FixedWeights
    assert weight_store_class(ternary_spec(False)) is TernaryWeights
    assert weight_store_class(ternary_spec(True)) is TernaryTrainingWeights
    for spec in (fixed_spec(), ternary_spec(False), ternary_spec(True)):
        w = (random_weights(spec, np.random.default_rng(0)) if spec.weight_kind == "fixed"
             else ternary_weights(spec, np.random.default_rng(0)))
        twin = EPCoreTwin(spec, w)
        assert type(twin.store) is weight_store_class(spec)
        assert twin.memory is twin.store.memory
        assert (twin.memory is None) == (spec.weight_kind == "fixed")


def test_fixed_store_reads_the_stored_weights_and_updates_like_integers():
    s = fixed_spec()
    rng = np.random.default_rng(3)
    w = random_weights(s, rng, gain=4.0)
    twin = EPCoreTwin(s, w)
    store = twin.store
    assert store.batch_reads(5, s.T1) is True and store.read_c1() is None and store.read_step() is None
    assert store.chunk == 1000 and store.stored() == {}
    # the products of the c1 sweep with the stored matrix == the integer computation
    x = rng.integers(0, 256, (3, LAYERS[0]))
    want = (int_products(x, w["w0"]) * 2 ** s.bottom_up_shift(1)
            + np.array([int(b) << s.bias_shift(1) for b in w["b0"]], dtype=object))
    assert (twin.clamp(x).astype(object) == want).all()
    # the image round trip and a load-port write of one word
    words = store.words(w)
    assert words == pack_memory(s, w)
    back = store.load(words)
    assert all((back[k] == w[k]).all() for k in w)
    new = store.program(dict(w), 0, [0])
    assert (new["w0"][0, :s.lanes] == 0).all() and (new["w0"][1:] == w["w0"][1:]).all()
    # an update: w += floor(prod / 2^k), saturated
    prod = rng.integers(-5000, 5000, w["w1"].shape)
    k = 6
    lo, hi = s.element_range("w1")
    got = dict(w)
    store.update_weights(got, 1, prod, k, None)
    want = [[min(hi, max(lo, int(a) + (int(p) >> k))) for a, p in zip(ra, rp, strict=True)]
            for ra, rp in zip(w["w1"], prod, strict=True)]
    assert got["w1"].tolist() == want
    with pytest.raises(ValueError, match="not a ternary-memory register"):
        store.write_reg(next(iter(TERNARY_REGS)), 0)
    with pytest.raises(ValueError, match="not a ternary-memory register"):
        twin.read_memory_reg(next(iter(TERNARY_REGS)))


@pytest.mark.parametrize("training", [False, True])
def test_ternary_store_reads_sense_the_memory(training):
    s = ternary_spec(training)
    rng = np.random.default_rng(4)
    w = ternary_weights(s, rng)
    store = weight_store(s, {k: v.astype(np.int64) for k, v in w.items()})
    assert isinstance(store, TernaryWeights)
    assert all((store.stored()[k] == w[k]).all() for k in ("w0", "w1"))
    c1, step = s.weight_read_schedule()
    n_step = sum(len(a) for *_, a in step)
    # deterministic: the reads return the stored values, only counted
    assert store.read_c1() is None and store.read_step() is None
    assert store.batch_reads(3, 7) is True
    assert store.memory.read_reg(REG_READS) == len(c1) + n_step + 3 * (len(c1) + 7 * n_step)
    assert store.chunk == 1000
    # nominal supply: a 0 cell senses as a random ±1, the others as stored; products are integer products
    ctrl = next(a for a, m in TERNARY_REGS.items() if m == REG_TCTRL)
    store.write_reg(ctrl, ctrl_value("off", "adjacent", "nominal"))
    assert store.batch_reads(1, 1) is False and store.chunk == 50
    mats = store.read_step()
    assert set(mats) == {(d, k) for d, k, _, _ in step}
    for (d, k), m in mats.items():
        stored = w[f"w{k - 1}"] if d == "bu" else w[f"w{k}"]
        assert m.shape == stored.shape
        assert ((m == stored) | ((stored == 0) & (np.abs(m) == 1))).all()
        assert (stored == 0).any() and (m[stored == 0] != 0).all()
        st = rng.integers(0, 256, (2, m.shape[1]))
        assert (np.rint(st.astype(np.float64) @ m.T).astype(np.int64).astype(object) == int_products(st, m)).all()
    w0 = store.read_c1()
    assert w0.shape == w["w0"].shape and ((w0 == w["w0"]) | (w["w0"] == 0)).all()
    # the image: w words are the cells, read back as stored (an illegal cell too)
    store.memory.cells[0, 1] = CELL_ILLEGAL
    words = store.words(w)
    assert (words[0] >> s.word_elem_bits) & 3 == CELL_ILLEGAL
    back = store.load(words)
    assert store.memory.cells[0, 1] == CELL_ILLEGAL and back["w0"][0, 1] == 0
    assert (store.load(pack_memory(s, w))["w0"] == w["w0"]).all()
    assert TernaryWeights.encode(np.array([-1, 0, 1])).tolist() == [2, 0, 1]
    assert TernaryWeights.decode(np.array([-2, 0, 1, -1])).tolist() == [-1, 0, 1, 0]  # sign-extended; 11 → 0
    # REG_SEED reaches the memory's seed register
    store.reseed(1234)
    assert store.read_reg(REG_SEED) == 1234


def test_ternary_training_store_moves_latent_weights_and_reprograms_changed_cells():
    s = ternary_spec(True)
    rng = np.random.default_rng(5)
    w = ternary_weights(s, rng)
    store = weight_store(s, w)
    P = s.lanes
    # a stored fault in a cell whose ternary value the update leaves alone must stay
    store.memory.cells[0, 0] = CELL_ILLEGAL
    prod = rng.integers(-400, 400, w["w0"].shape)
    prod[0, 0] = 0
    k = 2
    lo, hi = s.element_range("v0")
    weights = {n: a.copy() for n, a in w.items()}
    store.update_weights(weights, 0, prod, k, None)
    want_v = [[min(hi, max(lo, int(a) + (int(p) >> k))) for a, p in zip(ra, rp, strict=True)]
              for ra, rp in zip(w["v0"], prod, strict=True)]
    assert weights["v0"].tolist() == want_v
    t_old, t_new = s.ternarize_latent(0, w["v0"]), s.ternarize_latent(0, weights["v0"])
    changed = t_old != t_new
    assert changed.any() and (~changed).any()
    r = next(r for r in s.memory_map() if r.name == "w0")
    cells = store.memory.cells[r.base:r.base + r.words].reshape(r.rows, r.tiles * P)[:, :LAYERS[0]]
    assert (cells[changed] == encode_array(t_new)[changed]).all()
    unchanged = encode_array(t_old)
    unchanged[0, 0] = CELL_ILLEGAL
    assert (cells[~changed] == unchanged[~changed]).all()
    assert store.memory.read_reg(REG_READS) == 0  # update-port writes are not reads
    init = TernaryTrainingWeights.init_layer(s, 1, np.random.default_rng(0), 0.3, 0.1)
    assert (init["w1"] == s.ternarize_latent(1, init["v1"])).all()


def test_ternary_inference_store_does_not_write_cells_on_update():
    s = ternary_spec(False)
    w = ternary_weights(s, np.random.default_rng(6))
    store = weight_store(s, w)
    before = store.memory.cells.copy()
    weights = dict(w)
    store.update_weights(weights, 0, np.ones(w["w0"].shape, np.int64) << 10, 0, None)
    assert (store.memory.cells == before).all() and (weights["w0"] == w["w0"]).all()
