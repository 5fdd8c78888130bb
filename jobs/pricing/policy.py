"""The pricing policy: every number a payer decides, in one YAML file validated at load.

Why a file and not code: weights, rates and outlier rules are policy, set per region or scheme and
changed by decision, not by release. A typo in a policy must stop the run with one line naming the field,
never price a year of cases with a silently defaulted parameter. The shipped default
(`jobs/policies/chs-default.yaml`, package data: found from a wheel or a cluster's zip too) documents
where each default comes from. A policy is a file path or the name of a shipped one (`chs-default`).
"""

from __future__ import annotations

import re
from datetime import date
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobs.config import builtin_names, locate
from jobs.errors import PipelineError

BUILTIN_POLICIES = "jobs.policies"
DEFAULT_POLICY = "chs-default"
FUNDS = ("employee", "resident")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferencePeriod(_Strict):
    """Discharge dates whose cases set the weights and rates (inclusive; null = open).

    `last_years`: only the last N discharge years, counted back from the year of the latest discharge
    in gold.grouped_cases (3: 2024-2026 once a 2026 case has arrived), so a lake that keeps more history
    than the base period does not price it, and pricing reads only that window's files.
    """

    start: date | None = None
    end: date | None = None
    last_years: int | None = Field(None, ge=1)


class Recalibration(_Strict):
    """How often weights and rates are re-estimated: every night, or once per payment period.

    `night`: every night re-estimates over the reference period, so each release is a new calibration
    and every case is priced with it. `month` / `quarter` / `year`: the weights in force for a payment
    period are calibrated on the batches delivered before the period began (the lake's first delivery
    for its first period); nights within the period only settle their new cases at those weights and
    rates, and publish no new release. A batch's delivery date is its batch id when that starts with a
    date (YYYY-MM-DD, as folders of nightly deliveries are named), else the day it was ingested, so a
    recompute from the same batch folders reaches the same calibration.
    """

    every: Literal["night", "month", "quarter", "year"] = "night"  # absent: as policies written before it


class Trim(_Strict):
    """Within-DRG trimming on ln(cost).

    `robust`: fences at median +/- k x sigma, sigma from the interquartile range (IQR / 1.349), so gross
    outliers cannot widen their own fences (a plain mean +/- 3 SD trim can be masked by them).
    `sd`: the classic mean +/- k SD of ln cost. `percentile`: keep [lower, upper] percentiles.
    `tail_correction`: divide the inlier mean by the share of a lognormal's mean kept between the fences,
    so trimming does not bias DRGs with wide cost spread downwards relative to narrow ones.
    """

    method: Literal["robust", "sd", "percentile", "none"] = "robust"
    k: float = Field(3.0, gt=0)
    lower: float = Field(0.025, ge=0, lt=0.5)
    upper: float = Field(0.975, gt=0.5, le=1)
    min_cases: int = Field(10, ge=1)  # DRGs with fewer cases are not trimmed
    tail_correction: bool = True


class LowVolume(_Strict):
    """DRGs with fewer than `min_cases` inliers borrow strength and are flagged `low_volume`.

    `shrink_to_adrg`: cost = w x own + (1 - w) x ADRG cost, w = n / (n + prior_cases) (empirical-Bayes
    form with a fixed pseudo-count). `previous`: keep the previous weight when known, else shrink.
    """

    min_cases: int = Field(10, ge=1)
    method: Literal["shrink_to_adrg", "previous"] = "shrink_to_adrg"
    prior_cases: float = Field(10.0, gt=0)


class ChangeCap(_Strict):
    """Limits on year-to-year weight change vs. previous weights (null = no limit on that side)."""

    max_decrease: float | None = Field(None, ge=0, lt=1)
    max_increase: float | None = Field(None, ge=0)


class PreviousWeights(_Strict):
    """Previous weights when `published.drg_weights` is absent: CSV with `drg` and `weight` (or `rw`).

    A relative `csv` path is resolved against the policy file's folder. `year` filters a `year` column.
    """

    csv: str | None = None
    year: int | None = None


class Budget(_Strict):
    """A fund's budget: a fixed `amount` (yuan) or `share_of_cost` x the priced cases' actual cost."""

    fund: Literal["employee", "resident"]
    region_code: str | None = None  # null: applies to every region without its own entry
    amount: float | None = Field(None, gt=0)
    share_of_cost: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_basis(self) -> Budget:
        if (self.amount is None) == (self.share_of_cost is None):
            raise ValueError(f"budget for {self.fund}: give exactly one of amount or share_of_cost")
        return self


