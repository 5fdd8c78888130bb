"""Realistic cases drawn from a format-2 rule pack, rule by rule (driver side, small samples).

Why per rule: a case drawn for ADRG X must look like X's real cases *as the scheme defines them*:
its principal diagnosis from X's (and its MDC's) lists, one procedure from each list of the
alternative drawn (JA1's "list 1 + list 2 or 1 + 3 + 4"), the sex, age, newborn weight and LOS its
conditions ask for, trauma in as many body regions as MDCZ counts, MCC/CC secondaries that the
exclusion tables let count (or not) for the split drawn. Around that core the case gets what real
records carry: further procedures (other OR procedures of the same MDC, non-OR procedures),
unrelated secondary diagnoses, ventilation coded as a procedure or only as hours. Every rule kind a
pack can say is thus exercised; the differential tests group these cases with both groupers.
"""

from __future__ import annotations

import random
from collections import defaultdict

from jobs.schemes.pack import Atom, RulePack

PX_KINDS = ("ppx", "px", "proc")
VENT_CODE = "96.7201"


class SchemeSampler:
    """`draw(n, seed)` -> canonical case dicts for a rule pack (see module docstring)."""

    def __init__(self, pack: RulePack):
        self.pack = pack
        self.entries = [e for e in pack.adrgs if e["active"] and e["kind"] != "qy"]
        self.lists = {k: sorted(v) for k, v in pack.lists.items()}
        sev = pack.severity
        self.mcc = sorted(c for c, lv in sev.items() if "MCC" in lv)
        self.cc = sorted(c for c, lv in sev.items() if "CC" in lv and "MCC" not in lv)
        dx = sorted(c for c, (k, _n) in pack.code_names.items() if k == "diagnosis")
        self.plain_dx = [c for c in dx if c not in sev and not c.startswith(("O", "P", "Z3", "S", "T"))] or dx
        px_all = sorted(c for c, (k, _n) in pack.code_names.items() if k == "procedure")
        valid = set().union(*(pack.lists[n] for n in pack.lists if "SS_VALID" in n)) if pack.lists else set()
        self.non_or = [c for c in px_all if c not in valid] or px_all
        # per MDC: its procedure lists (other OR procedures a surgical case of that MDC may carry)
        self.mdc_px: dict[str, list[str]] = defaultdict(list)
        for e in self.entries:
            for alt in pack.alternatives("adrg", e["adrg"]):
                for a in alt:
                    if a.kind in PX_KINDS and a.op == "in":
                        self.mdc_px[e["mdc"]].append(a.list)
        self.regions = {rs: defaultdict(list) for rs in pack.regions}
        for rs, codes in pack.regions.items():
            for code, region in sorted(codes.items()):
                self.regions[rs][region].append(code)

    def _excluded(self, code: str, level: str, pdx: str) -> bool:
        table = self.pack.severity.get(code, {}).get(level)
        return bool(table) and table in self.pack.cc_exclusions.get(pdx, set())

    @staticmethod
    def _number(atoms: list[Atom], kind: str, rng: random.Random, lo: float, hi: float) -> float | None:
        """A value in [lo, hi] meeting every comparison on `kind`; None when no atom names it."""
        named = [a for a in atoms if a.kind == kind]
        if not named:
            return None
        for a in named:
            v = a.value
            if a.op == "=":
                return v
            if a.op in (">", ">="):
                lo = max(lo, v + (1 if a.op == ">" else 0))
            elif a.op in ("<", "<="):
                hi = min(hi, v - (1 if a.op == "<" else 0))
        return float(rng.randint(int(lo), int(max(lo, hi))))

    def _one(self, rng: random.Random, i: int) -> dict:
        pack = self.pack
        e = rng.choice(self.entries)
        drgs = pack.drgs.get(e["adrg"], [])
        d = rng.choice(drgs) if drgs else None
        atoms = [
            *rng.choice(pack.alternatives("mdc", e["mdc"])),
            *rng.choice(pack.alternatives("adrg", e["adrg"])),
            *(rng.choice(pack.alternatives("drg", d["drg"])) if d else []),
        ]
        proc_kind = "ppx" if pack.settings.procedure_entry == "principal" else "px"
        kinds = defaultdict(list)
        for a in atoms:
            kinds[(proc_kind if a.kind == "proc" else a.kind, a.op)].append(a)
        # principal diagnosis: in every pdx list at once when possible
        pdx_lists = [set(pack.lists[a.list]) for a in kinds[("pdx", "in")]]
        pool = sorted(set.intersection(*pdx_lists)) if pdx_lists else []
        if not pool and pdx_lists:
            pool = sorted(pdx_lists[-1])
        if not pool:
            dx_lists = kinds[("dx", "in")] or kinds[("sdx", "in")]
            pool = self.lists[dx_lists[0].list] if dx_lists else self.plain_dx
        pdx = rng.choice(pool)
        sdx: list[str] = []
        for a in kinds[("sdx", "in")] + kinds[("dx", "in")]:
            if a.kind == "dx" and pdx in pack.lists[a.list]:
                continue
            sdx.append(rng.choice(self.lists[a.list]))
        # procedures: the principal from every ppx list, then one code of each px list
        ppx_lists = [set(pack.lists[a.list]) for a in kinds[("ppx", "in")]]
        procs: list[str] = []
        if ppx_lists:
            pool = sorted(set.intersection(*ppx_lists)) or sorted(ppx_lists[-1])
            procs.append(rng.choice(pool))
        for a in kinds[("px", "in")]:
            if not set(procs) & pack.lists[a.list]:
                procs.append(rng.choice(self.lists[a.list]))
        no_or = bool(kinds[("px", "not_in")])
        if procs and not no_or:  # real surgical records carry more procedures
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                mdc_lists = self.mdc_px.get(e["mdc"])
                if mdc_lists and rng.random() < 0.3:
                    procs.append(rng.choice(self.lists[rng.choice(mdc_lists)]))
                else:
                    procs.append(rng.choice(self.non_or))
        elif not no_or and rng.random() < 0.25 and not ppx_lists:
            procs.append(rng.choice(self.non_or))  # a medical case with a diagnostic procedure
        # multiple trauma: diagnoses in as many regions as asked
        for a in atoms:
            if a.kind == "regions":
                regions = self.regions[a.list]
                have = {pack.regions[a.list].get(c) for c in [pdx, *sdx]} - {None}
                others = [r for r in sorted(regions) if r not in have]
                rng.shuffle(others)
                for r in others[: max(0, int(a.value) - len(have))]:
                    sdx.append(rng.choice(regions[r]))
        # severity for the split drawn
        want = {a.kind for a in atoms if a.kind in ("mcc", "cc", "cc_or_mcc") and a.value is True}
        none = {a.kind for a in atoms if a.kind in ("mcc", "cc", "cc_or_mcc") and a.value is False}
        if "mcc" in want or ("cc_or_mcc" in want and rng.random() < 0.5):
            sdx.append(self._pick_severity(rng, self.mcc, "MCC", pdx))
        elif "cc" in want or "cc_or_mcc" in want:
            sdx.append(self._pick_severity(rng, self.cc, "CC", pdx))
        elif not none and rng.random() < 0.15:  # a complication the exclusion table cancels, or none
            sdx.append(rng.choice(self.cc))
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
            sdx.append(rng.choice(self.plain_dx))
        rng.shuffle(sdx)
        # demographics meeting the conditions
        sex = self._number(atoms, "sex", rng, 1, 2)
        if sex is None:
            sex = float(rng.choice((1, 2)))
            if rng.random() < 0.03:  # a sex-specific diagnosis on the other sex now and then
                sex = 3.0 - sex
        age_days = self._number(atoms, "age_days", rng, 0, 364)
        age = self._number(atoms, "age_years", rng, 0, 95)
        if age_days is not None:
            age = 0.0
        if age is None:
            age = float(rng.choice((rng.randint(1, 17), rng.randint(18, 95), rng.randint(40, 90))))
        if age == 0 and age_days is None:
            age_days = float(rng.randint(0, 364))
        weight = self._number(atoms, "birth_weight", rng, 500, 4500)
        if weight is None and age == 0 and age_days is not None and age_days <= 28:
            weight = float(rng.randint(1200, 4300))
        los = self._number(atoms, "los", rng, 1, 60) or float(rng.randint(1, 20))
        disposition = self._number(atoms, "disposition", rng, 1, 9) or float(rng.choice((1, 1, 1, 1, 2, 5)))
        vent = None
        if VENT_CODE in procs:
            vent = float(rng.randint(96, 400))
        elif rng.random() < 0.02:
            vent = float(rng.randint(20, 300))  # ventilation recorded only as hours
        procs = list(dict.fromkeys(procs))
        return {
            "case_id": f"s{i}",
            "principal_dx": pdx,
            "secondary_dx": [c for c in dict.fromkeys(sdx) if c != pdx],
            "principal_proc": procs[0] if procs else None,
            "other_procs": procs[1:],
            "sex": int(sex),
            "age_years": int(age),
            "age_days": int(age_days) if age_days is not None else None,
            "birth_weight_g": int(weight) if weight is not None else None,
            "los_days": int(los),
            "discharge_disposition": int(disposition),
            "vent_hours": vent,
            "intended_drg": d["drg"] if d else None,
        }

    def _pick_severity(self, rng: random.Random, pool: list[str], level: str, pdx: str) -> str:
        for _ in range(20):
            code = rng.choice(pool)
            if not self._excluded(code, level, pdx):
                return code
        return code

    def draw(self, n: int, seed: int = 1) -> list[dict]:
        rng = random.Random(seed)
        return [self._one(rng, i) for i in range(n)]
