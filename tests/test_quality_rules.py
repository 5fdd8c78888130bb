"""Every catalogue rule on a case that violates it and on a near miss that does not (one Spark pass)."""

from __future__ import annotations

from datetime import date

import pytest
from quality_fixtures import cases_df, write_tiny_pack

from quality.catalogue import load_catalogue
from quality.flags import flag_cases
from quality.pack import load_quality_pack

AS_OF = date(2026, 2, 1)
SAME_DAY = {"admit_date": date(2026, 1, 6), "discharge_date": date(2026, 1, 6), "los_days": 1}

# rule id -> (cases that must fail it, near misses that must be entirely clean)
CASES = {
    "Q-REQ": ([{"principal_dx": None}, {"hospital_id": " "}, {"total_cost": None}], []),
    "Q-FMT-DX": (
        [{"principal_dx": "I21.0"}, {"secondary_dx": ["i10.x00"]}],
        [{"secondary_dx": ["E11.400x021+G63.2*"]}],
    ),
    "Q-FMT-PX": ([{"principal_proc": "3607"}], [{"principal_proc": "36.0700"}]),
    "Q-CODE-DX": ([{"secondary_dx": ["I21.000x999"]}, {"principal_dx": "J18.901"}], [{"secondary_dx": ["W19.x00"]}]),
    "Q-CODE-PX": ([{"other_procs": ["99.9999"]}, {"principal_proc": "36.0799"}], [{"other_procs": ["96.7100"]}]),
    "Q-PDX-SYM": ([{"principal_dx": "R40.100"}], [{"secondary_dx": ["R40.100"]}]),
    "Q-PDX-EXT": ([{"principal_dx": "W19.x00"}], []),
    "Q-PDX-AST": ([{"principal_dx": "G63.2*"}], [{"principal_dx": "E11.400x021+G63.2*"}]),
    "Q-SEX-MALE": (
        [{"sex": 1, "principal_dx": "Q51.000"}, {"sex": 1, "secondary_dx": ["O80.000"]},
         {"sex": 1, "principal_proc": "68.4100"}],
        [{"sex": 2, "principal_dx": "D25.900", "principal_proc": "68.4100"}, {"sex": 1, "principal_dx": "K35.800"}],
    ),
    "Q-SEX-FEMALE": (
        [{"sex": 2, "principal_proc": "60.2100"}, {"sex": 2, "principal_dx": "N40.x00"}],
        [{"sex": 1, "principal_dx": "N40.x00", "principal_proc": "60.2100"}],
    ),
    "Q-AGE-NEWBORN": (
        [{"age_years": 30, "principal_dx": "P07.300"}, {"age_years": 40, "principal_dx": "A04.000x001"},
         # a baby's code copied onto the mother's record, as a secondary diagnosis (it is an MCC here)
         {"sex": 2, "age_years": 62, "secondary_dx": ["I10.x00", "P07.200"]},
         {"sex": 2, "age_years": 1, "secondary_dx": ["P07.300"]},
         {"sex": 2, "age_years": 35, "secondary_dx": ["P00.000"]}],  # not in the pack: still newborn-only
        [{"age_years": 0, "age_days": 200, "principal_dx": "P07.300"},
         {"age_years": 0, "age_days": 3, "principal_dx": "A04.000x001"},
         {"age_years": 0, "age_days": 300, "secondary_dx": ["P07.200"]},
         {"age_years": 40, "secondary_dx": ["A04.000x001"]},  # only a principal diagnosis of newborns
         {"age_years": 40, "principal_dx": "P37.000"},  # the pack groups it outside the newborn MDC
         {"age_years": 40, "secondary_dx": ["P37.000"]}],
    ),
    "Q-AGE-OBSTETRIC": (
        [{"sex": 2, "age_years": 65, "principal_dx": "O80.000"}, {"sex": 2, "age_years": 8, "principal_dx": "O80.000"}],
        [{"sex": 2, "age_years": 30, "principal_dx": "O80.000"}],
    ),
    "Q-DATE-ORDER": ([{"admit_date": date(2026, 1, 9)}], [SAME_DAY]),
    "Q-DATE-LOS": ([{"los_days": 9}, {**SAME_DAY, "los_days": 0}], []),
    "Q-DATE-FUTURE": (
        [{"admit_date": date(2026, 2, 24), "discharge_date": date(2026, 3, 1), "los_days": 5}],
        [{"admit_date": date(2026, 1, 27), "discharge_date": AS_OF, "los_days": 5}],
    ),
    "Q-COST-POS": (
        [{"total_cost": 0.0, **dict.fromkeys(("cost_service", "cost_diagnosis", "cost_treatment", "cost_drug",
                                              "cost_material", "cost_other"), 0.0)}],
        [{"total_cost": 0.01, **dict.fromkeys(("cost_service", "cost_diagnosis", "cost_treatment", "cost_drug",
                                               "cost_material", "cost_other"))}],
    ),
    "Q-COST-SUM": ([{"cost_drug": 900.0}], [{"cost_drug": 509.0}]),
    "Q-VENT": ([{"vent_hours": 121.0}], [{"vent_hours": 120.0}]),
}


