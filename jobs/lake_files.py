"""Side files in the lake (release reports, GX Data Docs and results, the nightly lock) on any
filesystem Spark reaches: a local folder, or object storage (`s3a://`, `abfss://`, `gs://`) through
Hadoop's FileSystem in the driver's JVM.

Why Hadoop's FileSystem: the lake URI, its credentials and endpoint are already Spark's configuration
(`spark.hadoop.fs.s3a.*`); going through the same FileSystem means a side file lands wherever the Delta
tables land, with nothing configured twice and no second client library. Local lakes keep plain file
operations (fast, and the lock keeps its O_EXCL create and same-host pid check).

Why a conditional create for the lock: an object store has no O_EXCL, but S3 (and S3A since Hadoop
3.4.2) offers a PUT with `If-None-Match: *` that fails when the object exists, which is the same
atomic "create if absent"; HDFS, ABFS and GCS give it through `create(path, overwrite=false)`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from jobs import lake as lk
from jobs.errors import PipelineError

CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite"  # Hadoop 3.4.2+: PUT If-None-Match: *


def is_local(uri: str) -> bool:
    return lk.local_folder(uri) is not None


def _spark(spark: SparkSession | None) -> SparkSession:
    spark = spark or SparkSession.getActiveSession()
    if spark is None:
        raise PipelineError("a lake on object storage needs a Spark session to reach it")
    return spark


def _fs(spark: SparkSession | None, uri: str):
    spark = _spark(spark)
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def _java_class(exc: BaseException) -> str:
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    return java.getClass().getName() if java is not None else type(exc).__name__


def _already_exists(exc: BaseException) -> bool:
    """A failed exclusive create: the file exists (HDFS/ABFS/GCS), or S3 answered 412 to If-None-Match."""
    text = f"{_java_class(exc)} {exc}"
    return any(s in text for s in ("FileAlreadyExists", "412", "PreconditionFailed", "Precondition Failed"))


def _not_found(exc: BaseException) -> bool:
    return "FileNotFoundException" in f"{_java_class(exc)} {exc}"


def write_text(uri: str, text: str, spark: SparkSession | None = None) -> str:
    """Write (or replace) a text file; parent folders are created as needed. Returns `uri`."""
    local = lk.local_folder(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text, encoding="utf-8")
        return uri
    fs, path = _fs(spark, uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    return uri


def create_exclusive(uri: str, text: str, spark: SparkSession | None = None) -> bool:
    """Atomically create a file holding `text` if it does not exist; False when it already exists."""
    local = lk.local_folder(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    fs, path = _fs(spark, uri)
    try:
        if fs.getScheme() in ("s3a", "s3"):
            builder = fs.createFile(path).overwrite(False).must(CONDITIONAL_CREATE, True)
            out = builder.build()
        else:
            out = fs.create(path, False)
        out.write(bytearray(text.encode("utf-8")))
        out.close()  # S3A sends the conditional PUT here
    except Py4JJavaError as exc:
        if _already_exists(exc):
            return False
        raise PipelineError(f"cannot create {uri}: {str(exc).strip().splitlines()[0]}") from exc
    return True


def read_text(uri: str, spark: SparkSession | None = None) -> str | None:
    """A text file's content, or None when it does not exist."""
    local = lk.local_folder(uri)
    if local is not None:
        try:
            return local.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
    spark = _spark(spark)
    fs, path = _fs(spark, uri)
    try:
        stream = fs.open(path)
    except Py4JJavaError as exc:
        if _not_found(exc):
            return None
        raise
    try:
        return spark._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def modified(uri: str, spark: SparkSession | None = None) -> datetime | None:
    """A file's modification time (UTC), or None when it does not exist."""
    local = lk.local_folder(uri)
    if local is not None:
        try:
            return datetime.fromtimestamp(local.stat().st_mtime, UTC)
        except FileNotFoundError:
            return None
    fs, path = _fs(spark, uri)
    try:
        return datetime.fromtimestamp(fs.getFileStatus(path).getModificationTime() / 1000, UTC)
    except Py4JJavaError as exc:
        if _not_found(exc):
            return None
        raise


def delete(uri: str, spark: SparkSession | None = None) -> None:
    """Remove a file if it exists."""
    local = lk.local_folder(uri)
    if local is not None:
        local.unlink(missing_ok=True)
        return
    fs, path = _fs(spark, uri)
    fs.delete(path, False)


def exists(uri: str, spark: SparkSession | None = None) -> bool:
    local = lk.local_folder(uri)
    if local is not None:
        return local.exists()
    fs, path = _fs(spark, uri)
    return bool(fs.exists(path))


@contextmanager
def staged_folder(uri: str, spark: SparkSession | None = None) -> Iterator[Path]:
    """A local folder whose content ends up at `uri`: the folder itself for a local lake; for object
    storage a temporary folder uploaded (files replaced, others kept) when the block succeeds.

    For writers that only know local paths, such as Great Expectations' Data Docs site builder."""
    local = lk.local_folder(uri)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="drg-stage-") as tmp:
        yield Path(tmp)
        fs, target = _fs(spark, uri)
        spark = _spark(spark)
        for file in sorted(p for p in Path(tmp).rglob("*") if p.is_file()):
            dest = spark._jvm.org.apache.hadoop.fs.Path(target, file.relative_to(tmp).as_posix())
            fs.copyFromLocalFile(False, True, spark._jvm.org.apache.hadoop.fs.Path(file.as_uri()), dest)
