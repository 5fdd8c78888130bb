"""A real S3-compatible server on loopback for the object-storage tests: SeaweedFS (Apache-2.0).

Why a real server and not a mock: the lake's behaviour on object storage (S3A's multipart uploads,
conditional PUTs for the lock, listing semantics, delta-rs's own client) is exactly what a mock would
assume away. The binary is built from the Go module proxy once per machine by
tests/tools/build_seaweedfs.sh (about 7 minutes on 2 idle cores) and cached in the git-ignored .tools/.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "tests" / "tools" / "build_seaweedfs.sh"
ACCESS_KEY, SECRET_KEY, REGION = "drgtest", "drgtest-secret-key", "us-east-1"


def weed_binary() -> str | None:
    """The built server (building it when Go is available); None when it cannot be had here."""
    if os.environ.get("WEED_BIN"):
        return os.environ["WEED_BIN"]
    if shutil.which("go") is None and not list((REPO / ".tools").glob("weed-*")):
        return None
    proc = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"building SeaweedFS failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def _free_pair() -> int:
    """A port p with p + 10000 free too (SeaweedFS puts each service's gRPC port there)."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for SeaweedFS")


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT

    @property
    def hostport(self) -> str:
        return self.endpoint.removeprefix("http://")

    def hadoop_conf(self) -> dict[str, str]:
        """What Spark needs to reach the server through S3A (spark.hadoop.fs.s3a.*)."""
        return {
            "spark.hadoop.fs.s3a.endpoint": self.endpoint,
            "spark.hadoop.fs.s3a.endpoint.region": REGION,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            "spark.hadoop.fs.s3a.access.key": ACCESS_KEY,
            "spark.hadoop.fs.s3a.secret.key": SECRET_KEY,
            "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        }

    def storage_options(self) -> dict[str, str]:
        """The same, for delta-rs (jobs.releases.read_release)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true"}

    def filesystem(self):
        """A pyarrow S3 filesystem on the server (bucket creation, placing and reading side files)."""
        from pyarrow import fs

        return fs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, scheme="http",
                               endpoint_override=self.hostport, allow_bucket_creation=True,
                               connect_timeout=60, request_timeout=120)  # a loaded 2-core machine is slow


@contextmanager
def seaweedfs(binary: str, work: Path) -> Iterator[S3Server]:
    """`weed server -s3` on 127.0.0.1 with one identity, stopped afterwards whatever happens."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "drg", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: _free_pair() for name in ("master", "volume", "filer", "s3")}
    args = [binary, "server", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
            "-master.volumeSizeLimitMB=64", "-volume.max=50", "-s3", f"-s3.port={ports['s3']}",
            f"-s3.config={config}"]
    (work / "data").mkdir(exist_ok=True)
    log = open(work / "weed.log", "wb")  # noqa: SIM115  # kept open for the server's lifetime
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}")
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited ({proc.returncode}); see {work / 'weed.log'}")
            try:
                urllib.request.urlopen(server.endpoint, timeout=5)
                break
            except urllib.error.HTTPError:  # it answers (403 without credentials): up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"SeaweedFS S3 not answering after 180 s; see {work / 'weed.log'}") from None
                time.sleep(1)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()
