"""The STDP window of the spike-driven rule: the pair protocol (docs/eqspike.md §STDP).

One synapse W_ij, both neurons driven from outside (no network): the presynaptic neuron j spikes
once, at step ``t_pre``; the postsynaptic neuron i fires through the sigma-delta encoder at rate
``r_lo`` and switches to ``r_hi`` (a *rise*) or from ``r_hi`` to ``r_lo`` (a *fall*) at
``t_pre + Δt``. Both traces are the model's low-pass cascades (λ = 2^-trace_shift, ``stages``).
The update is the rule's phase sum, ``ΔW = Σ_t e_j(t)·Δŝ_i(t) + e_i(t)·Δŝ_j(t)`` (in units of η/β),
minus the same sum without the rate change (the baseline removes the encoder's ripple). All Δt
are computed at once as a batch.
"""

from __future__ import annotations

from typing import Any

import torch

from .network import sigma_delta_, ternarize, trace_step_


def pair_protocol(dts: list[int] | torch.Tensor, *, trace_shift: int = 3, stages: int = 2, r_lo: float = 0.2,
                  r_hi: float = 0.8, pre_at: int = 100, tail: int = 200, update: str = "spike",
                  theta: float = 0.01, repeats: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """ΔW (float64, units of η/β) for each Δt, for a rise and a fall of the postsynaptic rate.

    Returns ``{"dt", "rise", "fall", "rise_pre_term", "rise_post_term", "fall_pre_term", "fall_post_term"}``:
    the ``pre_term`` is Σ e_j Δŝ_i (the presynaptic spike reads the postsynaptic trace's slope),
    the ``post_term`` Σ e_i Δŝ_j (postsynaptic spikes read the presynaptic trace's slope).
    Each value is the mean over ``repeats`` random initial residues of the postsynaptic encoder
    (the same residue for a protocol and its baseline), which averages out the encoder's ripple.
    """
    dts = torch.as_tensor(dts, dtype=torch.int64)
    if dts.ndim != 1 or len(dts) == 0:
        raise ValueError("dts must be a non-empty list of integer delays")
    if not (0.0 <= r_lo <= 1.0 and 0.0 <= r_hi <= 1.0 and r_lo != r_hi):
        raise ValueError(f"r_lo and r_hi must be distinct rates in [0, 1], not {r_lo!r}, {r_hi!r}")
    if pre_at + int(dts.min()) < 0:
        raise ValueError(f"pre_at ({pre_at}) + the smallest Δt ({int(dts.min())}) must be ≥ 0")
    if tail <= 0:
        raise ValueError(f"tail must be a positive number of steps, not {tail}")
    if repeats <= 0:
        raise ValueError(f"repeats must be a positive integer, not {repeats}")
    gen = torch.Generator().manual_seed(seed)
    lam = 2.0 ** -trace_shift
    T = pre_at + int(dts.max()) + tail
    t = torch.arange(T).view(1, T)
    n = len(dts) * repeats
    change = (pre_at + dts).repeat_interleave(repeats).view(n, 1)
    out: dict[str, torch.Tensor] = {"dt": dts}
    for kind, (a, b) in (("rise", (r_lo, r_hi)), ("fall", (r_hi, r_lo))):
        # batch rows: [protocol (n), baseline without the change (n)]
        rate = torch.cat([torch.where(t < change, a, b), torch.full((n, T), a)]).to(torch.float64)
        pre_spikes = (t == pre_at).expand(2 * n, T).to(torch.float64)
        phi = (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5).repeat(2)
        tr_i = [torch.zeros(2 * n, dtype=torch.float64) for _ in range(stages)]
        tr_j = [torch.zeros(2 * n, dtype=torch.float64) for _ in range(stages)]
        pre_term = torch.zeros(2 * n, dtype=torch.float64)
        post_term = torch.zeros(2 * n, dtype=torch.float64)
        for k in range(T):
            e_i = sigma_delta_(rate[:, k], phi)
            e_j = pre_spikes[:, k]
            d_i = trace_step_(tr_i, e_i, lam)
            d_j = trace_step_(tr_j, e_j, lam)
            if update == "ternary":
                d_i, d_j = ternarize(d_i, theta), ternarize(d_j, theta)
            pre_term += e_j * d_i
            post_term += e_i * d_j
        out[f"{kind}_pre_term"] = (pre_term[:n] - pre_term[n:]).view(-1, repeats).mean(1)
        out[f"{kind}_post_term"] = (post_term[:n] - post_term[n:]).view(-1, repeats).mean(1)
        out[kind] = out[f"{kind}_pre_term"] + out[f"{kind}_post_term"]
    return out


def stdp_report(res: dict[str, torch.Tensor], params: dict[str, Any]) -> dict[str, Any]:
    return {"params": params, **{k: v.tolist() for k, v in res.items()}}


def plot_stdp(report: dict[str, Any], path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(7, 4))
    dt = report["dt"]
    ax.plot(dt, report["rise"], "o-", ms=3, label="rise of the postsynaptic rate")
    ax.plot(dt, report["fall"], "s-", ms=3, label="fall of the postsynaptic rate")
    ax.plot(dt, report["rise_pre_term"], ":", lw=1, label="rise: Σ e_pre·Δŝ_post")
    ax.plot(dt, report["rise_post_term"], "--", lw=1, label="rise: Σ e_post·Δŝ_pre")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    p = report["params"]
    ax.set_xlabel("Δt = t(rate change of post) − t(pre spike)  [steps]")
    ax.set_ylabel("ΔW  [η/β]")
    ax.set_title(f"EqSpike pair protocol (λ = 2^-{p['trace_shift']}, {p['stages']} stage(s), {p['update']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
