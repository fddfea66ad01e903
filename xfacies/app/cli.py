"""Command line: ``xfacies run``, ``xfacies apply``, ``xfacies demo``, ``xfacies info``,
``xfacies import-reference``, ``xfacies make-demo-model``, ``xfacies train``,
``xfacies caffe train|evaluate|gallery``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

__all__ = ["main"]


def _cmd_demo(a: argparse.Namespace) -> int:
    from xfacies.app.demo import run_demo

    run_demo(a.out, size=a.size, dates=a.dates, seed=a.seed, method=a.method, model=a.model,
             chunks=a.chunks, progress=not a.no_progress)
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    import json

    from xfacies.model.registry import load_model

    m = load_model(a.model)
    print(m)
    print("features:", ", ".join(m.features))
    print("classes: ", ", ".join(m.classes))
    if m.tiling is None:
        print("halo (px): dense", m.dense_radius, "/ exact", m.patch_radius)
    else:
        t = m.tiling
        print(f"inference: whole images up to {t['tile']} px a side, else {t['tile']}-px tiles overlapping by "
              f"{t['overlap']} px (Hann-weighted merge); sides padded to multiples of {t['pool']}")
    dom = m.training_domain
    print(f"trained on: {dom['imagery']} imagery"
          + (f" ({', '.join(dom['sensors'])})" if dom.get("sensors") else "")
          + (f"; region: {dom['region']}" if dom.get("region") else ""))
    if dom.get("glaciers"):
        g = dom["glaciers"]
        print(f"  glaciers ({len(g)}): {', '.join(g[:12])}" + (", ..." if len(g) > 12 else ""))
    if dom.get("dates"):
        d = dom["dates"]
        print(f"  dates: {d['first']} to {d['last']} ({d['n']} distinct dates)")
    if dom.get("labels"):
        print("  labels: " + ", ".join(f"{c} {n:,}" for c, n in dom["labels"].items()))
    held = m.metadata.get("held_out")
    if held:
        print(f"held-out scores ({held['what']}; {held['n_samples']:,} samples): macro F1 {held['macro_f1']:.3f}, "
              f"accuracy {held['accuracy']:.3f}" + (f", ECE {held['ece']:.3f}" if "ece" in held else ""))
    if m.metadata:
        print("metadata:", json.dumps(m.metadata, indent=1, default=str))
    return 0


def _cmd_convert(a: argparse.Namespace) -> int:
    from xfacies.model.reference import convert_reference_file

    out = convert_reference_file(a.src, a.out, trust_pickle=a.trust_pickle)
    print(f"wrote {out}")
    return 0


def _cmd_import(a: argparse.Namespace) -> int:
    from xfacies.model.reference import import_reference

    m = import_reference(a.h5, a.minmax, calibrator=a.calibrator)
    path = m.save(a.out)
    print(f"wrote {path}: {m}")
    return 0


def _cmd_make_demo(a: argparse.Namespace) -> int:
    from xfacies.train.demo_model import make_demo_model

    make_demo_model(a.out, epochs=a.epochs, overwrite=a.overwrite)
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    from xfacies.app.training import load_train_config, run_training

    result = run_training(load_train_config(a.config), verbose=0 if a.quiet else 1)
    print(f"wrote {result.out}")
    return 0


def _cmd_caffe_train(a: argparse.Namespace) -> int:
    from xfacies.caffe import index, leave_one_glacier_out, open_dataset, select
    from xfacies.caffe.train import train_zone_model
    from xfacies.model.registry import check_output

    out = check_output(a.out, a.overwrite)  # before hours of training: never the package, no silent overwrite
    ds = open_dataset(a.root, split="train", metadata=a.metadata)
    fit = dict(epochs=a.epochs, seed=a.seed, crop=a.crop, batch_size=a.batch_size,
               steps_per_epoch=a.steps or None, loss=a.loss, verbose=0 if a.quiet else 1)
    if a.logo:
        table = leave_one_glacier_out(ds, resolution=a.resolution, pixel_size=a.resolution,
                                      models_dir=a.logo_models, **fit)
        print(table.to_string(index=False))
        if a.logo_csv:
            table.to_csv(a.logo_csv, index=False)
    val = None
    if a.validation_glacier:
        idx = index(ds)
        if a.validation_glacier not in set(idx.glacier):
            raise SystemExit(f"--validation-glacier {a.validation_glacier!r} is not in {a.root} "
                             f"(glaciers: {sorted(set(idx.glacier))})")
        val = select(ds, idx[idx.glacier == a.validation_glacier])
        ds = select(ds, idx[idx.glacier != a.validation_glacier])
    m = train_zone_model(ds, out=out, overwrite=a.overwrite, log=a.log, validation=val,
                         patience=a.patience, resume=a.resume, **fit)
    print(f"wrote {out}: {m} (checkpoints in {out}.checkpoints; load it with xfacies.load_model({str(out)!r}))")
    return 0


def _cmd_caffe_evaluate(a: argparse.Namespace) -> int:
    from xfacies.caffe import evaluate, open_dataset, segment

    ds = open_dataset(a.root, split=a.split, metadata=a.metadata)
    table = evaluate(segment(ds, a.model, tta=a.tta), ds, resolution=a.resolution, pixel_size=a.resolution)
    print(f"front distances in {'/'.join(sorted(set(table['units'])))}")
    print(table.to_string(index=False))
    if a.csv:
        table.to_csv(a.csv, index=False)
    return 0


def _cmd_caffe_gallery(a: argparse.Namespace) -> int:
    from xfacies.caffe import gallery, open_dataset, segment

    ds = open_dataset(a.root, split=a.split, metadata=a.metadata)
    pred = None if a.model is None else segment(ds, a.model)
    path = gallery(ds, a.out, predictions=pred)
    print(f"wrote {path}")
    return 0


def _add_caffe(sub) -> None:
    from xfacies.caffe.train import DEFAULT_FIT, LOSSES

    c = sub.add_parser("caffe", help="the CaFFe SAR calving-front benchmark: train, evaluate, browse")
    cs = c.add_subparsers(dest="caffe_command", required=True)

    def common(p, split: bool = True) -> None:
        p.add_argument("root", help="the benchmark's data_raw folder (or its parent), or the resized layout")
        p.add_argument("--metadata", help="the published meta_data.csv (georeferencing, pixel sizes)")
        if split:
            p.add_argument("--split", choices=["train", "test"], default=None)

    def scale(p) -> None:
        p.add_argument("--resolution", type=float, default=None,
                       help="metres per pixel of every image (default: each image's own; resized images "
                            "of the benchmark's glaciers from each glacier's fixed extent; 1 for pixels)")

    t = cs.add_parser("train", help="train a zone model (a U-Net) on CaFFe images")
    common(t, split=False)
    t.add_argument("--out", default="caffe-zones.xfacies",
                   help="output bundle (default: ./caffe-zones.xfacies; never inside the installed package)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    t.add_argument("--resume", action="store_true",
                   help="continue from the last epoch saved in <out>.checkpoints (weights, optimizer, schedule)")
    t.add_argument("--validation-glacier", default=None,
                   help="hold this glacier out: scored every epoch, the best epoch is kept")
    t.add_argument("--patience", type=int, default=None,
                   help="with --validation-glacier: stop after this many epochs without improvement")
    t.add_argument("--epochs", type=int, default=DEFAULT_FIT["epochs"])
    t.add_argument("--crop", type=int, default=DEFAULT_FIT["crop"],
                   help="side of the training samples, random windows of the images scaled 0.5-1.5 x "
                        "(default %(default)s px: no sample shows a whole 256-px scene)")
    t.add_argument("--batch-size", type=int, default=DEFAULT_FIT["batch_size"])
    t.add_argument("--steps", type=int, default=DEFAULT_FIT["steps_per_epoch"],
                   help="batches per epoch (0: enough crops to cover every image's 256-px view once)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--loss", choices=sorted(LOSSES), default="dice_ce",
                   help="dice_ce: cross-entropy + Dice (default); ce: cross-entropy; focal: focal cross-entropy")
    t.add_argument("--log", default=None, help="CSV log of the training (per epoch)")
    t.add_argument("--logo", action="store_true", help="first score leave-one-glacier-out models")
    t.add_argument("--logo-csv", default=None, help="write the leave-one-glacier-out table there")
    t.add_argument("--logo-models", default=None, help="save the leave-one-glacier-out models in this folder")
    scale(t)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_cmd_caffe_train)

    e = cs.add_parser("evaluate", help="segment and score with the benchmark's metrics")
    common(e)
    e.add_argument("--model", default="caffe-zones")
    e.add_argument("--tta", choices=["flips", "d4"], default=None,
                   help="average the softmax over 4 flipped (or 8 rotated/flipped) views")
    scale(e)
    e.add_argument("--csv", default=None, help="write the table there")
    e.set_defaults(func=_cmd_caffe_evaluate)

    g = cs.add_parser("gallery", help="a static HTML gallery of thumbnails with filters")
    common(g)
    g.add_argument("out", help="output folder")
    g.add_argument("--model", default=None, help="also show this model's zones (e.g. caffe-zones)")
    g.set_defaults(func=_cmd_caffe_gallery)


def _cmd_run(a: argparse.Namespace) -> int:
    from xfacies.app.pipeline import load_config, run

    cfg = load_config(a.config)
    kwargs = {} if a.scheduler is None else {"scheduler": a.scheduler}
    run(cfg, resume=a.resume, progress=not a.no_progress, **kwargs)
    return 0


def _cmd_apply(a: argparse.Namespace) -> int:
    from xfacies.app.apply import apply_scene

    res = apply_scene(a.optical, a.outlines, a.output, dem=a.dem, slope=a.slope, shadow=a.shadow,
                      hillshade=a.hillshade, proximity=a.proximity, model=a.model, minmax=a.minmax,
                      confidence=a.confidence, calibration=a.calibration, smooth=a.smooth,
                      method=a.method, batch_size=a.batch_size, chunks=a.chunks,
                      progress=not a.no_progress)
    print(res.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xfacies", description="Glacier surface facies from optical imagery.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="glaciers x years: STAC -> facies -> Zarr -> products -> mass-balance report",
        description="Run the xfacies pipeline described by a TOML configuration (see xfacies.app.pipeline). "
                    "Dates already complete in the output store are skipped (--no-resume recomputes them).")
    run.add_argument("config", help="TOML run configuration")
    run.add_argument("--scheduler", default=None,
                     help="Dask scheduler address (tcp://host:8786), or 'threads'; default: the config's "
                          "[cluster] scheduler, else a new LocalCluster")
    run.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                     help="skip dates already complete in the store (default: %(default)s)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    ap = sub.add_parser(
        "apply", help="classify one scene from GeoTIFFs (the reference's apply.py, fixed)",
        description="Classify the glacier facies of one scene from GeoTIFFs on one grid. The feature set "
                    "follows from the inputs: optical (1); + --dem --slope (2); + --shadow --hillshade (3); "
                    "+ --proximity (4).")
    ap.add_argument("--optical", required=True, help="6-band optical GeoTIFF (blue green red nir swir1 swir2)")
    ap.add_argument("--outlines", required=True, help="glacier outlines (shp, geojson, gpkg, ...)")
    ap.add_argument("--output", required=True, help="output class GeoTIFF (int16, nodata -9999)")
    for name, what in (("dem", "DEM (m)"), ("slope", "slope (degrees)"),
                       ("shadow", "cast-shadow mask (1 sunlit, 0 shadow)"), ("hillshade", "hillshade (0..1)"),
                       ("proximity", "distance to the outline edges")):
        ap.add_argument(f"--{name}", default=None, help=f"{what} GeoTIFF on the optical grid")
    ap.add_argument("--model", default="demo",
                    help="xfacies bundle, 'demo', or reference *_weights.h5 (default: %(default)s)")
    ap.add_argument("--minmax", default=None, help="min/max JSON (with .h5 weights; a reference pickle: "
                    "`xfacies convert-reference` it once)")
    ap.add_argument("--confidence", default=None, help="also write this confidence GeoTIFF (float32)")
    ap.add_argument("--calibration", default=None, help="calibrator JSON (a reference "
                    "*_calibration_model.pickle: `xfacies convert-reference` it once)")
    ap.add_argument("--smooth", action="store_true", help="3x3 mode smoothing of the class map")
    ap.add_argument("--method", choices=["exact", "dense"], default="exact",
                    help="exact: the reference's per-pixel patches (default); dense: ~300x faster")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--chunks", type=int, default=1024, help="chunk size in pixels (default: %(default)s)")
    ap.add_argument("--no-progress", action="store_true")
    ap.set_defaults(func=_cmd_apply)

    d = sub.add_parser(
        "demo", help="classify a synthetic melt season end to end (no download)",
        description="A preset of `xfacies run` on a synthetic area: a melt season of synthetic valley glaciers "
                    "is written as Sentinel-2-like COGs with a STAC catalog, served by rustac on loopback, "
                    "loaded lazily, turned into features, classified chunk by chunk with the demo model, "
                    "written to Zarr with fractions and end-of-season products, and scored against the "
                    "synthetic truth. Writes OUT/facies.zarr, fractions.zarr, products.zarr and OUT/report/.")
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
    r.add_argument("--minmax", help="min/max JSON {\"min\": [...], \"max\": [...]}, the reference's global "
                                    "normalisation (its pickle: `xfacies convert-reference` it once)")
    r.add_argument("--calibrator", help="calibrator JSON (a reference *_calibration_model.pickle: "
                                        "`xfacies convert-reference` it once)")
    r.set_defaults(func=_cmd_import)

    cv = sub.add_parser(
        "convert-reference", help="convert a reference pickle (calibrator or min/max) to JSON, once",
        description="Unpickling runs whatever code the file holds, so xfacies reads calibrators and min/max "
                    "files as JSON only. This converts one of the reference's pickles (a "
                    "*_calibration_model.pickle or the global min/max) to that JSON, and only with "
                    "--trust-pickle: use it for files you trust.")
    cv.add_argument("src", help="the pickle")
    cv.add_argument("out", help="the JSON to write")
    cv.add_argument("--trust-pickle", action="store_true",
                    help="I trust this file: unpickle it (this runs code from the file)")
    cv.set_defaults(func=_cmd_convert)

    m = sub.add_parser("make-demo-model", help="train the demo model on synthetic glaciers (./demo.xfacies)")
    m.add_argument("--out", default="demo.xfacies",
                   help="output path (default: ./demo.xfacies; never inside the installed package)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    m.add_argument("--epochs", type=int, default=12)
    m.set_defaults(func=_cmd_make_demo)

    tr = sub.add_parser("train", help="train facies models by the reference recipe: cross-validation, "
                        "confident learning, calibration, scores (a TOML config)")
    tr.add_argument("config", help="training configuration (TOML; see xfacies.app.training)")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=_cmd_train)

    _add_caffe(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XFACIES_QUIET_TF", "1")  # no TensorFlow start-up banner (model.runtime.import_keras)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, ConnectionError) as err:
        print(f"xfacies {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xfacies {args.command}: interrupted. Every date recorded as complete is kept; run the same "
              "command again to finish the others (only the missing dates are computed).", file=sys.stderr)
        return 130
    except RuntimeError as err:
        from xfacies.app.pipeline import RunLockedError

        if not isinstance(err, RunLockedError):  # another run holds the output folder: say so
            raise
        print(f"xfacies {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
