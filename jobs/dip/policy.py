"""The DIP policy: every parameter the formula sheet leaves to the region, in one YAML validated at load.

Why a file: DIP is run per pooling region (统筹区) and each region sets its own threshold, base years,
weights, coefficients and outlier rules by decision. A typo must stop the run with one line naming the
field. The shipped default (`jobs/policies/dip-default.yaml`, package data) says where each default
comes from (../shared/methodology/dip.md; S1 = the national 3.0 spec draft). `--policy` takes a file or
a shipped policy's name, as `drg price` does.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.config import builtin_names, locate, parse_yaml_model
from jobs.errors import PipelineError
from jobs.pricing.policy import BUILTIN_POLICIES, HospitalCoefficients

DEFAULT_POLICY = "dip-default"
FUNDS = ("employee", "resident")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Trim(_Strict):
    """Optional per-packet trimming of case costs before the means (S1 specifies none: default off)."""

    enabled: bool = False
    lower: float = Field(0.025, ge=0, lt=0.5)
    upper: float = Field(0.975, gt=0.5, le=1)
    min_cases: int = Field(25, ge=1)  # packets with fewer base-period cases are not trimmed


class Subtypes(_Strict):
    """Auxiliary severity subtypes (辅助分型) of core packets: 重度 = MCC, 中度 = CC (the quality stage's
    severity). A subtype is adopted only where all three S1 triggers hold in the latest base year."""

    enabled: bool = True
    packet_cases_above: int = Field(15, ge=0)  # trigger 1: the packet's latest-year cases > N1
    subtype_cases_above: int = Field(5, ge=0)  # trigger 2: the subtype's latest-year cases > N2
    cv_drop_at_least: float = Field(0.2, ge=0, lt=1)  # trigger 3: relative CV drop from splitting it off


class Outliers(_Strict):
    """Cost outliers against the case's standard (base case score x year-start point value).

    low (ratio < low_ratio): case score = cost / point value. high (ratio > high_ratio): `ratio_minus_one`
    (v1.0 practice) case score = base case score x (ratio - 1), or `none` (the base score). 特例单议:
    cases above special_review_ratio, the highest ratios first, at most special_review_share of cases.
    """

    low_ratio: float = Field(0.5, gt=0, lt=1)
    high_ratio: float = Field(2.0, gt=1)
    high_formula: Literal["ratio_minus_one", "none"] = "ratio_minus_one"
    special_review_ratio: float = Field(2.0, gt=1)
    special_review_share: float = Field(0.005, ge=0, le=0.05)


class Fund(_Strict):
    """A fund's settlement: budget (yuan; null = budget neutral with the latest base year's cost x
    payment_ratio) and 医保支付比例 (the share of cost the fund pays; default 1.0 = whole cost)."""

    fund: Literal["employee", "resident"]
    budget: float | None = Field(None, gt=0)
    payment_ratio: float = Field(1.0, gt=0, le=1)


class DipPolicy(_Strict):
    name: str
    version: str
    description: str = ""
    regions: list[str] | None = None  # region codes pooled into this catalogue (null: every region)
    base_years: list[int] | None = None  # fixed base period; null = the latest n_base_years in the lake
    n_base_years: int = Field(3, ge=1)
    year_weights: list[float] = Field([1.0, 2.0, 7.0], min_length=1)  # oldest -> latest
    procedure_key: Literal["all", "main_plus_related"] = "all"
    related_cost_increase: float = Field(0.10, ge=0)  # main_plus_related: kept if it raises mean cost >= 10%
    threshold: int = Field(15, ge=1)  # core packet: at least this many base-period cases
    score_scale: float = Field(1000.0, gt=0)
    trim: Trim = Trim()
    procedure_attributes: str | None = None  # CSV overriding the shipped table (relative: to this file)
    subtypes: Subtypes = Subtypes()
    hospital_coefficients: HospitalCoefficients = HospitalCoefficients()
    primary_care_packets: list[str] = []  # 基层病种: no hospital coefficient
    outliers: Outliers = Outliers()
    funds: list[Fund] = [Fund(fund="employee"), Fund(fund="resident")]
    source_dir: str = ""  # set at load: folder of a policy file, for relative paths

    @model_validator(mode="after")
    def _consistent(self) -> DipPolicy:
        if any(w <= 0 for w in self.year_weights):
            raise ValueError("year_weights must all be > 0")
        years = len(self.base_years) if self.base_years else self.n_base_years
        if self.base_years and len(set(self.base_years)) != len(self.base_years):
            raise ValueError("base_years lists a year twice")
        if len(self.year_weights) < years:
            raise ValueError(f"year_weights has {len(self.year_weights)} weights for {years} base years")
        if len({f.fund for f in self.funds}) != len(self.funds):
            raise ValueError("funds: a fund is listed twice")
        return self

    def weights_for(self, years: list[int]) -> dict[int, float]:
        """Weight of each base year, oldest first: the last len(years) of year_weights (1:2:7 -> 2:7)."""
        ordered = sorted(years)
        return dict(zip(ordered, self.year_weights[len(self.year_weights) - len(ordered):], strict=True))

    def fund(self, name: str) -> Fund:
        return next((f for f in self.funds if f.fund == name), Fund(fund=name))

    def attributes_path(self) -> Path | None:
        if not self.procedure_attributes:
            return None
        path = Path(self.procedure_attributes)
        return path if path.is_absolute() else Path(self.source_dir) / path


def load_dip_policy(path: str | Path | Traversable | None = None) -> DipPolicy:
    """A policy file, or a shipped policy by name (default `dip-default`: package data under jobs/policies,
    read with importlib.resources so it loads from a wheel or a --py-files zip)."""
    found = locate(path or DEFAULT_POLICY, BUILTIN_POLICIES, ".yaml")
    if not found.is_file():
        shipped = ", ".join(builtin_names(BUILTIN_POLICIES, ".yaml"))
        raise PipelineError(f"DIP policy file not found: {found} (shipped policies: {shipped})")
    policy = parse_yaml_model(found.read_text(encoding="utf-8"), DipPolicy, f"DIP policy {found}")
    # a user's file resolves a relative procedure_attributes path from its folder; shipped ones have none
    return policy.model_copy(update={"source_dir": str(found.resolve().parent) if isinstance(found, Path) else ""})
