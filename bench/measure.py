"""What every benchmark records about where it ran and how much memory it took (Linux /proc)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def peak_rss_mib(pid: int | str) -> float:
    """High-water mark of resident memory (VmHWM) of a process, in MiB; `"self"` for this one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process so far (all its threads), in seconds: on a shared machine a
    run's CPU time moves far less with the load than its wall time does."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict:
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "memory_gib": round(int(mem.split()[1]) / 1024**2, 1), "cpu": cpu,
            "python": platform.python_version(), "master": os.environ.get("DRG_SPARK_MASTER", "local[*]")}
