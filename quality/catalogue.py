"""Load and validate the rule catalogue (quality/rules.yaml) and the batch-contract suites.

Why a validated model: the catalogue is data that analysts edit; a typo (unknown kind, bad regex, a
format name that does not exist, a duplicate id) must fail at load with the rule and field named, not
half-way through a Spark job on a million cases.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobs.errors import PipelineError
from schemas.discharge import FIELD_NAMES

# Package data, read through importlib.resources: found from a wheel or a cluster's --py-files zip too.
DEFAULT_RULES = resources.files("quality").joinpath("rules.yaml")
SUITES_DIR = resources.files("quality").joinpath("suites")
SEVERITIES = ("error", "warning")
CODE_FIELDS = ("principal_dx", "secondary_dx", "principal_proc", "other_procs")
DX_FIELDS = ("principal_dx", "secondary_dx")
PX_FIELDS = ("principal_proc", "other_procs")
LINEAGE_FIELDS = ("batch_id", "source_file", "source_row", "ingested_at")

Column_ = Literal[FIELD_NAMES]  # type: ignore[valid-type]
CodeField = Literal[CODE_FIELDS]  # type: ignore[valid-type]


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


def _regex_fields(*fields: str):
    """A validator compiling the named pattern fields, so a bad regex fails at load, named."""
    return field_validator(*fields)(classmethod(lambda cls, v: _regex(v)))


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Required(_Check):
    kind: Literal["required"]
    fields: list[Column_] = Field(min_length=1)


class CodePattern(_Check):
    kind: Literal["code_pattern"]
    fields: list[CodeField] = Field(min_length=1)
    format: str


class CodeInCodeset(_Check):
    kind: Literal["code_in_codeset"]
    fields: list[CodeField] = Field(min_length=1)
    code_kind: Literal["diagnosis", "procedure"]
    format: str  # only well-formed codes are looked up: a malformed code is reported once, as malformed
    exempt_pattern: str | None = None

    check_regex = _regex_fields("exempt_pattern")


class PrincipalNotPattern(_Check):
    kind: Literal["principal_not_pattern"]
    pattern: str

    check_regex = _regex_fields("pattern")


class SexConflict(_Check):
    kind: Literal["sex_conflict"]
    sex: Literal[1, 2]
    mdcs: list[str] = []
    diagnosis_pattern: str | None = None
    procedure_pattern: str | None = None

    check_regex = _regex_fields("diagnosis_pattern", "procedure_pattern")


class AgeConflict(_Check):
    """Codes that conflict with the patient's age.

    principal_pattern: codes that conflict as principal diagnosis; diagnosis_pattern: in any diagnosis
    position; mdcs: codes the pack places only in these MDCs conflict as principal diagnosis. With
    `except_grouped_elsewhere`, a pattern code that the pack also places in an ADRG of an MDC outside
    `mdcs` is accepted at any age (the pack says it is not specific to those MDCs' patients).
    """

    kind: Literal["age_conflict"]
    principal_pattern: str | None = None
    diagnosis_pattern: str | None = None
    mdcs: list[str] = []
    except_grouped_elsewhere: bool = False
    min_age_years: int | None = None
    max_age_years: int | None = None
    max_age_days: int | None = None

    check_regex = _regex_fields("principal_pattern", "diagnosis_pattern")

    @model_validator(mode="after")
    def _has_codes_and_ages(self) -> AgeConflict:
        if not (self.principal_pattern or self.diagnosis_pattern or self.mdcs):
            raise ValueError("age_conflict needs principal_pattern, diagnosis_pattern or mdcs")
        if self.min_age_years is None and self.max_age_years is None and self.max_age_days is None:
            raise ValueError("age_conflict needs min_age_years, max_age_years or max_age_days")
        if self.except_grouped_elsewhere and not self.mdcs:
            raise ValueError("except_grouped_elsewhere needs the mdcs the codes belong to")
        return self


class DateOrder(_Check):
    kind: Literal["date_order"]
    start: Column_
    end: Column_


class LosMatchesDates(_Check):
    kind: Literal["los_matches_dates"]
    los: Column_
    start: Column_
    end: Column_


class NotFuture(_Check):
    kind: Literal["not_future"]
    fields: list[Column_] = Field(min_length=1)


class Positive(_Check):
    kind: Literal["positive"]
    field: Column_


class CategoriesSum(_Check):
    kind: Literal["categories_sum"]
    total: Column_
    categories: list[Column_] = Field(min_length=1)
    tolerance_abs: float = Field(ge=0)
    tolerance_rel: float = Field(ge=0)


class Duplicate(_Check):
    kind: Literal["duplicate"]
    keys: list[Column_] = Field(min_length=1)
    order: list[Literal[FIELD_NAMES + LINEAGE_FIELDS]] = Field(min_length=1)  # type: ignore[valid-type]


class VentLeLos(_Check):
    kind: Literal["vent_le_los"]
    hours: Column_
    los: Column_
    start: Column_
    end: Column_


# Checks about codes: answered once per pack code as one bit of a mask (quality/flags.py)
CODE_CHECKS = (CodePattern, CodeInCodeset, PrincipalNotPattern, SexConflict, AgeConflict)
MAX_CODE_RULES = 60  # mask bits 0-59; the two above carry the case's CC/MCC severity

Check = Annotated[
    Required | CodePattern | CodeInCodeset | PrincipalNotPattern | SexConflict | AgeConflict | DateOrder
    | LosMatchesDates | NotFuture | Positive | CategoriesSum | Duplicate | VentLeLos,
    Field(discriminator="kind"),
]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z][A-Z0-9-]*$")
    severity: Literal[SEVERITIES]  # type: ignore[valid-type]
    # Why this severity: an error takes the case out of pricing and recalibration, so it must mean the
    # case's DRG or cost cannot be trusted; a code the pack accepts is never an error.
    severity_reason: str = Field(min_length=1)
    description_zh: str = Field(min_length=1)
    description_en: str = Field(min_length=1)
    check: Check


class Scoring(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity_weights: dict[Literal[SEVERITIES], float]  # type: ignore[valid-type]
    upcoding_z_threshold: float = Field(gt=0)
    min_cases: int = Field(ge=1)
    min_peers: int = Field(ge=2)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: dict[str, str]
    rules: list[Rule] = Field(min_length=1)
    scoring: Scoring

    @field_validator("formats")
    @classmethod
    def _format_regexes(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: _regex(p) for k, p in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        ids = [r.id for r in self.rules]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"duplicate rule id {', '.join(repeated)}")
        for rule in self.rules:
            fmt = getattr(rule.check, "format", None)
            if fmt is not None and fmt not in self.formats:
                raise ValueError(f"rule {rule.id}: format {fmt!r} is not defined under formats")
        n_code_rules = len(self.code_rules())
        if n_code_rules > MAX_CODE_RULES:
            raise ValueError(f"{n_code_rules} rules check codes, at most {MAX_CODE_RULES} can")
        return self

    def code_rules(self) -> list[Rule]:
        """The rules about codes (CODE_CHECKS), in catalogue order: the i-th owns bit i of every code mask."""
        return [r for r in self.rules if isinstance(r.check, CODE_CHECKS)]

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate the catalogue; any problem is one PipelineError naming the file and field."""
    path = Path(path) if path else DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"rule catalogue {path}: cannot read ({exc.strerror or type(exc).__name__})") from exc
    except yaml.YAMLError as exc:
        raise PipelineError(f"rule catalogue {path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PipelineError(f"rule catalogue {path}: {where}: {err['msg']}") from exc


def load_suite(name: str, folder: str | Path | Traversable | None = None) -> dict:
    """A stored GX ExpectationSuite (JSON) by name, e.g. `silver_case_quality`."""
    path = (Path(folder) if isinstance(folder, str) else folder or SUITES_DIR) / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"expectation suite {path}: cannot read ({exc.strerror or type(exc).__name__})") from exc
    except json.JSONDecodeError as exc:
        raise PipelineError(f"expectation suite {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
