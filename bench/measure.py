"""What every benchmark records about where it ran, how long and how much memory it took (Linux /proc)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
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


def alternate(actions: dict[str, Callable[[], object]], repeats: int, jvm_pid: int) -> dict[str, dict]:
    """Run each action once to warm up (JIT, code generation, broadcasts), then `repeats` rounds of all of
    them in turn, so that a slow spell of a shared machine hits each alike. Per action: wall seconds and
    CPU seconds (the Spark JVM's plus this process's: the work done, which load from other processes
    inflates far less than the wall time) of every timed run, and the best of each."""
    for action in actions.values():
        action()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            cpu, wall = cpu_seconds(jvm_pid) + time.process_time(), time.perf_counter()
            action()
            runs[name].append((time.perf_counter() - wall, cpu_seconds(jvm_pid) + time.process_time() - cpu))
    return {name: {"s": round(min(w for w, _ in r), 2), "cpu_s": round(min(c for _, c in r), 2),
                   "runs_s": [round(w, 2) for w, _ in r], "runs_cpu_s": [round(c, 2) for _, c in r]}
            for name, r in runs.items()}


def spark_bench(app: str, definitions: str):
    """The Spark session (local[2] unless DRG_SPARK_MASTER says otherwise), the definitions pack, its
    grouper lookups (format 1 or 2) and the header every results file starts with."""
    from jobs.spark import get_spark

    os.environ.setdefault("DRG_SPARK_MASTER", "local[2]")
    spark = get_spark(app)
    pack, lookups = load_grouper(spark, definitions)
    header = {"master": spark.sparkContext.master, "cores": os.cpu_count(), "python": platform.python_version(),
              "spark": spark.version, "pack": f"{pack.name} {pack.version}",
              "load_average": os.getloadavg()}
    return spark, pack, lookups, header


def load_grouper(spark, definitions: str):
    """A pack and what group_cases needs to group with it (format-1 lookups or a compiled format-2 pack)."""
    from jobs.definitions import load_pack
    from jobs.group import Lookups
    from jobs.schemes.evaluate import compile_pack

    pack = load_pack(spark, definitions)
    return pack, compile_pack(pack) if getattr(pack, "format", 1) == 2 else Lookups(pack)


def jvm_pid(spark) -> int:
    return spark._jvm.java.lang.ProcessHandle.current().pid()
