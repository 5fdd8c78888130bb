"""A small definitions table as a hash table inside an expression, for lookups of array elements.

Why: a case's codes are arrays, and Spark joins rows, not array elements. Looking every code up with a
broadcast join needs an explode, and putting the case back together needs an aggregation keyed by the
case, i.e. a shuffle of every case (and its wide columns) for what is a handful of dictionary lookups.
A map constant looked up with `element_at` would do, but Spark scans a map's keys linearly.

So the table is split into buckets by `xxhash64` of its key: an array of small maps, one per bucket,
filled on the driver and embedded in the plan as one constant (`from_json` of a literal, evaluated
once when the table is built: see `_constant`). A lookup is then one hash, one array index and a couple of
key comparisons inside the case's own row: no explode, no join, no shuffle. Spark ships the constant
with each stage's task binary, once per executor; at the size of a definitions pack (tens of thousands
of codes, a few MB) that is what a broadcast would cost too. In a plan the constant prints as a short
reference (`_constant`); under Spark Connect it stays a `from_json` of its JSON text, so jobs/spark.py
and deploy/ bound how much of a plan Spark prints (spark.sql.maxPlanStringLength).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import xxhash
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.classic.column import Column as ClassicColumn
from pyspark.sql.utils import is_remote

KEYS_PER_BUCKET = 2  # average; a lookup compares about this many keys
SPARK_HASH_SEED = 42  # the seed of Spark's xxhash64()


@dataclass(frozen=True)
class HashedTable:
    """`lookup(key)` gives the value stored for `key`, or null (also for a null key)."""

    constant: Column  # array<map<key, value>>, bucket i at index i
    buckets: int

    def lookup(self, key: Column) -> Column:
        return F.try_element_at(F.get(self.constant, _bucket(key, self.buckets)), key)


def _bucket(key: Column, buckets: int) -> Column:
    return F.pmod(F.xxhash64(key), F.lit(buckets)).cast("int")


def distinct_non_null(values: Column, element_type: str, drop: tuple = ()) -> Column:
    """The distinct elements of `values` that are neither null nor in `drop`, first occurrences in order.

    Why not array_distinct + array_compact: array_compact is a lambda (a filter), which Spark evaluates
    interpreted, together with its argument; array_except is generated code and removes nulls too."""
    return F.array_except(values, F.array(*[F.lit(d) for d in drop], F.lit(None).cast(element_type)))


def let(value: Column, body) -> Column:
    """body(value) with `value` evaluated once: lambdas are interpreted, without common subexpressions,
    so a lookup used twice in a lambda's body would otherwise run twice."""
    return F.get(F.transform(F.array(value), body), 0)


def _json_value(value, data_type: T.DataType):
    """A Python value (tuples for structs) as from_json reads it back as `data_type`."""
    if value is None:
        return None
    if isinstance(data_type, T.StructType):
        return {f.name: _json_value(v, f.dataType) for f, v in zip(data_type.fields, value, strict=True)}
    if isinstance(data_type, T.ArrayType):
        return [_json_value(v, data_type.elementType) for v in value]
    return value


def _bucket_of(key: str, buckets: int) -> int:
    """The bucket Spark computes for `key`: its xxhash64 is XXH64 of the UTF-8 bytes, seed 42, signed."""
    h = xxhash.xxh64_intdigest(key.encode("utf-8"), seed=SPARK_HASH_SEED)
    return (h - (1 << 64) if h >= 1 << 63 else h) % buckets


def hashed_table(entries: dict[str, object], value_type: T.DataType) -> HashedTable:
    """The hash table of `entries` (code -> value of `value_type`, tuples for structs), built on the driver without a
    Spark job (tests/test_hashed.py checks that the buckets agree with Spark's own xxhash64)."""
    buckets = max(1, len(entries) // KEYS_PER_BUCKET)
    maps: list[dict] = [{} for _ in range(buckets)]
    for key, value in entries.items():
        maps[_bucket_of(key, buckets)][key] = _json_value(value, value_type)
    return HashedTable(_constant(maps, T.ArrayType(T.MapType(T.StringType(), value_type))), buckets)


def constant_array(values: list, element_type: T.DataType) -> Column:
    """`values` (tuples for structs, None allowed) as one array constant: a lookup by a dense integer
    (F.get(constant, i)) that needs neither a join nor a hash."""
    return _constant([_json_value(v, element_type) for v in values], T.ArrayType(element_type))


def _constant(data, data_type: T.DataType) -> Column:
    """JSON-ready `data` as a constant of `data_type`: from_json of a literal, evaluated once, here.

    Why not leave the folding to the optimizer: it folds every occurrence of the expression, in every
    query, into a copy of its own (a grouping plan uses some tables twice), and each task deserialises
    every copy. Folded here, one Literal object is shared by all uses and all queries.

    Why the binary form: Spark renders a query's plan as text several times while running it (the
    execution start event, each adaptive re-plan), and a folded value prints in full, element by element,
    at each occurrence: with the CHS-DRG 1.1 tables that was about half a second per grouping query. In
    Spark's binary array format (UnsafeArrayData, one block of bytes) the constant prints as a short
    reference, and a task deserialises one byte array instead of an object per element.

    Spark Connect has no handle on plan objects; there the optimizer folds the expression as before."""
    parsed = F.from_json(F.lit(json.dumps(data, ensure_ascii=False, separators=(",", ":"))), data_type)
    spark = SparkSession.getActiveSession()
    if spark is None or is_remote():
        return parsed
    jvm = spark._jvm
    folded = spark.range(1).select(parsed)._jdf.queryExecution().optimizedPlan().expressions().head().child()
    row = jvm.org.apache.spark.sql.catalyst.expressions.GenericInternalRow(1)
    row.update(0, folded.value())
    binary = _to_unsafe_row(spark, jvm.org.apache.spark.sql.types.StructType().add("v", folded.dataType()), row)
    literal = jvm.org.apache.spark.sql.catalyst.expressions.Literal(binary.getArray(0).copy(), folded.dataType())
    return ClassicColumn(jvm.org.apache.spark.sql.classic.ExpressionUtils.column(literal))


def _to_unsafe_row(spark: SparkSession, schema, row):
    """`row` (a JVM InternalRow of `schema`) in Spark's binary row format. The projection's class is
    generated at run time, so its `apply` is called through the public interface's method: py4j's own
    method lookup on the generated class fails."""
    jvm, gateway = spark._jvm, spark.sparkContext._gateway
    projection = jvm.org.apache.spark.sql.catalyst.expressions.UnsafeProjection.create(schema)
    interface = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.expressions.UnsafeProjection")
    param_types = gateway.new_array(jvm.java.lang.Class, 1)
    param_types[0] = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.InternalRow")
    args = gateway.new_array(jvm.java.lang.Object, 1)
    args[0] = row
    return interface.getMethod("apply", param_types).invoke(projection, args)
