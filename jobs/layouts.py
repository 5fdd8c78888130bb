"""Regional file layouts: how a region's file maps onto the canonical discharge schema.

A layout is data (YAML under schemas/layouts/, or any path), validated at load, so a new region is
onboarded by writing a file, not code. Both ingestion (reading) and the synthetic generator (writing as
a region would send) use the same Layout object, so the two directions cannot disagree.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from jobs.config import parse_yaml_model
from jobs.errors import PipelineError
from schemas.discharge import FIELD_NAMES

ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}


class Layout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    encoding: str = "utf-8"
    delimiter: str = ","
    list_separator: str = "|"
    date_formats: list[str] = ["yyyy-MM-dd"]
    columns: dict[str, str] = {}  # canonical field -> source header; missing fields keep their own name
    values: dict[str, dict[str, str]] = {}  # canonical field -> {source value: canonical value}

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        if v.lower() not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        return v.lower()

    @model_validator(mode="after")
    def _known_fields(self) -> Layout:
        unknown = sorted((set(self.columns) | set(self.values)) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"unknown canonical fields: {', '.join(unknown)}")
        if len(set(self.columns.values())) != len(self.columns):
            raise ValueError("two canonical fields map to the same source column")
        return self

    @property
    def spark_encoding(self) -> str:
        return ENCODINGS[self.encoding]

    def source_column(self, field: str) -> str:
        return self.columns.get(field, field)

    def source_columns(self) -> dict[str, str]:
        """canonical field -> source header, for every canonical field."""
        return {f: self.source_column(f) for f in FIELD_NAMES}


def builtin_layouts() -> list[str]:
    folder = resources.files("schemas").joinpath("layouts")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_layout(name_or_path: str | None) -> Layout:
    """Load a built-in layout by name (default `canonical`) or a YAML file by path."""
    name_or_path = name_or_path or "canonical"
    path = Path(name_or_path)
    if not path.suffix:
        builtin = resources.files("schemas").joinpath("layouts", f"{name_or_path}.yaml")
        if not builtin.is_file():
            raise PipelineError(
                f"unknown layout {name_or_path!r}; built-in layouts: {', '.join(builtin_layouts())}"
            )
        text = builtin.read_text(encoding="utf-8")
    elif path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        raise PipelineError(f"layout file not found: {path}")
    return parse_yaml_model(text, Layout, f"layout {name_or_path}")
