"""Float EP: closed-form dynamics and updates against autograd of Φ, GDU, C-EP, VF, estimators."""

from __future__ import annotations

import math

import pytest
import torch

from golden.ep import EPNet, NetSpec
from golden.ep.bptt import bptt, compare, ep_trajectory
from golden.ep.estimators import EPSchedule, cep_step, ep_step

F64 = torch.float64

SPECS = {
    "mlp-mse": NetSpec(kind="mlp", layers=(20, 7, 5, 3)),
    "mlp-ce": NetSpec(kind="mlp", layers=(20, 7, 5, 3), loss="ce", activation="hard_sigmoid"),
    "mlp-1layer": NetSpec(kind="mlp", layers=(20, 3), activation="tanh"),
    "conv-max-avg": NetSpec(kind="conv", in_shape=(2, 13, 13), channels=(4, 5), kernels=(3, 3), paddings=(1, 0),
                            pools="ma", fc=(6, 3), activation="my_hard_sig"),
    "conv-strided-ce": NetSpec(kind="conv", in_shape=(2, 13, 13), channels=(4, 5, 3), kernels=(3, 3, 2),
                               strides=(1, 2, 1), paddings=(1, 1, 0), pools="mim", fc=(3,), loss="ce",
                               activation="hard_sigmoid"),
}
# ConvNets whose relaxation runs the spectral loop (stride-1 convs above the input, max or no pooling)
SPECTRAL_SPECS = {
    "conv-max-id": NetSpec(kind="conv", in_shape=(2, 13, 13), channels=(4, 5, 3), kernels=(3, 3, 2),
                           paddings=(1, 1, 0), pools="mmi", fc=(6, 3), activation="my_hard_sig"),
    # odd conv output (9×9 → 4×4 pooled), padding 2, CE read-out on a conv layer
    "conv-odd-ce": NetSpec(kind="conv", in_shape=(2, 15, 14), channels=(4, 5), kernels=(3, 3), paddings=(1, 2),
                           pools="mm", fc=(3,), loss="ce", activation="tanh"),
    "mnist-conv-like": NetSpec(kind="conv", in_shape=(1, 16, 16), channels=(3, 4), kernels=(5, 3), pools="mm",
                               fc=(5,), activation="hard_sigmoid"),
}


def _batch(spec: NetSpec, n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n,) + tuple(spec.in_shape), generator=g, dtype=F64)
    y = torch.randint(0, spec.n_classes, (n,), generator=g)
    return x, y


def _gamma(n: int, dtype: torch.dtype) -> float:
    """γ_n = n·u/(1 − n·u) (u the unit roundoff): a sum of n products computed in any order, or a chain
    of matrix products whose inner dimensions add up to n, is off by at most γ_n times the same
    computation on absolute values (Higham, Accuracy and Stability of Numerical Algorithms, §3.1, §3.5)."""
    u = torch.finfo(dtype).eps / 2
    return n * u / (1 - n * u)


