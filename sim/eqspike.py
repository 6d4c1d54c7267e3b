"""EqSpike core on generated Verilog (cocotb, Icarus or Verilator) against its twin, compared with ``==``.

:func:`run_eqspike` builds the Verilog of :class:`hdl.eqspike.EqSpikeCore` for a spec, packs a job
(the weight image as element writes, then :class:`Item` s: pixel inference, AER inference, on-chip
training samples, register writes, read-backs of every weight and bias — element by element on
``wcmd``/``wrsp``, or as a block read-back on ``wdump``, one beat per memory word) and runs
:mod:`sim.eqspike_bench` on the chosen simulator with seeded random stalls on every stream.
:func:`compare_with_twin` replays the same job on :class:`golden.eqspike.twin.EqSpikeTwin` and returns
every mismatch (predictions, output states, spike / synaptic-event / weight-word counters, every weight
and bias after every read-back, the AER error counter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.eqspike.twin import EqSpikeTwin
from hdl.eqspike import (
    CTRL_AER,
    CTRL_LABEL_SHIFT,
    CTRL_TRAIN,
    LR_ALL,
    REG_CTRL,
    REG_LR,
    REG_SEED,
    REG_T1,
    REG_TMEM,
    REGISTERS,
    TMEM_NOWRITE,
    _ubits,
    aer_addr_bits,
    dump_word_count,
    tcmd_beats,
    tcmd_fields,
    wcmd_fields,
)
from hdl.eqspike_host import dump_to_weights, pack, unpack_dump
from spec import ternary as tm
from spec.eqspike import EqSpikeSpec, digest_words

from .runner import run_cocotb


@dataclass
class Item:
    """One sample. ``kind``: ``"infer"`` (pixels), ``"aer"`` (address events), ``"train"`` (pixels + label) or
    ``"aer_train"`` (address events for the T1 + T2 (+ T2) steps of a training sample + ``label``, sent in
    REG_CTRL; the twin's :meth:`~golden.eqspike.twin.EqSpikeTwin.train_events`; duplicates allowed).

    ``steps`` (AER): per time step the input neurons that spike; ``bad`` (AER): per step extra addresses
    ≥ N0 sent among them (the core drops and counts them). ``T``: REG_T1 for this sample (inference;
    default the spec's T1; AER: ``len(steps)``). ``reseed``: REG_SEED written before the sample.
    ``readback``: every weight and bias read back element by element after the sample. ``dump``: a block
    read-back (REG_DUMP: every memory word on ``wdump``; the same sweep gives the digest, compared too).
    ``digest``: a REG_DIGEST sweep after the sample (the 32-bit digest of every weight and bias,
    :func:`spec.eqspike.weight_digest`). ``lr_shift`` (training cores): the η registers written before the
    sample (REG_LR), an int for every connection (one LR_ALL write) or one value per connection (one write
    each); the twin replays it with :meth:`~golden.eqspike.twin.EqSpikeTwin.set_lr_shift`."""

    kind: str
    x: np.ndarray | None = None
    label: int = 0
    steps: list[list[int]] | None = None
    bad: list[list[int]] | None = None
    T: int | None = None
    reseed: int | None = None
    readback: bool = False
    digest: bool = False
    dump: bool = False
    lr_shift: int | tuple[int, ...] | None = None


def eqspike_verilog(spec: EqSpikeSpec, weights: dict | None = None, *, dump: bool = True) -> str:
    """Verilog of ``EqSpikeCore(spec, weights, dump=dump)`` as the simulated top ``eqspike_core``
    (``dump=False``: no ``wdump`` port, items with ``dump`` cannot run)."""
    from hdl.eqspike import EqSpikeCore

    from .runner import verilog_of

    return verilog_of(EqSpikeCore(spec, weights, dump=dump), "eqspike_core")


@dataclass
class Report:
    simulator: str
    samples: int = 0
    training_steps: int = 0
    compared: dict = field(default_factory=lambda: {"preds": 0, "states": 0, "counters": 0, "weight_arrays": 0,
                                                    "digests": 0, "dumps": 0})
    mismatches: list[str] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    sim_time_ns: int = 0


def elements(spec: EqSpikeSpec):
    """(name, array index, i, j) of every weight and bias (and a ternary training core's latent weight, wcmd
    array 2L + l) in the order of a load / read-back."""
    L = spec.n_layers
    for l in range(L):
        for i in range(spec.layers[l + 1]):
            for j in range(spec.layers[l]):
                yield f"w{l}", l, i, j
    for l in range(L):
        for i in range(spec.layers[l + 1]):
            yield f"b{l}", L + l, i, 0
    for l in range(L if spec.ternary_training else 0):
        for i in range(spec.layers[l + 1]):
            for j in range(spec.layers[l]):
                yield f"v{l}", 2 * L + l, i, j


def ternary_job(spec: EqSpikeSpec, weights: dict[str, np.ndarray], faults: tuple | None) -> dict:
    """The ternary part of a job: ``REG_TMEM`` writes (the memory's fault registers, ``faults`` =
    (CTRL, RATE_ZERO, RATE_NONZERO, SEED) as :func:`golden.eqspike.ternary.configure_faults` sets them, the
    seed last, REG_INJECTED cleared), the ``tcmd`` write beats programming every word in address order, the
    ``tcmd`` read beats of every word (raw cells on ``trsp``) and the window reads of the memory's registers."""
    tf = tcmd_fields(spec)
    order = list(tf.items())
    tmem = []
    if faults is not None:
        ctrl, rz, rnz, fseed = faults
        tmem = [[REG_TMEM, a | v << 5] for a, v in ((tm.REG_CTRL, ctrl), (tm.REG_RATE_ZERO, rz),
                                                     (tm.REG_RATE_NONZERO, rnz), (tm.REG_SEED, fseed),
                                                     (tm.REG_INJECTED, 0))]
    return {"tmem_writes": tmem,
            "program": [pack([(b[k], w) for k, w in order]) for b in tcmd_beats(spec, weights)],
            "cell_reads": [pack([({"addr": a}.get(k, 0), w) for k, w in order])
                           for a in range(spec.ternary_memory_spec().depth)],
            "tmem_select": {k: a | TMEM_NOWRITE for k, a in (("INJECTED", tm.REG_INJECTED), ("READS", tm.REG_READS),
                                                              ("SPEC_ID", tm.REG_SPEC_ID))}}


def wcmd_word(spec: EqSpikeSpec, wf: dict, read: int, array: int, i: int, j: int, value: int) -> int:
    P = spec.lanes
    return pack([(read, wf["read"]), (array, wf["array"]), (i // P, wf["i_word"]), (i % P, wf["i_lane"]),
                 (j // P, wf["j_word"]), (j % P, wf["j_lane"]), (value, wf["data"])])


def unpack_readback(spec: EqSpikeSpec, words: list[int]) -> dict[str, np.ndarray]:
    bits = wcmd_fields(spec)["data"]
    out = {k: np.zeros(v, np.int64) for k, v in spec.weight_shapes().items()}
    for (name, _a, i, j), w in zip(elements(spec), words, strict=True):
        v = int(w) & ((1 << bits) - 1)
        v = v - (1 << bits) if v >> (bits - 1) else v
        if out[name].ndim == 2:
            out[name][i, j] = v
        else:
            out[name][i] = v
    return out


def words_read(spec: EqSpikeSpec, spikes: list[int]) -> int:
    """Weight words the event engine reads for these spikes per layer (one word per event and target word)."""
    L = spec.n_layers
    return sum(n * ((spec.tiles(l + 1) if l < L else 0) + (spec.tiles(l - 1) if l >= 2 else 0))
               for l, n in enumerate(spikes))


def _item_T(spec: EqSpikeSpec, it: Item) -> int:
    if it.kind == "aer":
        return len(it.steps)
    if it.kind in ("train", "aer_train"):
        return spec.T1
    return it.T or spec.T1


def make_job(spec: EqSpikeSpec, weights: dict[str, np.ndarray], items: list[Item], *, seed: int = 1,
             idle_prob: float = 0.0, stall_prob: float = 0.0, readback_initial: bool = True,
             digest_initial: bool = False, dump_initial: bool = False, timeout_ns: int | None = None,
             faults: tuple | None = None) -> dict:
    """The bench's job. A ternary spec (``weight_kind="ternary"``): the weights are programmed on ``tcmd``
    (after the ``REG_TMEM`` fault-register writes of ``faults``), the biases written on ``wcmd``; see
    :func:`ternary_job`."""
    wf = wcmd_fields(spec)
    P, lb, ab, ib = spec.lanes, _ubits(spec.layers[-1] - 1), aer_addr_bits(spec), spec.input_bits
    ternary = spec.weight_kind == "ternary"
    if faults is not None and not ternary:
        raise ValueError("faults need a ternary spec (the memory's fault registers behind REG_TMEM)")
    load = [wcmd_word(spec, wf, 0, a, i, j, int(weights[n][i, j] if weights[n].ndim == 2 else weights[n][i]))
            for n, a, i, j in elements(spec) if not (ternary and n.startswith("w"))]  # ternary w: on tcmd
    rb = [wcmd_word(spec, wf, 1, a, i, j, 0) for _n, a, i, j in elements(spec)]
    jitems = []
    for it in items:
        if it.kind not in ("infer", "aer", "train", "aer_train"):
            raise ValueError(f"item kind must be 'infer', 'aer', 'train' or 'aer_train', not {it.kind!r}")
        regs = [] if it.reseed is None else [[REG_SEED, int(it.reseed)]]
        if it.lr_shift is not None:
            lrs = spec.check_lr_shift(it.lr_shift)  # a bad value is the caller's error, not a flag to compare
            one = isinstance(it.lr_shift, int) or len(it.lr_shift) == 1  # one value for every connection
            regs += ([[REG_LR, int(lrs[0]) | (LR_ALL << 8)]] if one else
                     [[REG_LR, int(v) | (c << 8)] for c, v in enumerate(lrs)])
        ctrl = {"infer": 0, "aer": CTRL_AER, "train": CTRL_TRAIN,
                "aer_train": CTRL_AER | CTRL_TRAIN | int(it.label) << CTRL_LABEL_SHIFT}[it.kind]
        regs += [[REG_CTRL, ctrl], [REG_T1, _item_T(spec, it)]]
        if it.kind in ("aer", "aer_train"):
            beats = []
            for t, evs in enumerate(it.steps):
                sent = list(evs) + (list(it.bad[t]) if it.bad else [])
                sent = sorted(sent, key=lambda a, t=t: (a * 2654435761 + t) % 1021)  # bad ones mixed in
                beats += [pack([(a, ab), (0, 1)]) for a in sent] + [pack([(0, ab), (1, 1)])]
            stream = "aer"
        else:
            x = [int(v) for v in it.x] + [0] * (spec.tiles(0) * P - len(it.x))
            beats = [pack([(v, ib) for v in x[t * P:(t + 1) * P]] + [(int(it.label), lb)])
                     for t in range(spec.tiles(0))]
            stream = "inp"
        jitems.append({"regs": regs, "stream": stream, "beats": beats, "readback": it.readback, "digest": it.digest,
                       "dump": it.dump})
    return {"seed": seed, "idle_prob": idle_prob, "stall_prob": stall_prob, "timeout_ns": timeout_ns,
            "regs": {k[4:]: v for k, v in REGISTERS.items()}, "load": load, "readback_cmds": rb,
            "readback_initial": readback_initial, "digest_initial": digest_initial, "dump_initial": dump_initial,
            "digest_words": sum(len(w) for w in digest_words(spec, weights)),
            # 0: no block read-back asked (the core may have been built without the wdump port)
            "dump_words": dump_word_count(spec) if dump_initial or any(it.dump for it in items) else 0,
            "items": jitems, **({"ternary": ternary_job(spec, weights, faults)} if ternary else {})}


def run_eqspike(spec: EqSpikeSpec, weights: dict[str, np.ndarray], items: list[Item], simulator: str, *,
                build_root: Path | None = None, seed: int = 1, idle_prob: float = 0.0, stall_prob: float = 0.0,
                readback_initial: bool = True, digest_initial: bool = False, dump_initial: bool = False,
                timeout_ns: int | None = None, verilog: str | None = None, faults: tuple | None = None) -> dict:
    """Run the generated Verilog (``verilog``: already generated text of :func:`eqspike_verilog`, else built
    here); the bench's raw result."""
    if verilog is None:
        verilog = eqspike_verilog(spec)
    job = make_job(spec, weights, items, seed=seed, idle_prob=idle_prob, stall_prob=stall_prob,
                   readback_initial=readback_initial, digest_initial=digest_initial, dump_initial=dump_initial,
                   timeout_ns=timeout_ns, faults=faults)
    return run_cocotb(verilog, "eqspike_core", "sim.eqspike_bench", simulator, build_root, job=job, seed=seed)


def compare_with_twin(spec: EqSpikeSpec, weights: dict[str, np.ndarray], items: list[Item], result: dict,
                      simulator: str, *, twin: EqSpikeTwin | None = None, max_report: int = 20) -> Report:
    """Replay the job on the twin (or on ``twin``, e.g. a deliberately corrupted one) and list every difference."""
    rep = Report(simulator, wall_s=result.get("wall_s", 0.0), sim_time_ns=int(result.get("sim_time_ns", 0)))
    twin = EqSpikeTwin(spec, weights) if twin is None else twin
    lb, sb, n_out = _ubits(spec.layers[-1] - 1), spec.state_bits, spec.layers[-1]

    def bad(msg):
        rep.mismatches.append(msg if len(rep.mismatches) < max_report else "…")

    def check_weights(where, words):
        got = unpack_readback(spec, words)
        for k, v in twin.weights.items():
            rep.compared["weight_arrays"] += 1
            if not np.array_equal(got[k], v):
                bad(f"{where}: {k} differs in {int((got[k] != v).sum())} elements")

    if result["spec_id"] != spec.spec_id:
        bad(f"SPEC_ID register {result['spec_id']:#x} != {spec.spec_id:#x}")
    def check_digest(where, got):
        rep.compared["digests"] += 1
        want = twin.digest()
        if int(got) != want:
            bad(f"{where}: REG_DIGEST {int(got):#010x} != twin's weight digest {want:#010x}")

    def check_dump(where, beats):
        rep.compared["dumps"] += 1
        got, pad = dump_to_weights(spec, unpack_dump(spec, beats))
        if pad:
            bad(f"{where}: block read-back has {pad} non-zero padding lanes")
        tw = twin.weights
        for k in got:  # (w{l} and b{l}: a ternary training core's latents are read back element by element)
            v = tw[k]
            rep.compared["weight_arrays"] += 1
            if not np.array_equal(got[k], v):
                bad(f"{where}: block read-back: {k} differs in {int((got[k] != v).sum())} elements")

    ternary = spec.weight_kind == "ternary"
    w_elems = sum(int(np.prod(spec.weight_shapes()[f"w{l}"])) for l in range(spec.n_layers))
    depth = spec.ternary_memory_spec().depth if ternary else 0
    pcsa = 0  # PCSA reads of the ternary memory the job makes (REG_READS)
    sensed = ternary and not spec.training  # (a training core reads its cells raw: no PCSA read is counted)
    if ternary:
        rep.compared.setdefault("cells", 0)
        rep.compared["cells"] += 1
        want_cells = [int(sum(int(v) << (2 * i) for i, v in enumerate(row))) for row in twin.memory.cells]
        if [int(v) for v in result["cells"]] != want_cells:
            bad(f"ternary cells read on tcmd/trsp differ from the twin's stored cells in "
                f"{sum(a != b for a, b in zip(result['cells'], want_cells, strict=True))} words")
        ti = result["tmem_initial"]
        if ti["SPEC_ID"] != spec.ternary_memory_spec().spec_id:
            bad(f"REG_TMEM SPEC_ID {ti['SPEC_ID']:#x} != {spec.ternary_memory_spec().spec_id:#x}")
        if ti["INJECTED"] != twin.memory.injected:
            bad(f"REG_TMEM INJECTED {ti['INJECTED']} != twin {twin.memory.injected}")
        rep.compared["counters"] += 2
    if "readback_initial" in result:
        check_weights("initial read-back", result["readback_initial"])
        pcsa += w_elems
    if "dump_initial" in result:
        check_dump("initial", result["dump_initial"])
    if "digest_initial" in result:
        check_digest("initial digest", result["digest_initial"])
        pcsa += depth
    n_bad = 0
    for n, (it, res) in enumerate(zip(items, result["items"], strict=True)):
        if it.reseed is not None:
            twin.reseed(it.reseed)
        if it.lr_shift is not None:
            twin.set_lr_shift(it.lr_shift)
        T = _item_T(spec, it)
        if it.kind == "train":
            rec = twin.train_sample(np.asarray(it.x), int(it.label))
            rep.training_steps += 1
        elif it.kind == "aer_train":
            rec = twin.train_events(it.steps, int(it.label))
            rep.training_steps += 1
            n_bad += sum(len(b) for b in (it.bad or []))
        elif it.kind == "aer":
            rec = twin.infer_events(it.steps)
            n_bad += sum(len(b) for b in (it.bad or []))
        else:
            rec = twin.infer(np.asarray(it.x), T=None if T == spec.T1 else T)
        rep.samples += 1
        if it.kind not in ("train", "aer_train"):  # one PCSA read per bottom-up row word (top-down: mirrored copies)
            pcsa += sum(rec.phases[0].spikes[l] * spec.tiles(l + 1) for l in range(spec.n_layers))
        w = int(res["out"])
        pred, states = w & ((1 << lb) - 1), [(w >> (lb + i * sb)) & ((1 << sb) - 1) for i in range(n_out)]
        rep.compared["preds"] += 1
        if pred != rec.pred:
            bad(f"item {n} ({it.kind}): prediction {pred} != twin {rec.pred}")
        rep.compared["states"] += 1
        if states != rec.phases[0].s[-1][0].tolist():
            bad(f"item {n} ({it.kind}): output states {states} != twin {rec.phases[0].s[-1][0].tolist()}")
        c = res["counters"]
        rep.cycles.append(int(c["CYCLES"]))
        want = {"SPIKES": sum(sum(p.spikes) for p in rec.phases)}
        if it.kind != "train":  # (AER training: all phases)
            spikes = [sum(p.spikes[l] for p in rec.phases) for l in range(spec.n_layers + 1)]
            want.update(SYN=sum(p.synaptic_events for p in rec.phases), WORDS=words_read(spec, spikes))
        for k, v in want.items():
            rep.compared["counters"] += 1
            if int(c[k]) != v:
                bad(f"item {n} ({it.kind}): {k} counter {c[k]} != twin {v}")
        if it.digest or it.dump:
            check_digest(f"item {n} ({it.kind})", res["digest"])
            pcsa += depth
        if it.dump:
            check_dump(f"item {n} ({it.kind})", res["dump"])
        if it.readback:
            check_weights(f"item {n} ({it.kind})", res["readback"])
            pcsa += w_elems
    if result["end"]["AER_BAD"] != n_bad:
        bad(f"REG_AER_BAD {result['end']['AER_BAD']} != {n_bad} events sent for neurons that do not exist")
    if result["end"]["SAMPLES"] != len(items):
        bad(f"REG_SAMPLES {result['end']['SAMPLES']} != {len(items)}")
    if ternary:
        te = result["tmem_end"]
        rep.compared["counters"] += 2
        # a block read-back senses every word exactly once, whatever the wdump back-pressure (a waiting beat
        # holds its data): ``depth`` reads each (a training core's raw reads: none)
        dr = [int(v) for v in result.get("dump_reads", [])]
        if any(v != (depth if sensed else 0) for v in dr):
            bad(f"REG_TMEM READS during a block read-back {dr} != {depth if sensed else 0} words")
        pcsa = pcsa if sensed else 0
        if te["READS"] != pcsa:
            bad(f"REG_TMEM READS {te['READS']} (block read-backs {dr}) != {pcsa} PCSA reads the job made")
        if te["INJECTED"] != twin.memory.injected:
            bad(f"REG_TMEM INJECTED at the end {te['INJECTED']} != twin {twin.memory.injected}")
    return rep
