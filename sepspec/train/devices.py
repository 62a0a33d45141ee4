"""Where training runs: the Keras backend and the devices it sees, the distribution strategy, and the precision.

Imported by the trainer and `sepspec bench` only when they run. TensorFlow is imported only on its own backend:
on JAX or PyTorch (KERAS_BACKEND) the trainer runs without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from ..diagnostics import UserError


class DeviceError(UserError):
    """A bad TF_CONFIG or device setting, in one line."""


def split_cpu(tf) -> None:
    """SEPSPEC_CPU_DEVICES=N: N logical CPU devices (to run MirroredStrategy on a machine without GPUs);
    SEPSPEC_THREADS=N: at most N threads per op (a sweep's workers divide the machine's cores between them)."""
    threads = int(os.environ.get("SEPSPEC_THREADS", "0") or 0)
    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # already initialised (a later trial in the same worker): set then
            pass
    n = int(os.environ.get("SEPSPEC_CPU_DEVICES", "0") or 0)
    if n > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def parse_tf_config(text: str | None) -> dict:
    """Check TF_CONFIG for --strategy multiworker: {"cluster": {"worker": [...]}, "task": {...}}."""
    if not text:
        raise DeviceError("--strategy multiworker needs TF_CONFIG (JSON with 'cluster' and 'task'); it is not set")
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise DeviceError(f"TF_CONFIG is not valid JSON: {e}") from None
    cluster, task = (cfg.get("cluster"), cfg.get("task")) if isinstance(cfg, dict) else (None, None)
    if not isinstance(cluster, dict) or not cluster.get("worker"):
        raise DeviceError("TF_CONFIG: 'cluster' must list at least one 'worker' address (host:port)")
    for role, addrs in cluster.items():
        if not isinstance(addrs, list) or not all(isinstance(a, str) and ":" in a for a in addrs):
            raise DeviceError(f"TF_CONFIG: cluster.{role} must be a list of 'host:port' strings")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise DeviceError(f"TF_CONFIG: task.type must be one of {sorted(cluster)}")
    idx = task.get("index")
    if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(cluster[task["type"]]):
        raise DeviceError(f"TF_CONFIG: task.index must be 0..{len(cluster[task['type']]) - 1}")
    return cfg


def compilation_cache(keras) -> str | None:
    """On JAX, XLA's compiled steps kept on disk between runs (JAX's persistent compilation cache), so that a
    second run of a spec on the same machine skips most of its start-up: `$JAX_COMPILATION_CACHE_DIR` if set,
    else `$SEPSPEC_JAX_CACHE`, else ~/.cache/sepspec/jax; `SEPSPEC_JAX_CACHE=off` turns it off. The folder, or
    None where there is none.

    Every compile is kept, not only those over JAX's default second: a small network's start-up is dozens of
    small compiles (each weight's initialiser, the steps), which together cost more than the one big one
    (`specs/base.yaml`, one epoch of 64 images on 2 CPU cores: 16 s cold; warm 8 s, 11.5 s with JAX's threshold).
    `$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` still sets the threshold where given."""
    if keras.backend.backend() != "jax":
        return None
    path = (os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.environ.get("SEPSPEC_JAX_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "sepspec", "jax"))
    if path == "off":
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


def backend(keras) -> str:
    return keras.backend.backend()


def tensorflow(keras):
    """TensorFlow when it is the backend, else None (it may not even be installed)."""
    if backend(keras) != "tensorflow":
        return None
    import tensorflow as tf

    return tf


class _OneDevice:
    """What the trainer needs of a strategy, on backends without tf.distribute."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


# Keras's own distribution API (keras.distribution) has a backend implementation for JAX only in Keras 3.15
DATA_PARALLEL = ("jax",)
# keras.distribution.initialize() reads these for a job over several hosts (one process each)
MULTI_HOST = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")


class _DataParallel:
    """`--strategy data`: Keras's own `keras.distribution.DataParallel`: every step's batch split over all the devices
    the backend sees (GPUs; on a CPU, XLA's forced host devices), the weights replicated, one compiled program, so the
    batch norms see the global batch and the losses are those of one device. Over several hosts, set Keras's
    KERAS_DISTRIBUTION_* variables (`keras.distribution.initialize()` reads them) on every host."""

    def __init__(self, keras):
        if all(os.environ.get(v) for v in MULTI_HOST):
            keras.distribution.initialize()
        self.devices = keras.distribution.list_devices()
        self.num_replicas_in_sync = len(self.devices)
        self.distribution = keras.distribution.DataParallel(devices=self.devices)

    def scope(self):
        return self.distribution.scope()


def check_tf_config(name: str) -> None:
    """`--strategy multiworker`'s TF_CONFIG, read before TensorFlow starts (a new run's and a resumed one's)."""
    if name == "multiworker":
        parse_tf_config(os.environ.get("TF_CONFIG"))


def check_strategy(keras, name: str, batch_size: int | None = None) -> None:
    """Refuse a strategy this backend does not have, before anything is written."""
    b = backend(keras)
    if name == "data":
        if b not in DATA_PARALLEL:
            raise DeviceError(f"--strategy data is Keras's keras.distribution, which Keras {keras.__version__} "
                              f"implements on {', '.join(DATA_PARALLEL)} only; the backend here is {b} "
                              "(KERAS_BACKEND): use KERAS_BACKEND=jax, or --strategy mirrored on TensorFlow")
        n = len(keras.distribution.list_devices())
        if batch_size is not None and batch_size % n:
            raise DeviceError(f"--strategy data splits each batch over {n} devices: the batch size {batch_size} "
                              f"must be a multiple of {n}")
        return
    if name != "default" and b != "tensorflow":
        raise DeviceError(f"--strategy {name} is TensorFlow's tf.distribute; the Keras backend here is "
                          f"{b} (KERAS_BACKEND): use --strategy default or data (keras.distribution), or "
                          f"KERAS_BACKEND=tensorflow")


def check_shares(keras, images: int, batch: int) -> None:
    """`--strategy data` splits every batch over the devices, and Keras's JAX sharding needs each batch, the last
    partial one too, to divide evenly: the training images' last batch must share, or the run is refused before
    anything is written. (Validation and the test split are scored in padded batches of the batch size.)"""
    n = len(keras.distribution.list_devices())
    rest = images % batch
    if rest % n:
        raise DeviceError(f"--strategy data splits each batch over {n} devices: the training images ({images:,} "
                          f"images in batches of {batch}) end in a batch of {rest}, which {n} devices cannot share; "
                          f"change the count (--train-limit, --val-limit, train.validation) by a few images")


def make_strategy(keras, name: str):
    """What the trainer builds its model in (`scope()`) and reports (`num_replicas_in_sync`). `data` also sets
    Keras's global distribution, which the fit and predict steps read; the trainer restores the previous one."""
    check_strategy(keras, name)
    if name == "data":
        strategy = _DataParallel(keras)
        keras.distribution.set_distribution(strategy.distribution)
        return strategy
    tf = tensorflow(keras)
    if tf is None:
        return _OneDevice()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.MultiWorkerMirroredStrategy()  # "multiworker" (TF_CONFIG read: `check_tf_config`)


def gpus(keras) -> list[str]:
    """The names of the GPUs the backend sees."""
    b = backend(keras)
    if b == "tensorflow":
        tf = tensorflow(keras)
        return [tf.config.experimental.get_device_details(g).get("device_name", "unknown")
                for g in tf.config.list_physical_devices("GPU")]
    if b == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if b == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


# `--precision auto` on a GPU, per backend, as measured by benchmarks/gpu_check.sh (docs/gpu.md); float32 where
# nothing was measured (TensorFlow's float16 depthwise backprop was once 16x slower: tensorflow#41715)
AUTO_GPU_PRECISION = {"jax": "float32", "tensorflow": "float32", "torch": "float32"}


def set_precision(keras, precision: str) -> str:
    """Set Keras's global dtype policy for `precision` on this machine and return its name."""
    if precision == "auto":
        precision = AUTO_GPU_PRECISION.get(backend(keras), "float32") if gpus(keras) else "float32"
    keras.mixed_precision.set_global_policy(precision)
    return precision


def device_name(keras) -> str:
    names = gpus(keras)
    if names:
        return f"{len(names)} x GPU ({names[0]})"
    return f"CPU ({os.cpu_count()} cores)"


def versions(keras) -> dict:
    """The backend's version, for run.json/metrics.json."""
    b = backend(keras)
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(b)
    return {b: getattr(sys.modules.get(module) or __import__(module), "__version__", "?")} if module else {}
