"""Training and inference speed (samples/s) of epforge's float EP beside the reference code, on CPU.

Each configuration runs our implementation (the trainer's own per-batch step,
``golden.train.train_batch``: ``ep_step`` + ``apply_update`` with Adam) and, when given, the
reference code of Laborieux et al. (its own ``train()`` / ``evaluate()`` functions, imported from
--reference) on the same images, in the same process and with the same thread count:

  * MLP 784-512-10, my_sigmoid, MSE, T1 30, T2 10, beta 0.1, Adam lr 5e-4 (the reference's MNIST
    check script): training at batch 50 and 256 with the one-sided and symmetric estimators
    (reference: thirdphase off / on), and inference (free phase of T1 steps + argmax) at batch 200;
  * ConvNet 1-32-64 5x5 max-pool fc10, hard_sigmoid, T1 200, T2 10, beta 0.4, batch 100, Adam
    lrs 5e-5 1e-5 8e-6 (the reference's MNIST conv script), one-sided and symmetric; ours twice:
    exact (always T1 free steps) and with --settle-tol (our optional early end of the free phase,
    not in the reference). Our relaxation loop is the spectral one (golden.ep.spectral) unless
    --conv-algo direct; the JSON records which ran.

When --ebl (or $EPFORGE_EBL) names a clone of the energy-based-learning library of Scellier et
al. (NeurIPS 2023; bench/_ebl_reference.py drives its own Trainer.run()), rows "... (EBL)" put it
beside ours: its MLP 784-512-10 (hard-sigmoid hidden, linear output, squared error) with T1 30
free + 2 x T2 10 nudged iterations at batch 50, and its ConvHopfieldEnergy28 at T1 200 / T2 10,
batch 100, both against our symmetric estimator (its centred EP). Its iteration is an exact,
asynchronous layer-wise fixed-point update and its free phase starts from the previous batch's
state; ours is an Euler step from zero -- the JSON's "ebl.differences" lists these beside the
figures. --accuracy-samples N trains both MLPs for one pass over N training images and reports
test accuracy (ours with its own MLP recipe, the library with its SGD recipe).

Our MLP relaxation is golden.ep.dense (EPNet.mlp_algo "fast", bit-identical to the generic step()
loop); --with-generic also times the generic loop on the same data ("fast_over_generic" in the
JSON), --rounds N runs every MLP implementation N times in turn and reports each one's median round
(the per-round ratios go to the JSON: the figure to quote on a busy machine), and --mlp-settle-tol TOL
adds opt-in rows whose free phase ends early (changes results; with --accuracy-samples also its
one-pass test accuracy and free-phase lengths beside the exact run's).

Timing is wall-clock (time.perf_counter) over the stated number of samples after warm-up. The
reference's train() ends its epoch with an evaluation of one test batch; that evaluation is timed
on its own and subtracted. Results go to --json (atomically) and a table is printed.

    python bench/ep_speed.py --reference /path/to/Equilibrium-Propagation
    python bench/ep_speed.py --skip-conv --mlp-samples 2000          # quick, no reference
    python bench/ep_speed.py --reference DIR --ebl DIR2 --skip-conv --mlp-samples 2000 --with-generic --rounds 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import sys
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

DEFAULT_JSON = REPO / "bench" / "results" / "ep_speed.json"
MLP = {"T1": 30, "T2": 10, "beta": 0.1, "lrs": (5e-4, 5e-4)}
CONV = {"T1": 200, "T2": 10, "beta": 0.4, "lrs": (5e-5, 1e-5, 8e-6), "batch": 100}
INFER_BATCH = 200
REF_MIN_BATCHES = 10  # the reference's train() computes idx % (iter_per_epochs // 10)


def _bench_module(filename: str, name: str) -> types.ModuleType:
    """A helper module of bench/, imported from its file once (bench/ is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def reference_helper() -> types.ModuleType:
    """bench/_reference.py (the Laborieux reference code's loader)."""
    return _bench_module("_reference.py", "epforge_bench_reference")


def ebl_helper() -> types.ModuleType:
    """bench/_ebl_reference.py (the energy-based-learning library's loader)."""
    return _bench_module("_ebl_reference.py", "epforge_bench_ebl_reference")


EBL_DIFFERENCES = [
    "iteration: EBL = exact layer-wise fixed-point update, asynchronous (even then odd layers); ours = one Euler "
    "step of all layers (synchronous)",
    "free phase start: EBL = previous batch's final state; ours = zero state every batch",
    "units: EBL MLP = hard-sigmoid hidden, linear output, squared error; ours MLP = my_sigmoid on all layers, MSE",
    "estimator: EBL centred EP (+beta and -beta nudged phases of T2 each) = our symmetric estimator; EBL beta 0.2 "
    "(MLP) / 0.4 (conv), ours 0.1 / 0.4",
    "optimizer: EBL plain SGD lr 0.05 per tensor; ours Adam (the reference's recipe)",
]


def count_free_steps(net) -> list[int]:
    """Make ``net.relax`` record the length of every phase run with a settle tolerance (the free phases)."""
    free_steps: list[int] = []
    relax = net.relax

    def counting_relax(*a, settle_tol=None, **k):
        out = relax(*a, settle_tol=settle_tol, **k)
        if settle_tol is not None:
            free_steps.append(net.last_steps)
        return out

    net.relax = counting_relax
    return free_steps


def ours_accuracy(spec, p: dict[str, Any], batch: int, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor,
                  yt: torch.Tensor, seed: int, settle_tol: float | None = None) -> dict[str, Any]:
    """Test accuracy of ours after one pass over ``(x, y)`` (symmetric estimator), and its training time.

    With ``settle_tol`` the free phases (training and test) end early (EPSchedule.settle_tol)."""
    from golden.train import build, evaluate, train_batch

    cfg = _config(spec, p, "symmetric", batch, settle_tol)
    net, opt, _ = build(cfg, torch.device("cpu"))
    free_steps = count_free_steps(net)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=gen)
    t0 = time.perf_counter()
    for b in range(math.ceil(len(x) / batch)):
        idx = perm[b * batch:(b + 1) * batch]
        train_batch(net, cfg, opt, x[idx], y[idx], gen)
    sec = time.perf_counter() - t0
    train_steps = list(free_steps)
    free_steps.clear()
    res = {"train_samples": len(x), "train_seconds": sec, "samples_per_s": len(x) / sec, "settle_tol": settle_tol,
           "test_samples": len(xt), "test_acc": evaluate(net, xt, yt, p["T1"], INFER_BATCH, settle_tol=settle_tol)}
    if settle_tol is not None:
        res["mean_free_steps_train"] = sum(train_steps) / len(train_steps)
        res["mean_free_steps_test"] = sum(free_steps) / len(free_steps)
        tail = train_steps[-max(1, len(train_steps) // 10):]
        res["mean_free_steps_train_last_tenth"] = sum(tail) / len(tail)
    return res


def ebl_accuracy(eh, lib, batch: int, x, y, xt, yt, seed: int) -> dict[str, Any]:
    m = eh.build(lib, "mlp")
    t = eh.time_training(lib, "mlp", x, y, batch, seed, warmup_batches=0, model=m)
    return {"train_samples": len(x), "train_seconds": t["seconds"], "samples_per_s": t["samples_per_s"],
            "test_samples": len(xt), "test_acc": eh.evaluate(lib, m, xt, yt, INFER_BATCH)}


def default_data_dir(arg: str | None) -> str | None:
    """--data-dir, else $EPFORGE_DATA, else <repo>/../shared/data if it exists, else None (the subset)."""
    if arg:
        return arg
    if os.environ.get("EPFORGE_DATA"):
        return os.environ["EPFORGE_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def load_images(data_dir: str | None, n: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """``n`` MNIST training images as float (N, 1, 28, 28) in [0, 1] (the subset, repeated, if MNIST is absent)."""
    from golden.data import load_dataset, load_mnist_or_subset

    ds = load_mnist_or_subset("train", data_dir) if data_dir is not None else load_dataset("mnist-subset", "train")
    x = torch.from_numpy(ds.images).to(torch.float32).div_(255.0)
    y = torch.from_numpy(ds.labels).long()
    reps = math.ceil(n / len(x))
    if reps > 1:
        x, y = x.repeat(reps, 1, 1, 1), y.repeat(reps)
    info = {"dataset": ds.name, "source": str(ds.source), "images_available": len(ds.images),
            "repeated": reps > 1}
    return x[:n].contiguous(), y[:n].contiguous(), info


def busy_note(threads: int) -> str | None:
    """A warning when other processes keep the CPUs busy (multi-threaded timings then collapse)."""
    if not hasattr(os, "getloadavg") or not os.cpu_count():
        return None
    load = os.getloadavg()[0]
    if load + threads > os.cpu_count() + 0.5:
        return (f"machine busy: 1-min load average {load:.1f} on {os.cpu_count()} logical CPUs with {threads} "
                f"threads requested; timings are unreliable (oversubscribed threads slow both implementations)")
    return None


def machine_info(threads: int) -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu_model": cpu or platform.processor(),
            "logical_cpus": os.cpu_count(), "threads": threads, "torch_num_threads": torch.get_num_threads(),
            "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "busy_warning": busy_note(threads)}


# ----------------------------------------------------------------------------------------------
# Ours
# ----------------------------------------------------------------------------------------------
def _config(spec, p: dict[str, Any], estimator: str, batch: int, settle_tol: float | None):
    from golden.train import TrainConfig

    return TrainConfig(net=spec, dataset="mnist", T1=p["T1"], T2=p["T2"], beta=p["beta"], estimator=estimator,
                       settle_tol=settle_tol, optimizer="adam", lrs=p["lrs"], batch_size=batch)


def ours_training(spec, p: dict[str, Any], estimator: str, batch: int, settle_tol: float | None,
                  x: torch.Tensor, y: torch.Tensor, warmup_batches: int, seed: int,
                  conv_algo: str = "auto", mlp_algo: str = "fast") -> dict[str, Any]:
    """Samples/s of the trainer's per-batch step over ``(x, y)`` in shuffled mini-batches."""
    from golden.train import build, train_batch

    cfg = _config(spec, p, estimator, batch, settle_tol)
    net, opt, _ = build(cfg, torch.device("cpu"))
    net.conv_algo = conv_algo
    net.mlp_algo = mlp_algo
    free_steps = count_free_steps(net)
    gen = torch.Generator().manual_seed(seed)
    for b in range(warmup_batches):
        i = (b * batch) % len(x)
        train_batch(net, cfg, opt, x[i:i + batch], y[i:i + batch], gen)
    free_steps.clear()
    n = len(x)
    perm = torch.randperm(n, generator=gen)
    correct = 0
    t0 = time.perf_counter()
    for b in range(math.ceil(n / batch)):
        idx = perm[b * batch:(b + 1) * batch]
        yb = y[idx]
        logits = train_batch(net, cfg, opt, x[idx], yb, gen)
        correct += (logits.argmax(1) == yb).sum().item()
    sec = time.perf_counter() - t0
    res = {"samples": n, "batches": math.ceil(n / batch), "seconds": sec, "samples_per_s": n / sec,
           "running_train_acc": correct / n, "relaxation": relaxation_name(net)}
    if settle_tol is not None:
        res["mean_free_steps"] = sum(free_steps) / len(free_steps) if free_steps else None
    return res


def relaxation_name(net) -> str:
    """Which loop EPNet.relax ran: dense-fast (golden.ep.dense), spectral (golden.ep.spectral) or generic step()."""
    if net.uses_dense_fast():
        return "dense-fast"
    return "spectral" if net.uses_spectral() else "direct"


def ours_inference(spec, T1: int, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int,
                   mlp_algo: str = "fast") -> dict[str, Any]:
    from golden.ep import EPNet
    from golden.train import evaluate

    net = EPNet(spec, dtype=torch.float32, seed=seed)
    net.mlp_algo = mlp_algo
    evaluate(net, x[:batch], y[:batch], T1, batch)  # warm-up
    t0 = time.perf_counter()
    evaluate(net, x, y, T1, batch)
    sec = time.perf_counter() - t0
    return {"samples": len(x), "batches": math.ceil(len(x) / batch), "seconds": sec, "samples_per_s": len(x) / sec,
            "relaxation": relaxation_name(net)}


# ----------------------------------------------------------------------------------------------
def full_batches(n: int, batch: int, minimum: int = 1) -> int:
    """``n`` rounded up to whole batches, at least ``minimum`` of them."""
    return max(math.ceil(n / batch), minimum) * batch


def _row(name: str, model: str, mode: str, batch: int, p: dict[str, Any], estimator: str | None,
         settle_tol: float | None, ours: dict[str, Any], ref: dict[str, Any] | None,
         who: str = "reference") -> dict[str, Any]:
    ratio = None
    if ref is not None and ref.get("samples_per_s"):
        ratio = ours["samples_per_s"] / ref["samples_per_s"]
    return {"config": name, "model": model, "mode": mode, "batch": batch, "T1": p["T1"],
            "T2": p["T2"] if mode == "training" else None, "beta": p["beta"] if mode == "training" else None,
            "estimator": estimator, "settle_tol": settle_tol, "ours": ours, "reference": ref, "ratio": ratio,
            "against": "energy-based-learning (Scellier et al.)" if who == "ebl" else "Laborieux et al."}


def _run_ref(fn, *a, **k) -> dict[str, Any]:
    try:
        return fn(*a, **k)
    except Exception as e:  # the reference is optional: a failure is reported, never fatal
        return {"error": f"{type(e).__name__}: {e}", "samples_per_s": None}


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    from golden.ep import mnist_conv, mnist_mlp

    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"bench": "ep_speed", "machine": machine_info(args.threads),
                              "timing": "wall-clock (time.perf_counter) over the stated number of samples after "
                                        "warm-up; ours: golden.train.train_batch (ep_step + apply_update, Adam) per "
                                        "mini-batch, evaluate() for inference; reference: its own train() for one "
                                        "epoch minus a separately timed evaluation of its one-batch test loader, "
                                        "its own evaluate() for inference",
                              "options": {k: v for k, v in vars(args).items() if k != "json"}}
    ref_helper = reference_helper()
    ref_path, note = ref_helper.resolve(args.reference)
    mu = None
    if ref_path is not None:
        try:
            mu = ref_helper.load(ref_path)
        except Exception as e:
            note = f"reference at {ref_path} could not be imported ({type(e).__name__}: {e}); skipped"
    result["reference"] = {"used": mu is not None, "note": note,
                           "path": str(ref_path) if ref_path else None,
                           "commit": ref_helper.commit_of(ref_path) if ref_path else None}
    eh = ebl_helper()
    ebl_path, ebl_note = eh.resolve(args.ebl)
    lib = None
    if ebl_path is not None:
        try:
            lib = eh.load(ebl_path)
        except Exception as e:
            ebl_note = (f"energy-based-learning library at {ebl_path} could not be imported "
                        f"({type(e).__name__}: {e}); skipped")
    result["ebl"] = {"used": lib is not None, "note": ebl_note, "path": str(ebl_path) if ebl_path else None,
                     "commit": ref_helper.commit_of(ebl_path) if ebl_path else None, "differences": EBL_DIFFERENCES}
    log(f"ebl: {ebl_note}" + ("" if lib is not None else " -- EBL rows skipped"))
    if result["machine"]["busy_warning"]:
        log(f"warning: {result['machine']['busy_warning']}")
    log(f"reference: {note}" + ("" if mu is not None else " -- reference columns skipped"))

    data_dir = default_data_dir(args.data_dir)
    rows: list[dict[str, Any]] = []
    result["rows"] = rows
    min_batches = REF_MIN_BATCHES if mu is not None else 1
    need = 0
    if not args.skip_mlp:
        need = max(need, *(full_batches(args.mlp_samples, b, min_batches) for b in (50, 256)))
    if not args.skip_conv:
        need = max(need, full_batches(args.conv_samples, CONV["batch"], min_batches))
    x_all, y_all, data_info = load_images(data_dir, max(need, INFER_BATCH))
    result["data"] = data_info
    log(f"data: {data_info['dataset']} from {data_info['source']}"
        + (" (repeated to fill the sample count)" if data_info["repeated"] else ""))

    def interleaved(timers: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Run every timer once per round, in turn, for --rounds rounds; per timer, the round with the median
        samples/s (all rounds' figures in ``rounds_samples_per_s`` when there are several)."""
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k, f in timers.items() if f is not None}
        for _ in range(args.rounds):
            for k in runs:
                runs[k].append(timers[k]())
        out = {}
        for k, rs in runs.items():
            ok = sorted((r for r in rs if r.get("samples_per_s")), key=lambda r: r["samples_per_s"])
            out[k] = dict(ok[len(ok) // 2]) if ok else rs[-1]
            if args.rounds > 1:
                out[k]["rounds_samples_per_s"] = [r.get("samples_per_s") for r in rs]
        return out

    def attach_generic(res: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ours = res["ours"]
        if "generic" in res:
            g = res["generic"]
            ours["generic_samples_per_s"] = g["samples_per_s"]
            ours["fast_over_generic"] = ours["samples_per_s"] / g["samples_per_s"]
            if "rounds_samples_per_s" in g:
                ours["generic_rounds_samples_per_s"] = g["rounds_samples_per_s"]
        return ours

    def add_round_ratios(row: dict[str, Any]) -> dict[str, Any]:
        a, b = row["ours"].get("rounds_samples_per_s"), (row["reference"] or {}).get("rounds_samples_per_s")
        if a and b:
            row["ratio_rounds"] = [u / v if u and v else None for u, v in zip(a, b, strict=True)]
        return row

    def report(row):
        rows.append(add_round_ratios(row))
        ref = row["reference"]
        ref_s = "-" if not ref else (f"{ref['samples_per_s']:.1f}" if ref.get("samples_per_s") else "error")
        extra = f", {row['ours']['mean_free_steps']:.1f} free steps" if row["ours"].get("mean_free_steps") else ""
        if row["ours"].get("generic_samples_per_s"):
            extra += f" (generic step loop {row['ours']['generic_samples_per_s']:.1f}/s)"
        ratio = f", ratio {row['ratio']:.2f}" if row["ratio"] else ""
        if row.get("ratio_rounds"):
            ratio += " (rounds " + " ".join(f"{r:.2f}" if r else "-" for r in row["ratio_rounds"]) + ")"
        log(f"  {row['config']}: ours {row['ours']['samples_per_s']:.1f}/s{extra}, reference {ref_s}/s{ratio}")

    if not args.skip_mlp:
        spec = mnist_mlp()
        hs_spec = mnist_mlp(activation="hard_sigmoid")
        for batch in (50, 256):
            n = full_batches(args.mlp_samples, batch, min_batches)
            x, y = x_all[:n], y_all[:n]
            for est in ("one-sided", "symmetric"):
                def ours_t(algo: str, s=spec, est=est, batch=batch, x=x, y=y, tol=None) -> dict[str, Any]:
                    return ours_training(s, MLP, est, batch, tol, x, y, args.warmup_batches, args.seed,
                                         mlp_algo=algo)

                ebl_row = lib is not None and batch == eh.MLP["batch"] and est == "symmetric"
                res = interleaved({
                    "ours": lambda f=ours_t: f(args.mlp_algo),
                    "generic": (lambda f=ours_t: f("generic")) if args.with_generic and args.mlp_algo == "fast"
                    else None,
                    "ref": None if mu is None else (
                        lambda est=est, batch=batch, x=x, y=y: _run_ref(ref_helper.time_training, mu, "mlp", x, y,
                                                                        batch, est == "symmetric", args.seed)),
                    "ebl": (lambda batch=batch, x=x, y=y: _run_ref(eh.time_training, lib, "mlp", x, y, batch,
                                                                   args.seed, warmup_batches=args.warmup_batches))
                    if ebl_row else None,
                    "hs": (lambda f=ours_t: f(args.mlp_algo, s=hs_spec)) if ebl_row else None,
                    "settled": (lambda f=ours_t: f(args.mlp_algo, tol=args.mlp_settle_tol))
                    if args.mlp_settle_tol else None,
                })
                ours = attach_generic(res)
                report(_row(f"mlp train b{batch} {est}", "mlp 784-512-10", "training", batch, MLP, est, None,
                            ours, res.get("ref")))
                if ebl_row:
                    report(_row(f"mlp train b{batch} symmetric vs centred (EBL)", "mlp 784-512-10", "training",
                                batch, MLP, est, None, ours, res["ebl"], who="ebl"))
                    # ours with the library's hidden activation (our output layer keeps the same activation)
                    report(_row(f"mlp train b{batch} symmetric hard_sigmoid vs centred (EBL)", "mlp 784-512-10",
                                "training", batch, MLP, est, None, res["hs"], res["ebl"], who="ebl"))
                if "settled" in res:  # opt-in, changes numerics: the free phase ends early
                    tol = args.mlp_settle_tol
                    report(_row(f"mlp train b{batch} {est}, ours settle_tol={tol:g}", "mlp 784-512-10", "training",
                                batch, MLP, est, tol, res["settled"], res.get("ref")))
                    if ebl_row:
                        report(_row(f"mlp train b{batch} symmetric, ours settle_tol={tol:g} vs centred (EBL)",
                                    "mlp 784-512-10", "training", batch, MLP, est, tol, res["settled"], res["ebl"],
                                    who="ebl"))
        n = full_batches(args.mlp_samples, INFER_BATCH)
        x, y = x_all[:n], y_all[:n]
        res = interleaved({
            "ours": lambda: ours_inference(spec, MLP["T1"], x, y, INFER_BATCH, args.seed, args.mlp_algo),
            "generic": (lambda: ours_inference(spec, MLP["T1"], x, y, INFER_BATCH, args.seed, "generic"))
            if args.with_generic and args.mlp_algo == "fast" else None,
            "ref": None if mu is None else (
                lambda: _run_ref(ref_helper.time_inference, mu, "mlp", x, y, INFER_BATCH, args.seed)),
        })
        report(_row(f"mlp infer b{INFER_BATCH}", "mlp 784-512-10", "inference", INFER_BATCH, MLP, None, None,
                    attach_generic(res), res.get("ref")))

    if not args.skip_conv:
        spec = mnist_conv()
        batch = CONV["batch"]
        n = full_batches(args.conv_samples, batch, min_batches)
        x, y = x_all[:n], y_all[:n]
        for est in ("one-sided", "symmetric"):
            exact = ours_training(spec, CONV, est, batch, None, x, y, args.warmup_batches, args.seed, args.conv_algo)
            settled = ours_training(spec, CONV, est, batch, args.settle_tol, x, y, args.warmup_batches, args.seed,
                                    args.conv_algo)
            ref = None if mu is None else _run_ref(ref_helper.time_training, mu, "conv", x, y, batch,
                                                   est == "symmetric", args.seed)
            report(_row(f"conv train b{batch} {est}", "conv 1-32-64 fc10", "training", batch, CONV, est, None,
                        exact, ref))
            if lib is not None and est == "symmetric":
                e = _run_ref(eh.time_training, lib, "conv", x, y, batch, args.seed, warmup_batches=1)
                report(_row(f"conv train b{batch} symmetric vs centred (EBL)", "conv 1-32-64 fc10", "training",
                            batch, CONV, est, None, exact, e, who="ebl"))
            report(_row(f"conv train b{batch} {est}, ours settle_tol={args.settle_tol:g}", "conv 1-32-64 fc10",
                        "training", batch, CONV, est, args.settle_tol, settled, ref))
    if args.accuracy_samples:
        from golden.data import load_dataset, load_mnist_or_subset

        n = full_batches(args.accuracy_samples, 50)
        xa, ya, _ = load_images(data_dir, n)
        ts = load_mnist_or_subset("test", data_dir) if data_dir is not None else load_dataset("mnist-subset", "test")
        xt = torch.from_numpy(ts.images).to(torch.float32).div_(255.0)[:args.test_samples]
        yt = torch.from_numpy(ts.labels).long()[:args.test_samples]
        acc = {"ours": ours_accuracy(mnist_mlp(), MLP, 50, xa, ya, xt, yt, args.seed)}
        log(f"  accuracy after one pass over {n}: ours {acc['ours']['test_acc']:.4f}")
        if args.mlp_settle_tol:
            acc["ours settle_tol"] = ours_accuracy(mnist_mlp(), MLP, 50, xa, ya, xt, yt, args.seed, args.mlp_settle_tol)
            a = acc["ours settle_tol"]
            log(f"  accuracy after one pass over {n}: ours with settle_tol={args.mlp_settle_tol:g} {a['test_acc']:.4f} "
                f"(mean free steps: training {a['mean_free_steps_train']:.1f}, last tenth "
                f"{a['mean_free_steps_train_last_tenth']:.1f}, test {a['mean_free_steps_test']:.1f})")
        if lib is not None:
            acc["ebl"] = _run_ref(ebl_accuracy, eh, lib, 50, xa, ya, xt, yt, args.seed)
            log(f"  accuracy after one pass over {n}: EBL {acc['ebl'].get('test_acc')}")
        result["accuracy"] = acc
    result["machine"]["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return result


def format_table(result: dict[str, Any]) -> str:
    head = ("config", "ours samples/s", "reference samples/s", "ratio")
    lines = []
    for r in result["rows"]:
        ref = r["reference"]
        ref_s = "skipped" if ref is None else (f"{ref['samples_per_s']:.1f}" if ref.get("samples_per_s") else "error")
        ours = f"{r['ours']['samples_per_s']:.1f}"
        if r["ours"].get("mean_free_steps") is not None:
            ours += f" ({r['ours']['mean_free_steps']:.0f} free steps)"
        if r["ours"].get("fast_over_generic") is not None:
            ours += f" ({r['ours']['fast_over_generic']:.2f}x generic)"
        lines.append((r["config"], ours, ref_s, "-" if r["ratio"] is None else f"{r['ratio']:.2f}"))
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*head), "-+-".join("-" * w for w in widths)] + [fmt.format(*row) for row in lines]
    m = result["machine"]
    out.append(f"torch {m['torch']}, {m['threads']} threads, {m['cpu_model']}, {m['date']}; "
               f"data {result['data']['dataset']}; wall-clock after warm-up; ratio = ours / reference")
    if m.get("busy_warning"):
        out.append(f"warning: {m['busy_warning']}")
    if not result["reference"]["used"]:
        out.append(f"reference skipped: {result['reference']['note']}")
    ebl = result.get("ebl", {})
    if ebl.get("used"):
        out.append("rows '(EBL)': reference column = the energy-based-learning library; differences: "
                   + "; ".join(ebl["differences"]))
    elif ebl:
        out.append(f"EBL skipped: {ebl['note']}")
    for who, a in result.get("accuracy", {}).items():
        if a.get("test_acc") is not None:
            out.append(f"accuracy after one pass over {a['train_samples']} images, {who}: test {a['test_acc']:.4f} "
                       f"on {a['test_samples']} ({a['samples_per_s']:.1f} samples/s)")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default=None,
                   help="directory of a clone of Laborieux-Axel/Equilibrium-Propagation (holding model_utils.py); "
                        "default $EPFORGE_REFERENCE; without it the reference columns are skipped")
    p.add_argument("--ebl", default=None,
                   help="directory of a clone of rain-neuromorphics/energy-based-learning; default $EPFORGE_EBL; "
                        "without it the EBL rows are skipped")
    p.add_argument("--accuracy-samples", type=int, default=0,
                   help="also train ours and (with --ebl) the library's MLP for one pass over this many training "
                        "images at batch 50 and report test accuracy (default 0: off; 60000 = one MNIST epoch)")
    p.add_argument("--test-samples", type=int, default=10000,
                   help="test images for --accuracy-samples (default 10000)")
    p.add_argument("--data-dir", default=None,
                   help="data root searched for MNIST (default $EPFORGE_DATA, else ../shared/data next to the repo "
                        "if present, else the embedded subset, repeated)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both implementations (default 2)")
    p.add_argument("--mlp-samples", type=int, default=5000,
                   help="training/inference samples timed per MLP configuration, rounded up to whole batches and "
                        f"at least {REF_MIN_BATCHES} batches for training when the reference runs (default 5000)")
    p.add_argument("--conv-samples", type=int, default=1000,
                   help="training samples timed per ConvNet configuration, rounded up to whole batches of 100 "
                        f"(at least {REF_MIN_BATCHES} batches when the reference runs; default 1000)")
    p.add_argument("--settle-tol", type=float, default=1e-5,
                   help="ours only, ConvNet: the extra run with early end of the free phase once a step moves no "
                        "neuron by more than this (default 1e-5)")
    p.add_argument("--conv-algo", choices=("auto", "direct", "spectral"), default="auto",
                   help="ours, ConvNet: relaxation loop (EPNet.conv_algo; auto = the spectral loop on CPU, "
                        "direct = conv2d/conv_transpose2d every step; default auto)")
    p.add_argument("--mlp-algo", choices=("fast", "generic"), default="fast",
                   help="ours, MLP: relaxation loop (EPNet.mlp_algo; fast = golden.ep.dense, the same operations "
                        "as the generic step() loop in preallocated buffers, bit-identical results; default fast)")
    p.add_argument("--with-generic", action="store_true",
                   help="ours, MLP: also time the generic step() loop on the same data and report fast/generic")
    p.add_argument("--mlp-settle-tol", type=float, default=None,
                   help="ours, MLP, opt-in (changes results): extra rows whose free phase ends once a step moves no "
                        "neuron by more than this (EPSchedule.settle_tol), timed in the same rounds; with "
                        "--accuracy-samples also its one-pass test accuracy beside the exact run's (default off)")
    p.add_argument("--rounds", type=int, default=1,
                   help="MLP rows: time ours, the generic loop and the references this many times each, in turn "
                        "(interleaved), and report each one's median round; the rounds' ratios go to the JSON "
                        "(default 1; use 3-5 on a busy machine)")
    p.add_argument("--warmup-batches", type=int, default=2,
                   help="untimed training batches before ours is timed (default 2; the reference is warmed up with "
                        "one untimed free phase at the same batch size)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (default 0)")
    p.add_argument("--skip-mlp", action="store_true", help="skip the MLP configurations")
    p.add_argument("--skip-conv", action="store_true", help="skip the ConvNet configurations (the slow part)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help=f"where the results go (default {DEFAULT_JSON.relative_to(REPO)})")
    return p


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("threads", "mlp_samples", "conv_samples", "rounds"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be positive")
    if args.accuracy_samples < 0:
        raise SystemExit(f"error: --accuracy-samples must be >= 0, not {args.accuracy_samples}")
    if args.test_samples <= 0:
        raise SystemExit(f"error: --test-samples must be positive, not {args.test_samples}")
    if args.warmup_batches < 0:
        raise SystemExit("error: --warmup-batches must be >= 0")
    if not args.settle_tol > 0:
        raise SystemExit("error: --settle-tol must be positive")
    if args.mlp_settle_tol is not None and not args.mlp_settle_tol > 0:
        raise SystemExit("error: --mlp-settle-tol must be positive")
    from golden.train import atomic_write_bytes

    prev_threads = torch.get_num_threads()
    try:
        result = run(args)
    finally:
        torch.set_num_threads(prev_threads)  # main() may run in-process (tests)
    atomic_write_bytes(Path(args.json), (json.dumps(result, indent=2, default=str) + "\n").encode())
    print()
    print(format_table(result))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
