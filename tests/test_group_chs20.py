"""Known answers for every rule form of CHS-DRG 2.0, grouped with the pack `drg definitions import
opendrg-rules` builds from the NHSA rule text in ../shared (skipped when absent).

Each case is constructed from the parsed text (jobs.schemes.rules_text), not from the pack: a code
listed for exactly one ADRG, the lists of one alternative entry condition, a CC/MCC whose exclusion
table does or does not list the principal diagnosis. The expected DRG is the ADRG's DRG for that
severity as the 634-DRG list splits it (1 MCC, 3 CC, 5 neither, 9 unsplit; an ADRG split 1/5 puts CC
with 5, one split 3/5 puts MCC with 3), worked out here independently of the importer and the grouper.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from jobs.definitions import load_pack
from jobs.group import group_cases
from jobs.schemes.rules_pack import import_rules
from jobs.schemes.rules_text import ANY_DX, ANY_PROC, PDX, PPROC, SDX, read_scheme
from tests.test_group import case, frame

RULES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "opendrg-rules" / "CHS_DRG_20"
pytestmark = pytest.mark.skipif(not RULES.is_dir(), reason=f"CHS-DRG 2.0 rule text not found at {RULES}")


class Text:
    """Lookups over the parsed 2.0 text that the cases are built from."""

    def __init__(self):
        self.s = s = read_scheme(RULES)
        self.splits = defaultdict(set)
        for _d, adrg, suffix, _n in s.drgs:
            self.splits[adrg].add(suffix)
        self.roles = defaultdict(set)  # code -> {(adrg, role)} over every ADRG list
        for a in s.adrgs.values():
            for cond in a.conditions:
                for term in cond:
                    for atom in term:
                        for c in a.codes(atom):
                            self.roles[c].add((a.code, atom.role))
        self.mdcs_of = defaultdict(set)
        for m in s.mdcs.values():
            for c in m.diagnoses:
                self.mdcs_of[c].add(m.code)
        excl = defaultdict(set)
        for pdx, tables in s.cce.items():
            for t in tables:
                excl[t].add(pdx)
        self.excl = excl
        hiv = set(s.mdcs["MDCY"].diagnoses)
        # secondaries drawn for severity: no injuries (two body regions would mean MDCZ), no perinatal
        # codes, no HIV codes
        # (any HIV diagnosis means MDCY), none a list of any ADRG names as a secondary diagnosis
        as_sdx = {c for c, r in self.roles.items() if {role for _, role in r} & {SDX, ANY_DX}}
        plain = lambda c: c[0] not in "STP" and c not in hiv and c not in as_sdx  # noqa: E731
        self.mcc = sorted(c for c in s.mcc if plain(c))
        self.cc = sorted(c for c in s.cc if plain(c))

    def lists(self, adrg: str, role: str) -> list[list[str]]:
        a = self.s.adrgs[adrg]
        return [a.codes(x) for cond in a.conditions for t in cond for x in t if x.role == role]

    def only_in(self, adrg: str, role: str) -> list[str]:
        """Codes of the ADRG's `role` lists that no other ADRG lists, in one MDC only (no dagger pairs)."""
        out = []
        for codes in self.lists(adrg, role):
            for c in codes:
                if "+" in c or {a for a, _ in self.roles[c]} != {adrg}:
                    continue
                if role in (PDX, ANY_DX) and len(self.mdcs_of[c]) != 1:
                    continue
                out.append(c)
        return sorted(set(out))

    def drg(self, adrg: str, severity: str) -> str:
        have = self.splits[adrg]
        if "9" in have:
            return adrg + "9"
        order = {"MCC": "135", "CC": "35", "NONE": "5"}[severity]
        return adrg + next(s for s in order if s in have)

    def severity(self, pdx: str, sdx) -> str:
        """The worst CC/MCC among the secondaries whose exclusion table does not list the principal."""
        levels = {
            level
            for c in sdx
            if c != pdx
            for level, table in (("MCC", self.s.mcc), ("CC", self.s.cc))
            if c in table and pdx not in self.excl.get(table[c], ())
        }
        return "MCC" if "MCC" in levels else "CC" if "CC" in levels else "NONE"

    def secondary(self, kind: str, pdx: str, counts: bool, rnd: random.Random) -> str:
        pool = self.mcc if kind == "MCC" else self.cc
        table = self.s.mcc if kind == "MCC" else self.s.cc
        ok = [c for c in pool if c != pdx and (pdx in self.excl.get(table[c], ())) != counts]
        return rnd.choice(ok)


