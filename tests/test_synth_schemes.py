"""The generator on the shipped national packs (format 2): every entry alternative is drawn, codes fit
the case's sex and age as the quality rules see them, surgical cases carry several procedures, trauma
spans the body regions MDCZ counts, and (diagnosis, procedures) combinations repeat with a long tail."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from jobs.definitions import locate_pack
from jobs.schemes.pack import parse_rule_pack
from jobs.synth import generate
from jobs.synth.config import load_config
from jobs.synth.pack import read_pack, restricted_codes


@pytest.fixture(scope="module")
def chs11():
    pack = parse_rule_pack(locate_pack("chs-1.1"))
    return pack, read_pack("chs-1.1", load_config(), 3)


def _codes(combo) -> set[str]:
    pdx, procs, sdx, _bound, _sev = combo
    return {pdx, *procs, *sdx}


def test_every_alternative_of_a_multi_list_adrg_is_drawn(chs11):
    pack, tables = chs11
    alternatives = pack.alternatives("adrg", "JA1")  # mastectomy: list 1 + list 2, or 1 + 3 + 4
    assert len(alternatives) == 2
    combos = [k for p in tables.profiles if p["adrg"] == "JA1" for k in p["combos"]]
    met = set()
    for k in combos:
        procs = set(k[1])
        for i, alt in enumerate(alternatives):
            if all(procs & pack.lists[a.list] for a in alt if a.kind in ("px", "ppx") and a.op == "in"):
                met.add(i)
    assert met == {0, 1}


def test_codes_fit_the_sex_as_the_quality_rules_see_it(chs11):
    pack, tables = chs11
    by_sex, _ = restricted_codes(pack.code_names, {})
    assert by_sex[1] and by_sex[2]
    sexed = {1: 0, 2: 0}
    for p in tables.profiles:
        for k in p["combos"]:
            if p["fixed_sex"]:
                assert not _codes(k) & by_sex[p["fixed_sex"]], (p["adrg"], k)
                sexed[p["fixed_sex"]] += 1
            else:
                assert not _codes(k) & (by_sex[1] | by_sex[2]), (p["adrg"], k)
    assert sexed[1] and sexed[2]  # male- and female-only groups are still drawn (prostate, uterus)
    pools = set(tables.comorbid) | {c for c, _ in tables.mcc} | {c for c, _ in tables.cc}
    assert not pools & (by_sex[1] | by_sex[2])  # e.g. N40 (prostate) is no comorbidity of a woman
    assert {p["fixed_sex"] for p in tables.profiles if p["mdc"] == "MDCM"} == {1}
    assert {p["fixed_sex"] for p in tables.profiles if p["mdc"] == "MDCN"} == {2}


def test_surgery_trauma_and_newborns_look_like_real_cases(chs11):
    pack, tables = chs11
    surgical = [k for p in tables.profiles if p["kind"] == "surgical" for k in p["combos"]]
    assert sum(len(k[1]) >= 2 for k in surgical) / len(surgical) > 0.5
    region_of = pack.regions["MDCZ"]
    for p in tables.profiles:
        if p["mdc"] == "MDCZ":
            for k in p["combos"]:
                assert len({region_of[c] for c in [k[0], *k[2]] if c in region_of}) >= 2, k
        if p["mdc"] == "MDCP":
            assert p["newborn"] or p["infant"]
    ps1 = next(p for p in tables.profiles if p["adrg"] == "PS1")  # birth weight < 1500 g
    assert ps1["newborn"] and ps1["bw_hi"] < 1500 and ps1["days_hi"] <= 28


def test_generated_cases_group_as_intended_and_repeat_combinations(spark):
    from jobs.definitions import load_pack
    from jobs.group import group_cases

    cases, truth, _ = generate(spark, 2000, 1, 5, 5, "chs-1.1", error_rate=0.0)
    cases = cases.localCheckpoint()
    grouped = group_cases(cases.drop("malformed_row"), load_pack(spark, "chs-1.1")).select("case_id", "drg")
    # grouped once: the format-2 grouper is the slow part of this test
    joined = grouped.join(truth.select("case_id", "true_drg", "true_adrg"), "case_id").localCheckpoint()
    n = joined.count()
    assert joined.where("substr(drg, 1, 3) = true_adrg").count() / n > 0.995
    assert joined.where("drg = true_drg").count() / n > 0.99
    # ventilation coded both ways: the >= 96 h procedure comes with its hours
    vent = cases.where(F.array_contains(F.concat(F.array("principal_proc"), "other_procs"), "96.7201"))
    assert vent.where("vent_hours IS NULL OR vent_hours < 96").count() == 0
    # DIP keys (diagnosis at 5 characters + procedures): a few combinations carry many cases
    procs = F.array_sort(F.array_distinct(F.filter(F.concat(F.array("principal_proc"), "other_procs"),
                                                   lambda x: x.isNotNull())))
    keys = cases.groupBy(F.substring("principal_dx", 1, 5), F.array_join(procs, "+")).count()
    assert keys.where("count >= 15").count() >= 10
    assert keys.where("count = 1").count() > 0  # and a long tail
