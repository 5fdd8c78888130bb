"""Definitions packs: the shipped demo pack loads with the contract's columns; bad packs fail clearly."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from jobs.definitions import BUILTIN_PACKS, TABLES, import_chs11, load_pack, parse_pack
from jobs.errors import PipelineError

DEMO = "demo"  # the shipped pack (jobs/packs/demo)


def test_demo_pack_tables_follow_the_contract(spark):
    pack = load_pack(spark, DEMO)
    assert pack.manifest.name == "demo" and pack.manifest.rules.ventilation.min_hours == 96
    for name, schema in TABLES.items():
        assert pack.table(name).columns == schema.fieldNames()
    drg = {r["drg"]: r for r in pack.dicts("drg")}
    assert {d["suffix"] for d in drg.values()} == {"1", "3", "5", "9"}
    assert drg["FM31"]["reference_weight"] == pytest.approx(3.10)
    kinds = {r["adrg"]: r["kind"] for r in pack.dicts("adrg")}
    assert kinds["GD2"] == "surgical" and kinds["FM3"] == "non_or" and kinds["FR1"] == "medical"
    assert pack.table("cc_exclusions").where("exclusion_table = 'RESP-FAIL'").count() == 2


def _copy(tmp_path) -> Path:
    """The shipped pack as an editable folder (read as package data, as from a wheel)."""
    dst = tmp_path / "pack"
    dst.mkdir()
    for entry in resources.files(BUILTIN_PACKS).joinpath(DEMO).iterdir():
        (dst / entry.name).write_bytes(entry.read_bytes())
    return dst


def test_missing_pack_and_missing_table_name_the_file(tmp_path):
    with pytest.raises(PipelineError, match="manifest.yaml"):
        parse_pack(tmp_path / "nowhere")
    pack = _copy(tmp_path)
    (pack / "codes.csv").unlink()
    with pytest.raises(PipelineError, match="codes.csv"):
        parse_pack(pack)


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("drg.csv", "FM31,FM3,1,", "FM31,FM3,7,", r"drg.csv row \d+: suffix '7'"),
        ("adrg_members.csv", "FM3,principal_procedure,36.0700", "XX9,principal_procedure,36.0700", "XX9"),
        ("manifest.yaml", "adrg: AH1", "adrg: AH9", "ventilation.adrg"),
        ("manifest.yaml", "min_hours: 96", "min_hours: -1", "min_hours"),
        ("codes.csv", "急性呼吸衰竭,MCC", "急性呼吸衰竭,SEVERE", "severity 'SEVERE'"),
    ],
)
def test_malformed_pack_is_one_clear_error(tmp_path, file, old, new, message):
    pack = _copy(tmp_path)
    path = pack / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PipelineError, match=message) as err:
        parse_pack(pack)
    assert file in str(err.value) and "\n" not in str(err.value)


def test_chs11_import_builds_a_loadable_pack(reference_dir, tmp_path):
    counts = import_chs11(reference_dir, tmp_path / "chs")
    manifest, rows = parse_pack(tmp_path / "chs")
    assert manifest.version == "1.1" and counts["adrg"] == 375
    drg = {r[0]: r for r in rows["drg"]}
    assert drg["FM31"][4] is not None and drg["AC19"][4] is None  # unpublished ADRG: unsplit, no weight
    adrg = {r[0]: r for r in rows["adrg"]}
    assert adrg["BB1"][3] == "surgical" and adrg["FM3"][3] == "non_or" and adrg["FR1"][3] == "medical"
    assert adrg["AA1"][4] < adrg["BB1"][4]
    assert len({r[0] for r in rows["codes"]}) == len(rows["codes"])  # one row per code
