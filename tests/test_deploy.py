"""Deploy targets: the spark-submit path really runs a stage on local[2]; cluster files stay in step."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from jobs import lake as lk
from jobs.spark import DELTA_CONF
from tests.small_data import submit_args

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
FIXTURE = REPO / "tests" / "fixtures" / "canonical_sample.csv"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


package = _load(DEPLOY / "package.py", "drg_deploy_package")


ZIP_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import jobs.layouts, jobs.definitions, jobs.pricing.policy, jobs.synth.config, quality.catalogue
from jobs.definitions import parse_pack
print(jobs.definitions.__file__)
print(jobs.layouts.load_layout("canonical").name)
manifest, rows = parse_pack("demo")
print(manifest.name, len(rows["drg"]))
print(jobs.pricing.policy.load_policy().name)
print(len(quality.catalogue.load_catalogue().rules), len(quality.catalogue.load_suite("silver_case_quality")))
print(jobs.synth.config.load_config().__class__.__name__)
"""


def test_zip_carries_code_and_package_data(tmp_path):
    """What --py-files ships must import on its own and find every shipped file through importlib.resources
    inside the zip (layouts, the demo pack, the default policy, rule catalogue, GX suites, generator config),
    from a folder that is not the checkout."""
    archive = tmp_path / "drg.zip"
    names = package.build_zip(archive)
    for shipped in ("jobs/cli.py", "schemas/layouts/canonical.yaml", "jobs/packs/demo/manifest.yaml",
                    "jobs/packs/demo/codes.csv", "jobs/policies/chs-default.yaml", "quality/rules.yaml",
                    "quality/suites/silver_case_quality.json", "jobs/synth/config.yaml", "jobs/log4j2.properties"):
        assert shipped in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-I", "-c", ZIP_PROBE, str(archive)], cwd=tmp_path, capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(archive)), lines  # imported from the zip, not from the checkout
    assert lines[1] == "canonical"
    assert lines[2].split()[0] == "demo" and int(lines[2].split()[1]) > 10
    assert lines[3] and int(lines[4].split()[0]) >= 19 and lines[5] == "SynthConfig"


