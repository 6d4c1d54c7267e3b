"""Bad inputs to every command line (docs/cli.md: the error contract).

Each case runs a CLI's ``main(argv)`` in-process on tiny fixtures (a 784-8-10 net trained on 20
images, its export and EP core image, a ternary run and export, a Galton spec) and asserts:

* the exit status is 2 (an expected error) and stderr holds no Python traceback;
* exactly one stderr line starts with ``error:``, and it names the problem (a regex naming the
  option, the file or the value);
* no file that existed before the call was removed or changed (the case directory and the shared
  fixtures are snapshotted before and after).

A representative subset also runs as real subprocesses (``python -m …``), and the host link's
garbage/truncation/version/spec-id cases are checked on the host driver with a scripted transport.
The case counts per CLI are listed in docs/cli.md (``test_case_counts`` prints them).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# Fixtures: one tiny instance of every input kind, built once
# ------------------------------------------------------------------------------------------------
def _quiet(*_a, **_k):
    pass


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> dict[str, Path]:
    import torch

    from golden.cli import main as golden_main
    from golden.ep.config import NetSpec
    from golden.ep_core import init_weights, write_image
    from golden.ep_core.__main__ import main as core_main
    from golden.ternary.__main__ import main as ternary_main
    from golden.ternary.train import TernaryConfig
    from golden.ternary.train import train as ternary_train
    from golden.train import TrainConfig, train
    from spec.ep_core import EPCoreSpec
    from spec.galton import GaltonSpec

    root = tmp_path_factory.mktemp("fx")
    net = NetSpec(kind="mlp", layers=(784, 8, 10), activation="hard_sigmoid")
    cfg = TrainConfig(net=net, dataset="mnist-subset", T1=3, T2=2, batch_size=10, train_limit=20, test_limit=10,
                      lrs=(0.01,), epochs=1)
    train(cfg, root / "run", log=_quiet, progress=False)
    assert golden_main(["export", "--checkpoint", str(root / "run"), "--out", str(root / "export")]) == 0
    spec = EPCoreSpec(layers=(784, 8, 10), lanes=8, training=False)
    (root / "spec.toml").write_text(spec.to_toml())
    assert core_main(["quantize", "--spec", str(root / "spec.toml"), "--export", str(root / "export"),
                      "--out", str(root / "image")]) == 0
    small = EPCoreSpec(layers=(16, 8, 10), lanes=8, training=False)
    (root / "small.toml").write_text(small.to_toml())
    write_image(root / "img16", small, init_weights(small, 0))
    tcfg = TernaryConfig(layers=(784, 8, 10), dataset="mnist-subset", T1=3, T2=2, batch_size=10, train_limit=20,
                         test_limit=10, epochs=1)
    ternary_train(tcfg, root / "trun", log=_quiet, progress=False)
    assert ternary_main(["export", "--checkpoint", str(root / "trun"), "--out", str(root / "texp")]) == 0
    (root / "galton.toml").write_text(GaltonSpec(rows=4).to_toml())
    ckpt = torch.load(root / "run" / "checkpoint.pt", weights_only=False)
    ckpt["model"]["w0"][0, 0] = float("nan")
    torch.save(ckpt, root / "nan.pt")
    data = (root / "run" / "checkpoint.pt").read_bytes()
    (root / "truncated.pt").write_bytes(data[: len(data) // 2])
    # EqSpike: a 784-8-10 run on 20 images, its export and its fixed-point image; a NaN and a misshapen checkpoint
    from golden.eqspike.__main__ import main as eq_main
    from golden.eqspike.twin_cli import main as eqt_main

    assert eq_main(["train", *EQTINY.split(), "--eval-batch-size", "10", "--out", str(root / "eqrun")]) == 0
    assert eq_main(["export", "--checkpoint", str(root / "eqrun"), "--out", str(root / "eqexp")]) == 0
    assert eqt_main(["quantize", "--set", "layers=[784,8,10]", "--export", str(root / "eqexp"),
                     "--out", str(root / "eqimg")]) == 0
    eq = torch.load(root / "eqrun" / "checkpoint.pt", weights_only=False)
    eq["model"]["w0"][0, 0] = float("nan")
    torch.save(eq, root / "eqnan.pt")
    eq = torch.load(root / "eqrun" / "checkpoint.pt", weights_only=False)
    eq["model"]["w0"] = eq["model"]["w0"][:3]
    torch.save(eq, root / "eqshape.pt")
    data = (root / "eqrun" / "checkpoint.pt").read_bytes()
    (root / "eqtrunc.pt").write_bytes(data[: len(data) // 2])
    return {"root": root, "run": root / "run", "ckpt": root / "run" / "checkpoint.pt", "export": root / "export",
            "image": root / "image", "spec": root / "spec.toml", "small": root / "small.toml",
            "img16": root / "img16", "trun": root / "trun", "texp": root / "texp", "galton": root / "galton.toml",
            "nan_ckpt": root / "nan.pt", "trunc_ckpt": root / "truncated.pt", "eqrun": root / "eqrun",
            "eqexp": root / "eqexp", "eqimg": root / "eqimg", "eqnan": root / "eqnan.pt",
            "eqshape": root / "eqshape.pt", "eqtrunc": root / "eqtrunc.pt"}


def snapshot(root: Path) -> dict[str, str]:
    """Path → sha256 of every file under ``root`` (what must survive a failed command)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------------------------------------
# Case setups: each writes files into the case directory ``tmp`` (never into the fixtures)
# ------------------------------------------------------------------------------------------------
Setup = Callable[[Path, dict], None]


def write(name: str, data: str | bytes) -> Setup:
    def setup(tmp, fx):
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def mkdir(name: str) -> Setup:
    def setup(tmp, fx):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    return setup


def copy(key: str, name: str) -> Setup:
    def setup(tmp, fx):
        src = fx[key]
        if src.is_dir():
            shutil.copytree(src, tmp / name)
        else:
            shutil.copy(src, tmp / name)
    return setup


def chain(*setups: Setup) -> Setup:
    def setup(tmp, fx):
        for s in setups:
            s(tmp, fx)
    return setup


def edit_manifest(key: str, name: str, fn: Callable[[dict], None], redigest: bool = False) -> Setup:
    """Copy an export/image/build and edit its manifest (``redigest``: recompute the digest, as a
    forger would, so the deeper checks are reached)."""
    def setup(tmp, fx):
        from golden.export import manifest_digest

        shutil.copytree(fx[key], tmp / name)
        mpath = tmp / name / "manifest.json"
        m = json.loads(mpath.read_text())
        fn(m)
        if redigest:
            m["manifest_sha256"] = manifest_digest(m)
        mpath.write_text(json.dumps(m))
    return setup


def edit_file(key: str, name: str, fname: str, fn: Callable[[bytes], bytes]) -> Setup:
    def setup(tmp, fx):
        shutil.copytree(fx[key], tmp / name)
        p = tmp / name / fname
        p.write_bytes(fn(p.read_bytes()))
    return setup


def nan_array(key: str, name: str, array: str) -> Setup:
    """An export whose array holds a NaN, with every digest recomputed (a consistent but bad export)."""
    def setup(tmp, fx):
        from golden.export import array_sha256, manifest_digest

        shutil.copytree(fx[key], tmp / name)
        a = np.load(tmp / name / f"{array}.npy")
        a.flat[0] = np.nan
        np.save(tmp / name / f"{array}.npy", a)
        m = json.loads((tmp / name / "manifest.json").read_text())
        m["arrays"][array]["sha256"] = array_sha256(a)
        m["manifest_sha256"] = manifest_digest(m)
        (tmp / name / "manifest.json").write_text(json.dumps(m))
    return setup


def marked(name: str, kind: str, files: dict[str, str] | None = None) -> Setup:
    """A directory that is a previous output of ``kind`` (its marker and some files)."""
    def setup(tmp, fx):
        from golden.fileio import MARKER, _marker_bytes

        d = tmp / name
        d.mkdir(parents=True)
        (d / MARKER).write_bytes(_marker_bytes(kind))
        for f, text in (files or {}).items():
            (d / f).write_text(text)
    return setup


FOREIGN = chain(mkdir("mine"), write("mine/thesis.tex", "\\documentclass{article}"),
                write("mine/notes.txt", "my notes"))
SUBSET_GZ = "t10k-images-idx3-ubyte.gz"


def truncated_mnist(tmp, fx):
    """A data root whose MNIST test images are a truncated .gz (labels fine)."""
    from golden.data._idxsets import SUBSET_DIR

    raw = tmp / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = Path(SUBSET_DIR) if Path(SUBSET_DIR).is_absolute() else REPO / "golden" / "data" / SUBSET_DIR
    full = gzip.decompress(next(src.glob("t10k-images*")).read_bytes())
    (raw / SUBSET_GZ).write_bytes(gzip.compress(full)[:500])
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(next(src.glob("t10k-labels*")).read_bytes())


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------
@dataclass
class Case:
    cli: str
    argv: list[str]
    match: str
    setup: Setup | None = None
    rc: int = 2
    env: dict[str, str] = field(default_factory=dict)
    what: str = ""


def C(cli: str, argv: str | list[str], match: str, setup: Setup | None = None, **kw) -> Case:
    return Case(cli, argv.split() if isinstance(argv, str) else argv, match, setup, **kw)


TINY = "--dataset mnist-subset --layers 784 8 10 --train-limit 20 --test-limit 10 --T1 3 --T2 2 --batch-size 10"
EQTINY = "--dataset mnist-subset --layers 784 8 10 --train-limit 20 --test-limit 10 --T1 3 --T2 2 --batch-size 10"
TTINY = "--dataset mnist-subset --layers 784 8 10 --train-limit 20 --test-limit 10 --T1 3 --T2 2 --batch-size 10"

