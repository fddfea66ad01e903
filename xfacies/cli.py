"""Command line: ``xfacies demo``, ``xfacies info``, ``xfacies import-reference``, ``xfacies make-demo-model``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

__all__ = ["main"]


def _cmd_demo(a: argparse.Namespace) -> int:
    from xfacies.demo import run_demo

    run_demo(a.out, size=a.size, dates=a.dates, seed=a.seed, method=a.method, model=a.model,
             chunks=a.chunks, progress=not a.no_progress)
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    import json

    from xfacies.model.bundle import load_model

    m = load_model(a.model)
    print(m)
    print("features:", ", ".join(m.features))
    print("classes: ", ", ".join(m.classes))
    print("halo (px): dense", m.dense_radius, "/ exact", m.patch_radius)
    if m.metadata:
        print("metadata:", json.dumps(m.metadata, indent=1, default=str))
    return 0


def _cmd_import(a: argparse.Namespace) -> int:
    from xfacies.model.reference import import_reference

    m = import_reference(a.h5, a.minmax, calibrator=a.calibrator)
    path = m.save(a.out)
    print(f"wrote {path}: {m}")
    return 0


def _cmd_make_demo(a: argparse.Namespace) -> int:
    from xfacies.model.demo import make_demo_model

    make_demo_model(a.out, epochs=a.epochs)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xfacies", description="Glacier surface facies from optical imagery.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="classify a synthetic melt season end to end (no download)")
    d.add_argument("--out", default="xfacies-demo", help="output folder (default: %(default)s)")
    d.add_argument("--size", type=int, default=512, help="scene size in pixels (default: %(default)s)")
    d.add_argument("--dates", type=int, default=6, help="number of acquisitions (default: %(default)s)")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--method", choices=["dense", "exact"], default="dense")
    d.add_argument("--model", default="demo", help="bundle path or 'demo' (default)")
    d.add_argument("--chunks", type=int, default=256, help="spatial chunk size (default: %(default)s)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_cmd_demo)

    i = sub.add_parser("info", help="describe a model bundle")
    i.add_argument("model", help="bundle path or 'demo'")
    i.set_defaults(func=_cmd_info)

    r = sub.add_parser("import-reference", help="turn a reference .h5 weight file into a bundle")
    r.add_argument("h5")
    r.add_argument("out", help="output bundle path (*.xfacies)")
    r.add_argument("--minmax", help="pickle of (mins, maxs), the reference's global normalisation")
    r.add_argument("--calibrator", help="reference *_calibration_model.pickle")
    r.set_defaults(func=_cmd_import)

    m = sub.add_parser("make-demo-model", help="retrain the shipped demo model on synthetic glaciers")
    m.add_argument("--out", default=None, help="output path (default: the package's demo.xfacies)")
    m.add_argument("--epochs", type=int, default=12)
    m.set_defaults(func=_cmd_make_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, ConnectionError) as err:
        print(f"xfacies {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
