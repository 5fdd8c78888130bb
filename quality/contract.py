"""The batch contract: Great Expectations suites (quality/suites/*.json) run on Spark DataFrames, Data
Docs for people, and `gate()` that stops the nightly run before pricing when the contract fails.

Why GX runs on the flagged table: the rules are evaluated once, in one pass (quality/flags.py); the
contract frame turns each case's failed_rules into one boolean column per rule, and every expectation is
an aggregate over those columns with result_format SUMMARY. GX bundles the aggregates of one domain into
a single Spark query, so the contract costs a scan of a narrow table, not one rescan of the silver data
per rule (and never COMPLETE results with unexpected-row indexes).

Why an ephemeral context: nothing about GX needs to persist except its outputs, which we write where
the lake keeps them: Data Docs under `<lake>/quality/data_docs/`, each suite's result JSON under
`<lake>/quality/gx/<scope>/`, and one row per expectation in `ops.quality_results`.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from jobs.errors import PipelineError
from quality.catalogue import Catalogue, load_suite

RESULT_FORMAT = "SUMMARY"


def rule_column(rule_id: str) -> str:
    """Contract column of a rule (GX column names avoid '-')."""
    return rule_id.replace("-", "_")


def contract_frame(case_quality: DataFrame, catalogue: Catalogue) -> DataFrame:
    """One boolean per rule (true = the case passes) plus priceable: what the case-quality suite reads."""
    return case_quality.select(
        *[(~F.array_contains("failed_rules", r.id)).alias(rule_column(r.id)) for r in catalogue.rules],
        "priceable",
    )


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, flattened for the gate, the report and ops.quality_results."""

    suite: str
    expectation: str
    column: str | None
    rule_id: str | None
    mostly: float | None
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed: str | None


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


@functools.cache
def preload() -> threading.Thread:
    """Import Great Expectations on a background thread (once per process) and return that thread.

    Why: the import is several seconds of pure Python. Started before the Spark work that precedes the
    contract, it overlaps with it (that work runs in the JVM, this interpreter just waits on it), so
    the import is off the critical path; `run_suites` joins the thread before it needs GX.
    """
    _quiet_gx()
    thread = threading.Thread(target=importlib.import_module, args=("great_expectations",), name="gx-import")
    thread.daemon = True
    thread.start()
    return thread


def _context(docs_dir: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.add_data_docs_site(
        "lake",
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _outcomes(suite_name: str, suite_result) -> list[Outcome]:
    out = []
    for r in suite_result.results:
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        res = r.result or {}
        observed = res.get("observed_value")
        out.append(Outcome(
            suite=suite_name,
            expectation=cfg.type,
            column=kwargs.get("column"),
            rule_id=(cfg.meta or {}).get("rule_id"),
            mostly=kwargs.get("mostly"),
            success=bool(r.success),
            element_count=res.get("element_count"),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=res.get("unexpected_percent"),
            observed=None if observed is None else str(observed),
        ))
    return out


class Contract:
    """The batch contract of one validation: suites run on one background thread, in the order they are
    submitted, and the Data Docs of all of them are built at the end.

    Why a thread: a suite's run is mostly Python (GX's metric planning, rendering, JSON), and the stage
    has Spark work to do meanwhile (flagging, writing, scoring), during which this interpreter only
    waits on the JVM. A suite is submitted as soon as its frame can be read, so GX's Python overlaps
    with that work; one thread keeps GX's context single-threaded. The thread inherits the caller's
    Spark job description, so GX's queries are labelled with the stage that ran them.

    Use as a context manager: `submit(name, frame)` per suite, then `outcomes()`.
    """

    def __init__(self, docs_dir: str, results_dir: str):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-contract")
        self._docs_dir = docs_dir
        self._results_dir = results_dir
        self._runs: list[Future] = []
        self._context = None
        self._source = None

    def __enter__(self) -> Contract:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, name: str, frame: DataFrame) -> None:
        """Validate `frame` with the stored suite `name` (quality/suites/<name>.json), in the background."""
        check = inheritable_thread_target(frame.sparkSession)(self._check)  # the caller's job description and tags
        self._runs.append(self._pool.submit(check, name, frame))

    def outcomes(self) -> list[Outcome]:
        """Every submitted suite's outcomes, in submission order, once the Data Docs are built.
        A suite that could not run raises its PipelineError here."""
        results = [run.result() for run in self._runs]
        self._pool.submit(self._build_docs).result()  # Python only, no Spark job
        return [o for outcomes in results for o in outcomes]

    def _open(self):
        if self._context is None:
            preload().join()
            self._context = _context(self._docs_dir)
            # persist=False: GX would otherwise cache each whole frame (every column of silver) before
            # its first metric; its bundled metric queries read only the columns they need.
            self._source = self._context.data_sources.add_spark(name="lake", persist=False)
            Path(self._results_dir).mkdir(parents=True, exist_ok=True)
        return self._context

    def _check(self, name: str, frame: DataFrame) -> list[Outcome]:
        import great_expectations as gx

        context = self._open()
        stored = load_suite(name)
        suite = context.suites.add(
            gx.ExpectationSuite(name=name, expectations=stored["expectations"], meta=stored.get("meta") or {})
        )
        batch = self._source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)
        validation = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"contract_{name}",
            validation_definitions=[validation],
            result_format={"result_format": RESULT_FORMAT, "partial_unexpected_count": 0},
        ))
        try:
            result = checkpoint.run(batch_parameters={"dataframe": frame})
        except Exception as exc:  # GX wraps Spark failures; report one line, keep the cause
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PipelineError(f"expectation suite {name}: validation could not run: {first}") from exc
        (suite_result,) = result.run_results.values()
        Path(self._results_dir, f"{name}.json").write_text(
            json.dumps(suite_result.to_json_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        return _outcomes(name, suite_result)

    def _build_docs(self) -> None:
        self._open().build_data_docs(site_names=["lake"])  # once for all suites: each build re-renders the site


def _describe(o: Outcome) -> str:
    what = o.rule_id or (f"{o.expectation}({o.column})" if o.column else o.expectation)
    if o.unexpected_percent is not None and o.mostly is not None:
        return f"{o.suite} {what}: {o.unexpected_percent:.2f}% of cases fail, allowed {100 * (1 - o.mostly):.2f}%"
    if o.unexpected_percent is not None:
        return f"{o.suite} {what}: {o.unexpected_percent:.2f}% of rows fail, allowed 0%"
    return f"{o.suite} {what}: observed {o.observed}"


def gate(outcomes: list[Outcome], docs_index: str | None = None) -> None:
    """Stop the run (PipelineError, one line) when any expectation of the batch contract failed."""
    failed = [o for o in outcomes if not o.success]
    if not failed:
        return
    shown = "; ".join(_describe(o) for o in failed[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    docs = f" (report: {docs_index})" if docs_index else ""
    raise PipelineError(
        f"batch contract failed, {len(failed)} of {len(outcomes)} expectations: {shown}{more}; "
        f"not pricing this batch{docs}"
    )


def outcome_rows(outcomes: list[Outcome]) -> list[dict]:
    return [asdict(o) for o in outcomes]