CASES: list[Case] = [
    # ---- python -m golden train: config files --------------------------------------------------------------
    C("golden", "train --config c.json --out r", r"--config c\.json: must hold a table .* list",
      write("c.json", "[1, 2]")),
    C("golden", "train --config c.json --out r", r"--config c\.json: 'net' must be a table .* 5",
      write("c.json", '{"net": 5}')),
    C("golden", "train --config c.json --out r", r"--config c\.json: beta must be a number, not '0\.1'",
      write("c.json", '{"beta": "0.1"}')),
    C("golden", "train --config c.toml --out r", r"--config c\.toml: beta must be a number, not '0\.1'",
      write("c.toml", 'beta = "0.1"\n')),
    C("golden", "train --config c.toml --out r", r"--config c\.toml: not valid TOML: .*line 1",
      write("c.toml", "beta = \n")),
    C("golden", "train --config c.json --out r", r"--config c\.json: not valid JSON: .*line 1",
      write("c.json", '{"beta": 0.1')),
    C("golden", "train --config c.json --out r", r"--config c\.json: unknown training options \['bogus'\]",
      write("c.json", '{"bogus": 1}')),
    C("golden", "train --config c.json --out r", r"--config c\.json: unknown preset 'nope'",
      write("c.json", '{"preset": "nope"}')),
    C("golden", "train --config c.json --out r", r"--config c\.json: unknown NetSpec fields \['depth'\]",
      write("c.json", '{"net": {"depth": 3}}')),
    C("golden", "train --config c.json --out r", r"--config c\.json: layers must .*positive integers",
      write("c.json", '{"net": {"layers": "784 8 10"}}')),
    C("golden", "train --config c.json --out r", r"--config c\.json: data_aug must be true or false",
      write("c.json", '{"data_aug": "yes"}')),
    C("golden", "train --config c.json --out r", r"--config c\.json: lrs\[0\] must be a finite number",
      write("c.json", '{"lrs": [Infinity]}')),
    C("golden", "train --config missing.json --out r", r"missing\.json: No such file"),
    C("golden", "train --config d --out r", r"--config d: is a directory", mkdir("d")),
    C("golden", "train --config c.toml --out r", r"--config c\.toml: not a text file",
      write("c.toml", b"\xff\xfe\x00")),
    # ---- train: options ------------------------------------------------------------------------------------
    C("golden", "train --preset bogus --out r", r"argument --preset: invalid choice: 'bogus'"),
    C("golden", "train --beta inf --out r", r"argument --beta: must be a finite number, not 'inf'"),
    C("golden", "train --beta nan --out r", r"argument --beta: must be a finite number, not 'nan'"),
    C("golden", "train --beta 0 --out r", r"beta must be a positive number, not 0"),
    C("golden", "train --beta -1 --out r", r"beta must be a positive number"),
    C("golden", "train --lrs inf --out r", r"argument --lrs: must be a finite number"),
    C("golden", "train --lrs 0 --out r", r"lrs entries must be positive"),
    C("golden", "train --lrs 0.1 0.1 0.1 --out r", r"lrs must have 1 or 2 entries"),
    C("golden", "train --lrs abc --out r", r"argument --lrs: not a number: 'abc'"),
    C("golden", "train --T1 0 --out r", r"argument --T1: must be a positive integer, not 0"),
    C("golden", "train --T2 -1 --out r", r"argument --T2: must be a positive integer, not -1"),
    C("golden", "train --batch-size 0 --out r", r"argument --batch-size: must be a positive integer, not 0"),
    C("golden", "train --epochs 0 --out r", r"argument --epochs: must be a positive integer"),
    C("golden", "train --train-limit -5 --out r", r"argument --train-limit: must be a positive integer, not -5"),
    C("golden", "train --layers 784 0 10 --out r", r"argument --layers: must be a positive integer, not 0"),
    C("golden", "train --layers 100 10 --dataset mnist-subset --out r", r"input \(100,\) does not fit dataset"),
    C("golden", "train --layers 784 100000000 10 --dataset mnist-subset --out r",
      r"79,500,000,010 parameters .* GiB"),
    C("golden", f"train {TINY} --device banana --out r", r"--device must be auto, cpu, cuda or cuda:N, not 'banana'"),
    C("golden", f"train {TINY} --device tpu --out r", r"--device must be auto, cpu, cuda or cuda:N, not 'tpu'"),
    C("golden", "train --momentum 1.5 --out r", r"momentum must be in \[0, 1\), not 1\.5"),
    C("golden", "train --weight-decay -1 --out r", r"weight_decay entries must be non-negative"),
    C("golden", "train --settle-tol inf --out r", r"argument --settle-tol: must be a finite number"),
    C("golden", "train --init-scale inf --out r", r"argument --init-scale: must be a finite number"),
    C("golden", "train --init-scale -1 --out r", r"init_scale entries must be positive"),
    C("golden", "train --threads 0 --out r", r"argument --threads: must be a positive integer, not 0"),
    C("golden", "train --seed -1 --out r", r"argument --seed: must be a non-negative integer, not -1"),
    C("golden", "train --dtype float16 --out r", r"argument --dtype: invalid choice: 'float16'"),
    C("golden", "train --data-aug --out r", r"data_aug is for dataset='cifar10' only"),
    C("golden", "train --stop-after 0 --out r", r"argument --stop-after: must be a positive integer"),
    C("golden", "train --T1 3 --T2 5 --alg bptt --out r", r"T2=5 > T1=3"),
    C("golden", f"train {TINY} --out f.txt", r"--out f\.txt: is a file, not a directory", write("f.txt", "x")),
    C("golden", f"train {TINY} --out f.txt/run", r"--out f\.txt/run: f\.txt is a file", write("f.txt", "x")),
    C("golden", f"train {TINY} --out mine", r"--out mine: the directory already holds config\.json, not written",
      chain(FOREIGN, write("mine/config.json", "{}"))),
    C("golden", f"train {TINY} --out img", r"--out img: the directory holds the output of another command",
      copy("image", "img")),
    C("golden", f"train {TINY} --out run", r"already holds a run \(checkpoint\.pt\): pass --resume", copy("run",
      "run")),
    C("golden", f"train {TINY} --resume --out nothing", r"--resume: no checkpoint at nothing/checkpoint\.pt"),
    C("golden", "train --layers 784 8 10 --dataset mnist --train-limit 5 --out r", r"MNIST train data not found"),
    C("golden", "evaluate --export {export} --dataset mnist --data-dir data --limit 3",
      r"t10k-images-idx3-ubyte\.gz is not a valid gzip file", truncated_mnist),
    # ---- evaluate ------------------------------------------------------------------------------------------
    C("golden", "evaluate", r"give exactly one of --checkpoint and --export"),
    C("golden", "evaluate --checkpoint {ckpt} --export {export}", r"give exactly one of --checkpoint and --export"),
    C("golden", "evaluate --checkpoint nothere.pt", r"--checkpoint nothere\.pt: .*nothere\.pt: no such checkpoint"),
    C("golden", "evaluate --checkpoint e.pt", r"e\.pt: the checkpoint file is empty", write("e.pt", b"")),
    C("golden", "evaluate --checkpoint {trunc_ckpt}", r"truncated\.pt: not a readable checkpoint"),
    C("golden", "evaluate --checkpoint g.pt", r"g\.pt: not a readable checkpoint", write("g.pt", b"garbage" * 50)),
    C("golden", "evaluate --checkpoint c.json", r"c\.json: not a readable checkpoint", write("c.json", "{}")),
    C("golden", "evaluate --checkpoint {nan_ckpt}", r"parameter w0 has 1 of .* not finite"),
    C("golden", "evaluate --checkpoint {trun}", r"checkpoint\.pt is not an epforge checkpoint \(format epforge-check"),
    C("golden", "evaluate --export nothere", r"--export nothere: nothere is not an export directory"),
    C("golden", "evaluate --export f.txt", r"--export f\.txt: f\.txt is not an export directory \(it is a file\)",
      write("f.txt", "x")),
    C("golden", "evaluate --export e", r"manifest\.json is missing", mkdir("e")),
    C("golden", "evaluate --export e", r"e/manifest\.json is not valid JSON", chain(mkdir("e"), write("e/manifest.json",
      "{"))),
    C("golden", "evaluate --export e", r"must hold a JSON object, not a list",
      chain(mkdir("e"), write("e/manifest.json", "[]"))),
    C("golden", "evaluate --export e", r"manifest_sha256 .* does not match its fields",
      edit_manifest("export", "e", lambda m: m["net"].update(activation="my_sigmoid"))),
    C("golden", "evaluate --export e", r"manifest_sha256 .* does not match its fields",
      edit_manifest("export", "e", lambda m: m["schedule"].update(T1=30))),
    C("golden", "evaluate --export e", r"manifest_sha256 .* does not match its fields",
      edit_manifest("export", "e", lambda m: m["preprocessing"].update(input="pixel/256"))),
    C("golden", "evaluate --export e", r"no manifest_sha256: written before .* re-export",
      edit_manifest("export", "e", lambda m: m.pop("manifest_sha256"))),
    C("golden", "evaluate --export e", r"format is 'epforge-export/9', expected 'epforge-export/1'",
      edit_manifest("export", "e", lambda m: m.update(format="epforge-export/9"))),
    C("golden", "evaluate --export e", r"invalid network description: .*'net'",
      edit_manifest("export", "e", lambda m: m.pop("net"), redigest=True)),
    C("golden", "evaluate --export e", r"array w0: the manifest entry lacks \['sha256'\]",
      edit_manifest("export", "e", lambda m: m["arrays"]["w0"].pop("sha256"), redigest=True)),
    C("golden", "evaluate --export e", r"the manifest has no preprocessing\.dataset",
      edit_manifest("export", "e", lambda m: m.pop("preprocessing"), redigest=True)),
    C("golden", "evaluate --export e", r"array w0: .*w0\.npy is not a readable \.npy file",
      edit_file("export", "e", "w0.npy", lambda b: b[:200])),
    C("golden", "evaluate --export e", r"array b0: .*b0\.npy is not a readable \.npy file",
      edit_file("export", "e", "b0.npy", lambda b: b"garbage")),
    C("golden", "evaluate --export e", r"array w1: sha256 of w1\.npy .* changed after export",
      edit_file("export", "e", "w1.npy", lambda b: b[:-4] + b"\x00\x00\x80\x3f")),
    C("golden", "evaluate --export e", r"array w0: 1 of 6272 values in w0\.npy are not finite",
      nan_array("export", "e", "w0")),
    C("golden", "evaluate --export e", r"array b1: file 'b1\.npy' is missing",
      chain(copy("export", "e"), lambda tmp, fx: (tmp / "e" / "b1.npy").rename(tmp / "b1.npy"))),
    C("golden", "evaluate --export {export} --T 0", r"argument --T: must be a positive integer, not 0"),
    C("golden", "evaluate --export {export} --limit -5", r"argument --limit: must be a positive integer, not -5"),
    C("golden", "evaluate --export {export} --batch-size 0", r"argument --batch-size: must be a positive integer"),
    C("golden", "evaluate --export {export} --threads -2", r"argument --threads: must be a positive integer"),
    C("golden", "evaluate --export {export} --dataset svhn", r"argument --dataset: invalid choice: 'svhn'"),
    C("golden", "evaluate --export {export} --limit 5 --json d", r"d: is a directory, not a file", mkdir("d")),
    C("golden", "evaluate --export {export} --limit 5 --json f.txt/r.json",
      r"f\.txt/r\.json: f\.txt is a file, not a directory",
      write("f.txt", "x")),
    C("golden", "evaluate --export {export} --dataset mnist --limit 5", r"MNIST test data not found"),
    # ---- export --------------------------------------------------------------------------------------------
    C("golden", "export --checkpoint run/checkpoint.pt --out run", r"--out run: the directory holds the output of "
      r"another command \(kind epforge-checkpoint-run\)", copy("run", "run")),
    C("golden", "export --checkpoint {ckpt} --out mine", r"--out mine: the directory holds 2 entries that are not "
      r"a epforge-export output \(notes\.txt, thesis\.tex\).*never replaces", FOREIGN),
    C("golden", "export --checkpoint {ckpt} --out mine --force", r"--out mine: .* even with --force", FOREIGN),
    C("golden", "export --checkpoint {ckpt} --out e", r"--out e: holds a previous epforge-export output; pass --force",
      copy("export", "e")),
    C("golden", "export --checkpoint {ckpt} --out img --force", r"--out img: the directory holds the output of "
      r"another command \(kind epforge-ep-core-image\)", copy("image", "img")),
    C("golden", "export --checkpoint {ckpt} --out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("golden", "export --checkpoint {ckpt} --out f.txt/e", r"--out f\.txt/e: f\.txt is a file", write("f.txt", "x")),
    C("golden", "export --checkpoint nothere --out e", r"--checkpoint nothere: .*no such checkpoint file"),
    C("golden", "export --checkpoint e.pt --out e", r"e\.pt: the checkpoint file is empty", write("e.pt", b"")),
    C("golden", "export --checkpoint {trunc_ckpt} --out e", r"not a readable checkpoint"),
    C("golden", "export --checkpoint {nan_ckpt} --out e", r"parameter w0 has 1 of 6272 values that are not finite"),
    C("golden", "export --checkpoint {trun} --out e", r"is not an epforge checkpoint"),
    C("golden", "export --checkpoint {ckpt}", r"the following arguments are required: --out"),
    # ---- gdu -----------------------------------------------------------------------------------------------
    C("golden", "gdu --betas inf --out g", r"argument --betas: must be a finite number"),
    C("golden", "gdu --T1 0 --out g", r"argument --T1: must be a positive integer"),
    C("golden", "gdu --batch 0 --out g", r"argument --batch: must be a positive integer"),
    C("golden", "gdu --estimators bogus --out g", r"argument --estimators: invalid choice"),
    C("golden", "gdu --layers 784 8 10 --dataset mnist-subset --batch 2 --T1 3 --T2 2 --out f.txt",
      r"--out f\.txt: is a file", write("f.txt", "x")),
    C("golden", "gdu --layers 784 8 10 --dataset mnist-subset --out mine",
      r"--out mine: the directory already holds gdu\.json", chain(FOREIGN, write("mine/gdu.json", "{}"))),
    C("golden", "frobnicate", r"argument COMMAND: invalid choice: 'frobnicate'"),
    # files of the wrong kind and conflicting options
    C("golden", "evaluate --export {image}", r"format is 'epforge-ep-core-image/1', expected 'epforge-export/1'"),
    C("golden", "evaluate --checkpoint {export}", r"--checkpoint .*export/checkpoint\.pt: no such checkpoint file"),
    C("golden", "gdu --checkpoint f.txt --out g", r"f\.txt: not a readable checkpoint", write("f.txt", "x")),
    C("golden", "train --config {spec} --out r", r"--config .*spec\.toml: unknown training options"),
    C("golden", "train --preset mnist-mlp --layers 784 10 --dataset mnist-subset --out r",
      r"lrs must have 1 entry \(one weight layer\), not 2"),
    C("golden", "train --model conv --layers 784 10 --out r", r"--layers is for --model mlp"),
    C("golden", "train --model conv --channels 4 --kernels 5 5 --pools m --fc 10 --out r",
      r"kernels must have one entry per conv layer \(1\), not 2"),
    C("golden", "train --model conv --channels 4 --kernels 29 --pools m --fc 10 --out r", r"leaves an empty"),
    # ---- python -m golden.ep_core ---------------------------------------------------------------------------
    C("ep_core", "spec --set lanes", r"--set expects FIELD=VALUE"),
    C("ep_core", "spec --set lanes=0", r"--set lanes: .*lanes"),
    C("ep_core", "spec --set training=maybe", r"--set training: training must be true or false, not 'maybe'"),
    C("ep_core", "spec --set bogus=1", r"unknown EP core spec fields \['bogus'\]"),
    C("ep_core", "spec --set layers=[784,100000000,10]", r"79,500,000,010 values need .* GiB"),
    C("ep_core", "spec --set lanes=\"8\"", r"--set lanes: .*lanes"),
    C("ep_core", "spec --spec nothere.toml", r"nothere\.toml: No such file"),
    C("ep_core", "spec --spec s.toml", r"s\.toml: not valid TOML", write("s.toml", "lanes = = 3")),
    C("ep_core", "spec --spec s.json", r"s\.json: EPCoreSpec: must be a table of fields, not a list",
      write("s.json", "[784, 8, 10]")),
    C("ep_core", "spec --spec s.json", r"s\.json: not valid JSON", write("s.json", "{'lanes': 8}")),
    C("ep_core", "spec --spec s.toml", r"s\.toml: unknown EP core spec fields", write("s.toml", "wings = 2\n")),
    C("ep_core", "spec --spec s.toml", r"s\.toml: training must be true or false, not 'no'",
      write("s.toml", 'training = "no"\n')),
    C("ep_core", "spec --spec d", r"d: is a directory, not a spec file", mkdir("d")),
    C("ep_core", "spec --out f.txt/s.toml", r"f\.txt/s\.toml: f\.txt is a file, not a directory", write("f.txt", "x")),
    # quantize
    C("ep_core", "quantize --spec {spec} --export {export} --out mine", r"--out mine: the directory holds 2 entries",
      FOREIGN),
    C("ep_core", "quantize --spec {spec} --export {export} --out img", r"--out img: holds a previous "
      r"epforge-ep-core-image output; pass --force", copy("image", "img")),
    C("ep_core", "quantize --spec {spec} --export {export} --out e --force", r"--out e: the directory holds the "
      r"output of another command \(kind epforge-export\)", copy("export", "e")),
    C("ep_core", "quantize --spec {spec} --export {export} --out f.txt", r"--out f\.txt: is a file",
      write("f.txt", "x")),
    C("ep_core", "quantize --spec {spec} --export nothere --out i", r"nothere is not an export directory"),
    C("ep_core", "quantize --spec {spec} --export e --out i", r"manifest_sha256 .* does not match its fields",
      edit_manifest("export", "e", lambda m: m["net"].update(activation="my_sigmoid"))),
    C("ep_core", "quantize --spec {spec} --export e --out i", r"activation='my_sigmoid' \(the core implements",
      edit_manifest("export", "e", lambda m: m["net"].update(activation="my_sigmoid"), redigest=True)),
    C("ep_core", "quantize --spec {spec} --export e --out i", r"array w0: 1 of 6272 values in w0\.npy are not finite",
      nan_array("export", "e", "w0")),
    C("ep_core", "quantize --spec {small} --export {export} --out i", r"layers=\(784, 8, 10\) but the spec has "
      r"\(16, 8, 10\)"),
    C("ep_core", "quantize --spec {spec} --export e --out i", r"array w0: .*not a readable \.npy",
      edit_file("export", "e", "w0.npy", lambda b: b[:100])),
    C("ep_core", "quantize --spec {spec} --export {export}", r"the following arguments are required: --out"),
    # evaluate
    C("ep_core", "evaluate --image nothere", r"nothere is not an export directory"),
    C("ep_core", "evaluate --image i", r"manifest_sha256 .* does not match its fields",
      edit_manifest("image", "i", lambda m: m["spec"].update(lanes=16))),
    C("ep_core", "evaluate --image i", r"memory\.hex does not match",
      edit_file("image", "i", "memory.hex", lambda b: (b"1" if b[:1] != b"1" else b"2") + b[1:])),
    C("ep_core", "evaluate --image i", r"spec\.toml does not match",
      edit_file("image", "i", "spec.toml", lambda b: b + b"\n# edited\n")),
    C("ep_core", "evaluate --image i", r"file 'memory\.hex' is missing",
      chain(copy("image", "i"), lambda tmp, fx: (tmp / "i" / "memory.hex").unlink())),
    C("ep_core", "evaluate --image {image} --limit 0", r"argument --limit: must be a positive integer, not 0"),
    C("ep_core", "evaluate --image {image} --T1 0", r"argument --T1: must be a positive integer, not 0"),
    C("ep_core", "evaluate --image {image} --beta-shift -1", r"argument --beta-shift: must be a non-negative"),
    C("ep_core", "evaluate --image {image} --error-rate nan", r"argument --error-rate: must be a finite number"),
    C("ep_core", "evaluate --image {image} --estimator bogus", r"argument --estimator: invalid choice"),
    C("ep_core", "evaluate --image {image} --dataset cifar10", r"argument --dataset: invalid choice"),
    C("ep_core", "evaluate --image {image} --dataset mnist --limit 3", r"MNIST test data not found"),
    C("ep_core", "evaluate --image {export}", r"format is 'epforge-export/1', expected 'epforge-ep-core-image/1'"),
    C("ep_core", "evaluate --image {image} --error-rate 0.1", r"--error-rate 0\.1 has no effect with --fault-mode off"),
    C("ep_core", "evaluate --image {image} --error-rate 2 --fault-mode static", r"--error-rate must be a probability"),
    C("ep_core", "evaluate --image {image} --dataset mnist-subset --error-rate 0.1 --fault-mode static",
      r"fault experiments need a spec with weight_kind='ternary'"),
    C("ep_core", "evaluate --image {image} --dataset mnist-subset --T1 100000000",
      r"T1 must be in 1\.\.\d+, not 100000000"),
    C("ep_core", "evaluate --image {image} --dataset mnist-subset --beta-shift 99", r"beta_shift must be in 0\.\.\d+, "
      r"not 99"),
    C("ep_core", "evaluate --image {image} --dataset mnist-subset --estimator random-sign",
      r"random_sign=True needs a core with a PRNG"),
    C("ep_core", "train --image {export} --out t", r"format is 'epforge-export/1'"),
    C("ep_core", "evaluate --image {image} --dataset mnist --data-dir data --limit 3",
      r"t10k-images-idx3-ubyte\.gz is not a valid gzip file", truncated_mnist),
    C("ep_core", "evaluate --image {image} --dataset mnist --data-dir empty --limit 3", r"MNIST test data not found",
      mkdir("empty")),
    # train
    C("ep_core", "train --epochs 0 --out t", r"argument --epochs: must be a positive integer"),
    C("ep_core", "train --image {image} --dataset mnist-subset --out t", r"the spec has training=false"),
    C("ep_core", "train --set training=no --dataset mnist-subset --out t", r"the spec has training=false"),
    C("ep_core", "train --set layers=[784,8,10] --dataset mnist-subset --train-limit 2 --test-limit 2 --out f.txt",
      r"--out f\.txt: is a file", write("f.txt", "x")),
    C("ep_core", "train --set layers=[784,8,10] --dataset mnist-subset --train-limit 2 --test-limit 2 --out mine",
      r"--out mine: the directory already holds metrics\.json", chain(FOREIGN, write("mine/metrics.json", "{}"))),
    C("ep_core", "train --set layers=[784,8,10] --dataset mnist-subset --train-limit 2 --test-limit 2 --out t",
      r"--out t: holds a previous ep-core-train-run output; pass --force", marked("t", "ep-core-train-run")),
    C("ep_core", "train --set layers=[784,100000000,10] --out t", r"79,500,000,010 values need"),
    # ---- python -m golden.ternary ---------------------------------------------------------------------------
    C("ternary", "train --config c.json --out r", r"--config c\.json: must hold a table", write("c.json", "[]")),
    C("ternary", "train --config c.json --out r", r"--config c\.json: delta must be a finite number, not 'x'",
      write("c.json", '{"delta": "x"}')),
    C("ternary", "train --config c.toml --out r", r"--config c\.toml: not valid TOML", write("c.toml", "[[")),
    C("ternary", "train --delta inf --out r", r"argument --delta: must be a finite number"),
    C("ternary", "train --beta inf --out r", r"argument --beta: must be a finite number"),
    C("ternary", "train --lrs nan --out r", r"argument --lrs: must be a finite number"),
    C("ternary", "train --layers 784 0 10 --out r", r"argument --layers: must be a positive integer"),
    C("ternary", "train --layers 100 10 --out r", r"layers must start with 784 inputs"),
    C("ternary", "train --layers 784 100000000 10 --out r", r"79,400,000,000 values need"),
    C("ternary", "train --kind quaternary --out r", r"argument --kind: invalid choice"),
    C("ternary", "train --alpha-shift -1 --out r", r"argument --alpha-shift: must be a non-negative integer"),
    C("ternary", "train --T1 0 --out r", r"argument --T1: must be a positive integer"),
    C("ternary", "train --batch-size 0 --out r", r"argument --batch-size: must be a positive integer"),
    C("ternary", "train --train-error-rate 2 --out r", r"rate|p must be"),
    C("ternary", f"train {TTINY} --out mine", r"--out mine: the directory already holds config\.json",
      chain(FOREIGN, write("mine/config.json", "{}"))),
    C("ternary", "evaluate", r"give exactly one of --checkpoint and --export"),
    C("ternary", "evaluate --export nothere", r"nothere is not an export directory"),
    C("ternary", "evaluate --export {export}", r"format is 'epforge-export/1', expected 'epforge-ternary-export/1'"),
    C("ternary", f"train {TTINY} --resume --out nothing", r"--resume: no checkpoint at nothing/checkpoint\.pt"),
    C("ternary", "evaluate --export e", r"manifest_sha256 .* does not match its fields",
      edit_manifest("texp", "e", lambda m: m.update(alpha_shift=[3, 3]))),
    C("ternary", "evaluate --export e", r"manifest_sha256 .* does not match its fields",
      edit_manifest("texp", "e", lambda m: m.update(delta=0.5))),
    C("ternary", "evaluate --export {texp} --T 0", r"argument --T: must be a positive integer"),
    C("ternary", "evaluate --export {texp} --error-rate inf", r"argument --error-rate: must be a finite number"),
    C("ternary", "evaluate --checkpoint e.pt", r"e\.pt: the checkpoint file is empty", write("e.pt", b"")),
    C("ternary", "evaluate --checkpoint {ckpt}", r"is not an epforge checkpoint \(format epforge-ternary"),
    C("ternary", "export --checkpoint trun --out trun", r"--out trun: the directory holds the output of another "
      r"command", copy("trun", "trun")),
    C("ternary", "export --checkpoint {trun} --out e", r"--out e: holds a previous epforge-ternary-export output",
      copy("texp", "e")),
    C("ternary", "export --checkpoint {trun} --out mine --force", r"never replaces files it did not write", FOREIGN),
    C("ternary", "export --checkpoint nothere --out e", r"no such checkpoint file"),
    C("ternary", "export --checkpoint {trunc_ckpt} --out e", r"not a readable checkpoint"),
    # ---- python -m golden.domainwall ------------------------------------------------------------------------
    C("domainwall", "spec --set rows=0", r"rows must be a positive integer"),
    C("domainwall", "spec --set rows=abc", r"rows must be a positive integer"),
    C("domainwall", "spec --set wings=2", r"unknown Galton spec fields \['wings'\]"),
    C("domainwall", "spec --set correlated=maybe", r"correlated must be true or false, not 'maybe'"),
    C("domainwall", "spec --spec nothere.toml", r"nothere\.toml: No such file"),
    C("domainwall", "spec --spec g.toml", r"g\.toml: not valid TOML", write("g.toml", "rows = [")),
    C("domainwall", "spec --spec g.json", r"g\.json: GaltonSpec: must be a table", write("g.json", "7")),
    C("domainwall", "exact --rows 4 --field inf", r"argument --field: must be a finite number"),
    C("domainwall", "exact --rows 4 --H0 nan", r"argument --H0: must be a finite number"),
    C("domainwall", "exact --rows 4 --stickiness 1.5", r"stickiness must be in \(-1, 1\), not 1\.5"),
    C("domainwall", "exact --rows 4 --edit 1,0,inf", r"--edit expects ROW,JUNCTION,DH"),
    C("domainwall", "exact --field 0", r"give --rows N or --spec FILE"),
    C("domainwall", "exact --spec {spec}", r"format must be 'epforge-galton-spec/1', not 'epforge-ep-core-spec/1'"),
    C("domainwall", "histogram --balls 0 --out h", r"--balls must be a positive integer, not 0"),
    C("domainwall", "histogram --spec {galton} --balls 10 --fields 0 --out f.txt", r"--out f\.txt: is a file",
      write("f.txt", "x")),
    C("domainwall", "histogram --spec {galton} --balls 10 --fields 0 --out mine", r"--out mine: the directory holds "
      r"2 entries that are not a galton-histogram output", FOREIGN),
    C("domainwall", "histogram --spec {galton} --balls 10 --fields 0 --out h", r"--out h: holds a previous "
      r"galton-histogram output; pass --force", marked("h", "galton-histogram", {"histogram.json": "{}"})),
    C("domainwall", "histogram --spec {galton} --balls 10 --fields 0 --out e --force", r"kind epforge-export",
      copy("export", "e")),
    C("domainwall", "histogram --spec {galton} --balls 10 --width inf --out h", r"argument --width: must be a finite"),
    # ---- python -m golden.data ------------------------------------------------------------------------------
    C("data", "verify nope", r"unknown data set|nope"),
    C("data", "fetch mnist --data-dir nodata", r"MNIST .* not found"),
    C("data", "fetch svhn", r"argument name: invalid choice|svhn"),
    C("data", "make-subset --from empty --out s", r"MNIST .* not found", mkdir("empty")),
    C("data", "make-subset --from empty --out mine", r"--out mine: the directory already holds SHA256SUMS",
      chain(FOREIGN, write("mine/SHA256SUMS", "x"), mkdir("empty"))),
    C("data", "make-subset --from empty --out f.txt", r"--out f\.txt: is a file", chain(write("f.txt", "x"),
                                                                                      mkdir("empty"))),
    C("data", "make-subset --out s", r"the following arguments are required: --from"),
    C("data", "info --data-dir f.txt", r"--data-dir f\.txt: is a file, not a directory", write("f.txt", "x")),
    C("data", "verify mnist --data-dir f.txt", r"--data-dir f\.txt: is a file", write("f.txt", "x")),
    C("data", "fetch mnist --data-dir f.txt", r"--data-dir f\.txt: is a file", write("f.txt", "x")),
    # ---- python -m hdl.build --------------------------------------------------------------------------------
    C("hdl", "ep --spec nothere.toml --out b", r"nothere\.toml: No such file"),
    C("hdl", "ep --spec s.toml --out b", r"s\.toml: not valid TOML", write("s.toml", "lanes = ")),
    C("hdl", "ep --spec s.json --out b", r"s\.json: EPCoreSpec: must be a table", write("s.json", '"core"')),
    C("hdl", "ep --spec s.toml --out b", r"s\.toml: .*lanes", write("s.toml", "lanes = 0\n")),
    C("hdl", "ep --spec {small} --out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("hdl", "ep --spec {small} --out mine", r"--out mine: the directory holds 2 entries that are not a hdl-build",
      FOREIGN),
    C("hdl", "ep --spec {small} --out b", r"--out b: holds a previous hdl-build output; pass --force",
      marked("b", "hdl-build", {"ep_core.v": "module x; endmodule"})),
    C("hdl", "ep --spec {small} --out e --force", r"kind epforge-export", copy("export", "e")),
    C("hdl", "ep --spec {small} --weights nothere --out b", r"nothere is not an export directory"),
    C("hdl", "ep --spec {small} --weights {image} --out b", r"built for a different EP core spec"),
    C("hdl", "ep --spec {spec} --weights {export} --out b", r"format is 'epforge-export/1', expected "
      r"'epforge-ep-core-image/1'"),
    C("hdl", "ep --spec {spec} --weights i --out b", r"manifest_sha256 .* does not match",
      edit_manifest("image", "i", lambda m: m["source"].update(note="edited"))),
    C("hdl", "galton --spec nothere.toml --out b", r"nothere\.toml: No such file"),
    C("hdl", "galton --spec {spec} --out b", r"unknown Galton spec fields|format must be"),
    C("hdl", "ternary --board ice40 --out b", r"argument --board: invalid choice: 'ice40'"),
    C("hdl", "ternary --board icebreaker --spec {spec} --out b", r"weight_kind must be 'ternary', not 'fixed'"),
    C("hdl", "verilog --out b", r"argument DESIGN: invalid choice"),
    # ---- python -m boards -----------------------------------------------------------------------------------
    C("boards", "synth --board icebreaker --design ep --out s", r"--design ep needs --spec"),
    C("boards", "synth --board icebreaker --design ep --spec nothere.toml --out s",
      r"--spec nothere\.toml: nothere\.toml: No such file"),
    C("boards", "synth --board icebreaker --design ep --spec s.json --out s", r"--spec s\.json: .*must be a table",
      write("s.json", "[1]")),
    C("boards", "synth --board icebreaker --design ep --spec s.toml --out s", r"--spec s\.toml: .*not valid TOML",
      write("s.toml", "=")),
    C("boards", "synth --board icebreaker --design ep --spec big.toml --out s",
      r"784-500-10 core \(P = 8\) does not fit the icebreaker: its memories need 3,222,168 bits .* 1,171,456 bits",
      write("big.toml", 'layers = [784, 500, 10]\nlanes = 8\n')),
    C("boards", "synth --board icebreaker --design mock --spec big.toml --out s", r"does not fit the icebreaker",
      write("big.toml", 'layers = [784, 500, 10]\nlanes = 8\n')),
    # wide cores (issue 14.4): more lanes than multipliers; weight words wider than the block RAM gives per cycle
    C("boards", "synth --board ulx3s --design ep --spec wide.toml --out s",
      r"200-20-10 core \(P = 157, training = True\) does not fit the ulx3s: .* need 157 MULT18X18D .* at most P = 156",
      write("wide.toml", 'layers = [200, 20, 10]\nlanes = 157\n')),
    C("boards", "synth --board icebreaker --design ep --spec wide.toml --out s",
      r"need 16 SB_MAC16 .*the FPGA has 8: at most P = 8 lanes",
      write("wide.toml", 'layers = [16, 8, 4]\nlanes = 16\n')),
    C("boards", "synth --board ulx3s --design ep --spec wide.toml --out s",
      r"784-275-10 core \(P = 128\) does not fit the ulx3s: its weight memories need at least 214 DP16KD",
      write("wide.toml", 'layers = [784, 275, 10]\nlanes = 128\nweight_bits = [12]\nweight_frac = [10]\n')),
    C("boards", "synth --board ulx3s --design ep --galton-spec {galton} --spec {small} --out s",
      r"--galton-spec is for --design galton"),
    C("boards", "synth --board ulx3s --design galton --spec {small} --out s", r"--spec is the EP core's spec"),
    C("boards", "synth --board ulx3s --design galton --galton-spec g.toml --out s", r"--galton-spec g\.toml: .*rows",
      write("g.toml", "rows = -3\n")),
    C("boards", "synth --board ulx3s --design mock --out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("boards", "synth --board ulx3s --design mock --out mine", r"--out mine: the directory already holds synth\.json",
      chain(FOREIGN, write("mine/synth.json", "{}"))),
    C("boards", "synth --board ulx3s --design mock --baud 0 --out s", r"argument --baud: must be a positive integer"),
    C("boards", "synth --board ulx3s --design mock --clock-mhz inf --out s", r"argument --clock-mhz: must be a finite"),
    C("boards", "synth --board de10 --out s", r"argument --board: invalid choice: 'de10'"),
    C("boards", "synth --board ulx3s --design ep --spec {small} --weight-read-stages 2 --weight-bank-words 3000 "
      "--out s",
      r"--weight-bank-words: bank_words must be a power of two >= 2 .*not 3000"),
    C("boards", "synth --board ulx3s --design ep --spec {small} --weight-bank-words 2048 --out s",
      r"--weight-bank-words 2048: needs --weight-read-stages >= 1"),
    C("boards", "synth --board ulx3s --design mock --weight-read-stages 2 --out s",
      r"--weight-read-stages/--weight-bank-words: for --design ep, not mock"),
    C("boards", "synth --board ulx3s --design mock --synth-opt=-noabc --out s",
      r"--synth-opt -noabc: not an option this project passes to yosys for the ulx3s \(one of -nowidelut"),
    C("boards", "synth --board icebreaker --design mock --synth-opt=-nowidelut --out s",
      r"--synth-opt -nowidelut: not an option .* for the icebreaker \(one of -noabc"),
    C("boards", "report nothere", r"nothere: .*No such file"),
    C("boards", "report {export}", r"export: .*synth\.json: No such file"),
    # ---- python -m sim.demo ---------------------------------------------------------------------------------
    C("demo", "--out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("demo", "--out mine", r"--out mine: the directory holds 2 entries that are not a sim-demo output", FOREIGN),
    C("demo", "--out mine --force", r"even with --force", FOREIGN),
    C("demo", "--out d", r"--out d: holds a previous sim-demo output; pass --force",
      marked("d", "sim-demo", {"demo.json": "{}"})),
    C("demo", "--rtl-images 0", r"--rtl-images must be a positive integer, not 0"),
    C("demo", "--hidden -3", r"--hidden must be a positive integer, not -3"),
    C("demo", "--simulator modelsim", r"argument --simulator: invalid choice"),
    C("demo", "--epochs 0", r"--epochs must be a positive integer, not 0"),
    C("demo", "--lanes 0", r"--lanes must be a positive integer, not 0"),
    C("demo", "--out f.txt/demo", r"--out f\.txt/demo: f\.txt is a file", write("f.txt", "x")),
    # ---- bench scripts --------------------------------------------------------------------------------------
    C("bench:ep_core_rtl_check", "--image {img16} --simulators icarus", r"--image .*img16: the image's core has 16 "
      r"inputs \(16-8-10\); this check feeds MNIST images of 784 pixels"),
    C("bench:ep_core_rtl_check", "--image nothere", r"nothere is not an export directory"),
    C("bench:ep_core_rtl_check", "--images 0", r"--images must be a positive integer, not 0"),
    C("bench:ep_core_rtl_check", "--stall 1.5", r"--stall must be a probability in \[0, 1\), not 1\.5"),
    C("bench:mnist_accuracy", "--threads 0", r"--threads must be positive"),
    C("bench:mnist_accuracy", "--epochs 1 --out r", r"full MNIST not found .*--allow-subset"),
    C("bench:onchip_learning", "--out mine", r"--out mine: the directory already holds onchip_learning\.json",
      chain(FOREIGN, write("mine/onchip_learning.json", "{}"))),
    C("bench:ternary_sweep", "--out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("bench:ternary_onchip", "--from-scratch --out e", r"kind epforge-export", copy("export", "e")),
    C("bench:ep_speed", "--bogus", r"unrecognized arguments: --bogus"),
    C("bench:ternary_rtl_check", "--image {image}", r"--image .*image: needs a ternary core spec"),
    C("bench:ep_core_report", "", r"the following arguments are required: --synth"),
    C("bench:ep_core_report", "--synth x --golden-batches 0 16", r"--golden-batches must be positive integers, not "
      r"\[0, 16\]"),
    C("bench:ep_core_wide", "--lanes 0", r"--lanes must be positive"),
    C("bench:ep_core_wide", "--weight-read-stages 5", r"--weight-read-stages 0 to 4"),
    C("bench:ep_core_report", "--synth nothere --skip-golden", r"--synth: no synthesis report at nothere \(run"),
]

EQ_NOPRE = edit_manifest("eqexp", "e", lambda m: m.pop("preprocessing"), redigest=True)
EQ_MINE_STDP = chain(FOREIGN, write("mine/stdp.json", "{}"))
CASES += [
    # ---- python -m golden.eqspike train ------------------------------------------------------------------
    C("eqspike", "train --beta inf --out r", r"beta must be a finite positive number, not inf"),
    C("eqspike", "train --lrs nan --out r", r"lrs entries must be finite positive numbers, not nan"),
    C("eqspike", "train --T1 0 --out r", r"T1 must be a positive integer, not 0"),
    C("eqspike", "train --eps-shift 9 --out r", r"eps_shift must be an integer in \[0, 8\]"),
    C("eqspike", "train --trace-shift -1 --out r", r"trace_shift must be an integer in \[0, 10\]"),
    C("eqspike", "train --trace-stages 3 --out r", r"argument --trace-stages: invalid choice: 3"),
    C("eqspike", "train --encoder bogus --out r", r"argument --encoder: invalid choice: 'bogus'"),
    C("eqspike", "train --preset bogus --out r", r"argument --preset: invalid choice: 'bogus'"),
    C("eqspike", "train --momentum 1 --out r", r"momentum must be in \[0, 1\), not 1\.0"),
    C("eqspike", "train --theta nan --out r", r"theta must be a finite positive number, not nan"),
    C("eqspike", "train --layers 100 10 --out r", r"layers must start with 784 inputs and end with 10 classes"),
    C("eqspike", "train --layers 784 100000000 10 --dataset mnist-subset --out r", r"79,500,000,010 parameters"),
    C("eqspike", "train --config c.json --out r", r"--config c\.json: must hold a table", write("c.json", "[1]")),
    C("eqspike", "train --config c.json --out r", r"preset in c\.json must be one of",
      write("c.json", '{"preset": "nope"}')),
    C("eqspike", "train --config c.json --out r", r"unknown EqSpike options \['bogus'\]",
      write("c.json", '{"bogus": 1}')),
    C("eqspike", "train --threads 0 --out r", r"argument --threads: must be a positive integer, not 0"),
    C("eqspike", "train --stop-after 0 --out r", r"argument --stop-after: must be a positive integer, not 0"),
    C("eqspike", f"train {EQTINY} --device banana --out r", r"--device must be auto, cpu, cuda or cuda:N"),
    C("eqspike", "train --dataset mnist --out r", r"MNIST train data not found"),
    C("eqspike", f"train {EQTINY} --out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("eqspike", f"train {EQTINY} --out img", r"--out img: the directory holds the output of another command",
      copy("eqimg", "img")),
    C("eqspike", f"train {EQTINY} --out run", r"already holds a run \(checkpoint\.pt\): pass --resume",
      copy("eqrun", "run")),
    C("eqspike", "train --resume --out nothere", r"--resume: no checkpoint at nothere/checkpoint\.pt"),
    # ---- evaluate / export ---------------------------------------------------------------------------------
    C("eqspike", "evaluate", r"give exactly one of --checkpoint and --export"),
    C("eqspike", "evaluate --checkpoint {eqrun} --batch-size 0", r"argument --batch-size: must be a positive integer"),
    C("eqspike", "evaluate --checkpoint {eqrun} --seed -1", r"argument --seed: must be a non-negative integer"),
    C("eqspike", "evaluate --checkpoint {eqrun} --limit -5", r"argument --limit: must be a positive integer, not -5"),
    C("eqspike", "evaluate --checkpoint {eqrun} --T 0", r"argument --T: must be a positive integer, not 0"),
    C("eqspike", "evaluate --checkpoint {eqrun} --split bogus", r"argument --split: invalid choice: 'bogus'"),
    C("eqspike", "evaluate --checkpoint e.pt", r"e\.pt: the checkpoint file is empty", write("e.pt", b"")),
    C("eqspike", "evaluate --checkpoint {eqtrunc}", r"eqtrunc\.pt: not a readable checkpoint"),
    C("eqspike", "evaluate --checkpoint {eqnan}", r"parameter w0 has 1 of 6272 values that are not finite"),
    C("eqspike", "evaluate --checkpoint {eqshape}", r"the checkpoint's weights do not fit its configuration"),
    C("eqspike", "evaluate --checkpoint {ckpt}", r"is not an epforge checkpoint \(format epforge-eqspike"),
    C("eqspike", "evaluate --export {export}", r"is not an EqSpike export"),
    C("eqspike", "evaluate --export {eqimg}", r"format is 'epforge-eqspike-image/1', expected 'epforge-export/1'"),
    C("eqspike", "evaluate --export e", r"manifest_sha256 .* does not match its fields",
      edit_manifest("eqexp", "e", lambda m: m["eqspike"].update(eps_shift=3))),
    C("eqspike", "evaluate --export e", r"eps_shift must be an integer in \[0, 8\]",
      edit_manifest("eqexp", "e", lambda m: m["eqspike"].update(eps_shift=99), redigest=True)),
    C("eqspike", "evaluate --export e", r"e/manifest\.json: needs an 'eqspike' table and preprocessing\.dataset",
      EQ_NOPRE),
    C("eqspike", "evaluate --export e", r"file 'w0\.npy' is missing",
      chain(copy("eqexp", "e"), lambda tmp, fx: (tmp / "e" / "w0.npy").unlink())),
    C("eqspike", "evaluate --export e", r"array w0: .* not finite", nan_array("eqexp", "e", "w0")),
    C("eqspike", "evaluate --checkpoint {eqrun} --dataset mnist-subset --limit 5 --json f.txt/x.json",
      r"f\.txt is a file", write("f.txt", "x")),
    C("eqspike", "export --checkpoint {eqrun} --out run", r"--out run: the directory holds the output of another",
      copy("eqrun", "run")),
    C("eqspike", "export --checkpoint {eqrun} --out e", r"--out e: holds a previous epforge-export output; pass "
      r"--force", copy("eqexp", "e")),
    C("eqspike", "export --checkpoint {eqrun} --out mine", r"never replaces files it did not write", FOREIGN),
    C("eqspike", "export --checkpoint {eqnan} --out e", r"parameter w0 has 1 of 6272 values that are not finite"),
    C("eqspike", "export --checkpoint {eqtrunc} --out e", r"not a readable checkpoint"),
    C("eqspike", "export --checkpoint {eqshape} --out e", r"weights do not fit its configuration"),
    # ---- stdp / events -------------------------------------------------------------------------------------
    C("eqspike", "stdp --dt-max 0 --out s", r"argument --dt-max: must be a positive integer, not 0"),
    C("eqspike", "stdp --repeats 0 --out s", r"argument --repeats: must be a positive integer, not 0"),
    C("eqspike", "stdp --seed -1 --out s", r"argument --seed: must be a non-negative integer, not -1"),
    C("eqspike", "stdp --theta nan --out s", r"argument --theta: must be a finite number, not 'nan'"),
    C("eqspike", "stdp --r-hi 2 --out s", r"r_lo and r_hi must be distinct rates in \[0, 1\]"),
    C("eqspike", "stdp --trace-shift 11 --out s", r"trace_shift must be an integer in \[0, 10\]"),
    C("eqspike", "stdp --dt-max 100000000 --out s", r"--dt-max 100000000 .* GiB"),
    C("eqspike", "stdp --dt-max 3 --repeats 2 --out f.txt", r"--out f\.txt: is a file", write("f.txt", "x")),
    C("eqspike", "stdp --dt-max 3 --repeats 2 --out mine", r"--out mine: the directory already holds stdp\.json",
      EQ_MINE_STDP),
    C("eqspike", "events --samples 0 --out v", r"argument --samples: must be a positive integer, not 0"),
    C("eqspike", "events --beta inf --out v", r"beta must be a finite positive number, not inf"),
    C("eqspike", "events --checkpoint nothere --out v", r"nothere: no such checkpoint file"),
    C("eqspike", "events --checkpoint {eqnan} --out v", r"parameter w0 has 1 of 6272 values that are not finite"),
    C("eqspike", "events --export e --out v", r"needs an 'eqspike' table and preprocessing\.dataset", EQ_NOPRE),
    C("eqspike", "events --layers 784 8 10 --dataset mnist-subset --samples 2 --out f.txt", r"--out f\.txt: is a file",
      write("f.txt", "x")),
    C("eqspike", "bogus", r"argument COMMAND: invalid choice: 'bogus'"),
    # ---- python -m golden.eqspike.twin_cli -----------------------------------------------------------------
    C("eqspike_twin", "quantize --export nothere --out i", r"nothere is not an export directory"),
    C("eqspike_twin", "quantize --export {eqrun} --out i", r"eqrun is not an export: .*manifest\.json is missing"),
    C("eqspike_twin", "quantize --export {eqexp} --out i", r"layers=\[784, 8, 10\] but the spec has \[784, 500, 10\]"),
    C("eqspike_twin", "quantize --export {eqexp} --set lanes=0 --out i", r"--set lanes: lanes must be an integer in "
      r"1\.\.4096, not 0"),
    C("eqspike_twin", "quantize --export {eqexp} --set bogus=1 --out i", r"unknown EqSpike spec fields \['bogus'\]"),
    C("eqspike_twin", "quantize --export {eqexp} --set nokey --out i", r"argument --set: --set expects FIELD=VALUE"),
    C("eqspike_twin", "quantize --export {eqexp} --set training=maybe --out i", r"training must be true or false"),
    C("eqspike_twin", "quantize --export {eqexp} --spec nothere.toml --out i", r"nothere\.toml: No such file"),
    C("eqspike_twin", "quantize --export {eqexp} --spec c.json --out i", r"c\.json: EqSpikeSpec: must be a table",
      write("c.json", "[1]")),
    C("eqspike_twin", "quantize --export {eqexp} --set layers=[784,8,10] --out run", r"--out run: the directory "
      r"holds the output of another command", copy("eqrun", "run")),
    C("eqspike_twin", "quantize --export {eqexp} --set layers=[784,8,10] --out img", r"--out img: holds a previous "
      r"epforge-eqspike-image output; pass --force", copy("eqimg", "img")),
    C("eqspike_twin", "quantize --export {eqexp} --set layers=[784,8,10] --out mine", r"never replaces", FOREIGN),
    C("eqspike_twin", "quantize --export {eqexp} --set layers=[784,8,10] --out f.txt", r"--out f\.txt: is a file",
      write("f.txt", "x")),
    C("eqspike_twin", "quantize --export e --set layers=[784,8,10] --out i", r"manifest_sha256 .* does not match",
      edit_manifest("eqexp", "e", lambda m: m["eqspike"].update(trace_shift=4))),
    C("eqspike_twin", "evaluate --image nothere", r"nothere is not an export directory"),
    C("eqspike_twin", "evaluate --image {eqexp}", r"format is 'epforge-export/1', expected 'epforge-eqspike-image/1'"),
    C("eqspike_twin", "evaluate --image {eqimg} --T 0", r"argument --T: must be a positive integer, not 0"),
    C("eqspike_twin", "evaluate --image {eqimg} --batch-size 0", r"argument --batch-size: must be a positive"),
    C("eqspike_twin", "evaluate --image {eqimg} --prng-seed -1", r"argument --prng-seed: must be a non-negative"),
    C("eqspike_twin", "evaluate --image {eqimg} --prng-seed 4294967296", r"--prng-seed must be in 0\.\.2\^32-1"),
    C("eqspike_twin", "evaluate --image {eqimg} --dataset bogus", r"argument --dataset: invalid choice: 'bogus'"),
    C("eqspike_twin", "evaluate --image {eqimg} --dataset mnist", r"MNIST test data not found"),
    C("eqspike_twin", "evaluate --image i", r"manifest_sha256 .* does not match",
      edit_manifest("eqimg", "i", lambda m: m.update(format_note="edited"))),
    C("eqspike_twin", "evaluate --image i", r"w0\.npy", edit_file("eqimg", "i", "w0.npy", lambda b: b[: len(b) // 2])),
    C("eqspike_twin", "evaluate --image {eqimg} --dataset mnist-subset --limit 3 --count-samples 1 --json f.txt/x.json",
      r"f\.txt is a file", write("f.txt", "x")),
    C("eqspike_twin", "train --image {eqimg} --set lanes=4 --out t", r"--image carries its own spec"),
    C("eqspike_twin", "train --set training=false --out t", r"the spec has training=false"),
    C("eqspike_twin", "train --epochs 0 --out t", r"argument --epochs: must be a positive integer, not 0"),
    C("eqspike_twin", "train --seed -1 --out t", r"argument --seed: must be a non-negative integer, not -1"),
    C("eqspike_twin", "train --dataset mnist-subset --set layers=[784,8,10] --train-limit 2 --test-limit 2 --out f.txt",
      r"--out f\.txt: is a file", write("f.txt", "x")),
    C("eqspike_twin", "train --dataset mnist-subset --set layers=[784,8,10] --train-limit 2 --test-limit 2 --out e",
      r"--out e: the directory holds the output of another command", copy("eqexp", "e")),
    # ---- bench/eqspike_vs_ep.py ----------------------------------------------------------------------------
    C("bench:eqspike_vs_ep", "--hidden 0", r"--hidden must be a positive integer, not 0"),
    C("bench:eqspike_vs_ep", "--beta inf", r"beta must be a finite positive number, not inf"),
    C("bench:eqspike_vs_ep", "--T2s 8 0", r"--T2s must be positive integers"),
    C("bench:eqspike_vs_ep", "--trace-shifts 11", r"trace_shift must be an integer in \[0, 10\]"),
    C("bench:eqspike_vs_ep", "--stages 3", r"argument --stages: invalid choice: 3"),
    C("bench:eqspike_vs_ep", "--theta nan", r"theta must be a finite positive number, not nan"),
    C("bench:eqspike_vs_ep", "--seeds -1", r"seed must be a non-negative integer, not -1"),
    C("bench:eqspike_vs_ep", "--threads 0", r"argument --threads: must be a positive integer, not 0"),
    C("bench:eqspike_vs_ep", "--checkpoint nothere", r"nothere: no such checkpoint file"),
    C("bench:eqspike_vs_ep", "--checkpoint {eqnan}", r"parameter w0 has 1 of 6272 values that are not finite"),
    C("bench:eqspike_vs_ep", "--checkpoint {eqshape}", r"weights do not fit its configuration"),
    C("bench:eqspike_vs_ep", "--json d", r"--json d: is a directory", mkdir("d")),
    C("bench:eqspike_vs_ep", "--json f.txt/x.json", r"--json f\.txt/x\.json: f\.txt is a file", write("f.txt", "x")),
    C("bench:eqspike_vs_ep", "--dataset mnist", r"MNIST train data not found"),
    C("bench:eqspike_vs_ep", "--hidden 100000000", r"79,500,000,010 parameters"),
    # ---- bench/eqspike_onchip.py ---------------------------------------------------------------------------
    C("bench:eqspike_onchip", "--hidden 0", r"argument --hidden: must be a positive integer, not 0"),
    C("bench:eqspike_onchip", "--train-limit -5", r"argument --train-limit: must be a positive integer, not -5"),
    C("bench:eqspike_onchip", "--eval-every 0", r"argument --eval-every: must be a positive integer, not 0"),
    C("bench:eqspike_onchip", "--seed -1", r"argument --seed: must be a non-negative integer, not -1"),
    C("bench:eqspike_onchip", "--set lanes=0", r"--set: lanes must be an integer in 1\.\.4096, not 0"),
    C("bench:eqspike_onchip", "--set nokv", r"--set expects FIELD=VALUE, not 'nokv'"),
    C("bench:eqspike_onchip", "--hidden 100000000", r"layers entries must be an integer in 1\.\.1048576"),
    C("bench:eqspike_onchip", "--dataset bogus", r"argument --dataset: invalid choice: 'bogus'"),
    C("bench:eqspike_onchip", "--dataset mnist --out o.json", r"MNIST train data not found"),
    C("bench:eqspike_onchip", "--out d", r"--out d: is a directory", mkdir("d")),
    C("bench:eqspike_onchip", "--out f.txt/o.json", r"--out f\.txt/o\.json: f\.txt is a file", write("f.txt", "x")),
    # ---- bench/randomness.py -------------------------------------------------------------------------------
    C("bench:randomness", "limits --source bogus", r"argument --source: invalid choice: 'bogus'"),
    C("bench:randomness", "limits --set prng_width=0", r"galton spec: prng_width must be one of"),
    C("bench:randomness", "limits --set nokv", r"argument --set: --set expects FIELD=VALUE"),
    C("bench:randomness", "limits --seed -1", r"--seed must be in 0\.\.2\^32-1, not -1"),
    C("bench:randomness", "limits --seed 4294967296", r"--seed must be in 0\.\.2\^32-1, not 4294967296"),
    C("bench:randomness", "limits --spec nothere.toml", r"nothere\.toml: No such file"),
    C("bench:randomness", "limits --spec c.json", r"c\.json: GaltonSpec: must be a table", write("c.json", "[1]")),
    C("bench:randomness", "limits --json f.txt/x.json", r"--json f\.txt/x\.json: f\.txt is a file",
      write("f.txt", "x")),
    C("bench:randomness", "stream --bytes 0 --out s.bin", r"--bytes must be a positive integer, not 0"),
    C("bench:randomness", "stream --bytes 10 --out f.txt", r"--out f\.txt: already exists; it is never overwritten",
      write("f.txt", "x")),
    C("bench:randomness", "stream --bytes 10 --out d", r"--out d: is a directory", mkdir("d")),
    C("bench:randomness", "stream --bytes 10 --source ep-rounding --set lanes=0 --out s.bin",
      r"ep-rounding spec: lanes must be a positive integer, not 0"),
    C("bench:randomness", "stream --bytes 10 --source ternary --set bogus=1 --out s.bin",
      r"ternary spec: unknown TernaryMemorySpec fields \['bogus'\]"),
    C("bench:randomness", "summary nothere.log", r"nothere\.log: No such file"),
    C("bench:randomness", "dispersion --balls 0", r"--balls must be a positive integer, not 0"),
    C("bench:randomness", "dispersion --source ep-sign", r"argument --source: invalid choice: 'ep-sign'"),
    C("bench:randomness", "dispersion --set rows=0", r"galton spec: rows must be a positive integer"),
    C("bench:randomness", "dieharder --log f.txt/x.log -- -d 0", r"--log f\.txt/x\.log: f\.txt is a file",
      write("f.txt", "x")),
    C("bench:randomness", "bogus", r"argument COMMAND: invalid choice: 'bogus'"),
    C("bench:randomness", "limits --prng-output xor", r"argument --prng-output: invalid choice: 'xor'"),
    C("bench:randomness", "limits --source lane --set width=24",
      r"lane spec: width must be one of \[16, 32, 64\], not 24"),
    C("bench:randomness", "limits --source lane --set lanes=3",
      r"--set lanes: the lane source has the fields width and seed"),
    C("bench:randomness", "limits --source lane --spec c.toml", r"--spec: the lane source takes no spec file"),
    C("bench:randomness", "stream --source lane --set seed=-1 --bytes 8 --out s.bin",
      r"lane spec: seed must be a non-negative integer, not -1"),
]


def _cli(name: str):
    if name == "golden":
        from golden.cli import main
    elif name == "ep_core":
        from golden.ep_core.__main__ import main
    elif name == "ternary":
        from golden.ternary.__main__ import main
    elif name == "domainwall":
        from golden.domainwall.cli import main
    elif name == "data":
        from golden.data.__main__ import main
    elif name == "hdl":
        from hdl.build import main
    elif name == "boards":
        from boards.__main__ import main
    elif name == "demo":
        from sim.demo import main
    elif name == "eqspike":
        from golden.eqspike.__main__ import main
    elif name == "eqspike_twin":
        from golden.eqspike.twin_cli import main
    else:
        bench = name.split(":", 1)[1]
        mod_name = f"epforge_bench_{bench}"
        if mod_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(mod_name, REPO / "bench" / f"{bench}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = mod
            spec.loader.exec_module(mod)
        main = sys.modules[mod_name].main
    return main


def _ids() -> list[str]:
    seen: Counter = Counter()
    out = []
    for c in CASES:
        head = c.cli.replace("bench:", "") + "-" + "_".join(a.lstrip("-") for a in c.argv[:2] if a)[:30]
        seen[head] += 1
        out.append(f"{head}-{seen[head]}")
    return out


def _run_case(case: Case, fx: dict, tmp: Path, capsys, monkeypatch) -> str:
    monkeypatch.chdir(tmp)
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    monkeypatch.setenv("EPFORGE_DATA", str(tmp / "no-data"))
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    if case.setup:
        case.setup(tmp, fx)
    before, fx_before = snapshot(tmp), snapshot(fx["root"])
    subs = {k: str(v) for k, v in fx.items()}
    argv = [a.format(**subs) for a in case.argv]
    capsys.readouterr()
    try:
        rc = _cli(case.cli)(argv)
    except SystemExit as e:  # argparse's usage errors (and --help) leave through SystemExit
        rc = e.code
    err = capsys.readouterr().err
    assert rc == case.rc, f"exit status {rc}, expected {case.rc}; stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, f"expected one 'error:' line, got:\n{err}"
    assert re.search(case.match, lines[0]), f"{case.match!r} not in {lines[0]!r}"
    after = snapshot(tmp)
    lost = sorted(p for p, h in before.items() if after.get(p) != h)
    assert not lost, f"files lost or changed: {lost}"
    assert snapshot(fx["root"]) == fx_before, "a shared fixture was changed"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_bad_input(case, fx, tmp_path, capsys, monkeypatch):
    _run_case(case, fx, tmp_path, capsys, monkeypatch)


# ------------------------------------------------------------------------------------------------
# Accepted inputs that were once misread (they must do the right thing, not fail)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("word,value", [("no", False), ("false", False), ("off", False), ("yes", True),
                                        ("true", True)])
def test_set_booleans_are_parsed_strictly(word, value, tmp_path, capsys):
    from golden.ep_core.__main__ import main
    from spec.ep_core import EPCoreSpec

    assert main(["spec", "--set", f"training={word}", "--out", str(tmp_path / "s.toml")]) == 0
    assert EPCoreSpec.load(tmp_path / "s.toml").training is value


def test_force_replaces_a_previous_export_atomically(fx, tmp_path):
    from golden.cli import main
    from golden.export import load_export

    out = tmp_path / "e"
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(out)]) == 0
    inode = out.stat().st_ino
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(out), "--force"]) == 0
    load_export(out)
    assert out.stat().st_ino != inode  # a new tree, swapped in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]  # no temporary or backup trees left


def test_an_empty_directory_is_a_valid_out(fx, tmp_path):
    from golden.cli import main

    (tmp_path / "e").mkdir()
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(tmp_path / "e")]) == 0


