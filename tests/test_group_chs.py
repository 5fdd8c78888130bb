"""Cross-check on the full CHS-DRG 1.1 pack imported from ../shared (skips when absent).

Cases are constructed from the reference tables so that their answer follows from the tables alone
(a diagnosis or procedure listed in exactly one ADRG, a CC/MCC whose exclusion table does or does not
list the principal diagnosis), and the expected DRG is worked out here independently of the grouper.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict

import pytest

from jobs.definitions import import_chs11, load_pack
from jobs.group import group_cases
from tests.test_group import case, frame

FALLBACK = {"MCC": "135", "CC": "35", "NONE": "531"}


@pytest.fixture(scope="module")
def chs(spark, reference_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("chs11")
    import_chs11(reference_dir, out)

    def read(name):
        with (reference_dir / name).open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    return load_pack(spark, out), read


def _expected_drg(adrg, severity, suffixes):
    if "9" in suffixes[adrg]:
        return adrg + "9"
    return adrg + next(s for s in FALLBACK[severity] if s in suffixes[adrg])


def test_chs11_hand_constructed_cases_agree(spark, chs):
    pack, read = chs
    rnd = random.Random(11)
    adrg_mdc = {r["adrg"]: r["mdc"] for r in read("adrg.csv")}
    roles, dx_of, proc_of = defaultdict(set), defaultdict(set), defaultdict(set)
    for m in read("adrg_members.csv"):
        roles[m["adrg"]].add(m["role"])
        (dx_of if m["role"] == "principal_diagnosis" else proc_of)[m["code"]].add(m["adrg"])
    suffixes = defaultdict(set)
    for d in pack.dicts("drg"):
        suffixes[d["adrg"]].add(d["suffix"])
    sev = {c["code"]: (c["severity"], c["exclusion_table"]) for c in pack.dicts("codes") if c["severity"]}
    excl = defaultdict(set)
    for t, p in pack.rows["cc_exclusions"]:
        excl[t].add(p)
    # injuries are left out of the random secondaries: two injured body sites would mean MDCZ
    mcc = sorted(c for c, (s, _) in sev.items() if s == "MCC" and c[0] not in "ST")
    cc = sorted(c for c, (s, _) in sev.items() if s == "CC" and c[0] not in "ST")
    body = lambda a: adrg_mdc[a] not in ("MDCA", "MDCP", "MDCY", "MDCZ")  # noqa: E731
    # medical ADRGs with a principal diagnosis listed nowhere else
    medical = defaultdict(list)
    for code, adrgs in dx_of.items():
        (a,) = adrgs if len(adrgs) == 1 else (None,)
        if a and body(a) and a[1] >= "R" and roles[a] == {"principal_diagnosis"} and "+" not in code:
            medical[a].append(code)
    cases, want = [], {}

    def add(row, drg):
        cases.append(row)
        want[row["case_id"]] = drg

    for a in sorted(medical):
        pdx = rnd.choice(sorted(medical[a]))
        keep_mcc = next(c for c in rnd.sample(mcc, 50) if pdx not in excl[sev[c][1]] and c != pdx)
        keep_cc = next(c for c in rnd.sample(cc, 50) if pdx not in excl[sev[c][1]] and c != pdx)
        add(case(f"{a}-mcc", pdx, ["Z00.000", keep_cc, keep_mcc]), _expected_drg(a, "MCC", suffixes))
        add(case(f"{a}-cc", pdx, [keep_cc]), _expected_drg(a, "CC", suffixes))
        add(case(f"{a}-none", pdx, []), _expected_drg(a, "NONE", suffixes))
        cancelled = [c for c in mcc if pdx in excl[sev[c][1]] and c != pdx]
        if cancelled:
            add(case(f"{a}-excl", pdx, [cancelled[0]]), _expected_drg(a, "NONE", suffixes))
    # surgical / non-OR ADRGs reached by a procedure listed only there, with a medical pdx of the same MDC
    pdx_by_mdc = defaultdict(list)
    for a, codes in medical.items():
        pdx_by_mdc[adrg_mdc[a]] += codes
    for code, adrgs in sorted(proc_of.items()):
        (a,) = adrgs if len(adrgs) == 1 else (None,)
        if not a or not body(a) or roles[a] != {"principal_procedure"} or a in want or not pdx_by_mdc[adrg_mdc[a]]:
            continue
        pdx = sorted(pdx_by_mdc[adrg_mdc[a]])[0]
        # an earlier-priority ADRG of the MDC cannot match: the pdx is medical-only, the procedure unique
        add(case(a, pdx, [], proc=code), _expected_drg(a, "NONE", suffixes))
    # combined ADRG BB1: its diagnosis (also in medical BY1) plus its procedure (in MDCB only BB1/BB2)
    bb_dx = sorted(c for c, s in dx_of.items() if "BB1" in s)[0]
    bb_proc = sorted(
        c for c, s in proc_of.items() if "BB1" in s and not any(a not in ("BB1", "BB2") and a[0] in "AB" for a in s)
    )[0]
    add(case("BB1-combined", bb_dx, [], proc=bb_proc), _expected_drg("BB1", "NONE", suffixes))
    # pre-MDC and newborns
    add(case("vent", pdx_by_mdc["MDCE"][0], [], vent_hours=96.0), "AH19" if "9" in suffixes["AH1"] else "AH11")
    for bw, a in ((1200, "PS1"), (1700, "PS2"), (2200, "PS3"), (2600, "PS4")):
        add(
            case(f"nb-{bw}", "P07.300", [], age_years=0, age_days=2, birth_weight_g=bw),
            _expected_drg(a, "NONE", suffixes),
        )
    # ungroupable
    add(case("invalid", "XYZ.123", []), "0000")
    surg_f = sorted(c for c, s in proc_of.items() if "FB2" in s and not any(a[0] in "AE" for a in s))[0]
    add(case("qy", pdx_by_mdc["MDCE"][0], [], proc=surg_f), "EQY")

    assert len(cases) >= 300
    got = {r.case_id: (r.drg, r.rule_path) for r in group_cases(frame(spark, cases), pack).collect()}
    wrong = {k: (want[k], got[k]) for k in want if got[k][0] != want[k]}
    agreement = 1 - len(wrong) / len(want)
    assert agreement >= 0.995, "\n".join(f"{k}: want {w}, got {g}" for k, (w, g) in wrong.items())
