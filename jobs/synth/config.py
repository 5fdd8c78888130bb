"""Generator parameters, validated at load: the defaults live in config.yaml beside this module.

Why a file and not constants: every figure (base rate, outlier shares, severity by age) is an
assumption a user may want to change to imitate their own region, without touching code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobs.config import parse_yaml_model
from jobs.errors import PipelineError

KINDS = ("medical", "non_or", "surgical")
SUFFIXES = ("1", "3", "5", "9")


class Demographics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sex: int | None = None  # fixed sex for the group (1 male, 2 female)
    age: tuple[int, int] | None = None
    age_mean: float | None = None
    age_sd: float | None = None
    newborn: bool = False
    infant: bool = False
    age_days: tuple[int, int] | None = None
    birth_weight: tuple[int, int] | None = None


def _covering(v: dict[str, float], keys, what: str) -> dict[str, float]:
    """`v` when it has every key, else the validation error naming the missing ones."""
    missing = [k for k in keys if k not in v]
    if missing:
        raise ValueError(f"needs {what}; missing {', '.join(missing)}")
    return v


class SynthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_rate: float = Field(gt=0)
    base_rate_spread: float = Field(ge=0)
    efficiency_spread: float = Field(ge=0)
    hospital_size_sigma: float = Field(ge=0)
    kind_frequency: dict[str, float]
    pre_mdc_frequency: float = Field(ge=0)
    adrg_frequency_sigma: float = Field(ge=0)
    weight_damping: float = Field(ge=0)
    default_weight: dict[str, float]
    suffix_factor: dict[str, float]
    cost_sigma: float = Field(gt=0)
    los_sigma: float = Field(gt=0)
    los_base: float = Field(gt=0)
    los_per_weight: float = Field(ge=0)
    los_cost_correlation: float = Field(ge=-1, le=1)
    high_outlier_share: float = Field(ge=0, le=0.5)
    high_outlier_factor: tuple[float, float]
    low_outlier_share: float = Field(ge=0, le=0.5)
    low_outlier_factor: tuple[float, float]
    mcc_by_age: tuple[float, float]
    cc_by_age: tuple[float, float]
    secondary_base: float = Field(ge=0)
    secondary_per_years: float = Field(gt=0)
    upcoding_hospitals_per_region: int = Field(ge=0)
    upcoding_share: float = Field(ge=0, le=1)
    common_comorbidities: list[str]
    external_cause_codes: list[str] = Field(min_length=1)
    demographics: dict[str, Demographics]
    ventilation_groups: dict[str, tuple[float, float]]
    # Discharge years the cases spread over (the latest ending at the batch date), for DIP's 3-year base.
    discharge_years: int = Field(1, ge=1, le=10)
    # (diagnosis, procedures) combinations drawn per group; cases pick one by a Zipf rank (DIP packets).
    combos_per_group: int = Field(60, ge=1, le=1000)
    # further (non-OR) procedures a group's cases draw from: a few per group, as real groups have
    companion_procedures: int = Field(8, ge=0, le=1000)

    @field_validator("kind_frequency", "default_weight")
    @classmethod
    def _every_kind(cls, v: dict[str, float]) -> dict[str, float]:
        return _covering(v, KINDS, "a value for every ADRG kind")

    @field_validator("suffix_factor")
    @classmethod
    def _every_suffix(cls, v: dict[str, float]) -> dict[str, float]:
        return _covering(v, SUFFIXES, "a factor for every DRG suffix")

    def demographics_for(self, mdc: str, adrg: str) -> Demographics:
        """The ADRG's own entry, else its MDC's, else no constraint."""
        return self.demographics.get(adrg) or self.demographics.get(mdc) or Demographics()


def load_config(path: str | None = None) -> SynthConfig:
    """The built-in defaults, or a YAML file with the same keys (all required, so nothing is implicit)."""
    if path is None:
        text = resources.files("jobs.synth").joinpath("config.yaml").read_text(encoding="utf-8")
    elif Path(path).is_file():
        text = Path(path).read_text(encoding="utf-8")
    else:
        raise PipelineError(f"synth config file not found: {path}")
    return parse_yaml_model(text, SynthConfig, f"synth config {path or 'defaults'}")
