"""OpenDRG's own grouper, run in-process as an independent oracle for differential testing.

Used by tests/test_scheme_agreement.py and bench/bench_agreement.py, never by the pipeline. OpenDRG is
not part of the project: it is read from a checkout given by path (../shared/reference/opendrg), put on
sys.path and imported as its authors run it. Cases are passed as typed MedicalRecord fields (its
string entry point turns the sex into a string, which some schemes compare with 1 and others with
'1'): the sex is an int that also equals its string form, so every scheme reads it as intended.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


class Sex(int):
    """1 or 2 that also equals '1' / '2' (schemes compare with either)."""

    def __eq__(self, other):
        if isinstance(other, str):
            return other.strip() == str(int(self))
        return int(self) == other

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = int.__hash__


class OpenDrg:
    """`group(case)` -> (mdc, adrg, drg) as OpenDRG's GroupProxy gives them for one canonical case
    (dict with principal_dx, secondary_dx, principal_proc, other_procs, sex, age_years, age_days,
    birth_weight_g, los_days, discharge_disposition). QY results are returned as `<letter>QY` for
    the ADRG, like the project's grouper."""

    def __init__(self, root: str | Path, scheme: str):
        root = Path(root).resolve()
        if not (root / "drg_group" / scheme / "GroupProxy.py").is_file():
            raise FileNotFoundError(f"OpenDRG scheme {scheme} not found under {root}/drg_group")
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        proxy = importlib.import_module(f"drg_group.{scheme}.GroupProxy")
        base = importlib.import_module(f"drg_group.{scheme}.Base")
        self.fields = base.MedicalRecord._fields
        self.record = base.MedicalRecord
        self.proxy = proxy.GroupProxy()

    def group(self, case: dict) -> tuple[str | None, str | None, str]:
        procs = [p for p in [case.get("principal_proc"), *(case.get("other_procs") or [])] if p]
        values = {
            "Index": case.get("case_id", "1"),
            "gender": Sex(case.get("sex") or 9),
            "age": case.get("age_years") if case.get("age_years") is not None else 0,
            "ageDay": case.get("age_days"),
            "weight": case.get("birth_weight_g"),
            "dept": "",
            "inHospitalTime": case.get("los_days") if case.get("los_days") is not None else 1,
            "leavingType": case.get("discharge_disposition") or 1,
            "zdList": "|".join([case["principal_dx"], *(case.get("secondary_dx") or [])]),
            "ssList": "|".join(procs),
            "icuHours": 0,
        }
        record = self.record(**{f: values[f] for f in self.fields})
        try:
            r = self.proxy.group(record)
        except Exception as exc:  # noqa: BLE001 - a defect of the oracle's own source is a result class
            return None, None, f"ERROR {type(exc).__name__}: {exc}"
        mdc = r.mdc if r.mdc and r.mdc != "0000" else None
        adrg = r.adrg if r.adrg not in ("00", "") else None
        if adrg == "QY":
            adrg = r.drg
        return mdc, adrg, r.drg