@pytest.fixture(scope="module")
def chs20(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("chs20")
    import_rules(RULES, out, log=lambda _: None)
    return Text(), load_pack(spark, out)


def _group(spark, pack, rows):
    got = group_cases(frame(spark, rows), pack).select("case_id", "adrg", "drg", "ungroupable_reason").collect()
    return {r.case_id: r for r in got}


def test_every_rule_form_of_chs20(spark, chs20):
    t, pack = chs20
    rnd = random.Random(20)
    rows, want = [], {}

    def add(name, target, pdx, sdx=(), proc=None, others=(), **kw):
        """`target`: an ADRG (its DRG for the case's severity is expected) or a literal DRG (QY, 0000)."""
        rows.append(case(name, pdx, list(sdx), proc=proc, others=list(others), **kw))
        want[name] = t.drg(target, t.severity(pdx, sdx)) if target in t.s.adrgs else target

    first = lambda codes: codes[0]  # noqa: E731  deterministic picks: the text's first eligible code

    # 1. medical ADRG by principal diagnosis, and severity after exclusions (ES1-like 1/3/5 split)
    med, pdx = next(
        (a, c)
        for a in t.s.adrgs
        if a[0] == "E" and a[1] >= "R" and t.splits[a] == {"1", "3", "5"}
        for c in t.only_in(a, PDX)
        if any(c in t.excl.get(t.s.mcc[m], ()) for m in t.mcc)  # some MCC its exclusion table cancels
    )
    mcc, cc = t.secondary("MCC", pdx, True, rnd), t.secondary("CC", pdx, True, rnd)
    add("pdx-mcc", med, pdx, ["Z00.000", cc, mcc])
    add("pdx-cc", med, pdx, [cc])
    add("pdx-none", med, pdx)
    add("pdx-mcc-excluded", med, pdx, [t.secondary("MCC", pdx, False, rnd), cc])
    # ADRGs split 1/5 and 3/5: CC goes with 5, MCC with 3
    for split, sev, name in (({"1", "5"}, "CC", "split15-cc"), ({"3", "5"}, "MCC", "split35-mcc")):
        a = next(
            a for a in t.s.adrgs if a[1] >= "R" and a[0] in "BCDEFGHIJKL" and t.splits[a] == split and t.only_in(a, PDX)
        )
        p = first(t.only_in(a, PDX))
        add(name, a, p, [t.secondary(sev, p, True, rnd)])

    # 2. surgical ADRG by principal procedure; the same procedure as other procedure only is QY
    gpdx = first(t.only_in(next(a for a in t.s.adrgs if a[0] == "G" and a[1] >= "R" and t.only_in(a, PDX)), PDX))
    surg = next(
        a
        for a in t.s.adrgs
        if a[0] == "G" and a[1] <= "J" and len(t.s.adrgs[a].conditions[0]) == 1 and t.only_in(a, PPROC)
    )
    gproc = first(t.only_in(surg, PPROC))
    add("ppx", surg, gpdx, proc=gproc)
    add("ppx-other-position", "GQY", gpdx, proc="89.0300", others=[gproc])  # 89.0300: in no list
    # 3. QY: an operating-room procedure of another MDC
    add("qy", "EQY", pdx, proc=gproc)

    # 4. diagnosis + procedure (BB2: bleeding diagnosis and a craniotomy)
    bleed = next(c for c in t.lists("BB2", PDX)[0] if t.mdcs_of[c] == {"MDCB"} and "+" not in c)
    add("dx+proc", "BB2", bleed, proc=t.lists("BB2", PPROC)[0][0])
    craniotomy = t.lists("BB2", PPROC)[0][0]  # without a bleeding diagnosis: the next ADRG listing it
    later = next(a for a in t.s.adrgs if a > "BB2" and a[0] == "B" and (a, PPROC) in t.roles[craniotomy])
    add("dx+proc-other-dx", later, first(t.only_in("BR2", PDX)), proc=craniotomy)

    # 5. two any-position lists (同时包含以下手术或操作 ... 和 ...): AC1, principal from the second list
    l1, l2 = t.lists("AC1", ANY_PROC)
    add("both-lists", "AC1", "N18.500", proc=l2[0], others=[l1[0]])

    # 6. alternative entry conditions, one case per alternative
    ja1 = t.s.adrgs["JA1"].lists
    bc = first(ja1["主要诊断"])
    px = lambda n: ja1[f"手术或操作 {n}"][0]  # noqa: E731
    add("JA1-alt1", "JA1", bc, proc=px(1), others=[px(2)])
    add("JA1-alt2", "JA1", bc, proc=px(3), others=[px(1), px(4)])
    add("JA1-alt3", "JA1", bc, proc=px(5), others=[px(4)])
    ib1 = t.s.adrgs["IB1"].lists
    ipdx = next(
        c for c in t.s.mdcs["MDCI"].diagnoses if c not in ib1["主要诊断"] and "+" not in c and len(t.mdcs_of[c]) == 1
    )
    add("IB1-alt3", "IB1", ipdx, proc=ib1["手术或操作 4"][0], others=[ib1["手术或操作 3"][0]])
    add("IB1-alt2", "IB1", ipdx, proc=ib1["主要手术或操作 2"][0])
    ah2 = t.s.adrgs["AH2"].lists
    add("AH2-alt-sdx", "AH2", pdx, ["Z93.000"], proc=ah2["手术或操作 2"][0])
    add("AH2-alt-procs", "AH2", pdx, proc=ah2["手术或操作 2"][0], others=[ah2["手术或操作 1"][0]])
    na1 = t.s.adrgs["NA1"].lists
    add("NA1-alt2", "NA1", na1["主要诊断"][0], proc=na1["手术或操作 2"][0], others=[na1["手术或操作 3"][0]], sex=2)
    of1 = t.s.adrgs["OF1"].lists
    add(
        "OF1-alt2",
        "OF1",
        of1["主要诊断 2"][0],
        [of1["其他诊断"][0]],
        proc=of1["主要手术或操作"][0],
        sex=2,
        age_years=30,
    )
    wb1 = t.s.adrgs["WB1"].lists
    wpdx = first(t.s.mdcs["MDCW"].diagnoses)
    add("WB1-alt2", "WB1", wpdx, [wb1["其他诊断 2"][0]], proc=wb1["主要手术或操作"][0])

    # 7. "principal or other diagnosis" lists: PS1 (newborn < 1500 g), YR1 by a secondary HIV diagnosis,
    #    OR1 by other diagnosis (vaginal delivery)
    ps1_dx = t.lists("PS1", ANY_DX)[0][0]
    pu1 = first(t.only_in("PU1", PDX))
    add("PS1-sdx", "PS1", pu1, [ps1_dx], age_years=0, age_days=3, birth_weight_g=1200)
    add("PS3-weight", "PS3", pu1, [t.lists("PS3", ANY_DX)[0][0]], age_years=0, age_days=3, birth_weight_g=2200)
    add("PU1-newborn", "PU1", pu1, age_years=0, age_days=3, birth_weight_g=3200)
    add("PV1-infant", "PV1", first(t.only_in("PV1", PDX)), age_years=0, age_days=120)
    hiv = t.lists("YR1", ANY_DX)[0][0]
    add("YR1-sdx", "YR1", "J18.900", [hiv])
    # WR1 by an other diagnosis (burn of >= 30 % body surface); WR2's other-diagnosis alternative is
    # unreachable (every MDCW principal diagnosis is in WR2's principal list), so it has no case
    add("WR1-sdx", "WR1", wpdx, [t.lists("WR1", SDX)[0][0]])
    add("OR1-sdx", "OR1", first(t.only_in("OZ1", PDX)), [t.lists("OR1", SDX)[0][0]], sex=2, age_years=28)

    # 8. ADRGs entered by any procedure: SB1, TB1, XJ1, YC1
    for adrg, p in (
        ("SB1", "A41.900"),
        ("TB1", first(t.s.mdcs["MDCT"].diagnoses)),
        ("XJ1", first(t.s.mdcs["MDCX"].diagnoses)),
        ("YC1", hiv),
    ):
        add(f"{adrg}-any-proc", adrg, p, proc=gproc)

    # 9. WJ1: a burn no WB1-WB3 diagnosis condition takes, with a principal procedure of their lists
    wb_dx = {c for a in ("WB1", "WB2", "WB3") for k, v in t.s.adrgs[a].lists.items() if "诊断" in k for c in v}
    wj_pdx = next(c for c in t.s.mdcs["MDCW"].diagnoses if c not in wb_dx)
    add("WJ1-via-WB", "WJ1", wj_pdx, proc=t.s.adrgs["WB3"].lists["主要手术或操作"][0])

    # 10. MDCZ: each of the nine body regions with the next one, no procedure -> ZZ1; ZB1 by procedure;
    #     two injuries of one region are no multiple trauma
    regions = list(t.s.mdcs["MDCZ"].regions.values())
    assert len(regions) == 9
    single = lambda codes: next(c for c in codes if len(t.mdcs_of[c]) == 2 and "+" not in c)  # noqa: E731
    for i, codes in enumerate(regions):
        add(f"ZZ1-region{i + 1}", "ZZ1", single(codes), [regions[(i + 1) % 9][0]])
    zb1 = t.lists("ZB1", PPROC)[0][0]
    add("ZB1", "ZB1", single(regions[0]), [regions[1][0]], proc=zb1)

    one_region = single(regions[1])
    same_region = next(c for c in regions[1] if c != one_region)
    body = next(a for a, r in sorted(t.roles[one_region]) if r == PDX and a[1] >= "R")
    add("trauma-one-region", body, one_region, [same_region])

    # 11. sex decides between MDCM and MDCN for a diagnosis both list
    both = next(c for c in t.s.mdcs["MDCM"].diagnoses if c in t.s.mdcs["MDCN"].diagnoses)
    m_adrg = next(a for a, r in t.roles[both] if a[0] == "M" and a[1] >= "R" and r == PDX)
    n_adrg = next(a for a, r in t.roles[both] if a[0] == "N" and a[1] >= "R" and r == PDX)
    add("sex-male", m_adrg, both, sex=1)
    add("sex-female", n_adrg, both, sex=2)

    # 12. an invalid principal diagnosis (ZD_INVALID) is ungroupable
    add("invalid-pdx", "0000", "W10.x00", [mcc])

    got = _group(spark, pack, rows)
    wrong = {k: (v, got[k].drg, got[k].ungroupable_reason) for k, v in want.items() if got[k].drg != v}
    assert wrong == {}


def test_chs20_every_adrg_by_its_unambiguous_entries(spark, chs20):
    """For every ADRG of a body-system MDC: a principal diagnosis (medical ADRGs) or principal procedure
    (procedure ADRGs entered by one list) that the text lists for that ADRG alone, with no, a CC and an
    MCC secondary that count, and an MCC its exclusion table cancels: the DRG the 634-DRG list gives."""
    t, pack = chs20
    rnd = random.Random(634)
    special = {"MDCA", "MDCP", "MDCY", "MDCZ"}
    rows, want = [], {}
    medical_pdx = {}
    for code, a in t.s.adrgs.items():
        if a.mdc in special or code[1] < "R":
            continue
        if len(a.conditions) == 1 and len(a.conditions[0]) == 1 and a.conditions[0][0][0].role == PDX:
            codes = t.only_in(code, PDX)
            if codes:
                medical_pdx.setdefault(a.mdc, rnd.choice(codes))
                for pdx in rnd.sample(codes, min(2, len(codes))):
                    sex = 2 if a.mdc == "MDCN" or (a.mdc == "MDCO") else 1
                    mcc, cc = t.secondary("MCC", pdx, True, rnd), t.secondary("CC", pdx, True, rnd)
                    cancelled = [m for m in t.mcc if m != pdx and pdx in t.excl.get(t.s.mcc[m], ())]
                    gone = [rnd.choice(cancelled)] if cancelled else []  # an MCC its exclusion table cancels
                    for name, sdx in (("none", []), ("cc", [cc]), ("mcc", [cc, mcc]), ("cancelled", gone)):
                        rows.append(case(f"{code}-{pdx}-{name}", pdx, sdx, sex=sex, age_years=30))
                        want[rows[-1]["case_id"]] = t.drg(code, t.severity(pdx, sdx))
    n_medical = len(rows)
    for code, a in t.s.adrgs.items():
        if a.mdc in special or code[1] > "Q" or a.mdc not in medical_pdx:
            continue
        if len(a.conditions) == 1 and len(a.conditions[0]) == 1 and a.conditions[0][0][0].role == PPROC:
            procs = t.only_in(code, PPROC)
            if procs:
                pdx = medical_pdx[a.mdc]
                sex = 2 if a.mdc in ("MDCN", "MDCO") else 1
                mcc = t.secondary("MCC", pdx, True, rnd)
                for name, sdx in (("none", []), ("mcc", [mcc])):
                    rows.append(case(f"{code}-{name}", pdx, sdx, proc=rnd.choice(procs), sex=sex, age_years=30))
                    want[rows[-1]["case_id"]] = t.drg(code, t.severity(pdx, sdx))
    assert n_medical > 1200 and len(rows) - n_medical > 200
    got = _group(spark, pack, rows)
    wrong = {k: (v, got[k].drg, got[k].ungroupable_reason) for k, v in want.items() if got[k].drg != v}
    assert wrong == {}