def _autograd_param_grads(net: EPNet, x, states, beta, target):
    ps = net.params()
    phi = net.phi(x, states, beta, target, ps).sum()
    grads = torch.autograd.grad(phi, list(ps.values()), allow_unused=True)
    return {k: (g if g is not None else torch.zeros_like(v)) for (k, v), g in zip(ps.items(), grads, strict=True)}


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("beta", [0.0, 0.3, -0.2])
def test_step_is_activation_of_phi_gradient(name, beta):
    """s_{t+1} = ρ(∂Φ_β/∂s): the closed form equals autograd of the explicit Φ."""
    spec = SPECS[name]
    net = EPNet(spec, dtype=F64, seed=1)
    x, y = _batch(spec)
    target = net.one_hot(y)
    g = torch.Generator().manual_seed(5)
    states = [torch.rand((4,) + s, generator=g, dtype=F64) for s in net.state_shapes]
    leaves = [s.clone().requires_grad_() for s in states]
    dphi = torch.autograd.grad(net.phi(x, leaves, beta, target).sum(), leaves)
    expected = [net.act(d) for d in dphi]
    with torch.no_grad():
        got = net.step(net.clamp(x), states, beta, target)
    for e, o in zip(expected, got, strict=True):
        torch.testing.assert_close(o, e, rtol=0, atol=1e-13)
    # the differentiable (autograd-on) path computes the same numbers
    with torch.enable_grad():
        got_grad = net.step(net.clamp(x), states, beta, target)
    for e, o in zip(got, got_grad, strict=True):
        torch.testing.assert_close(o.detach(), e, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_ep_update_is_phi_difference(name):
    """Δθ = [∂Φ_{β_b}/∂θ(s_b) − ∂Φ_{β_a}/∂θ(s_a)] / ((β_b − β_a)·batch), closed form vs autograd."""
    spec = SPECS[name]
    net = EPNet(spec, dtype=F64, seed=2)
    x, y = _batch(spec)
    target = net.one_hot(y)
    g = torch.Generator().manual_seed(6)
    sa = [torch.rand((4,) + s, generator=g, dtype=F64) for s in net.state_shapes]
    sb = [torch.rand((4,) + s, generator=g, dtype=F64) for s in net.state_shapes]
    ga = _autograd_param_grads(net, x, sa, -0.2, target)
    gb = _autograd_param_grads(net, x, sb, 0.3, target)
    upd = net.ep_update(net.clamp(x), sa, -0.2, sb, 0.3, target)
    assert set(upd) == set(ga)
    for k in ga:
        torch.testing.assert_close(upd[k], (gb[k] - ga[k]) / (0.5 * 4), rtol=0, atol=1e-12)


def test_relaxation_reaches_fixed_point_and_phi_grows_with_nudging():
    spec = NetSpec(kind="mlp", layers=(20, 16, 4), activation="my_sigmoid")
    net = EPNet(spec, dtype=F64, seed=3)
    x, y = _batch(spec, 6)
    cl = net.clamp(x)
    s = net.relax(cl, net.init_state(6), 200)
    s2 = net.step(cl, s)
    assert max((a - b).abs().max().item() for a, b in zip(s, s2, strict=True)) < 1e-12
    # nudging moves the output towards the target: the loss decreases
    target = net.one_hot(y)
    s_b = net.relax(cl, s, 50, 0.5, target)
    assert (net.loss(s_b, target) < net.loss(s, target)).all()


def test_gdu_symmetric_beats_one_sided():
    """GDU (float64): symmetric EP matches −∇BPTT with cosine ≥ 0.99 on every layer at β = 0.1 and has a
    clearly smaller error than the one-sided estimator; at β = 1e-3 both nearly coincide with BPTT."""
    spec = NetSpec(kind="mlp", layers=(40, 32, 16, 5), activation="my_sigmoid")
    net = EPNet(spec, dtype=F64, seed=4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 40, generator=g, dtype=F64)
    y = torch.randint(0, 5, (12,), generator=g)
    ref = bptt(net, x, y, 40, 12)
    one = compare(ep_trajectory(net, x, y, 40, 12, 0.1).total, ref.total)
    sym = compare(ep_trajectory(net, x, y, 40, 12, 0.1, symmetric=True).total, ref.total)
    for k in ref.total:
        assert sym[k]["cosine"] >= 0.99, (k, sym[k])
        assert sym[k]["rel_error"] < 0.5 * one[k]["rel_error"], (k, sym[k], one[k])
    tiny = compare(ep_trajectory(net, x, y, 40, 12, 1e-3, symmetric=True).total, ref.total)
    assert max(v["rel_error"] for v in tiny.values()) < 1e-2


def test_gdu_stepwise_increments_match_bptt_elementary_gradients():
    """Each nudged-step increment of EP ≈ minus the elementary BPTT gradient of the mirrored step."""
    spec = NetSpec(kind="mlp", layers=(30, 20, 6), activation="my_sigmoid")
    net = EPNet(spec, dtype=F64, seed=8)
    x, y = _batch(spec, 8)
    ref = bptt(net, x, y, 60, 8)
    ep = ep_trajectory(net, x, y, 60, 8, 1e-4, symmetric=True)
    for k in range(8):
        for name in ("w0", "w1"):
            a, b = ep.steps[k][name], ref.steps[k][name]
            if b.norm() > 1e-8:
                assert (a - b).norm() / b.norm() < 0.02, (k, name)


@pytest.mark.parametrize("name", ["mlp-mse", "mlp-ce", "conv-max-avg"])
def test_cep_telescopes_to_ep_update(name):
    """C-EP with a vanishing learning rate: Σ per-step updates == one-sided EP update (float64, 1e-10)."""
    spec = SPECS[name]
    x, y = _batch(spec, 5)
    sched = EPSchedule(20, 8, 0.2, "one-sided")
    ref = ep_step(EPNet(spec, dtype=F64, seed=3), x, y, sched).update
    for lr in (0.0, 1e-14):
        net = EPNet(spec, dtype=F64, seed=3)
        seen = []
        cep_step(net, x, y, sched, torch.optim.SGD(net.parameters(), lr=lr), on_update=seen.append)
        assert len(seen) == 8
        total = {k: sum(u[k] for u in seen) for k in seen[0]}
        for k in ref:
            assert (total[k] - ref[k]).abs().max().item() < 1e-10, k



def test_symmetric_cep_sums_to_the_symmetric_ep_update():
    """Symmetric C-EP normalises each step of both nudged phases by 2β (the ±β phases together span
    2β), so with a vanishing learning rate its per-step updates sum to the symmetric EP update
    [∂Φ_β/∂θ(s^{+β}) − ∂Φ_{−β}/∂θ(s^{−β})]/2β; a 1/β scaling would give twice that (relative error 1).
    The only other difference is where the −β phase starts: C-EP relaxes back from s^{+β} for T2 free
    steps instead of restarting from the stored free state; with T1 = 100, T2 = 30 on this net that
    gap is ~1e-11 (the dynamics contracts), far below the tolerance, which is far below 1."""
    spec = SPECS["mlp-ce"]
    x, y = _batch(spec, 5)
    sched = EPSchedule(100, 30, 0.2, "symmetric")
    ref = ep_step(EPNet(spec, dtype=F64, seed=3), x, y, sched).update
    net = EPNet(spec, dtype=F64, seed=3)
    seen = []
    cep_step(net, x, y, sched, torch.optim.SGD(net.parameters(), lr=0.0), on_update=seen.append)
    assert len(seen) == 2 * sched.T2
    for k in ref:
        total = sum(u[k] for u in seen)
        assert ((total - ref[k]).norm() / ref[k].norm()).item() < 1e-8, k

def test_cep_moves_weights_at_every_step():
    spec = SPECS["mlp-mse"]
    net = EPNet(spec, dtype=F64, seed=3)
    x, y = _batch(spec, 5)
    before = {k: v.clone() for k, v in net.params().items()}
    snapshots = []
    cep_step(net, x, y, EPSchedule(10, 4, 0.2, "one-sided"), torch.optim.SGD(net.parameters(), lr=0.1),
             on_update=lambda d: snapshots.append(net.w0.detach().clone()))
    assert not torch.equal(net.w0, before["w0"])
    # on_update runs before the optimiser step: the first snapshot is still the initial weight
    assert torch.equal(snapshots[0], before["w0"])
    assert not torch.equal(snapshots[1], snapshots[0])


def test_symmetric_estimator_is_mean_of_both_signs():
    spec = SPECS["mlp-ce"]
    net = EPNet(spec, dtype=F64, seed=2)
    x, y = _batch(spec)
    plus = ep_trajectory(net, x, y, 20, 6, 0.2).total
    minus = ep_trajectory(net, x, y, 20, 6, -0.2).total
    sym = ep_trajectory(net, x, y, 20, 6, 0.2, symmetric=True).total
    for k in sym:
        torch.testing.assert_close(sym[k], 0.5 * (plus[k] + minus[k]), rtol=0, atol=1e-14)


def test_random_sign_draws_both_signs_reproducibly():
    spec = SPECS["mlp-mse"]
    net = EPNet(spec, dtype=F64)
    x, y = _batch(spec)
    sched = EPSchedule(5, 2, 0.1, "random-sign")
    draws = [ep_step(net, x, y, sched, torch.Generator().manual_seed(s)).betas[1] for s in range(12)]
    assert set(draws) == {0.1, -0.1}
    again = [ep_step(net, x, y, sched, torch.Generator().manual_seed(s)).betas[1] for s in range(12)]
    assert draws == again


def test_vf_dynamics_use_feedback_weights_and_vector_field_update():
    spec = NetSpec(kind="mlp", layers=(12, 8, 6, 4), connections="vf")
    net = EPNet(spec, dtype=F64, seed=1)
    assert set(net.params()) == {"w0", "b0", "w1", "b1", "w2", "b2", "fb1", "fb2"}
    x, y = _batch(spec, 3)
    cl = net.clamp(x)
    g = torch.Generator().manual_seed(1)
    s = [torch.rand((3,) + sh, generator=g, dtype=F64) for sh in net.state_shapes]
    a = net.affine
    expected0 = a.apply(a.scale * (x @ net.w0.T + net.b0 + s[1] @ net.fb1) + a.offset, False)
    torch.testing.assert_close(net.step(cl, s)[0], expected0, rtol=0, atol=1e-14)
    # changing W1 (forward) does not change layer 1's top-down input; changing fb1 does
    with torch.no_grad():
        net.w1.add_(1.0)
    torch.testing.assert_close(net.step(cl, s)[0], expected0, rtol=0, atol=1e-14)
    # VF update: Δw_l = (s_b − s_a)_{l+1} ⊗ s_free_l / (Δβ n); Δfb_l = s_free_{l+1} ⊗ (s_b − s_a)_l / (Δβ n)
    sa = [torch.rand((3,) + sh, generator=g, dtype=F64) for sh in net.state_shapes]
    sb = [torch.rand((3,) + sh, generator=g, dtype=F64) for sh in net.state_shapes]
    target = net.one_hot(y)
    upd = net.ep_update(cl, sa, 0.0, sb, 0.5, target, s_free=s)
    layers_f, la, lb = [x] + s, [x] + sa, [x] + sb
    for l in range(3):
        torch.testing.assert_close(upd[f"w{l}"], (lb[l + 1] - la[l + 1]).T @ layers_f[l] / 1.5, rtol=0, atol=1e-14)
    for l in (1, 2):
        torch.testing.assert_close(upd[f"fb{l}"], layers_f[l + 1].T @ (lb[l] - la[l]) / 1.5, rtol=0, atol=1e-14)


def test_vf_same_update_gives_feedback_the_forward_update():
    spec = NetSpec(kind="mlp", layers=(12, 8, 4), connections="vf", same_update=True)
    net = EPNet(spec, dtype=F64, seed=1)
    x, y = _batch(spec, 3)
    res = ep_step(net, x, y, EPSchedule(10, 4, 0.1, "symmetric"))
    torch.testing.assert_close(res.update["fb1"], res.update["w1"], rtol=0, atol=0)


def test_vf_conv_runs_and_learns_direction():
    spec = NetSpec(kind="conv", in_shape=(1, 10, 10), channels=(3, 4), kernels=(3, 3), pools="mi", fc=(4,),
                   connections="vf", activation="hard_sigmoid")
    net = EPNet(spec, dtype=F64, seed=2)
    x, y = _batch(spec, 4)
    res = ep_step(net, x, y, EPSchedule(15, 5, 0.2, "symmetric"))
    assert set(res.update) == set(net.params())
    assert all(torch.isfinite(v).all() for v in res.update.values())


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="rnn"), "kind must be one of"),
    (dict(layers=(784,)), "layers must list the input"),
    (dict(layers=(784, 0, 10)), "layers must contain positive integers only, not 0"),
    (dict(activation="relu"), "activation must be one of"),
    (dict(loss="hinge"), "loss must be one of"),
    (dict(connections="dense"), "connections must be one of"),
    (dict(same_update=True), "same_update=True only applies"),
    (dict(kind="conv", channels=(4,), kernels=(3, 3), fc=(10,)), "kernels must have one entry per conv layer"),
    (dict(kind="conv", channels=(4,), kernels=(3,), pools="x", fc=(10,)), "pools letters must be one of"),
    (dict(kind="conv", in_shape=(1, 4, 4), channels=(4,), kernels=(5,), fc=(10,)), "leaves an empty map"),
    (dict(layers=(10, 5, 3), init_scale=(1.0, 2.0, 3.0)), "init_scale must have 1 or 2 entries"),
])
def test_netspec_validation_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NetSpec(**kwargs)


