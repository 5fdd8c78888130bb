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
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

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


def run_suites(frames: dict[str, DataFrame], docs_dir: str, results_dir: str) -> list[Outcome]:
    """Validate each frame with the stored suite of the same name through a GX Checkpoint, then build
    the Data Docs of all of them.

    Writes the suite results as JSON to `results_dir/<suite>.json` and the Data Docs site to `docs_dir`.
    """
    preload().join()
    import great_expectations as gx

    context = _context(docs_dir)
    # persist=False: GX would otherwise cache each whole frame (every column of silver) before its
    # first metric; its bundled metric queries read only the columns they need.
    source = context.data_sources.add_spark(name="lake", persist=False)
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    for name, frame in frames.items():
        stored = load_suite(name)
        suite = context.suites.add(
            gx.ExpectationSuite(name=name, expectations=stored["expectations"], meta=stored.get("meta") or {})
        )
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)
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
        Path(results_dir, f"{name}.json").write_text(
            json.dumps(suite_result.to_json_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        outcomes += _outcomes(name, suite_result)
    context.build_data_docs(site_names=["lake"])  # once for all suites: each build re-renders the site
    return outcomes


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
