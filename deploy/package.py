"""Build what spark-submit ships, and the Spark settings every deployment must carry.

Why a zip and not a wheel: `--py-files` takes a zip directly, building it needs nothing beyond the
standard library (no build backend download on a locked-down edge node), and Python imports package
data (layouts YAML, definitions) from it through importlib.resources. The wheel
(`python -m pip wheel --no-deps .`) is the artifact for Databricks instead (deploy/databricks).

Why the settings come from jobs.spark: a local run and a cluster run must compute the same numbers, so
the Delta extension and the semantic settings (ANSI parsing, UTC session time zone) are read from the
one place that defines them rather than copied into each deploy file.

Usage: python deploy/package.py zip OUT.zip   |   python deploy/package.py conf
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "schemas", "quality")
# Settings that change results, not just performance: they must hold on every cluster.
SEMANTIC_KEYS = ("spark.sql.ansi.enabled", "spark.sql.session.timeZone")


def build_zip(out: Path) -> list[str]:
    """Zip the importable packages (code and package data, no bytecode caches); returns the names."""
    out.parent.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in PACKAGES:
            root = REPO / package
            if not (root / "__init__.py").exists():
                continue
            for path in sorted(root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    name = path.relative_to(REPO).as_posix()
                    zf.write(path, name)
                    names.append(name)
    return names


def submit_conf() -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from jobs.spark import DELTA_CONF, ENGINE_CONF, JVM_OPTIONS, LOCAL_DEFAULTS

    return {**DELTA_CONF, **{key: LOCAL_DEFAULTS[key] for key in SEMANTIC_KEYS},
            "spark.driver.extraJavaOptions": JVM_OPTIONS, "spark.executor.extraJavaOptions": JVM_OPTIONS,
            **ENGINE_CONF}


def main(argv: list[str]) -> int:
    if argv[:1] == ["zip"] and len(argv) == 2:
        names = build_zip(Path(argv[1]))
        print(f"{argv[1]}: {len(names)} files", file=sys.stderr)
        return 0
    if argv == ["conf"]:
        for key, value in submit_conf().items():
            print(f"{key}={value}")
        return 0
    print(__doc__.strip().splitlines()[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
