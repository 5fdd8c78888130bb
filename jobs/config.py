"""YAML configuration validated at load: one way to turn a file into a checked model or one clear line.

Also how a file the project ships (a built-in pack or policy) is told apart from a user's file: by a
plain name, looked up as package data with importlib.resources so that it is found from a wheel, from
the `--py-files` zip on a cluster and from a checkout alike.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
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


def is_plain_name(value: str) -> bool:
    """A bare name such as `demo` or `chs-default` (no folder part): what names shipped package data."""
    return bool(value) and "/" not in value and "\\" not in value and value not in (".", "..") and ":" not in value


def builtin(package: str, name: str, suffix: str = "") -> Traversable | None:
    """The package data `<package>/<name><suffix>` (file or folder) when `name` is a plain name and it
    exists, else None. Readers use the Traversable API (joinpath/open/read_text), which works inside a zip."""
    if not is_plain_name(name):
        return None
    found = resources.files(package).joinpath(name + suffix)
    return found if found.is_file() or found.is_dir() else None


def builtin_names(package: str, suffix: str = "") -> list[str]:
    """What `package` ships, for error messages: its folders (no suffix) or its files ending in `suffix`."""
    entries = [p for p in resources.files(package).iterdir() if not p.name.startswith(("_", "."))]
    if not suffix:
        return sorted(p.name for p in entries if p.is_dir())
    return sorted(p.name[: -len(suffix)] for p in entries if p.is_file() and p.name.endswith(suffix))


def locate(value: str | Path | Traversable, package: str, suffix: str = "") -> Traversable:
    """The shipped `<package>/<value><suffix>` when `value` is a plain name that exists there, else
    `value` as a path (which the caller checks, to name what was missing). A plain name means the shipped
    entry even when the current folder holds one of that name (`drg demo` writes ./demo): write `./demo`
    for that. Already-located Traversables pass through."""
    if not isinstance(value, str | Path):
        return value
    return builtin(package, str(value), suffix) or Path(value)
