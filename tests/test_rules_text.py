"""The NHSA rule-text importer (`drg definitions import opendrg-rules`), without Spark: every header
layout of the text on a small fixture, the failure on text it does not know, and on the real text in
../shared the counts the source states and an independent reading of 1.1's severity tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.schemes.pack import parse_rule_pack
from jobs.schemes.rules_pack import PartialImport, import_rules
from jobs.schemes.rules_text import ANY_DX, ANY_PROC, NO_PROC, PDX, PPROC, SDX, VALID_PROC, read_scheme
from tests.rules_text_fixtures import write_scheme

RULES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "opendrg-rules"
OPENDRG_11 = Path(__file__).resolve().parents[2] / "shared" / "reference" / "opendrg" / "drg_group" / "chs_drg_11"
needs_rules = pytest.mark.skipif(not RULES.is_dir(), reason="needs ../shared/reference/opendrg-rules")


def roles(adrg) -> list[list[list[tuple[str, tuple[str, ...]]]]]:
    """An ADRG's conditions as roles and codes (list names left out)."""
    return [[[(a.role, tuple(adrg.codes(a))) for a in term] for term in cond] for cond in adrg.conditions]


def test_every_header_layout_of_the_fixture(tmp_path):
    s = read_scheme(write_scheme(tmp_path))
    assert s.problems == []
    a = s.adrgs
    # （其他诊断或手术或操作 1）+手术或操作 2: a term that is itself an alternative
    assert roles(a["AH2"]) == [
        [[(SDX, ("Z93.000",)), (ANY_PROC, ("31.1x00x005",))], [(ANY_PROC, ("96.7201",))]],
    ]
    # 入组条件 1 ... 或入组条件 2 ... (`手术或操作3` without a space)
    assert roles(a["NA1"]) == [
        [[(PDX, ("C53.900",))], [(PPROC, ("68.6x00",))]],
        [[(PDX, ("C53.900",))], [(ANY_PROC, ("68.4100",))], [(ANY_PROC, ("40.5901",))]],
    ]
    assert len(a["JA1"].conditions) == 2 and [len(c) for c in a["JA1"].conditions] == [3, 4]
    assert roles(a["GC1"]) == [[[(ANY_PROC, ("53.0200",))], [(ANY_PROC, ("53.0500",))]]]  # 同时包含 ... 和
    assert roles(a["MA1"]) == [[[(PDX, ("C61.x00",))], [(PPROC, ("60.5x00",))]]]  # diagnosis and procedure
    assert [[[(x.role, x.list) for x in t] for t in c] for c in a["SB1"].conditions] == [[[(VALID_PROC, None)]]]
    assert roles(a["ZZ1"]) == [[[(NO_PROC, ())]]]  # 符合 MDCZ 诊断表，且无手术或操作
    assert roles(a["SR1"]) == [[[(ANY_DX, ("A41.900",))]], [[(SDX, ("R65.100",))]]]  # 或包含以下其他诊断
    assert s.mdcs["MDCZ"].regions == {
        "头颈部创伤": ["S06.500"],
        "胸部创伤": ["S27.000"],
        "下肢创伤": ["S72.000"],
    }
    assert (s.mdcs["MDCM"].sex, s.mdcs["MDCN"].sex, s.mdcs["MDCG"].sex) == ("M", "F", None)
    assert "C79.821" not in s.mdcs["MDCN"].diagnoses  # commented out in the text
    assert any("commented out" in n and "C79.821" in n for n in s.notes)
    assert any("JA1" in n and "matching its 2 alternative-condition files" in n for n in s.notes)


def test_glitches_are_repaired_with_a_note(tmp_path):
    s = read_scheme(write_scheme(tmp_path))
    assert s.cc == {"E87.100": "1", "C91.100": "2"}
    assert s.cce == {"J44.100": {"1"}, "N18.900": {"2"}}
    repairs = [n for n in s.notes if n.startswith("repaired")]
    assert len(repairs) == 2 and "C91.100" in repairs[0] and "N18.900" in repairs[1]


