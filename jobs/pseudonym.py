"""Keyed pseudonymisation of patient identifiers: HMAC-SHA256 computed on the executors, key never in a plan.

Why HMAC and not a plain hash: ID-card and insurance numbers are short and structured, so an unkeyed
SHA-256 is reversible by enumeration. With a secret key the hash is stable across nights (duplicates and
readmissions stay linkable) but cannot be inverted by anyone without the key.

Why the key is read on the executors and never passed in: anything a query holds as a constant is printed
in its plan, and plans reach EXPLAIN, the Spark UI's SQL tab, the event log and the History Server (the
previous version put `key ^ ipad` and `key ^ opad` there as binary literals, which XOR back to the key).
So the per-row expression names only *where* the key is: Spark's `reflect` calls the static
`HmacUtils.hmacSha256Hex(key, value)` of commons-codec (shipped with Spark), and its key argument is
itself a `reflect` call reading, on the executor, the JVM system property `drg.pseudonym.secret`, else
the environment variable DRG_PSEUDONYM_KEY. `reflect` is nondeterministic, so the optimizer never folds
the lookup into a literal. In local mode the executors are the driver's JVM, which `publish_key` gives
the property through py4j (no conf, no plan, no command line); a cluster's executors get the variable
from the secret store (deploy/README.md). No Python UDF: the JVM computes it per row.

A key id (the first 16 hex digits of HMAC(key, "drg-key-id"), which reveals nothing about the key) is
computed both in Python and through the executors' path: equal ids prove the executors hash with the
driver's key, and the id is stored with every batch so a rotated key never silently mixes two
pseudonym spaces in one lake (jobs/ingest.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from jobs.errors import PipelineError

KEY_ENV = "DRG_PSEUDONYM_KEY"
KEY_FILE_ENV = "DRG_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = Path.home() / ".config" / "drg" / "pseudonym.key"
# "secret" keeps the property redacted by Spark's *default* spark.redaction.regex in the UI's and the
# event log's environment listings, even in a session that does not carry our ENGINE_CONF.
KEY_PROPERTY = "drg.pseudonym.secret"
KEY_ID_MESSAGE = "drg-key-id"
_PROVEN: set[tuple[int, str]] = set()  # (session, key id) pairs whose executors passed the check
MISSING = (
    f"pseudonymisation key not available on a Spark executor: set {KEY_ENV} in the executors' environment "
    "(deploy/README.md, 'Pseudonymisation key')"
)


def load_key() -> bytes:
    """The secret: $DRG_PSEUDONYM_KEY, else the file named by $DRG_PSEUDONYM_KEY_FILE, else a per-user
    key file created on first use (fine for a demo; production sets the env var from a secret store).

    The JVM hashes the key's UTF-8 bytes, so a key must be non-empty UTF-8 text (our generated keys are
    hex); anything else is refused here rather than hashed differently on the two sides."""
    if os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV].encode("utf-8")
        where = f"${KEY_ENV}"
    else:
        path = Path(os.environ.get(KEY_FILE_ENV, DEFAULT_KEY_FILE))
        where = str(path)
        if not path.exists():
            if KEY_FILE_ENV in os.environ:
                raise PipelineError(f"pseudonymisation key file not found: {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
            print(f"drg: created a pseudonymisation key at {path}; set {KEY_ENV} in production", file=sys.stderr)
        key = path.read_bytes().strip()
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        raise PipelineError(f"pseudonymisation key from {where} is not UTF-8 text") from None
    if not key:
        raise PipelineError(f"pseudonymisation key from {where} is empty")
    return key


def key_id(key: bytes) -> str:
    """Public fingerprint of a key: equal ids mean equal pseudonyms; the id does not reveal the key."""
    return hmac.new(key, KEY_ID_MESSAGE.encode(), hashlib.sha256).hexdigest()[:16]


def _reflect(cls: str, method: str, *args: Column) -> Column:
    return F.reflect(F.lit(cls), F.lit(method), *args)


def executor_key() -> Column:
    """The key as the executor running the task sees it (null when it has none): its JVM property, else
    its environment, looked up only when the property is absent. Both lookups pass '' as the default
    because `reflect` turns a null result into the text 'null'."""
    prop = _reflect("java.lang.System", "getProperty", F.lit(KEY_PROPERTY), F.lit(""))
    env = _reflect("org.apache.commons.lang3.SystemUtils", "getEnvironmentVariable", F.lit(KEY_ENV), F.lit(""))
    return F.coalesce(F.nullif(prop, F.lit("")), F.nullif(env, F.lit("")))


def hmac_sha256(col: Column) -> Column:
    """Hex HMAC-SHA256 of a string column (null stays null), identical to Python's hmac module, keyed by
    the executor's key; a task whose executor has no key fails with MISSING instead of hashing with ''.

    The lookups and the reflective call cost about half a JVM CPU-second per 1M ids more than the old
    plan-literal expression (1.4 against 0.9, bench/bench_pseudonym.py); reading the environment only
    when the property is absent saved one lookup per row."""
    key = F.coalesce(executor_key(), F.raise_error(F.lit(MISSING)))
    return F.when(col.isNotNull(), _reflect("org.apache.commons.codec.digest.HmacUtils", "hmacSha256Hex", key, col))


def publish_key(spark: SparkSession, key: bytes) -> str:
    """Give this JVM's tasks the key and prove the executors hash with it; returns the key id.

    The property reaches the local-mode executors (they are this JVM) and no one else: it is never a
    Spark conf, so it is not shipped, shown or logged (Spark's environment listings redact it by name).
    Spark Connect has no JVM handle; there the executors' environment is the only source. The check runs
    one row per default-parallelism slot (x2) so that, on a cluster, the tasks spread over the executors;
    once per session and key (a nightly ingests many batches)."""
    expected = key_id(key)
    jvm = getattr(spark, "_jvm", None)
    if jvm is not None:
        jvm.java.lang.System.setProperty(KEY_PROPERTY, key.decode("utf-8"))
    if (id(spark), expected) in _PROVEN:
        return expected
    try:
        slots = 2 * spark.sparkContext.defaultParallelism
    except Exception:  # Spark Connect: no SparkContext
        slots = 8
    probe = spark.range(0, slots, 1, slots).select(F.substring(hmac_sha256(F.lit(KEY_ID_MESSAGE)), 1, 16).alias("id"))
    try:
        seen = {row.id for row in probe.distinct().collect()}
    except (Py4JJavaError, PySparkException) as exc:
        if MISSING in str(exc):
            raise PipelineError(MISSING) from None
        raise
    if seen != {expected}:
        others = ", ".join(sorted(seen - {expected}))
        raise PipelineError(
            f"Spark executors hash with a different pseudonymisation key (key id {others}) than the driver "
            f"(key id {expected}): give driver and executors the same {KEY_ENV}"
        )
    _PROVEN.add((id(spark), expected))
    return expected