def test_netspec_round_trip():
    for spec in list(SPECS.values()) + [NetSpec(layers=(10, 5, 3), connections="vf", init_scale=(0.5,))]:
        assert NetSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown NetSpec fields"):
        NetSpec.from_dict({"kind": "mlp", "depth": 3})


@pytest.mark.parametrize("kwargs, match", [
    (dict(T1=0), "T1 must be a positive integer, not 0"),
    (dict(T2=2.5), "T2 must be a positive integer"),
    (dict(beta=0.0), "beta must be a positive number"),
    (dict(estimator="two-sided"), "estimator must be one of"),
])
def test_schedule_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EPSchedule(**kwargs)


def test_readout_ce_prediction_uses_logits():
    spec = NetSpec(kind="mlp", layers=(20, 7, 3), loss="ce")
    net = EPNet(spec, dtype=F64)
    x, _ = _batch(spec)
    s = net.relax(net.clamp(x), net.init_state(4), 10)
    assert net.state_shapes == [(7,)]
    # addmm (the read-out) vs a product then a sum: the same 7 products and the bias in possibly another
    # order and fusion, so equal up to γ_8·(|s||W_o|ᵀ + |b_o|) per logit (any order of an 8-term sum)
    wo, bo = net.wo.detach(), net.bo.detach()
    bound = 2 * _gamma(s[0].shape[1] + 1, F64) * (s[0].abs() @ wo.abs().T + bo.abs())
    assert ((net.logits(s) - (s[0] @ wo.T + bo)).abs() <= bound).all()


