"""A Spark standalone cluster on 127.0.0.1 for tests: one master and N one-core workers started with
pyspark's own `bin/spark-class`, stopped afterwards whatever happens.

Why real processes: a cluster differs from `local[*]` exactly where the project can break (code and
package data shipped to executors through --py-files, no shared driver JVM, executors in other
processes), and only a real master and real workers exercise that.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Cluster:
    url: str  # spark://127.0.0.1:PORT
    webui: str  # http://127.0.0.1:PORT

    def state(self) -> dict:
        """The master's JSON status (workers, running and completed applications)."""
        with urllib.request.urlopen(f"{self.webui}/json", timeout=10) as response:
            return json.load(response)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process we started, and its children (a worker's executors), by its own process group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    else:  # the JVM is gone; executors it launched share its process group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait(what: str, check, timeout: float, procs: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"standalone cluster: a daemon exited while waiting for {what}; logs in {logs}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"standalone cluster: {what} not ready after {timeout:.0f} s; logs in {logs}")


@contextmanager
def standalone_cluster(work: Path, workers: int = 2, cores: int = 1, memory: str = "1g") -> Iterator[Cluster]:
    """Start a master and `workers` workers on 127.0.0.1 (logs and work dirs under `work`)."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(work), "SPARK_WORKER_DIR": str(work / "worker")}
    env.pop("PYTHONPATH", None)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, webui_port = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{webui_port}")
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = open(work / f"{name}.log", "wb")  # noqa: SIM115  # kept open for the daemon's lifetime
        procs.append(subprocess.Popen([spark_class, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True))

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(webui_port))
        _wait("the master", lambda: cluster.state().get("status") == "ALIVE", 180, procs, work)
        for i in range(workers):
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                  "--cores", str(cores), "--memory", memory, "--webui-port", str(free_port()),
                  "--work-dir", str(work / f"worker{i}"), cluster.url)
        _wait(f"{workers} workers", lambda: sum(w["state"] == "ALIVE" for w in cluster.state()["workers"]) == workers,
              180, procs, work)
        yield cluster
    finally:
        for proc in reversed(procs):
            _stop(proc)