@pytest.fixture(scope="module")
def flagged(spark, tmp_path_factory):
    pack = load_quality_pack(spark, write_tiny_pack(tmp_path_factory.mktemp("pack")))
    rows, expect = [{}], [("clean", None)]
    for rule_id, (fail, ok) in CASES.items():
        rows += fail + ok
        expect += [("fail", rule_id)] * len(fail) + [("clean", rule_id)] * len(ok)
    # duplicates: same patient, hospital and admission date; the first received stays clean
    rows += [{"patient_id": "dup", "source_row": 900}, {"patient_id": "dup", "source_row": 901}]
    expect += [("clean", "Q-DUP"), ("fail", "Q-DUP")]
    rows += [  # severity after CC exclusions (J96.000 is excluded under principal J18.900)
        {"secondary_dx": ["E11.900", "J96.000"]},
        {"principal_dx": "I21.000x001", "secondary_dx": ["J96.000"]},
        {"secondary_dx": ["J96.000"]},
    ]
    expect += [("clean", None)] * 3
    df = cases_df(spark, rows)
    out = {r.case_id: r for r in flag_cases(df, pack, load_catalogue(), AS_OF).collect()}
    return [(f"C{i}", kind, rule) for i, (kind, rule) in enumerate(expect)], out


def test_every_rule_has_a_failing_case():
    catalogue_ids = {r.id for r in load_catalogue().rules}
    assert catalogue_ids == set(CASES) | {"Q-DUP"}


def test_violations_are_flagged_and_near_misses_are_clean(flagged):
    expected, out = flagged
    assert len(out) == len(expected), "a case was lost: cases are never deleted"
    wrong = []
    for case_id, kind, rule in expected:
        failed = out[case_id].failed_rules
        if kind == "fail" and rule not in failed:
            wrong.append(f"{case_id} should fail {rule}, got {failed}")
        if kind == "clean" and failed:
            wrong.append(f"{case_id} (near miss of {rule}) should be clean, got {failed}")
    assert not wrong, "\n".join(wrong)


def test_each_defect_is_reported_once(flagged):
    """A malformed code is not also 'unknown'; reversed dates are not also a LOS mismatch."""
    expected, out = flagged
    by_rule = {}
    for case_id, kind, rule in expected:
        if kind == "fail":
            by_rule.setdefault(rule, []).append(out[case_id].failed_rules)
    assert by_rule["Q-FMT-DX"][0] == ["Q-FMT-DX"]
    assert by_rule["Q-DATE-ORDER"][0] == ["Q-DATE-ORDER"]
    assert by_rule["Q-CODE-DX"][0] == ["Q-CODE-DX"]


def test_severity_priceable_and_worst(flagged):
    expected, out = flagged
    sev = [out[f"C{len(expected) - 3 + i}"].severity for i in range(3)]
    assert sev == ["CC", "MCC", "NONE"]
    los = next(out[c] for c, k, r in expected if k == "fail" and r == "Q-DATE-LOS")
    assert (los.worst_severity, los.priceable) == ("warning", True)
    order = next(out[c] for c, k, r in expected if k == "fail" and r == "Q-DATE-ORDER")
    assert (order.worst_severity, order.priceable) == ("error", False)
    symptom = next(out[c] for c, k, r in expected if k == "fail" and r == "Q-PDX-SYM")
    assert (symptom.worst_severity, symptom.priceable) == ("warning", True)  # the pack accepts R-codes
    clean = out["C0"]
    assert (clean.failed_rules, clean.worst_severity, clean.priceable) == ([], None, True)


def test_a_code_the_pack_accepts_as_principal_is_never_an_error():
    """Severity decides priceability: a principal-diagnosis rule that flags a code some ADRG of the pack
    lists as its principal diagnosis must be a warning (R40.100 is BS1's in the tiny pack)."""
    import re

    from quality_fixtures import PACK_TABLES

    accepted = [line.split(",")[2] for line in PACK_TABLES["adrg_members.csv"].splitlines()[1:]
                if line.split(",")[1] == "principal_diagnosis"]
    catalogue = load_catalogue()
    for rule in catalogue.rules:
        if rule.check.kind == "principal_not_pattern" and any(re.search(rule.check.pattern, c) for c in accepted):
            assert rule.severity == "warning", f"{rule.id} would drop cases the pack groups"
    assert catalogue.rule("Q-PDX-SYM").severity == "warning"
    assert all(r.severity_reason for r in catalogue.rules)


def test_a_rule_without_its_severity_reason_fails_at_load(tmp_path):
    import yaml

    from jobs.errors import PipelineError
    from quality.catalogue import DEFAULT_RULES

    data = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    del data["rules"][3]["severity_reason"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PipelineError, match="rules.3.severity_reason"):
        load_catalogue(path)