# ----------------------------------------------------------------------------------------------
# The spectral relaxation loop of ConvNets (golden.ep.spectral)
# ----------------------------------------------------------------------------------------------
def _rand_states(net: EPNet, n: int, seed: int, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand((n,) + s, generator=g, dtype=dtype) for s in net.state_shapes]


@pytest.mark.parametrize("name", sorted(SPECTRAL_SPECS))
@pytest.mark.parametrize("beta", [0.0, 0.3])
def test_spectral_relaxation_matches_autograd_of_phi(name, beta):
    """T steps of the spectral loop == T steps of s ← ρ(∂Φ_β/∂s) by autograd of the explicit Φ (float64)."""
    spec = SPECTRAL_SPECS[name]
    net = EPNet(spec, dtype=F64, seed=1)
    assert net.uses_spectral()
    x, y = _batch(spec, 3)
    target = net.one_hot(y)
    s0 = _rand_states(net, 3, 7)
    got = net.relax(net.clamp(x), s0, 12, beta, target)
    s = [t.clone() for t in s0]
    for _ in range(12):
        leaves = [t.clone().requires_grad_() for t in s]
        dphi = torch.autograd.grad(net.phi(x, leaves, beta, target).sum(), leaves)
        s = [net.act(d).detach() for d in dphi]
    for e, o in zip(s, got, strict=True):
        assert o.shape == e.shape and o.dtype == e.dtype
        torch.testing.assert_close(o, e, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", sorted(SPECTRAL_SPECS))
def test_spectral_and_direct_loops_agree(name):
    """Free phase, both nudged phases, the early-settling free phase and the EP update (float64).

    The only exact max-pool ties in these relaxations are at the first step from the zero state, where
    every conv output is exactly its bias in any algorithm (all products are 0), so the routing does not
    depend on the CPU's kernels; ties of non-zero patches are checked in
    test_spectral_max_pool_ties_resolve_to_the_first_identical_patch."""
    spec = SPECTRAL_SPECS[name]
    x, y = _batch(spec, 4)
    out = {}
    for algo in ("direct", "spectral"):
        net = EPNet(spec, dtype=F64, seed=2)
        net.conv_algo = algo
        assert net.uses_spectral() == (algo == "spectral")
        cl, target = net.clamp(x), net.one_hot(y)
        free = net.relax(cl, net.init_state(4), 40)
        settled = net.relax(cl, net.init_state(4), 200, settle_tol=1e-6)
        out[algo] = (free, net.relax(cl, free, 6, 0.4, target), net.relax(cl, free, 6, -0.4, target), settled,
                     [net.last_steps], ep_step(net, x, y, EPSchedule(30, 6, 0.2, "symmetric")).update)
    for a, b in zip(out["direct"][:4], out["spectral"][:4], strict=True):
        for u, v in zip(a, b, strict=True):
            assert v.shape == u.shape and v.is_contiguous(memory_format=torch.channels_last) == \
                u.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(v, u, rtol=0, atol=1e-12)
    # the early stop is a decision (a step's largest change ≤ 1e-6, checked every SETTLE_CHECK steps) on
    # states that agree to 1e-12: the two loops can only stop at different steps if a change falls within
    # 1e-12 of the threshold (a chance of ~1e-6 per check), which is not the case for these seeds
    assert out["direct"][4] == out["spectral"][4]
    for k, v in out["direct"][5].items():
        torch.testing.assert_close(out["spectral"][5][k], v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pad, size, k", [(0, 12, 5), (1, 7, 3), (2, 6, 3), (0, 5, 2)])
def test_spectral_conv_equals_conv2d_and_its_transpose(pad, size, k):
    from golden.ep.connections import Conv
    from golden.ep.spectral import SpectralConv, to_engine

    conn = Conv(3, 4, k, 1, pad, "i", (size, size + 1))
    g = torch.Generator().manual_seed(0)
    w = torch.randn(conn.weight_shape, generator=g, dtype=F64)
    x = torch.rand((5, 3, size, size + 1), generator=g, dtype=F64)
    y = torch.rand((5, 4) + conn.conv_hw, generator=g, dtype=F64)
    sc = SpectralConv(conn, F64, torch.device("cpu"))
    spectra = sc.weight_spectra(w)
    fwd = sc.forward(to_engine(x), spectra).permute(3, 2, 0, 1)
    torch.testing.assert_close(fwd, torch.nn.functional.conv2d(x, w, padding=pad), rtol=0, atol=1e-12)
    tr = sc.transpose(to_engine(y), spectra).permute(3, 2, 0, 1)
    torch.testing.assert_close(tr, conn.transpose(y, w, None), rtol=0, atol=1e-12)


def _direct_conv_bound(x, w, b, pad: int, dtype) -> torch.Tensor:
    """Per output of ``conv2d(x, w, b)`` (N, C, H, W) in ``dtype``: γ_{K+1}·(Σ|w||x| + |b|), K = C_in·k²."""
    mag = torch.nn.functional.conv2d(x.double().abs(), w.double().abs(), None if b is None else b.double().abs(),
                                     padding=pad)
    return _gamma(w[0].numel() + 1, dtype) * mag


def _direct_transpose_bound(g, w, pad: int, dtype) -> torch.Tensor:
    """Per output of ``conv_transpose2d(g, w)``: γ_{C_out·k²}·(Σ|w||g|)."""
    mag = torch.nn.functional.conv_transpose2d(g.double().abs(), w.double().abs(), padding=pad)
    return _gamma(w.shape[0] * w[0, 0].numel(), dtype) * mag


def _spectral_bound(conn, x, w, dtype, transpose: bool = False) -> torch.Tensor:
    """Per output of :class:`SpectralConv` (``transpose``: of its transpose) on ``x`` (N, C, H, W) in ``dtype``.

    The loop is five matrix products (row DFT over H rows, column DFT over 2·W re/im inputs, the
    frequency product over 2·C, inverse columns over 2·P_w, inverse rows over 2·K_h): γ_n times the
    same five products on absolute values (computed here), n their inner dimensions plus one rounding
    each for casting the five matrices to dtype, plus the bias. The float64 entries cos/sin(2π·k·j/P)
    of those matrices are absolutely off by ≤ (4·θ + 2)·u₆₄, θ < 2π·P the angle (four roundings in
    computing it, one ulp of cos/sin), and the weight spectra by ≤ 4·log2(P_h·P_w)·u₆₄ relative to
    ‖w‖₁ (float64 FFT); on entries bounded by 1 and ‖w_{o,i}‖₁ those add
    (5·ε_DFT + ε_FFT)·32·K_h/P_h·Σ_i ‖w_{o,i}‖₁·‖x_i‖₁.
    """
    from golden.ep.spectral import SpectralConv, to_engine

    sc = SpectralConv(conn, F64, torch.device("cpu"))
    for name in ("f_rows", "f_cols", "f_irows", "f_icols", "t_rows", "t_cols", "t_irows", "t_icols"):
        getattr(sc, name).abs_()
    spectra = tuple(t.abs() for t in sc.weight_spectra(w.detach().double()))
    run = sc.transpose if transpose else sc.forward
    mag = run(to_engine(x.double().abs()), spectra).permute(3, 2, 0, 1)
    h, w_ = x.shape[-2:]
    n = h + 2 * w_ + 2 * x.shape[1] + 2 * sc.pw + 2 * sc.nk + 5 + 1
    u64 = torch.finfo(F64).eps / 2
    theta = 2 * math.pi * max(sc.ph, sc.pw)  # every DFT angle 2π·k·j/P has k, j < P
    eps = 5 * (4 * theta + 2) * u64 + 4 * math.ceil(math.log2(sc.ph * sc.pw)) * u64
    wn = w.detach().double().abs().sum((2, 3))  # (C_out, C_in): ‖w_{o,i}‖₁
    closed = 32 * sc.nk / sc.ph * (x.double().abs().sum((2, 3)) @ (wn if transpose else wn.t()))
    return _gamma(n, dtype) * mag + eps * closed[:, :, None, None]


class _UlpNoisyF:
    """``torch.nn.functional`` whose conv2d adds ±u·|c| at random positions: a direct-conv kernel that,
    like some CPUs', rounds identical patches differently (one more rounding than conv2d's own)."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)

    def conv2d(self, *args, **kwargs):
        c = torch.nn.functional.conv2d(*args, **kwargs)
        sign = torch.randint(-1, 2, c.shape, generator=self.g).to(c.dtype)
        return c + sign * c.abs() * (torch.finfo(c.dtype).eps / 2)

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)


@pytest.mark.parametrize("direct_kernel", ["this CPU's", "ulp-noisy"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_spectral_max_pool_ties_resolve_to_the_first_identical_patch(dtype, direct_kernel, monkeypatch):
    """Candidates of a pooling window whose input patches are identical are tied in exact arithmetic;
    a computed convolution may or may not keep them bitwise equal (for a direct conv that depends on the
    CPU's kernel), so the rounding cannot be what decides. The spectral loop decides them from the
    patches (exact comparisons): the first of the identical maximal candidates, on every machine, and
    every other window by its values. Checked against rules computed here independently:

    * the spectral selection equals that rule exactly (integer indices) in every window;
    * the direct conv's own ``max_pool2d`` choice equals it wherever the winner is unique, and in a tied
      window is one of the tied candidates (any of them is a valid routing: a subgradient of the max);
    * one relaxation step of the spectral loop equals the direct step routed by the rule, within the
      rounding bounds of both algorithms (derived below, not fitted).
    The construction has many exact ties, and every non-identical candidate is separated from the
    winner by more than both algorithms' rounding bounds (asserted), so the expected choice is unambiguous.
    "ulp-noisy" runs the direct path on a conv2d that rounds identical patches differently, as the
    kernels of an AMD EPYC did (where the earlier, exact-agreement version of this test failed).
    """
    import golden.ep.connections as connections
    from golden.ep.spectral import SpectralConv, max_pool_select, patch_ties, to_engine

    if direct_kernel == "ulp-noisy":  # the direct Conv's conv2d
        monkeypatch.setattr(connections, "F", _UlpNoisyF(11))

    F = torch.nn.functional
    spec = SPECTRAL_SPECS["mnist-conv-like"]
    net = EPNet(spec, dtype=dtype, seed=3)
    n = 6
    x, y = _batch(spec, n)
    cl = net.clamp(x.to(dtype))
    s = _rand_states(net, n, 4, dtype)
    g = torch.Generator().manual_seed(5)
    # layer-1 states constant per sample and channel except a few random positions: many windows whose
    # four 3×3 patches are identical, some that differ by one element
    s1 = torch.rand((n, 3, 1, 1), generator=g, dtype=dtype).expand(n, 3, 6, 6).clone()
    s1[:, :, 1, 4] = torch.rand((n, 3), generator=g, dtype=dtype)
    s1[:3, :, 5, 0] = 0.0
    s[0] = s1
    conn, w1, b1 = net.conns[1], net.w1.detach(), net.b1.detach()
    k, pad = conn.k, conn.pad
    ho, wo = conn.conv_hw
    hq, wq = ho // 2, wo // 2

    # which candidates see identical patches: pure data movement and ==, no arithmetic
    patches = F.unfold(s1, k, padding=pad).view(n, -1, ho, wo)[:, :, :2 * hq, :2 * wq]
    cand = patches.reshape(n, -1, hq, 2, wq, 2).permute(0, 2, 4, 3, 5, 1).reshape(n, hq, wq, 4, -1)
    ident = (cand[..., :, None, :] == cand[..., None, :, :]).all(-1)  # (N, hq, wq, 4, 4)
    first = ident.int().argmax(-2)  # per candidate, the first candidate with the same patch (itself if none)
    # the rule on near-exact values (float64 conv of the same numbers): identical candidates take the
    # first one's value, then the first maximal candidate in row-major order
    exact = F.conv2d(s1.double(), w1.double(), b1.double(), padding=pad)[:, :, :2 * hq, :2 * wq]
    vals = exact.reshape(n, -1, hq, 2, wq, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, -1, hq, wq, 4)
    vals = vals.gather(-1, first[:, None].expand(vals.shape))
    expected = vals.argmax(-1)  # (N, C_out, hq, wq): torch.argmax returns the first maximal index
    co = expected.shape[1]
    win_ident = ident[:, None].expand(n, co, hq, wq, 4, 4).gather(
        -2, expected[..., None, None].expand(n, co, hq, wq, 1, 4)).squeeze(-2)  # candidates tied to the winner
    tied = win_ident.sum(-1) > 1  # the winner shares its patch with another candidate
    assert tied.float().mean() > 0.5 and (~tied).any()  # mostly exact ties, some windows without

    # rounding bounds of both algorithms' bottom-up conv (and of the float64 reference)
    fwd_direct = _direct_conv_bound(s1, w1, b1, pad, dtype)
    fwd_spec = _spectral_bound(conn, s1, w1, dtype)
    fwd_ref = _direct_conv_bound(s1, w1, b1, pad, F64)
    tol_fwd = (fwd_direct + fwd_spec + fwd_ref).amax().item()
    # the construction: every candidate whose patch differs from the winner's is lower by more than
    # all three computations' rounding together, so no rounding can reorder them
    best = vals.gather(-1, expected[..., None])
    gap = torch.where(win_ident, torch.inf, best - vals).amin(-1)
    assert gap.min().item() > 2 * tol_fwd, (gap.min().item(), tol_fwd)

    # 1. the spectral selection is the rule, exactly
    xe = to_engine(s1)
    sc = SpectralConv(conn, dtype, torch.device("cpu"))
    _, sel = max_pool_select(sc.forward(xe, sc.weight_spectra(w1)), patch_ties(xe, conn))
    got = sel.permute(5, 4, 0, 2, 1, 3).reshape(n, -1, hq, wq, 4).argmax(-1)
    assert torch.equal(got, expected)

    # 2. the direct conv's own choice: the rule's where the winner is unique, a tied candidate elsewhere
    _, idx = conn.forward(s1, w1, b1)
    direct = (idx // wo % 2) * 2 + idx % wo % 2
    assert torch.equal(direct[~tied], expected[~tied])
    assert win_ident.gather(-1, direct[..., None]).all()
    if direct_kernel == "ulp-noisy":  # the perturbed kernel does route some ties elsewhere
        assert not torch.equal(direct[tied], expected[tied])

    # 3. one step: the spectral loop == the direct step routed by the rule, within both rounding bounds
    net.conv_algo = "spectral"
    spectral = net.relax(cl, s, 1)
    rule_idx = (2 * torch.arange(hq)[:, None] + expected // 2) * wo + 2 * torch.arange(wq) + expected % 2
    plain_forward = conn.forward

    def forward_by_rule(state, w, b):
        c = F.conv2d(state, w, b, padding=pad)
        return c.flatten(2).gather(2, rule_idx.flatten(2)).view(rule_idx.shape), rule_idx

    monkeypatch.setattr(conn, "forward", forward_by_rule)
    net.conv_algo = "direct"
    routed = net.relax(cl, s, 1)
    monkeypatch.setattr(conn, "forward", plain_forward)
    # per layer, the pre-activations of the two algorithms differ by at most the sum of both bounds of
    # every term (the input term F_0(x) is shared; the activation clips, which is 1-Lipschitz):
    # layer 1 (conv): the top-down transposed conv of the routed s_2
    post = s[1]
    up = torch.zeros((n, 4, ho, wo), dtype=F64).view(n, 4, -1).scatter_(2, rule_idx.flatten(2),
                                                                        post.double().flatten(2)).view(n, 4, ho, wo)
    tol = [(_direct_transpose_bound(up, w1, pad, dtype) + _spectral_bound(conn, up, w1, dtype, True)).amax().item()]
    # layer 2 (conv, pooled): its bottom-up conv (above) and the top-down dense product from s_3, computed by
    # the two loops in different orders (16 terms each)
    td = post.new_tensor(0).double() + (s[2].double().abs() @ net.w2.detach().double().abs()).amax()
    tol.append(tol_fwd + 2 * _gamma(s[2].shape[1], dtype) * td.item())
    # layer 3 (dense): the bottom-up product of the flattened s_2 (16 terms and the bias), in different orders
    bu = (post.double().flatten(1).abs() @ net.w2.detach().double().abs().t() + net.b2.detach().double().abs())
    tol.append(2 * _gamma(post[0].numel() + 1, dtype) * bu.amax().item())
    for layer, (u, v, t) in enumerate(zip(routed, spectral, tol, strict=True)):
        # plus one rounding of each pre-activation's final additions in each loop (3 terms)
        t += 2 * _gamma(3, dtype) * 4 * (u.abs().amax().item() + 1)
        assert (u - v).abs().max().item() <= t, (layer, (u - v).abs().max().item(), t)


def test_spectral_float32_is_as_accurate_as_the_direct_loop():
    """float32 against a float64 run of the same network: the spectral loop's error is no larger."""
    from golden.ep import mnist_conv

    spec = mnist_conv()
    g = torch.Generator().manual_seed(0)
    x = torch.rand((4, 1, 28, 28), generator=g, dtype=F64)
    ref64 = EPNet(spec, dtype=F64, seed=1)
    ref = ref64.relax(ref64.clamp(x), ref64.init_state(4), 60)
    err = {}
    for algo in ("direct", "spectral"):
        net = EPNet(spec, dtype=torch.float32, seed=1)
        net.conv_algo = algo
        got = net.relax(net.clamp(x.float()), net.init_state(4), 60)
        err[algo] = max((u.double() - v).abs().max().item() for u, v in zip(got, ref, strict=True))
    assert err["direct"] < 1e-5 and err["spectral"] < 1e-5
    assert err["spectral"] <= 2 * err["direct"], err


def test_conv_algo_choice_is_validated():
    net = EPNet(SPECS["conv-strided-ce"], dtype=F64)
    assert not net.uses_spectral()  # stride 2 above the input: the direct loop
    net.conv_algo = "spectral"
    with pytest.raises(ValueError, match="conv_algo='spectral' needs"):
        net.uses_spectral()
    net.conv_algo = "fft"
    with pytest.raises(ValueError, match="conv_algo must be one of"):
        net.uses_spectral()
    assert not EPNet(SPECS["mlp-mse"]).uses_spectral()
    assert not EPNet(SPECS["conv-max-avg"]).uses_spectral()


@pytest.mark.parametrize("hw", [(8, 8), (9, 7)])
def test_spectral_max_pool_selection_is_max_pool2d(hw):
    """Pooled values and the routing of the transpose equal F.max_pool2d / max_unpool2d, including equal
    values (first index wins) and odd sizes."""
    from golden.ep.spectral import max_pool_select, to_engine, unpool

    g = torch.Generator().manual_seed(0)
    for f in (torch.rand((3, 4) + hw, generator=g, dtype=F64), torch.randint(0, 3, (3, 4) + hw, generator=g).double()):
        val, sel = max_pool_select(to_engine(f))
        ref, idx = torch.nn.functional.max_pool2d(f, 2, 2, return_indices=True)
        torch.testing.assert_close(val.permute(3, 2, 0, 1), ref, rtol=0, atol=0)
        post = torch.rand(ref.shape, generator=g, dtype=F64)
        got = unpool(to_engine(post), sel, hw).permute(3, 2, 0, 1)
        expected = torch.nn.functional.max_unpool2d(post, idx, 2, 2, output_size=hw)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_spectral_loop_split_over_threads_is_the_same_relaxation(monkeypatch):
    """With T threads the batch relaxes in T chunks side by side; the states, the early stop of
    ``settle_tol`` (batch-wide) and the caller's thread setting are as without the split."""
    import golden.ep.spectral as spectral

    spec = SPECTRAL_SPECS["conv-max-id"]
    net = EPNet(spec, dtype=F64, seed=2)
    x, y = _batch(spec, 7)
    cl, target = net.clamp(x), net.one_hot(y)
    prev = torch.get_num_threads()
    out = {}
    try:
        for chunk in (100, 2):  # no split (7 < 2·100), then 3 chunks of 2–3 samples
            monkeypatch.setattr(spectral, "MIN_CHUNK", chunk)
            torch.set_num_threads(3)
            free = net.relax(cl, net.init_state(7), 30)
            settled = net.relax(cl, net.init_state(7), 300, settle_tol=1e-9)
            out[chunk] = (free, net.relax(cl, free, 5, 0.3, target), settled, net.last_steps, torch.get_num_threads())
    finally:
        torch.set_num_threads(prev)
    assert out[2][4] == 3 and out[2][3] == out[100][3] < 300
    for a, b in zip(out[100][:3], out[2][:3], strict=True):
        for u, v in zip(a, b, strict=True):
            torch.testing.assert_close(v, u, rtol=0, atol=1e-12)


def test_spectral_weight_spectra_follow_in_place_updates():
    """The per-phase weight spectra are reused only while the weight tensor is unchanged."""
    spec = SPECTRAL_SPECS["mnist-conv-like"]
    net = EPNet(spec, dtype=F64, seed=1)
    x, _ = _batch(spec, 3)
    cl = net.clamp(x)
    s0 = _rand_states(net, 3, 2)
    before = net.relax(cl, s0, 3)
    with torch.no_grad():
        net.w1.mul_(1.5)
    after = net.relax(cl, s0, 3)
    net.conv_algo = "direct"
    expected = net.relax(cl, s0, 3)
    assert not torch.allclose(before[0], after[0])
    for u, v in zip(expected, after, strict=True):
        torch.testing.assert_close(v, u, rtol=0, atol=1e-12)
