"""Event counts of EqSpike per sample and phase, and an energy estimate against rate-based EP on a GPU.

The constants are per-event energies published for digital neuromorphic chips and per-FLOP
energies of a GPU at its datasheet peak; docs/eqspike.md lists them with their sources. The
estimate is a ratio of two models, not a measurement: EqSpike's events × the chip's per-event
energies against the rate-based EP network's FLOPs × the GPU's J/FLOP.
"""

from __future__ import annotations

from typing import Any

import torch

from .network import EqSpikeNet, EventCounts

# Per-event energies (joules). Sources in docs/eqspike.md §Energy.
CHIPS: dict[str, dict[str, float | str | None]] = {
    # Davies et al. 2018 (IEEE Micro 38(1)), Loihi, energy per operation [I: values as recalled, see the doc]:
    # synaptic spike op 23.6 pJ, synaptic update 120 pJ, neuron update (active) 81 pJ, within-tile spike 1.7 pJ
    "loihi": {"synaptic_event": 23.6e-12, "update_event": 120e-12, "neuron_update": 81e-12, "spike": 1.7e-12,
              "source": "Davies et al. 2018, IEEE Micro 38(1):82-99 (Loihi), energy per operation"},
    # Merolla et al. 2014 (Science 345:668), TrueNorth: 46 GSOPS/W → 21.7 pJ per synaptic event; no on-chip learning
    "truenorth": {"synaptic_event": 1 / 46e9, "update_event": None, "neuron_update": 0.0, "spike": 0.0,
                  "source": "Merolla et al. 2014, Science 345:668 (TrueNorth), 46 GSOPS/W"},
}
# GPU J/FLOP at the datasheet's FP32 peak (the GPU's best case): NVIDIA H100 SXM, 67 TFLOPS FP32 at 700 W
GPU_J_PER_FLOP = 700.0 / 67e12
GPU_SOURCE = "NVIDIA H100 SXM datasheet: 67 TFLOPS FP32, 700 W TDP → 10.4 pJ/FLOP at peak"


def count_events(net: EqSpikeNet, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None = None,
                 T1: int | None = None, T2: int | None = None, beta: float | None = None,
                 estimator: str | None = None) -> dict[str, Any]:
    """Run one training step's phases on ``x`` (no weight change) and return per-sample counts per phase."""
    cfg = net.cfg
    T1, T2 = T1 or cfg.T1, T2 or cfg.T2
    beta = cfg.beta if beta is None else beta
    estimator = estimator or cfg.estimator
    counts = {k: EventCounts() for k in ("free", "nudged+", "nudged-")}
    net.spike_update(x, y, T1, T2, beta, estimator, gen=gen, sign_gen=torch.Generator().manual_seed(0),
                     counts=counts)
    n = x.shape[0]
    out = {}
    for k, c in counts.items():
        if c.steps == 0:
            continue
        d = c.as_dict()
        out[k] = {"steps": d["steps"], "spikes_per_layer": [v / n for v in d["spikes"]],
                  "spikes": sum(d["spikes"]) / n, "synaptic_events": d["synaptic_events"] / n,
                  "update_events": d["update_events"] / n, "neuron_updates": d["neuron_updates"] / n}
    return out


def rate_ep_flops(layers: tuple[int, ...], T1: int, T2: int, estimator: str, w0x_once: bool = True) -> dict[str, float]:
    """FLOPs per sample of the rate-based EP MLP (closed form, golden.ep): inference and one training step.

    Per step every layer above the input costs its bottom-up and top-down products; W_0·x once per
    sample (``w0x_once``, as golden.ep does) or at every step (as the public reference code does).
    The update costs one outer-product difference per connection (2 products for layers above the input).
    """
    conns = [layers[i] * layers[i + 1] for i in range(len(layers) - 1)]
    upper = sum(conns[1:])
    per_step_mac = 2 * upper + (0 if w0x_once else conns[0])
    once = conns[0] if w0x_once else 0
    n_nudged = (2 if estimator == "symmetric" else 1) * T2
    infer = 2 * (once + T1 * per_step_mac)
    update = 2 * (conns[0] + 2 * upper)
    train = 2 * (once + (T1 + n_nudged) * per_step_mac) + update
    return {"inference": float(infer), "training": float(train)}


def energy_report(events: dict[str, Any], layers: tuple[int, ...], T1: int, T2: int, estimator: str,
                  rate_T1: int = 30, rate_T2: int = 10) -> dict[str, Any]:
    """Energy per sample (J) of EqSpike on each chip vs rate-based EP on a GPU, and their ratios.

    Inference = the free phase; training = all phases (updates counted in the nudged phases).
    The rate-based EP net runs its own published schedule (``rate_T1``, ``rate_T2``: 30/10 for MNIST MLPs).
    """
    def phase_energy(ph: dict[str, float], c: dict[str, Any]) -> float | None:
        if ph["update_events"] and c["update_event"] is None:
            return None  # the chip has no on-chip learning
        upd = ph["update_events"] * c["update_event"] if ph["update_events"] else 0.0
        return ph["synaptic_events"] * c["synaptic_event"] + ph["spikes"] * c["spike"] + \
            ph["neuron_updates"] * c["neuron_update"] + upd

    out: dict[str, Any] = {"gpu": {"source": GPU_SOURCE, "j_per_flop": GPU_J_PER_FLOP}}
    for w0x_once in (True, False):
        fl = rate_ep_flops(layers, rate_T1, rate_T2, estimator, w0x_once)
        key = "rate_ep_w0x_once" if w0x_once else "rate_ep_w0x_every_step"
        out[key] = {"flops": fl, "energy_j": {k: v * GPU_J_PER_FLOP for k, v in fl.items()},
                    "T1": rate_T1, "T2": rate_T2}
    for chip, c in CHIPS.items():
        inf = phase_energy(events["free"], c)
        parts = [phase_energy(events[k], c) for k in events]
        tr = None if any(p is None for p in parts) else sum(parts)
        rec = {"source": c["source"], "energy_j": {"inference": inf, "training": tr},
               "constants_j": {k: v for k, v in c.items() if k != "source"}}
        for key in ("rate_ep_w0x_once", "rate_ep_w0x_every_step"):
            g = out[key]["energy_j"]
            rec[f"gpu_over_chip_{key}"] = {"inference": g["inference"] / inf,
                                           "training": None if tr is None else g["training"] / tr}
        out[chip] = rec
    return out
