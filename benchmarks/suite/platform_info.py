"""The machine a benchmark ran on: CPU, architecture, cores, memory, Python and package versions.

Stdlib only and TensorFlow-free, so it runs on a Pi with the edge set alone. Package versions
come from installed metadata, never from importing the package (importing TensorFlow to read
its version would defeat the edge suite).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# Distributions whose versions explain a figure (absent ones are reported as None).
PACKAGES = (
    "pifed",
    "numpy",
    "tflite-runtime",
    "ai-edge-litert",
    "tensorflow",
    "tensorflow-cpu-aws",
    "keras",
    "tensorflow-federated",
    "grpcio",
    "protobuf",
    "pycryptodome",
    "matplotlib",
)

# ARM "CPU part" codes in /proc/cpuinfo -> core names (Raspberry Pi 3/4/5 and friends).
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0b": "Cortex-A76",
}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_field(text: str, key: str) -> str | None:
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key.lower():
            return value.strip()
    return None


def cpu_model() -> str:
    """A human name for the CPU, so figures from a Pi 4 and an x86 box are told apart.

    x86 has ``model name`` in /proc/cpuinfo; a Pi has no such line, so we use the board model
    (``/proc/device-tree/model``) and the core type from ``CPU part``.
    """
    info = _read("/proc/cpuinfo")
    name = _cpuinfo_field(info, "model name")
    if name:
        return name
    board = _read("/proc/device-tree/model").rstrip("\x00").strip() or _cpuinfo_field(info, "Model")
    part = _cpuinfo_field(info, "CPU part")
    core = _ARM_PARTS.get(part or "", f"CPU part {part}" if part else "")
    text = ", ".join(x for x in (board, core) if x)
    return text or platform.processor() or platform.machine() or "unknown"


def _mem_total_bytes() -> int | None:
    value = _cpuinfo_field(_read("/proc/meminfo"), "MemTotal")
    if value and value.endswith("kB"):
        return int(value.split()[0]) * 1024
    return None


def _os_name() -> str:
    pretty = _cpuinfo_field(_read("/etc/os-release").replace("=", ":"), "PRETTY_NAME")
    return pretty.strip('"') if pretty else platform.platform()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions from metadata (no imports); None for what is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit(repo: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def platform_record() -> dict[str, Any]:
    """Everything needed to tell whose figures these are and whether the machine was busy.

    Load averages are recorded because this suite is meant to run on shared machines: a high
    load explains noisy absolute times (the ratios stay meaningful, being measured side by side).
    """
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": cpu_model(),
        "architecture": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_bytes": _mem_total_bytes(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "packages": package_versions(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git": _git_commit(Path(__file__).resolve().parents[2]),
        "utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(platform_record(), indent=2))