def test_exchange_failure_keeps_the_old_tree(fx, tmp_path, monkeypatch):
    """An error while writing the new tree leaves the previous output untouched and no temporary tree."""
    from golden import export as export_mod
    from golden.cli import main

    out = tmp_path / "e"
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(out)]) == 0
    before = snapshot(out)

    def boom(*a, **k):
        raise OSError(28, "No space left on device", "w0.npy")

    monkeypatch.setattr(export_mod.np, "save", boom)
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(out), "--force"]) == 2
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_fallback_swap_without_renameat2(fx, tmp_path, monkeypatch):
    """Where RENAME_EXCHANGE is missing, the old tree is renamed aside and removed only after the new one is in."""
    from golden import fileio
    from golden.cli import main

    out = tmp_path / "e"
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(out)]) == 0
    monkeypatch.setattr(fileio, "_exchange", lambda a, b: False)
    assert main(["export", "--checkpoint", str(fx["ckpt"]), "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_exchange_swaps_two_trees_or_reports_unsupported(tmp_path):
    """renameat2(RENAME_EXCHANGE) swaps two directories in one step (or is reported unsupported and
    changes nothing, so that OutputDir falls back)."""
    from golden.fileio import _exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("old")
    (b / "y").write_text("new")
    if _exchange(a, b):
        assert (a / "y").read_text() == "new" and (b / "x").read_text() == "old"
    else:
        assert (a / "x").read_text() == "old" and (b / "y").read_text() == "new"


def test_output_dir_refuses_a_symlink_and_never_follows_it(tmp_path):
    from golden.clierr import OutputDirError
    from golden.fileio import OutputDir

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "keep.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OutputDirError, match="is a symbolic link"):
        OutputDir(tmp_path / "link", "epforge-export", force=True)
    assert (tmp_path / "real" / "keep.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------------
# A representative subset as real processes: the exit status, one error line, no traceback
# ------------------------------------------------------------------------------------------------
SUBPROCESS = [
    (["-m", "golden", "train", "--beta", "inf", "--out", "r"], r"--beta: must be a finite number"),
    (["-m", "golden", "train", "--config", "c.json", "--out", "r"], r"--config c\.json: must hold a table"),
    (["-m", "golden", "export", "--checkpoint", "{ckpt}", "--out", "mine"], r"never replaces"),
    (["-m", "golden.ep_core", "spec", "--set", "training=maybe"], r"training must be true or false"),
    (["-m", "golden.ternary", "evaluate", "--export", "nothere"], r"not an export directory"),
    (["-m", "golden.domainwall", "histogram", "--balls", "0", "--out", "h"], r"--balls must be a positive"),
    (["-m", "golden.data", "fetch", "mnist", "--data-dir", "nodata"], r"MNIST .* not found"),
    (["-m", "hdl.build", "ep", "--spec", "nothere.toml", "--out", "b"], r"nothere\.toml"),
    (["-m", "boards", "synth", "--board", "icebreaker", "--design", "ep", "--spec", "nothere.toml", "--out", "s"],
     r"nothere\.toml"),
    (["bench/ep_core_rtl_check.py", "--images", "0"], r"--images must be a positive integer"),
]


@pytest.mark.parametrize("argv,match", SUBPROCESS, ids=[" ".join(a[:3]) for a, _ in SUBPROCESS])
def test_bad_input_subprocess(argv, match, fx, tmp_path):
    FOREIGN(tmp_path, fx)
    (tmp_path / "c.json").write_text("[]")
    before = snapshot(tmp_path)
    argv = [a.format(**{k: str(v) for k, v in fx.items()}) for a in argv]
    if argv[0].startswith("bench/"):
        argv[0] = str(REPO / argv[0])
    env = dict(os.environ, EPFORGE_OFFLINE="1", EPFORGE_DATA=str(tmp_path / "no-data"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and re.search(match, lines[0]), r.stderr
    assert snapshot(tmp_path) == {**before, **{p: h for p, h in snapshot(tmp_path).items() if p not in before}}


# ------------------------------------------------------------------------------------------------
# The host link: garbage, truncation, versions and spec ids from the device are clear LinkErrors
# ------------------------------------------------------------------------------------------------
class Scripted:
    """A transport that answers with fixed bytes (whatever the host writes)."""

    def __init__(self, data: bytes):
        self.data = bytearray(data)
        self.written = bytearray()

    def read(self, n: int) -> bytes:
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def write(self, b: bytes) -> int:
        self.written += b
        return len(b)


def _info(version: int, depth: int, spec_id: int, seq: int = 0) -> bytes:
    """A protocol-v2 INFO answer (tag, message seq, payload, CRC-16)."""
    from boards.protocol import MSG_INFO, frame

    return frame(MSG_INFO, seq, bytes((version,)) + depth.to_bytes(2, "little") + spec_id.to_bytes(4, "little")
                 + (16).to_bytes(2, "little") + bytes((77,)))


def _reg(addr: int, value: int, seq: int = 1) -> bytes:
    from boards.protocol import MSG_REG, frame

    return frame(MSG_REG, seq, bytes((addr,)) + value.to_bytes(4, "little"))


def _link_cases():
    from boards.protocol import MSG_ERROR, MSG_INFO, MSG_SYNC, PROTOCOL_VERSION, frame
    from spec.ep_core import REG_SPEC_ID, EPCoreSpec

    spec = EPCoreSpec(layers=(16, 8, 10), lanes=8)
    sid = spec.spec_id
    ok = _info(PROTOCOL_VERSION, 512, sid) + _reg(REG_SPEC_ID, sid)
    v1_info = bytes((MSG_INFO, 1)) + (512).to_bytes(2, "little") + sid.to_bytes(4, "little")  # no seq, no CRC
    return spec, [
        ("nothing", b"", r"no answer to INFO after 3 tries"),
        ("garbage only", b"\x42" * 16, r"no answer to INFO after 3 tries"),
        ("truncated info", _info(PROTOCOL_VERSION, 512, sid)[:4], r"no answer to INFO"),
        ("other version", v1_info, r"protocol version 1, this host 2"),
        ("link spec id", _info(PROTOCOL_VERSION, 512, sid ^ 1) + _reg(REG_SPEC_ID, sid),
         r"host link was built for spec"),
        ("core spec id", _info(PROTOCOL_VERSION, 512, sid) + _reg(REG_SPEC_ID, sid ^ 4), r"core was built for spec"),
        ("device error", _info(PROTOCOL_VERSION, 512, sid) + frame(MSG_ERROR, 1, bytes((5, 0x05, 0))),
         r"error 5 \(INPUT beats past the end of the sample\) for opcode 0x05"),
        ("stray sync", _info(PROTOCOL_VERSION, 512, sid) + frame(MSG_SYNC, 1, bytes((9, 0, 77))),
         r"unexpected SYNC token 9"),
        ("wrong register", _info(PROTOCOL_VERSION, 512, sid) + _reg(3, sid), r"answered for address 3, asked 11"),
        ("garbage after ok", ok + b"\xee", None),
    ]


LINK_CASES = [c[0] for c in _link_cases()[1]]


@pytest.mark.parametrize("name", LINK_CASES)
def test_host_link_garbage(name):
    from boards.host import EPCoreHost, LinkError

    spec, cases = _link_cases()
    _, data, match = next(c for c in cases if c[0] == name)
    t = Scripted(data)
    if match is None:  # a good session: the first garbage byte surfaces at the next read as a clear error
        host = EPCoreHost(t, spec)
        with pytest.raises(LinkError, match=r"unknown message tag 0xee"):
            host.read_reg(0)
        return
    with pytest.raises(LinkError, match=match):
        EPCoreHost(t, spec)


@pytest.mark.parametrize("call,match", [
    (lambda h: h.write_reg(300, 1), r"register address must be in \[0, \d+\), not 300"),
    (lambda h: h.write_reg(1, 1 << 32), r"register value must fit 32 unsigned bits"),
    (lambda h: h.write_word(10**6, 0), r"weight word address must be in"),
    (lambda h: h.configure(gamma=3), r"unknown register 'gamma'"),
])
def test_host_link_refuses_bad_requests(call, match):
    from boards.host import EPCoreHost
    from boards.protocol import PROTOCOL_VERSION
    from spec.ep_core import REG_SPEC_ID, EPCoreSpec

    spec = EPCoreSpec(layers=(16, 8, 10), lanes=8)
    host = EPCoreHost(Scripted(_info(PROTOCOL_VERSION, 512, spec.spec_id) + _reg(REG_SPEC_ID, spec.spec_id)), spec)
    with pytest.raises(ValueError, match=match):
        call(host)


# ------------------------------------------------------------------------------------------------
def case_counts() -> dict[str, int]:
    """Cases per CLI (docs/cli.md quotes these numbers)."""
    counts = Counter("bench" if c.cli.startswith("bench:") else c.cli for c in CASES)
    counts["host link"] = len(LINK_CASES) + 4
    counts["subprocess"] = len(SUBPROCESS)
    return dict(counts)


def test_case_counts():
    counts = case_counts()
    print("bad-input cases:", counts, "total", sum(counts.values()))
    assert sum(counts.values()) >= 150
    for cli in ("golden", "ep_core", "ternary", "domainwall", "data", "hdl", "boards", "demo", "bench", "eqspike",
                "eqspike_twin"):
        assert counts[cli] >= 5, cli
