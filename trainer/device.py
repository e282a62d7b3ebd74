"""What the run runs on: the backend, its version, the device, and the precision.

Everything here asks the active Keras backend, so that the trainer reports and decides
the same way on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import platform
from functools import cache

import keras


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


@cache
def accelerator() -> tuple[str, str] | None:
    """(kind, name) of the first accelerator the backend sees, e.g. ("gpu", "NVIDIA H200")."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return "gpu", str(details.get("device_name", gpus[0].name))
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return ("tpu" if device.platform == "tpu" else "gpu"), str(device.device_kind)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "gpu", torch.cuda.get_device_name(0)
    return None


def device_name() -> str:
    """The accelerator's name, else the CPU's model name."""
    found = accelerator()
    return found[1] if found else _cpu_name()


def versions() -> dict[str, str]:
    """Keras, backend and backend versions, and the device, for the run's record."""
    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    try:
        backend_version = str(__import__(module).__version__)
    except (ImportError, AttributeError):
        backend_version = "unknown"
    return {
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
        "device": device_name(),
    }


def resolve_precision(precision: str) -> str:
    """The dtype policy for a `RunConfig.precision`.

    `auto` is mixed precision on an accelerator (`mixed_float16` on a GPU, as the
    post's Keras mixed precision; `mixed_bfloat16` on a TPU) and float32 on a CPU,
    where float16 is unusably slow (reference.md: 14.6 s for one step of depth 11).
    """
    if precision != "auto":
        return precision
    found = accelerator()
    if found is None:
        return "float32"
    return "mixed_bfloat16" if found[0] == "tpu" else "mixed_float16"
