"""Where training runs: the devices TensorFlow sees, the distribution strategy, and the precision.

Imported by the trainer and `sepspec bench` only when they run (TensorFlow is passed in, not imported here).
"""

from __future__ import annotations

import json
import os

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
    cluster, task = cfg.get("cluster") if isinstance(cfg, dict) else None, cfg.get("task") if isinstance(cfg, dict) else None
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


def make_strategy(tf, name: str):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    parse_tf_config(os.environ.get("TF_CONFIG"))  # "multiworker": Options allows nothing else
    return tf.distribute.MultiWorkerMirroredStrategy()


def set_precision(keras, tf, precision: str) -> bool:
    """Set Keras's global dtype policy for `precision` on this machine; True when it is mixed_float16."""
    gpu = bool(tf.config.list_physical_devices("GPU"))
    mixed = precision == "mixed_float16" or (precision == "auto" and gpu)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return mixed


def device_name(tf) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{len(gpus)} x GPU ({details.get('device_name', 'unknown')})"
    return f"CPU ({os.cpu_count()} cores)"