class HospitalCoefficients(_Strict):
    """Hospital coefficient = by_hospital, else by_level of the hospital's level, else default."""

    default: float = Field(1.0, gt=0)
    levels: dict[str, str] = {}  # hospital_id -> level
    by_level: dict[str, float] = {}
    by_hospital: dict[str, float] = {}

    @model_validator(mode="after")
    def _levels_known(self) -> HospitalCoefficients:
        unknown = sorted(set(self.levels.values()) - set(self.by_level))
        if unknown:
            raise ValueError(f"hospital levels without a coefficient in by_level: {', '.join(unknown)}")
        if any(v <= 0 for v in [*self.by_level.values(), *self.by_hospital.values()]):
            raise ValueError("hospital coefficients must be > 0")
        return self

    def coefficient(self, hospital_id: str) -> float:
        if hospital_id in self.by_hospital:
            return self.by_hospital[hospital_id]
        if hospital_id in self.levels:
            return self.by_level[self.levels[hospital_id]]
        return self.default


class HighBand(_Strict):
    """High outlier if cost > multiplier x DRG mean cost, for DRGs with RW <= rw_max (null: above all)."""

    rw_max: float | None = Field(None, gt=0)
    multiplier: float = Field(gt=1)


class Outliers(_Strict):
    """High/low cost cases and how they are paid (in payment units, later x base rate).

    normal: RW x coef. high: RW x coef + high_pay_ratio x RW x (cost / DRG mean - threshold multiplier).
    low: RW x cost / DRG mean (paid by cost, capped at the normal payment). The DRG mean is the weight's
    (tail-corrected, trimmed) mean cost.
    """

    high_bands: list[HighBand] = Field(min_length=1)
    low_multiplier: float = Field(0.4, gt=0, lt=1)
    high_pay_ratio: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _bands_ordered(self) -> Outliers:
        bounds = [b.rw_max for b in self.high_bands]
        if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
            raise ValueError("high_bands: only the last band may (and must) have rw_max null")
        if bounds[:-1] != sorted(bounds[:-1]):
            raise ValueError("high_bands: rw_max must increase")
        return self


class Policy(_Strict):
    name: str
    version: str
    description: str = ""
    regions: list[str] | None = None  # region codes priced under this policy (null: all)
    reference_period: ReferencePeriod = ReferencePeriod()
    recalibration: Recalibration = Recalibration()
    cost_basis: Literal["total_cost"] = "total_cost"
    trim: Trim = Trim()
    low_volume: LowVolume = LowVolume()
    normalisation_target: float = Field(1.0, gt=0)
    change_cap: ChangeCap = ChangeCap()
    previous_weights: PreviousWeights = PreviousWeights()
    budgets: list[Budget] = Field(min_length=1)
    hospital_coefficients: HospitalCoefficients = HospitalCoefficients()
    outliers: Outliers
    ci_level: float = Field(0.95, gt=0, lt=1)
    source_dir: str = ""  # set at load: folder of the policy file, for relative paths

    @model_validator(mode="after")
    def _unique_budgets(self) -> Policy:
        keys = [(b.fund, b.region_code) for b in self.budgets]
        if len(keys) != len(set(keys)):
            raise ValueError("budgets: a (fund, region_code) pair is listed twice")
        return self

    def previous_csv_path(self) -> Path | None:
        if not self.previous_weights.csv:
            return None
        path = Path(self.previous_weights.csv)
        return path if path.is_absolute() else Path(self.source_dir) / path


def with_schedule(folder: Path, every: str, policy: str | None = None) -> str:
    """A copy of a policy file (default: the shipped one) that recalibrates `every` night, month, quarter
    or year, written to `folder`: a rehearsal of another schedule, a benchmark, a test. The copy keeps
    the original's comments; its path is returned."""
    source = locate(policy or DEFAULT_POLICY, BUILTIN_POLICIES, ".yaml")
    text, n = re.subn(r"(?m)^(\s*every:\s*)\w+", rf"\g<1>{every}", source.read_text(encoding="utf-8"), count=1)
    if not n:
        text += f"\nrecalibration:\n  every: {every}\n"
    path = Path(folder) / f"{Path(str(source)).stem}-{every}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_policy(path: str | Path | Traversable | None = None) -> Policy:
    """Load and validate a policy file or shipped policy by name (default: the CHS-style `chs-default`)."""
    path = locate(path or DEFAULT_POLICY, BUILTIN_POLICIES, ".yaml")
    if not path.is_file():
        raise PipelineError(
            f"policy file not found: {path} (shipped policies: {', '.join(builtin_names(BUILTIN_POLICIES, '.yaml'))})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise PipelineError(f"policy {path}: expected a YAML mapping at the top level")
        # a user's file resolves relative paths (previous_weights.csv) from its folder; shipped ones have none
        data["source_dir"] = str(path.resolve().parent) if isinstance(path, Path) else ""
        return Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise PipelineError(f"policy {path}: {where}: {err['msg']}") from exc
    except yaml.YAMLError as exc:
        raise PipelineError(f"policy {path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
