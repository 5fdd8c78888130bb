"""What spark-submit ships, and the Spark settings every deployment must carry: `python -m jobs.submit`.

Why a zip and not a wheel: `--py-files` takes a zip directly, building it needs nothing beyond the
standard library (no build backend download on a locked-down edge node), and Python reads package data
(layouts, packs, policies, rule catalogue, GX suites) from it through importlib.resources. The wheel
(`python -m pip wheel --no-deps .`) is the artifact for Databricks instead (deploy/databricks).

Why in the package and zipped from where it is imported: deploy/spark-submit.sh must work from a
checkout and from a pip-installed project alike, so the zip is built from the packages Python imports
(the checkout's when its folder is on PYTHONPATH, else the installed ones), and the driver script is the
package's own `jobs/driver.py`.

Why the settings come from jobs.spark: a local run and a cluster run must compute the same numbers, so
the Delta extension and the semantic settings (ANSI parsing, UTC session time zone) are read from the
one place that defines them rather than copied into each deploy file.

Usage: python -m jobs.submit zip OUT.zip | conf | driver | java-options | hadoop-aws
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from pathlib import Path

from jobs.errors import PipelineError

PACKAGES = ("jobs", "schemas", "quality")
# Settings that change results, not just performance: they must hold on every cluster.
SEMANTIC_KEYS = ("spark.sql.ansi.enabled", "spark.sql.session.timeZone")


def package_dirs() -> dict[str, Path]:
    """Folder of each package as imported now (a checkout or site-packages)."""
    dirs = {}
    for name in PACKAGES:
        folder = Path(importlib.import_module(name).__file__).parent
        if not folder.is_dir():
            raise PipelineError(f"package {name} is imported from {folder}, not a folder: cannot zip it")
        dirs[name] = folder
    return dirs


def build_zip(out: str | Path) -> list[str]:
    """Zip the importable packages (code and package data, no bytecode caches); returns the names.

    Written beside `out` and renamed into place, so a concurrent submit never ships a half-written zip.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    names = []
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for package, root in package_dirs().items():
            for path in sorted(root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    name = f"{package}/{path.relative_to(root).as_posix()}"
                    zf.write(path, name)
                    names.append(name)
    os.replace(tmp, out)
    return names


def submit_conf() -> dict[str, str]:
    from jobs.spark import DELTA_CONF, ENGINE_CONF, JVM_OPTIONS, LOCAL_DEFAULTS

    return {**DELTA_CONF, **{key: LOCAL_DEFAULTS[key] for key in SEMANTIC_KEYS},
            "spark.driver.extraJavaOptions": JVM_OPTIONS, "spark.executor.extraJavaOptions": JVM_OPTIONS,
            **ENGINE_CONF}


def hadoop_aws_package() -> str:
    """The hadoop-aws coordinate matching the Hadoop inside the installed pyspark (an s3a:// lake needs
    exactly that version; it brings the AWS SDK bundle it was built against)."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not jars:
        raise PipelineError("cannot tell pyspark's Hadoop version: no jars/hadoop-client-api-*.jar")
    return f"org.apache.hadoop:hadoop-aws:{jars[-1].stem.removeprefix('hadoop-client-api-')}"


def driver_script() -> Path:
    """The file spark-submit runs as the driver (jobs/driver.py of the imported package)."""
    return Path(importlib.import_module("jobs.driver").__file__)


def main(argv: list[str]) -> int:
    if argv[:1] == ["zip"] and len(argv) == 2:
        names = build_zip(Path(argv[1]))
        print(f"{argv[1]}: {len(names)} files", file=sys.stderr)
        return 0
    if argv == ["conf"]:
        for key, value in submit_conf().items():
            print(f"{key}={value}")
        return 0
    if argv == ["driver"]:
        print(driver_script())
        return 0
    if argv == ["hadoop-aws"]:
        print(hadoop_aws_package())
        return 0
    if argv == ["java-options"]:
        from jobs.spark import driver_java_options

        print(driver_java_options())
        return 0
    print(__doc__.strip().splitlines()[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
