"""Command line: ``python -m golden.data {info,verify,fetch,make-subset}``.

Heavy modules (numpy and the loaders) are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..clierr import ArgumentParser, cli_main


def _root(args: argparse.Namespace) -> Path:
    from . import default_data_dir

    root = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    if root.exists() and not root.is_dir():
        from ..clierr import CLIError

        raise CLIError(f"--data-dir {root}: is a file, not a directory")
    return root


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _idx_count(path: Path) -> str:
    import gzip

    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as g:
                head = g.read(8)
        return str(int.from_bytes(head[4:8], "big")) if len(head) == 8 else "?"
    except (OSError, EOFError):
        return "?"


def _idx_paths(info, root: Path, split: str) -> list[Path | None]:
    """First images/labels candidates, skipping directories whose labels are another data set's.

    Only the small labels file is hashed, so that `info` stays fast while not reporting, say,
    MNIST files in a shared root as Fashion-MNIST.
    """
    from ._core import DataError, identify_digest
    from ._files import gunzip_if_needed, hexdigest
    from ._idxsets import candidates

    img_spec, lbl_spec = info.files(split)
    foreign: set[Path] = set()
    lbl_path = None
    for p in candidates(info, root, lbl_spec):
        try:
            digest = hexdigest("sha256", gunzip_if_needed(p.read_bytes(), str(p)))
        except (OSError, DataError):  # a broken file is still "found"; `verify` says what is wrong
            digest = None
        other = identify_digest(digest) if digest is not None and digest != lbl_spec.digest else None
        if other is not None and other.what != lbl_spec.what:
            foreign.add(p.parent)
            continue
        lbl_path = p
        break
    img_path = next((p for p in candidates(info, root, img_spec) if p.parent not in foreign), None)
    return [img_path, lbl_path]


def cmd_info(args: argparse.Namespace) -> int:
    """Print which data sets are found where, with sample counts and file sizes."""
    from . import DATASETS
    from ._cifar import locate
    from ._idxsets import subset_location

    root = _root(args)
    print(f"data root: {root}  (set EPFORGE_DATA or --data-dir to change it)")
    for name, info in DATASETS.items():
        for split in ("train", "test"):
            label = f"{name:14s}{split:6s}"
            if name == "mnist-subset":
                base = subset_location()
                files = [base.joinpath(s.name) for s in info.files(split)]
                size = sum(len(f.read_bytes()) for f in files if f.is_file())
                print(
                    f"{label}{info.n_train if split == 'train' else info.n_test:>7} samples  {_size(size):>9}  {base}"
                )
            elif name == "cifar10":
                batch_dir, archive = locate(info, root, split)
                if batch_dir is not None:
                    size = sum((batch_dir / s.name).stat().st_size for s in info.files(split))
                    print(f"{label}{'':>7}          {_size(size):>9}  {batch_dir}")
                elif archive is not None:
                    print(f"{label}{'':>7}          {_size(archive.stat().st_size):>9}  {archive} (not extracted yet)")
                else:
                    print(f"{label}missing  (put {info.archive.name} in {root}/)")
            else:
                paths = _idx_paths(info, root, split)
                if None in paths:
                    lacking = [s.name for s, p in zip(info.files(split), paths, strict=True) if p is None]
                    print(f"{label}missing  {', '.join(lacking)} (put in {info.search_dirs(root)[0]}/)")
                else:
                    size = sum(p.stat().st_size for p in paths)
                    where = paths[0].parent if paths[0].parent == paths[1].parent else " + ".join(map(str, paths))
                    print(f"{label}{_idx_count(paths[0]):>7} samples  {_size(size):>9}  {where}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Load every split (no download), which checks checksums and structure."""
    from . import DATASETS, DataError, DataMissingError, load_dataset
    from ._core import get_info

    try:
        for name in args.names:
            get_info(name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _root(args)  # a file given as --data-dir is an error, not "missing"
    names = args.names or list(DATASETS)
    status = 0
    for name in names:
        for split in ("train", "test"):
            try:
                ds = load_dataset(name, split, args.data_dir, download=False)
            except DataMissingError as exc:
                print(f"MISSING {name} {split}: {str(exc).splitlines()[0]}")
                if args.names:  # asked for explicitly, so its absence is a failure
                    status = 1
            except DataError as exc:
                print(f"BAD     {name} {split}: {exc}")
                status = 1
            else:
                print(f"OK      {name} {split}: {len(ds)} samples, checksums verified, from {ds.source}")
    return status


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download (if missing) and verify both splits of a data set."""
    from . import load_dataset

    _root(args)
    for split in ("train", "test"):
        ds = load_dataset(args.name, split, args.data_dir, download=True)  # DataError: exit 2 (golden.clierr)
        print(f"OK {args.name} {split}: {len(ds)} samples in {ds.source}")
    return 0


def cmd_make_subset(args: argparse.Namespace) -> int:
    """Regenerate the embedded MNIST subset from the real MNIST."""
    from ..fileio import claim_output_dir, only
    from ._core import DATASETS
    from ._idxsets import SUMS_FILE, make_subset

    if args.out:  # never overwrite files of someone else's (the package's own directory is the default)
        writes = tuple(f.name for f in DATASETS["mnist-subset"].all_files()) + (SUMS_FILE,)
        claim_output_dir(Path(args.out), "mnist-subset", writes=writes, force=args.force,
                         legacy=only(SUMS_FILE, *writes))
    hashes = make_subset(Path(args.source), Path(args.out) if args.out else None)  # DataError: exit 2
    for name, digest in sorted(hashes.items()):
        print(f"{digest}  {name} (uncompressed)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m golden.data``."""
    from ._core import DATASETS

    names = list(DATASETS)
    p = ArgumentParser(
        prog="python -m golden.data",
        description="Find, verify, download and subset the data sets used by epforge.",
        epilog="Environment: EPFORGE_DATA (data root), EPFORGE_OFFLINE=1 (never download).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what is searched, skipped and loaded")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_dir_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--data-dir",
            metavar="DIR",
            default=None,
            help="data root to search (default: $EPFORGE_DATA, else $XDG_CACHE_HOME/epforge/data, "
            "else ~/.cache/epforge/data)",
        )

    sp = sub.add_parser(
        "info",
        help="show which data sets are found where, with sizes",
        description="Show which data sets are found where, with sample counts and sizes.",
    )
    data_dir_opt(sp)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser(
        "verify",
        help="check checksums and structure of the data sets found",
        description="Load every split without downloading, verifying checksums and structure. "
        "Exit 1 if a file is corrupt, or if a data set named on the command line is missing.",
    )
    data_dir_opt(sp)
    # No argparse choices: with nargs="*" Python 3.11 rejects the empty default against them.
    sp.add_argument(
        "names", nargs="*", metavar="NAME", help=f"data sets to verify (default: all of {', '.join(names)})"
    )
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser(
        "fetch",
        help="download a data set's missing files and verify them",
        description="Download the missing files of both splits of NAME into the data root, then verify them.",
    )
    sp.add_argument(
        "name",
        metavar="NAME",
        choices=[n for n in names if n != "mnist-subset"],
        help="data set to download: " + ", ".join(n for n in names if n != "mnist-subset"),
    )
    data_dir_opt(sp)
    sp.set_defaults(func=cmd_fetch)

    sp = sub.add_parser(
        "make-subset",
        help="regenerate the embedded MNIST subset",
        description="Write the first 200 train and 50 test images of each class of MNIST, "
        "in file order, as deterministic IDX .gz files plus SHA256SUMS.",
    )
    sp.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="DIR",
        help="data root holding the real MNIST IDX files (checksums are verified)",
    )
    sp.add_argument(
        "--out", metavar="DIR", default=None, help="output directory (default: the package's golden/data/mnist_subset)"
    )
    sp.add_argument("--force", action="store_true", help="overwrite a previous subset at --out")
    sp.set_defaults(func=cmd_make_subset)
    return p


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
