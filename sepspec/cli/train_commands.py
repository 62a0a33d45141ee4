"""`sepspec train | evaluate | export | runs | bench`: argument parsing and rendering; the work is in `train` and
`deploy`, which return records (`Result`, `Evaluation`, `Exported`, `RunSummary`, `Bench`)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from ..status import OK, USAGE, of_training
from ..train import PRECISIONS, STRATEGIES, STREAMS, TTA

DATA_HELP = ("the images: a CIFAR-10/100 archive or its folder, a .npz (keras.datasets layout), or a folder with "
             "one subfolder per class (default: $SEPSPEC_DATA, then Keras's cache)")


def add_commands(sub) -> None:
    s = sub.add_parser("train", help="train a spec on your images or CIFAR-10 (or --resume a run)")
    s.add_argument("spec", nargs="?", metavar="SPEC")
    s.add_argument("--epochs", type=_positive)
    s.add_argument("--batch-size", type=_positive)
    s.add_argument("--data", metavar="PATH", help=DATA_HELP)
    s.add_argument("--out", metavar="DIR", help="run directory (default runs/<spec name>/<timestamp>)")
    s.add_argument("--train-limit", type=_positive, metavar="N", help="train on the first N images")
    s.add_argument("--val-limit", type=_positive, metavar="N", help="validate on the first N images")
    s.add_argument("--seed", type=int, help="fixes weights, data order, augmentation and dropout (default: "
                   "train.seed, else 0)")
    s.add_argument("--seeds", metavar="K,K,...", help="train several seeds at once, one process each on the same "
                   "device (runs OUT/seedK; on a GPU the small networks leave room for several)")
    s.add_argument("--stacked", action="store_true", help="with --seeds: one process, every seed's network side by "
                   "side in one model and one compiled step (each still its own run, data order and augmentation)")
    s.add_argument("--resume", metavar="DIR", help="continue an interrupted run with its recorded settings (with "
                   "--epochs N: train it to N epochs; with --data PATH: the same data set, moved)")
    s.add_argument("--set", action="append", default=[], metavar="train.KEY=VALUE",
                   help="override a train: setting with a YAML value (repeatable)")
    s.add_argument("--strategy", choices=STRATEGIES,
                   help="default (one device); mirrored, multiworker (TensorFlow's tf.distribute); data "
                   "(keras.distribution.DataParallel on JAX: each batch over every device)")
    s.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): float32 on CPU; on a GPU the measured best for the Keras backend "
                   "(docs/gpu.md)")
    s.add_argument("--jit-compile", action="store_true", help="compile the step: XLA on TensorFlow (slow for "
                   "depthwise convolutions on CPU; always on with JAX), torch.compile on PyTorch")
    s.add_argument("--keras-layers", action="store_true", help="train batch norm and dropout with Keras's own ops "
                   "(not TensorFlow's fused batch norm and integer dropout masks; slower)")
    s.add_argument("--stream", choices=STREAMS, help="an image folder read from disk batch by batch: auto (the "
                   "default: when its decoded images would take over a quarter of the memory), on, off")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("evaluate", help="test accuracy, per-class accuracy and a confusion matrix (of a run, a "
                       ".keras file, or an exported .tflite/.onnx file run by its own runtime)")
    s.add_argument("target", metavar="RUN_DIR_OR_MODEL")
    s.add_argument("--reference", metavar="RUN_DIR_OR_MODEL", help="for an exported file: agreement with a float "
                   "model (a run directory: its best.keras; or a .keras file, such as a checkpoint)")
    s.add_argument("--data", metavar="PATH", help="where the model's data set is (default: as its run recorded it)")
    s.add_argument("--runtime", choices=("litert", "tflm"), default="litert", help="for an int8 .tflite: run it on "
                   "LiteRT's kernels (default) or on TensorFlow Lite Micro's (as a microcontroller does), beside "
                   "LiteRT's figure")
    s.add_argument("--tta", choices=TTA, default="none", help="flip: average each image's and its mirror "
                   "image's probabilities; flip_shift: also each shifted by one pixel up-left and down-right (6 views)")
    s.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("export", help="a trained model as a LiteRT (float or int8), ONNX or SavedModel file, or as "
                       "C++ sources for TensorFlow Lite Micro")
    s.add_argument("source", metavar="RUN_DIR_OR_MODEL")
    s.add_argument("--format", required=True, choices=("litert", "litert-int8", "onnx", "saved_model", "tflm"),
                   help="tflm: a folder of C++ sources (the int8 model as an aligned array, the arena size, the op "
                   "resolver, the input and output quantisation, the classes)")
    s.add_argument("-o", "--output", required=True, metavar="FILE_OR_FOLDER")
    s.add_argument("--normalization", metavar="RUN_DIR|none", help="for a .keras file: the run directory whose "
                   "per-channel normalisation goes into the graph (default none: the file takes normalised input)")
    s.add_argument("--calibration", type=_positive, default=300, metavar="N",
                   help="litert-int8: training images that calibrate the activation ranges (default 300)")
    s.add_argument("--data", metavar="PATH",
                   help="litert-int8: the images that calibrate (default: the run's recorded data)")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("runs", help="list runs with their spec, params, best accuracy and seconds per epoch")
    s.add_argument("dir", nargs="?", default="runs", metavar="DIR")
    s.set_defaults(fn=cmd_runs)

    s = sub.add_parser("bench", help="images/s of the trainer's step vs a plain model.fit on tensors")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--steps", type=_positive, default=50)
    s.add_argument("--batch-size", type=_positive)
    s.add_argument("--data", metavar="PATH", help=DATA_HELP + "; without any: random images")
    s.add_argument("--precision", choices=PRECISIONS, default="auto", help="as for train (default auto)")
    s.add_argument("--repeats", type=_positive, default=3, help="interleaved timed repeats of each (default 3)")
    s.add_argument("--steps-per-execution", type=_positive, default=1, metavar="N",
                   help="training steps per compiled call (Keras's steps_per_execution; default 1)")
    s.add_argument("--jit-compile", action="store_true", help="as for train: XLA on TensorFlow (always on with JAX), "
                   "torch.compile on PyTorch")
    s.add_argument("--stacked", type=_positive, default=0, metavar="N", help="also time N seeds stacked in one step "
                   "(train --seeds ... --stacked): their images per second together, beside the trainer's one seed")
    s.add_argument("--format", choices=("text", "json"), default="text", help="json: every timed run, the medians "
                   "and the ratio as one JSON object (for scripts: benchmarks/gpu_check.py)")
    s.set_defaults(fn=cmd_bench)


def _positive(text: str) -> int:
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def cmd_train(a) -> int:
    from ..train.trainer import resume, train, training_report

    if a.resume:
        fixed = [flag for flag, v in (("--set", a.set), ("--batch-size", a.batch_size), ("--out", a.out),
                                      ("--train-limit", a.train_limit), ("--val-limit", a.val_limit),
                                      ("--seed", a.seed), ("--seeds", a.seeds), ("--stacked", a.stacked),
                                      ("--strategy", a.strategy),
                                      ("--precision", a.precision),
                                      ("--jit-compile", a.jit_compile), ("--keras-layers", a.keras_layers),
                                      ("--stream", a.stream))
                 if v not in (None, False, [])]
        if fixed:
            print(f"sepspec train --resume DIR: {', '.join(fixed)} cannot be given: a run continues with the settings "
                  "it recorded (only --epochs N, to change its length, and --data PATH, where its data set is now)",
                  file=sys.stderr)
            return USAGE
        from ..train.seeds import is_group

        if is_group(a.resume):
            return _resume_seeds(a)
        return of_training(resume(a.resume, a.epochs, data=a.data, spec_path=a.spec).status)
    if not a.spec:
        print("sepspec train: give a SPEC (or --resume DIR)", file=sys.stderr)
        return USAGE
    if a.seeds is not None:
        return _train_seeds(a)
    if a.stacked:
        print("sepspec train: --stacked goes with --seeds K,K,...", file=sys.stderr)
        return USAGE
    opts = _options(a)
    return of_training(train(training_report(opts), opts).status)


def _options(a, **fixed):
    """The training options the command line gave (`fixed` overrides some)."""
    from ..train.options import Options

    given = {k: v for k, v in (("strategy", a.strategy), ("precision", a.precision), ("stream", a.stream))
             if v is not None}
    return Options(**{"spec": a.spec, "epochs": a.epochs, "batch_size": a.batch_size, "data": a.data, "out": a.out,
                      "train_limit": a.train_limit, "val_limit": a.val_limit, "seed": a.seed, "overrides": a.set,
                      "jit_compile": a.jit_compile, "fast_layers": not a.keras_layers, **given, **fixed})


def _train_seeds(a) -> int:
    from ..spec.load import load
    from ..train.seeds import default_out, parse_seeds, train_seeds

    if a.seed is not None:
        print("sepspec train: give --seed K or --seeds K,K,..., not both", file=sys.stderr)
        return USAGE
    seeds = parse_seeds(a.seeds)
    out = a.out or default_out(load(a.spec).name)
    if a.stacked:
        return _stacked(a, seeds, out)
    args = [a.spec, *[x for flag, v in (("--epochs", a.epochs), ("--batch-size", a.batch_size), ("--data", a.data),
                                        ("--train-limit", a.train_limit), ("--val-limit", a.val_limit),
                                        ("--strategy", a.strategy), ("--precision", a.precision),
                                        ("--stream", a.stream)) if v is not None for x in (flag, str(v))],
            *[x for s in a.set for x in ("--set", s)], *(["--jit-compile"] if a.jit_compile else []),
            *(["--keras-layers"] if a.keras_layers else [])]
    return _told(train_seeds(args, seeds, out), out)


def _told(statuses: dict[int, int], out: str) -> int:
    """Each seed's end, one line each; the exit status: the first seed's that is not OK, else OK."""
    for k, rc in statuses.items():
        print(f"seed {k}: {'finished' if rc == OK else f'exit status {rc}'}; run {out}/seed{k}")
    return max(statuses.values(), key=lambda rc: rc != OK, default=OK)


def _stacked(a, seeds: list[int], out: str) -> int:
    from ..train.stacked import train_stacked
    from ..train.trainer import training_report

    opts = _options(a, out=None)
    return _told(_by_seed(train_stacked(training_report(opts), opts, seeds, out)), out)


def _by_seed(results) -> dict[int, int]:
    import os

    return {int(os.path.basename(r.run)[len("seed"):]): of_training(r.status) for r in results}


def _resume_seeds(a) -> int:
    """`--resume OUT` of seeds trained together: as they were started (`OUT/seeds.json`)."""
    from ..train.seeds import read_group, resume_seeds
    from ..train.stacked import resume_stacked

    if a.spec:
        print(f"sepspec train --resume {a.resume}: give no SPEC (the seeds' runs recorded theirs)", file=sys.stderr)
        return USAGE
    _, together = read_group(a.resume)
    if together:
        return _told(_by_seed(resume_stacked(a.resume, a.epochs, data=a.data)), a.resume)
    args = [x for flag, v in (("--epochs", a.epochs), ("--data", a.data)) if v is not None for x in (flag, str(v))]
    return _told(resume_seeds(a.resume, args), a.resume)


def cmd_evaluate(a) -> int:
    from ..deploy.evaluate import evaluate

    e = evaluate(a.target, a.data, a.tta, a.reference, a.runtime)
    note = f" ({e.tta} test-time augmentation)" if e.tta != "none" else ""
    print(f"{e.model}: test accuracy {100 * e.accuracy:.2f}% on {e.images:,} images{note}")
    for name, acc in e.per_class.items():
        print(f"  {name:<11} {100 * acc:6.2f}%")
    print("confusion matrix (rows: true class, columns: predicted):")
    print("            " + " ".join(f"{c[:5]:>5}" for c in e.per_class))
    for name, row in zip(e.per_class, e.confusion):
        print(f"  {name:<10}" + " ".join(f"{v:>5}" for v in row))
    if e.reference is not None:
        print(f"reference {e.reference}: test accuracy {100 * e.reference_accuracy:.2f}%; the exported file agrees "
              f"with it on {100 * e.agreement:.2f}% of the images ({100 * (e.accuracy - e.reference_accuracy):+.2f} "
              "points)")
    if e.runtime == "tflm":
        print(f"LiteRT's kernels on the same file: test accuracy {100 * e.litert_accuracy:.2f}%; TensorFlow Lite Micro "
              f"agrees with them on {100 * e.litert_agreement:.2f}% of the images")
        est, used = e.arena["estimate"], e.arena["tflm_activations"]
        if est is None:
            print(f"TensorFlow Lite Micro planned {used:,} bytes of activations (no spec here to check it against)")
        else:
            print(f"TensorFlow Lite Micro planned {used:,} bytes of activations; the static estimate: {est:,}"
                  + (" (equal)" if est == used else f" (DIFFERENT by {used - est:+,}: please report it)"))
    print("wrote " + " and ".join(e.written))
    return OK


def cmd_export(a) -> int:
    from ..deploy.export import export

    done = export(a.source, a.format, a.output, normalization=a.normalization, calibration=a.calibration,
                  data=a.data)
    info, parts = done.info, []
    if "buffer_bytes" in info:
        parts.append(f"weight buffers {info['buffer_bytes']:,} bytes, {info['ops']} ops")
    if "input" in info:
        parts.append(f"input {info['input']}, output {info['output']}")
    if "tflm" in info:
        t = info["tflm"]
        parts.append(f"tensor arena {t['arena']['bytes']:,} bytes ({t['arena']['activations']:,} activations + "
                     f"{t['arena']['persistent']:,} TFLM), {len(t['ops'])} operators to register")
        print(f"wrote {done.path}/ (tflm: model_data.cc, model_data.h, model_settings.h, model_ops.h and "
              f"model.tflite, {info['bytes']:,} bytes)" + "".join(f"; {p}" for p in parts))
        return OK
    print(f"wrote {done.path} ({done.format}, {info['bytes']:,} bytes)" + "".join(f"; {p}" for p in parts))
    return OK


def cmd_runs(a) -> int:
    from ..train.runlist import runs

    found = runs(a.dir)
    if not found:
        print(f"no runs under {a.dir}")
        return OK
    print(f"{'run':<44} {'spec':<12} {'params':>8} {'status':<11} {'epochs':>7} {'best val':>9} {'at':>4} "
          f"{'val on':<9} {'test':>7} {'s/epoch':>8}  settings")
    for r in found:
        if r.damaged:
            print(f"{r.path:<44} (damaged metrics.json)")
            continue
        best = "-" if r.best_val_accuracy is None else f"{100 * r.best_val_accuracy:.2f}%"
        test = "-" if r.test_accuracy is None else f"{100 * r.test_accuracy:.2f}%"
        spe = "-" if not r.seconds_per_epoch else f"{r.seconds_per_epoch:.1f}"
        print(f"{r.path:<44} {r.spec:<12} {r.params:>8,} {r.status:<11} {r.epochs_completed:>3}/{r.epochs_planned:<3} "
              f"{best:>9} {r.best_epoch or '-':>4} {r.validation:<9} {test:>7} {spe:>8}  {r.settings}")
    return OK


def cmd_bench(a) -> int:
    from ..train.bench import bench

    b = bench(a.spec, steps=a.steps, batch_size=a.batch_size, data=a.data, repeats=a.repeats,
              precision=a.precision, steps_per_execution=a.steps_per_execution, jit_compile=a.jit_compile,
              stacked=a.stacked)
    med = b.medians
    if a.format == "json":
        print(json.dumps({**asdict(b), "medians": med, "ratio": b.ratio}))
        return OK
    for note in b.notes:
        print(f"note: {note}")
    print(f"{b.spec}: batch {b.batch}, {b.steps} steps x {b.repeats} interleaved repeats, {b.device}, backend "
          f"{b.backend}, precision {b.precision}, {b.steps_per_execution} step(s) per call, compiled: "
          f"{'yes' if b.jit_compile else 'no'}, data: {b.data}, "
          f"augmentation: {b.augmentation}, fused batch norms: {b.fused.get('batch_norm', 0)}, dropouts with integer "
          f"masks: {b.fused.get('dropout', 0)}")
    for key in ("trainer", "streamed", "stacked", "step", "plain", "tuned"):
        if key in b.runs:
            v = b.runs[key]
            print(f"{b.label(key):<58} median {med[key]:>7,.0f} images/s  [{min(v):,.0f}-{max(v):,.0f}]  "
                  f"runs {[round(u) for u in v]}")
        if key == "streamed" and key in b.runs:
            print(f"ratio streaming / in memory: {med['streamed'] / med['trainer']:.2f}")
        if key == "stacked" and key in b.runs:
            print(f"ratio {b.stacked} seeds stacked / one seed: {med['stacked'] / med['trainer']:.2f} (images per "
                  f"second of all seeds; {b.stacked} would mean {b.stacked} seeds in the time of one)")
    best = {k: max(v) for k, v in b.runs.items()}
    print(f"ratio trainer / plain fit: {b.ratio:.2f} (target >= 1.5); step alone / plain: "
          f"{med['step'] / med['plain']:.2f}; best runs: {best['trainer'] / best['plain']:.2f} and "
          f"{best['step'] / best['plain']:.2f}")
    if "tuned" in b.runs:
        print(f"ratio trainer / the autotuned plain fit: {med['trainer'] / med['tuned']:.2f}")
    return OK