def test_unknown_header_fails_the_import_unless_partial(tmp_path, capsys):
    weird = {"GB1": "包含以下主要手术或操作：\n47.0901 腹腔镜阑尾切除术\n年龄小于 18 岁的病例：\n"}
    folder = write_scheme(tmp_path, weird)
    with pytest.raises(PartialImport, match="1 rule"):
        import_rules(folder, tmp_path / "pack")
    assert (
        "cannot translate: ADRG/GB1_阑尾切除术.dat line 3: unknown header '年龄小于 18 岁的病例'"
        in capsys.readouterr().out
    )
    assert not (tmp_path / "pack").exists()
    import_rules(folder, tmp_path / "pack", allow_partial=True)
    pack = parse_rule_pack(tmp_path / "pack")
    assert any(n.startswith("not translated: ADRG/GB1") for n in pack.manifest.notes)


def test_alternative_files_must_add_up_to_the_combined_file(tmp_path):
    folder = write_scheme(tmp_path)
    alt = next((folder / "ADRG").glob("JA1_2_*"))
    alt.write_text(alt.read_text(encoding="utf-8").replace("86.7000", "86.7100"), encoding="utf-8")
    s = read_scheme(folder)
    assert s.problems == [
        "ADRG JA1: the 2 alternative-condition files do not add up to ADRG/JA1_乳房恶性肿瘤根治性切除伴乳房重建术.dat "
        "(1 condition(s) only in them, 1 only in the combined file)"
    ]


def test_pack_rows_say_the_rules(tmp_path):
    import_rules(write_scheme(tmp_path), tmp_path / "pack", log=lambda _: None)
    pack = parse_rule_pack(tmp_path / "pack")
    assert [m for m, _ in pack.mdcs] == ["MDCA", "MDCZ", "MDCM", "MDCN", "MDCG", "MDCJ", "MDCS"]

    def atoms(level, target):
        return [sorted((a.kind, a.op, a.list, a.value) for a in alt) for alt in pack.alternatives(level, target)]

    assert atoms("mdc", "MDCN") == [
        [("pdx", "in", "MDCN.pdx", None), ("pdx", "not_in", "INVALID_PDX", None), ("sex", "=", None, 2.0)]
    ]
    assert atoms("mdc", "MDCZ") == [
        [("pdx", "in", "MDCZ.pdx", None), ("pdx", "not_in", "INVALID_PDX", None), ("regions", ">=", "MDCZ", 2.0)]
    ]
    assert atoms("adrg", "AH2") == [
        [("px", "in", "AH2.px.2", None), ("sdx", "in", "AH2.sdx", None)],
        [("px", "in", "AH2.px.1", None), ("px", "in", "AH2.px.2", None)],
    ]
    assert atoms("adrg", "ZZ1") == [[("px", "not_in", "PROCS", None)]]
    assert atoms("adrg", "SB1") == [[("ppx", "in", "PROCS", None)]]
    # splits from the DRG list: 1/3/5, 3/5, 1/5, 9
    assert [(d["drg"], atoms("drg", d["drg"])) for d in pack.drgs["GR1"]] == [
        ("GR11", [[("mcc", "=", None, True)]]),
        ("GR13", [[("cc", "=", None, True)]]),
        ("GR15", [[]]),
    ]
    assert atoms("drg", "NR13") == [[("cc_or_mcc", "=", None, True)]]
    assert atoms("drg", "SR11") == [[("mcc", "=", None, True)]] and atoms("drg", "SR15") == [[]]
    # QY between the procedure ADRGs and the medical ones; none in the pre-MDC
    assert [a["adrg"] for a in pack.adrgs if a["mdc"] == "MDCG"] == ["GB1", "GC1", "GQY", "GR1"]
    assert not any(a["kind"] == "qy" for a in pack.adrgs if a["mdc"] == "MDCA")
    assert pack.lists["OR_PROCS"] >= {"47.0901", "53.0200", "60.5x00"} and "96.7201" not in pack.lists["OR_PROCS"]
    assert pack.severity["C91.100"] == {"CC": "2"} and pack.cc_exclusions["N18.900"] == {"2"}