def test_spark_submit_wrapper_runs_ingest_on_local2(spark, tmp_path):
    lake = str(tmp_path / "lake")
    env = {**os.environ, "SPARK_MASTER": "local[2]", "DRG_DRIVER_MEMORY": "1g",
           "DRG_BUILD_DIR": str(tmp_path / "build"), "DRG_PSEUDONYM_KEY": "deploy-test-key",
           "DRG_SUBMIT_ARGS": submit_args()}
    proc = subprocess.run(
        [str(DEPLOY / "spark-submit.sh"), "ingest", "--lake", lake, "--region", "230100",
         "--input", str(FIXTURE), "--run-id", "RUN-SUBMIT"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = re.search(r"(\d+) read = (\d+) accepted \+ (\d+) quarantined", proc.stdout)
    assert counts, proc.stdout
    read, accepted, quarantined = map(int, counts.groups())
    assert read == accepted + quarantined and accepted > 0

    silver = lk.read(spark, lake, "silver", "discharges")
    assert silver.count() == accepted
    assert lk.version_of_run(spark, lk.table_path(lake, "silver", "discharges"), "RUN-SUBMIT") == 0
    assert not (tmp_path / "lake" / "_nightly.lock").exists()


def test_cluster_definitions_carry_the_settings_and_versions_we_run_with():
    """The k8s and Databricks files are hand-written; fail when they drift from jobs/spark.py or the pins."""
    conf = package.submit_conf()
    app = yaml.safe_load((DEPLOY / "k8s" / "sparkapplication.yaml").read_text())
    assert conf.items() <= {k: str(v) for k, v in app["spec"]["sparkConf"].items()}.items()

    spark_minor = ".".join(version("pyspark").split(".")[:2])
    delta = f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"
    script_default = re.search(r"DELTA_PACKAGE:-([^}]+)", (DEPLOY / "spark-submit.sh").read_text()).group(1)
    assert script_default == delta
    assert delta in app["spec"]["deps"]["packages"]
    assert app["spec"]["sparkVersion"] == version("pyspark")

    job = json.loads((DEPLOY / "databricks" / "job.json").read_text())
    cluster_conf = job["job_clusters"][0]["new_cluster"]["spark_conf"]
    for key in conf.keys() - DELTA_CONF.keys():  # Databricks brings Delta itself; the rest must match
        assert cluster_conf.get(key) == conf[key], key
    assert job["max_concurrent_runs"] == 1


def test_airflow_dag_builds():
    pytest.importorskip("airflow", reason="Airflow is not installed here (deploy-time dependency only)")
    module = _load(DEPLOY / "airflow" / "drg_nightly_dag.py", "drg_nightly_dag")
    dag = module.dag
    assert dag.dag_id == "drg_nightly" and dag.max_active_runs == 1
    task = dag.get_task("nightly")
    assert "deploy/spark-submit.sh nightly --config" in task.bash_command


TARGET_PROBE = """
import importlib.metadata, json, sys
sys.path.insert(0, sys.argv[1])
from jobs.cli import build_parser
out = {}
for name, argv in json.loads(sys.argv[2]).items():  # each target's drg arguments must parse
    args = build_parser().parse_args(argv)
    out[name] = [args.command, callable(args.func)]
for module in json.loads(sys.argv[3]):  # modules the targets run must import from the artifact
    m = importlib.import_module(module)
    out[module] = m.__file__
if sys.argv[4]:  # a console entry point, resolved through the artifact's own metadata
    (ep,) = [e for e in importlib.metadata.distribution("drg-recal").entry_points if e.name == sys.argv[4]]
    fn = ep.load()
    out["entry_point"] = [ep.value, sys.modules[fn.__module__].__file__]
print(json.dumps(out))
"""


def _resolve(artifact: Path, argvs: dict, modules: list[str], entry_point: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-c", TARGET_PROBE, str(artifact), json.dumps(argvs),
                           json.dumps(modules), entry_point],
                          capture_output=True, text=True, env=env, cwd=artifact.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_deploy_targets_resolve_against_the_built_wheel_and_zip(wheel, tmp_path):
    """Every file and entry point the Airflow DAG, the Spark Operator manifest and the Databricks job name
    exists, and resolves from the built wheel and the --py-files zip alone (not from the checkout)."""
    archive = tmp_path / "drg.zip"
    package.build_zip(archive)

    # Airflow: a BashOperator running <checkout>/deploy/spark-submit.sh <drg arguments>
    dag = (DEPLOY / "airflow" / "drg_nightly_dag.py").read_text()
    script_rel, dag_args = re.search(r'bash_command=f"\{REPO\}/(\S+) ([^"]+)"', dag).groups()
    script = REPO / script_rel
    assert script.is_file() and os.access(script, os.X_OK)
    dag_argv = dag_args.replace("{CONFIG}", "/etc/drg/nightly.yaml").split()
    # ... which runs these package modules (python -m ...) and the package's driver file
    modules = sorted(set(re.findall(r"-m (jobs\.\w+)", script.read_text())) | {"jobs.driver"})

    # Spark Operator: the image copies the checkout to /opt/drg-recal and pip-installs it
    app = yaml.safe_load((DEPLOY / "k8s" / "sparkapplication.yaml").read_text())["spec"]
    dockerfile = (DEPLOY / "k8s" / "Dockerfile").read_text()
    image_root = re.search(r"^COPY \. (\S+)$", dockerfile, re.M).group(1)
    main_file = app["mainApplicationFile"].removeprefix("local://")
    assert main_file.startswith(image_root + "/") and f"pip install --no-cache-dir {image_root}" in dockerfile
    main_py = REPO / main_file.removeprefix(image_root + "/")
    assert main_py.is_file()
    modules += re.findall(r"^from (\S+) import", main_py.read_text(), re.M)[1:]  # past __future__
    config_arg = app["arguments"][app["arguments"].index("--config") + 1]
    mounts = [m["mountPath"] for m in app["driver"]["volumeMounts"]]
    assert str(Path(config_arg).parent) in mounts

    # Databricks: a python_wheel_task of the wheel named in libraries
    job = json.loads((DEPLOY / "databricks" / "job.json").read_text())
    (task,) = job["tasks"]
    wheel_task = task["python_wheel_task"]
    assert wheel_task["package_name"].replace("_", "-") == "drg-recal"
    assert [lib["whl"].rsplit("/", 1)[-1] for lib in task["libraries"]] == [wheel.name]

    argvs = {"airflow": dag_argv, "k8s": app["arguments"], "databricks": wheel_task["parameters"]}
    for artifact, entry_point in ((wheel, wheel_task["entry_point"]), (archive, "")):
        got = _resolve(artifact, argvs, sorted(set(modules)), entry_point)
        assert {got[t][0] for t in argvs} == {"nightly"} and all(got[t][1] for t in argvs)
        for module in set(modules):
            assert got[module].startswith(str(artifact)), (module, got[module])  # from the artifact itself
        if entry_point:
            assert got["entry_point"][0] == "jobs.cli:main" and got["entry_point"][1].startswith(str(artifact))
