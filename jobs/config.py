"""YAML configuration validated at load: one way to turn a file into a checked model or one clear line."""

from __future__ import annotations

from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from jobs.errors import PipelineError

M = TypeVar("M", bound=BaseModel)


def parse_yaml_model(text: str, model: type[M], label: str) -> M:
    """Parse YAML text into `model`; a syntax or validation problem becomes `<label>: invalid: ...`."""
    try:
        return model.model_validate(yaml.safe_load(text) or {})
    except (ValidationError, yaml.YAMLError) as exc:
        raise PipelineError(f"{label}: invalid: {' '.join(str(exc).splitlines()[:3])}") from exc