@needs_rules
def test_chs20_text_reads_completely():
    s = read_scheme(RULES / "CHS_DRG_20")
    assert s.problems == []
    assert (len(s.mdcs), len(s.adrgs), len(s.drgs)) == (26, 409, 634)
    assert (len(s.mcc), len(s.cc), len(s.cce)) == (4477, 8009, 27143)
    assert len({t for ts in s.cce.values() for t in ts}) == 211
    assert sorted(n.split(":")[0] for n in s.notes if n.startswith("repaired")) == [
        "repaired CC.dat line 1876",
        "repaired CC.dat line 1888",
        "repaired CCE.dat line 15650",
        "repaired CCE.dat line 9572",
    ]
    assert s.cc["C91.100"] == "33" and s.cce["H59.001"] == {"80"} and s.cce["M31.100"] == {"127"}
    # the nine alternative-condition ADRGs, each matching its files; WJ1 through WB1-WB3
    alts = sorted(n.split()[1].rstrip(":") for n in s.notes if "alternative-condition files" in n)
    assert alts == ["AH2", "IB1", "JA1", "JA2", "NA1", "OF1", "WB1", "WB2", "WR2"]
    assert len(s.adrgs["IB1"].conditions) == 3 and len(s.mdcs["MDCZ"].regions) == 9
    wj1 = set(s.adrgs["WJ1"].lists["1:包含 WB1、WB2、WB3 的所有主要手术或操作"])
    wb = {c for code in ("WB1", "WB2", "WB3") for k, v in s.adrgs[code].lists.items() if "手术" in k for c in v}
    assert wj1 == wb and len(wj1) > 100
    splits = {}
    for _d, adrg, suffix, _n in s.drgs:
        splits[adrg] = splits.get(adrg, "") + suffix
    assert sorted({"".join(sorted(v)) for v in splits.values()}) == ["135", "15", "35", "9"]


@needs_rules
@pytest.mark.skipif(not OPENDRG_11.is_dir(), reason="needs ../shared/reference/opendrg")
def test_chs11_severity_tables_equal_opendrgs_reading():
    """1.1's CC/MCC and exclusion tables are page-broken text; OpenDRG's data files are an independent
    reading of the same document: they must agree code for code (OpenDRG writes table 999 for 无)."""
    s = read_scheme(RULES / "CHS_DRG_11")
    assert s.problems == []

    def dat(name):
        rows = (line.strip().partition(" ") for line in (OPENDRG_11 / "DATA" / f"{name}.dat").open(encoding="utf-8"))
        return {k: v.strip() for k, _, v in rows if k}

    assert s.mcc == {k: ("" if v == "999" else v) for k, v in dat("MCC").items()}
    cc = {k: ("" if v == "999" else v) for k, v in dat("CC").items()}
    assert s.cc.keys() == cc.keys()
    # one disagreement: 6_CC.txt line 3622-3624 gives J68.200 表 7-105 (wrapped name), OpenDRG 115
    assert {k: (v, cc[k]) for k, v in s.cc.items() if cc[k] != v} == {"J68.200": ("105", "115")}
    assert s.cce == {k: {v} for k, v in dat("CCE").items()}
    assert (len(s.adrgs), len(s.drgs)) == (376, 628)


@needs_rules
def test_shipped_chs20_pack_is_the_import_of_the_text(tmp_path):
    """jobs/packs/chs-2.0 is generated: it must be exactly what the importer writes today."""
    from importlib import resources

    import_rules(RULES / "CHS_DRG_20", tmp_path / "pack", log=lambda _: None)
    shipped = resources.files("jobs.packs") / "chs-2.0"
    for f in sorted((tmp_path / "pack").iterdir()):
        assert (shipped / f.name).read_text(encoding="utf-8") == f.read_text(encoding="utf-8"), f.name
    assert "Apache" in (shipped / "SOURCE.md").read_text(encoding="utf-8")
