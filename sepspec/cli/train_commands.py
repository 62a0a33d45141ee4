"""`sepspec train | evaluate | export | runs | bench`: argument parsing; the work is in `train` and `deploy`."""

from __future__ import annotations

import sys

from ..train import PRECISIONS, STRATEGIES, STREAMS, TTA


def add_commands(sub) -> None:
    s = sub.add_parser("train", help="train a spec on CIFAR-10 (or --resume a run)")
    s.add_argument("spec", nargs="?", metavar="SPEC")
    s.add_argument("--epochs", type=_positive)
    s.add_argument("--batch-size", type=_positive)
    s.add_argument("--data", metavar="PATH", help="cifar-10-python.tar.gz or its extracted folder")
    s.add_argument("--out", metavar="DIR", help="run directory (default runs/<spec name>/<timestamp>)")
    s.add_argument("--train-limit", type=_positive, metavar="N", help="train on the first N images")
    s.add_argument("--val-limit", type=_positive, metavar="N", help="validate on the first N images")
    s.add_argument("--seed", type=int, help="fixes weights, data order, augmentation and dropout (default: "
                   "train.seed, else 0)")
    s.add_argument("--resume", metavar="DIR", help="continue an interrupted run with its recorded settings (with "
                   "--epochs N: train it to N epochs; with --data PATH: the same data set, moved)")
    s.add_argument("--set", action="append", default=[], metavar="train.KEY=VALUE",
                   help="override a train: setting with a YAML value (repeatable)")
    s.add_argument("--strategy", choices=STRATEGIES, help="default (one device), mirrored, multiworker")
    s.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): float32 on CPU; on a GPU the measured best for the Keras backend "
                   "(docs/gpu.md)")
    s.add_argument("--jit-compile", action="store_true", help="compile the step with XLA (slow for depthwise "
                   "convolutions on CPU)")
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
    s.add_argument("--data", metavar="PATH")
    s.add_argument("--tta", choices=TTA, default="none", help="flip: average each image's and its mirror "
                   "image's probabilities; flip_shift: also each shifted by one pixel up-left and down-right (6 views)")
    s.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("export", help="a trained model as a LiteRT (float or int8), ONNX or SavedModel file")
    s.add_argument("source", metavar="RUN_DIR_OR_MODEL")
    s.add_argument("--format", required=True, choices=("litert", "litert-int8", "onnx", "saved_model"))
    s.add_argument("-o", "--output", required=True, metavar="FILE")
    s.add_argument("--normalization", metavar="RUN_DIR|none", help="for a .keras file: the run directory whose "
                   "per-channel normalisation goes into the graph (default none: the file takes normalised input)")
    s.add_argument("--calibration", type=_positive, default=300, metavar="N",
                   help="litert-int8: training images that calibrate the activation ranges (default 300)")
    s.add_argument("--data", metavar="PATH", help="litert-int8: where CIFAR-10 is (default: the run's recorded data)")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("runs", help="list runs with their spec, params, best accuracy and seconds per epoch")
    s.add_argument("dir", nargs="?", default="runs", metavar="DIR")
    s.set_defaults(fn=cmd_runs)

    s = sub.add_parser("bench", help="images/s of the trainer's step vs a plain model.fit on tensors")
    s.add_argument("spec", metavar="SPEC")
    s.add_argument("--steps", type=_positive, default=50)
    s.add_argument("--batch-size", type=_positive)
    s.add_argument("--data", metavar="PATH")
    s.add_argument("--precision", choices=PRECISIONS, default="auto", help="as for train (default auto)")
    s.add_argument("--repeats", type=_positive, default=3, help="interleaved timed repeats of each (default 3)")
    s.add_argument("--steps-per-execution", type=_positive, default=1, metavar="N",
                   help="training steps per compiled call (Keras's steps_per_execution; default 1)")
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
    from ..train.trainer import Options, resume, train, training_report

    if a.resume:
        fixed = [flag for flag, v in (("--set", a.set), ("--batch-size", a.batch_size), ("--out", a.out),
                                      ("--train-limit", a.train_limit), ("--val-limit", a.val_limit),
                                      ("--seed", a.seed), ("--strategy", a.strategy), ("--precision", a.precision),
                                      ("--jit-compile", a.jit_compile), ("--keras-layers", a.keras_layers),
                                      ("--stream", a.stream))
                 if v not in (None, False, [])]
        if fixed:
            print(f"sepspec train --resume DIR: {', '.join(fixed)} cannot be given: a run continues with the settings "
                  "it recorded (only --epochs N, to change its length, and --data PATH, where its data set is now)",
                  file=sys.stderr)
            return 2
        return resume(a.resume, a.epochs, data=a.data, spec_path=a.spec).exit_status
    if not a.spec:
        print("sepspec train: give a SPEC (or --resume DIR)", file=sys.stderr)
        return 2
    given = {k: v for k, v in (("strategy", a.strategy), ("precision", a.precision), ("stream", a.stream))
             if v is not None}
    opts = Options(spec=a.spec, epochs=a.epochs, batch_size=a.batch_size, data=a.data, out=a.out,
                   train_limit=a.train_limit, val_limit=a.val_limit, seed=a.seed, overrides=a.set,
                   jit_compile=a.jit_compile, fast_layers=not a.keras_layers, **given)
    return train(training_report(opts), opts).exit_status


def cmd_evaluate(a) -> int:
    from ..deploy.evaluate import evaluate

    return evaluate(a.target, a.data, a.tta, a.reference)


def cmd_export(a) -> int:
    from ..deploy.export import export

    return export(a.source, a.format, a.output, normalization=a.normalization, calibration=a.calibration,
                  data=a.data)


def cmd_runs(a) -> int:
    from ..train.rundir import list_runs

    return list_runs(a.dir)


def cmd_bench(a) -> int:
    from ..train.bench import bench

    return bench(a.spec, steps=a.steps, batch_size=a.batch_size, data=a.data, repeats=a.repeats,
                 precision=a.precision, steps_per_execution=a.steps_per_execution)
