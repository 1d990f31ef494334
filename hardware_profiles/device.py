"""The device fingerprint a latency table records: what the timings are only valid on."""

import os
import platform
from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class DeviceFingerprint:
    kind: str  # "cpu" or "cuda"
    name: str  # CPU model or GPU name
    threads: int  # torch intra-op threads the timings ran with (CPU); 0 on GPU
    torch_version: str
    dtype: str  # "float32", "bfloat16", ...
    runtime: str = "none"  # how the target's linears compute (targets.runtime: none, fp16)

    def to_dict(self) -> dict[str, str | int]:
        return asdict(self)

    def differences(self, other: "DeviceFingerprint") -> list[str]:
        """'field: ours vs theirs' for every field that differs (empty: same device)."""
        return [f"{name}: {value!r} vs {getattr(other, name)!r}"
                for name, value in asdict(self).items() if value != getattr(other, name)]


def cpu_model() -> str:
    # /proc/cpuinfo names the model on Linux; platform.processor() is often empty there.
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def current_device(device: torch.device | str, dtype: torch.dtype, threads: int,
                   runtime: str = "none") -> DeviceFingerprint:
    device = torch.device(device)
    dtype_name = str(dtype).removeprefix("torch.")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return DeviceFingerprint("cuda", name, 0, torch.__version__, dtype_name, runtime)
    return DeviceFingerprint("cpu", cpu_model(), threads, torch.__version__, dtype_name, runtime)


def default_threads() -> int:
    """The CPU threads a profile pins when the config leaves it open: the cores this process
    may use (what a deployment would run with)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def device_of(target: Any, threads: int) -> DeviceFingerprint:
    """The device fingerprint of `target` as it serves: where, in which precision and runtime."""
    return current_device(target.device, target.dtype, threads,
                          getattr(target, "quantize", "none"))
