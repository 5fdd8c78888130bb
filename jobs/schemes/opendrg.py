"""`drg definitions import opendrg --from <scheme package> --out PACK`: an OpenDRG scheme package as a
format-2 pack, read as data.

OpenDRG/DRG_Python (Apache-2.0) generates one Python package per grouping scheme from the scheme's
rule tables, with a small set of code patterns: Grouper.py calls the MDCs in order; MDC/*.py test the
MDC entry, then call the MDC's ADRG modules in order, with a QY test between the procedure and the
medical ADRGs; ADRG/*.py test the ADRG entry over lists assigned in the same function and call DRG
split functions (DRG/*.py, DRG_EX/*.py); DATA/*.dat hold the CC/MCC, exclusion, OR-procedure and DRG
name tables. This module parses those sources with `ast` and translates each pattern into pack rows;
it never imports or executes them. Any expression outside the known patterns stops the import with the
file, line and source text (`UntranslatableError`), so a pack is never a guess.

Conditions are brought to disjunctive normal form: each alternative a list of atoms (CONTRACTS table
of atoms). Guards that only protect Python from None or an empty list (`record.ssList and ...`,
`record.ageDay != None`, `len(record.zdList) > 1`) are dropped where an atom of the same conjunction
already implies them; the pack's comparisons are false on missing values anyway.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from jobs.errors import PipelineError
from jobs.schemes.pack import parse_rule_pack, write_table

ADRG_RE = re.compile(r"^[A-Z]{2}\d$")
LIST_VARS = ("adrg_zd", "adrg_zd1", "adrg_ss", "adrg_ss1", "adrg_ss2", "adrg_ss3", "mdc_zd", "dept_list")
NUMERIC = {"age": "age_years", "ageDay": "age_days", "weight": "birth_weight", "inHospitalTime": "los"}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
OPS = {ast.Eq: "=", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


class UntranslatableError(PipelineError):
    """A source construct outside the patterns this importer knows."""


@dataclass(frozen=True)
class A:
    """An atom while importing: kind, op, list name or value (see jobs.schemes.pack.Atom)."""

    kind: str
    op: str
    list: str = ""
    value: str = ""


TRUE: list[list[A]] = [[]]  # DNF of "always"
FALSE: list[list[A]] = []  # DNF of "never"


def _and(*dnfs: list[list[A]]) -> list[list[A]]:
    out = [[]]
    for d in dnfs:
        out = [a + b for a in out for b in d]
    return out


def _or(*dnfs: list[list[A]]) -> list[list[A]]:
    return [alt for d in dnfs for alt in d]


@dataclass
class Context:
    """The lists one function can refer to: its local list variables and SS_VALID."""

    module: str
    path: Path
    local: dict[str, list[str]]
    importer: OpenDrgImport
    ss_matched: dict[str, str] | None = None  # JA1 pattern: label -> list name

    def list_name(self, node: ast.AST) -> str | None:
        """The pack list a code-list expression refers to; None for an empty list (never matches)."""
        if isinstance(node, ast.Name) and not self.local.get(node.id, ["?"]):
            return None
        if isinstance(node, ast.List) and not node.elts:
            return None
        if isinstance(node, ast.Name):
            if node.id == "SS_VALID":
                return self.importer.add_list("SS_VALID", self.importer.ss_valid)
            if node.id in self.local:
                return self.importer.add_list(f"{self.module}.{node.id}", self.local[node.id])
        if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) for e in node.elts):
            return self.importer.add_list(f"{self.module}.literal", [e.value for e in node.elts])
        raise self.fail(node, "a code list this importer does not know")

    def fail(self, node: ast.AST, what: str) -> UntranslatableError:
        return UntranslatableError(
            f"import opendrg: {self.path}:{getattr(node, 'lineno', '?')}: {what}: {ast.unparse(node)}"
        )


def _is_record(node: ast.AST, attr: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.value, ast.Name) and (
        node.value.id == "record"
    )


def _subscript(node: ast.AST, attr: str, index: int | None, lower: int | None = None) -> bool:
    """record.<attr>[index] (index given) or record.<attr>[lower:] (lower given)."""
    if not (isinstance(node, ast.Subscript) and _is_record(node.value, attr)):
        return False
    s = node.slice
    if index is not None:
        return isinstance(s, ast.Constant) and s.value == index
    return isinstance(s, ast.Slice) and isinstance(s.lower, ast.Constant) and s.lower.value == lower and s.upper is None


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip().lstrip("-").isdigit():
        return int(node.value)
    return None


def _numeric_field(node: ast.AST) -> str | None:
    """record.age / int(record.age) / record.ageDay ... -> pack number kind."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float"):
        if len(node.args) == 1:
            node = node.args[0]
    for attr, kind in NUMERIC.items():
        if _is_record(node, attr):
            return kind
    if _is_record(node, "gender"):
        return "sex"
    if _is_record(node, "leavingType"):
        return "disposition"
    return None


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _member(kind: str, op: str, name: str | None) -> list[list[A]]:
    """A list atom; on an empty list (name None) `in` is never true and `not_in` always."""
    if name is None:
        return FALSE if op == "in" else TRUE
    return [[A(kind, op, name)]]


def translate(node: ast.AST, ctx: Context) -> list[list[A]]:
    """A boolean expression of the generated code as DNF (list of alternatives of atoms)."""
    if isinstance(node, ast.Constant) and node.value is True:
        return TRUE
    if isinstance(node, ast.Constant) and node.value is False:
        return FALSE
    if isinstance(node, ast.BoolOp):
        parts = [translate(v, ctx) for v in node.values]
        return _and(*parts) if isinstance(node.op, ast.And) else _or(*parts)
    # truthiness guards: record.ssList (a procedure is coded), record.weight (a non-zero weight)
    if _is_record(node, "ssList"):
        return [[A("guard", "ss")]]
    if _is_record(node, "weight"):
        return [[A("birth_weight", ">", value="0")]]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = translate(node.operand, ctx)
        if inner in (TRUE, FALSE):
            return FALSE if inner == TRUE else TRUE
        if len(inner) == 1 and len(inner[0]) == 1 and inner[0][0].op in ("in", "not_in"):
            a = inner[0][0]
            return [[A(a.kind, "not_in" if a.op == "in" else "in", a.list)]]
        raise ctx.fail(node, "a negation of a compound condition")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, args = node.func.id, node.args
        if name == "intersect" and len(args) == 2:
            rec, lst = (args[0], args[1]) if isinstance(args[0], (ast.Attribute, ast.Subscript)) else (args[1], args[0])
            if _is_record(rec, "ssList"):
                return _member("px", "in", ctx.list_name(lst))
            if _is_record(rec, "zdList"):
                return _member("dx", "in", ctx.list_name(lst))
            if _subscript(rec, "zdList", None, 1):
                return _member("sdx", "in", ctx.list_name(lst))
        if name in ("has_mcc", "has_cc") and len(args) == 2:
            if _subscript(args[0], "zdList", 0) and _subscript(args[1], "zdList", None, 1):
                return [[A("mcc" if name == "has_mcc" else "cc", "=", value="true")]]
        raise ctx.fail(node, "a call this importer does not know")
    if isinstance(node, ast.Compare):
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            left, right = node.left, node.comparators[0]
            op = "in" if isinstance(node.ops[0], ast.In) else "not_in"
            if ctx.ss_matched is not None and isinstance(right, ast.Name) and right.id == "ss_matched":
                label = _number(left)
                if isinstance(left, ast.Constant) and str(left.value) in ctx.ss_matched:
                    return [[A("px", op, ctx.ss_matched[str(left.value)])]]
                raise ctx.fail(node, f"a procedure group label {label!r} with no codes")
            if _subscript(left, "zdList", 0):
                return _member("pdx", op, ctx.list_name(right))
            if _subscript(left, "ssList", 0):
                return _member("ppx", op, ctx.list_name(right))
            if _is_record(left, "dept"):
                raise ctx.fail(node, "a department condition (not in the canonical case)")
        # numeric comparisons, possibly chained: 1 <= record.inHospitalTime < 3
        terms = [node.left, *node.comparators]
        atoms: list[A] = []
        for (lhs, rhs), op in zip(itertools.pairwise(terms), node.ops, strict=True):
            if type(op) not in OPS:
                raise ctx.fail(node, "a comparison this importer does not know")
            o = OPS[type(op)]
            fl, fr, nl, nr = _numeric_field(lhs), _numeric_field(rhs), _number(lhs), _number(rhs)
            if fl and nr is not None:
                atoms.append(A(fl, o, value=_fmt(nr)))
            elif fr and nl is not None:
                atoms.append(A(fr, FLIP[o], value=_fmt(nl)))
            elif fl and isinstance(rhs, ast.Constant) and rhs.value is None and o == "!=":
                atoms.append(A("guard", fl))  # `record.ageDay != None`: the comparisons imply it
            elif isinstance(lhs, ast.Call) and isinstance(lhs.func, ast.Name) and lhs.func.id == "len":
                if _is_record(lhs.args[0], "zdList") and o == ">" and nr == 1:
                    atoms.append(A("guard", "sdx"))  # `len(zdList) > 1` before has_mcc/has_cc
                else:
                    raise ctx.fail(node, "a length test this importer does not know")
            else:
                raise ctx.fail(node, "a comparison this importer does not know")
        return [atoms]
    raise ctx.fail(node, "an expression this importer does not know")


def simplify(dnf: list[list[A]], ctx: Context, node: ast.AST) -> list[list[A]]:
    """Drop guards implied by another atom of the alternative and atoms implied by a stronger one;
    a guard standing alone cannot be said in the pack and fails the import."""
    out = []
    for alt in dnf:
        atoms = list(dict.fromkeys(alt))
        kinds = {a.kind for a in atoms}
        for g in [a for a in atoms if a.kind == "guard"]:
            implied = (
                (g.op == "ss" and any(a.kind in ("ppx", "px") and a.op == "in" for a in atoms))
                or (g.op in ("age_days", "age_years", "birth_weight", "los") and g.op in kinds)
                or (g.op == "sdx" and kinds & {"mcc", "cc", "cc_or_mcc", "sdx"})
            )
            if not implied:
                raise ctx.fail(node, f"a guard ({g.op}) without a condition that implies it")
            atoms.remove(g)
        # principal procedure in L implies some procedure in L
        atoms = [a for a in atoms if not (a.kind == "px" and a.op == "in" and A("ppx", "in", a.list) in atoms)]
        if atoms not in out:
            out.append(atoms)
    return out


@dataclass
class Entry:
    """One ADRG (or QY) position in an MDC's order, with its alternatives and DRG splits."""

    adrg: str
    kind: str
    active: bool
    alts: list[list[A]]
    splits: list[tuple[str, list[list[A]]]] = field(default_factory=list)  # (drg, DNF) in order


class OpenDrgImport:
    def __init__(self, src: Path):
        self.src = src
        self.lists: dict[str, list[str]] = {}
        self.by_content: dict[tuple, str] = {}
        self.notes: list[str] = []
        self.ss_valid = [line.split(" ", 1)[0] for line in self._dat("SS_VALID")]
        self.funcs: dict[tuple[str, str], ast.FunctionDef] = {}

    # ---- sources -----------------------------------------------------------------------------
    def _dat(self, name: str) -> list[str]:
        path = self.src / "DATA" / f"{name}.dat"
        if not path.is_file():
            raise PipelineError(f"import opendrg: {self.src} lacks DATA/{name}.dat: not an OpenDRG scheme package")
        return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _dat_dict(self, name: str) -> dict[str, str]:
        """As OpenDRG's Reader.to_dict: first field -> rest of the line; a later line wins."""
        out = {}
        for line in self._dat(name):
            key, _, rest = line.partition(" ")
            out[key] = rest
        return out

    def _module(self, sub: str, name: str) -> ast.Module:
        path = self.src / sub / f"{name}.py"
        if not path.is_file():
            raise PipelineError(f"import opendrg: {path} is missing")
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def _group_fn(self, sub: str, name: str) -> tuple[ast.FunctionDef, Path]:
        mod = self._module(sub, name)
        fns = [n for n in mod.body if isinstance(n, ast.FunctionDef) and n.name == "group"]
        if len(fns) != 1:
            raise UntranslatableError(f"import opendrg: {self.src / sub / name}.py has no single group(record)")
        return fns[0], self.src / sub / f"{name}.py"

    def add_list(self, name: str, codes: list[str]) -> str:
        """Register a code list; identical lists share one name (the first)."""
        key = tuple(sorted(set(codes)))
        if key in self.by_content:
            return self.by_content[key]
        base, n = name, 1
        while name in self.lists:
            n += 1
            name = f"{base}.{n}"
        self.lists[name] = list(key)
        self.by_content[key] = name
        return name

    # ---- patterns -----------------------------------------------------------------------------
    @staticmethod
    def _local_lists(fn: ast.FunctionDef, path: Path) -> dict[str, list[str]]:
        out = {}
        for st in fn.body:
            if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
                t = st.targets[0].id
                if isinstance(st.value, ast.List):
                    if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in st.value.elts):
                        raise UntranslatableError(f"import opendrg: {path}:{st.lineno}: list {t} is not all strings")
                    out[t] = [e.value for e in st.value.elts]
        return out

    def _ss_matched(self, fn: ast.FunctionDef, local: dict, module: str) -> dict[str, str] | None:
        """`ss_matched=[adrg_ss1[adrg_ss.index(x)] for x in record.ssList if x in adrg_ss]`: the label of
        each coded procedure (the label of its FIRST occurrence in adrg_ss, as list.index finds it)."""
        for st in fn.body:
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name) and st.targets[0].id == "ss_matched":
                src = ast.unparse(st.value).replace(" ", "")
                m = re.fullmatch(r"\[(\w+)\[(\w+)\.index\(x\)\]forxinrecord\.ssListifxin(\w+)\]", src)
                if not m or m.group(2) != m.group(3):
                    raise UntranslatableError(f"import opendrg: {module}: ss_matched pattern unknown: {src}")
                codes, labels = local[m.group(2)], local[m.group(1)]
                first: dict[str, str] = {}
                for code, label in zip(codes, labels, strict=True):
                    first.setdefault(code, label)
                groups: dict[str, list[str]] = {}
                for code, label in first.items():
                    groups.setdefault(label, []).append(code)
                return {label: self.add_list(f"{module}.group{label}", cs) for label, cs in groups.items()}
        return None

    def _split_expr(self, call: ast.Call, adrg_path: Path) -> list[list[A]]:
        """The condition of one DRG split call: MDCX_DRG.XXnn_group(record) or DRG_EX module.group(record)."""
        f = call.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.attr.endswith("_group"):
            mod, fname = f.value.id, f.attr
            key = ("DRG", mod)
            if key not in self.funcs:
                tree = self._module("DRG", mod)
                for n in tree.body:
                    if isinstance(n, ast.FunctionDef):
                        self.funcs[("DRG", mod, n.name)] = n
                self.funcs[key] = True
            fn = self.funcs.get(("DRG", mod, fname))
            if fn is None:
                raise UntranslatableError(f"import opendrg: {adrg_path}: {mod}.{fname} is not defined")
            if len(fn.body) != 1 or not isinstance(fn.body[0], ast.Return):
                raise UntranslatableError(f"import opendrg: DRG/{mod}.py {fname}: not a single return")
            ctx = Context(fname, self.src / "DRG" / f"{mod}.py", {}, self)
            return simplify(translate(fn.body[0].value, ctx), ctx, fn.body[0].value)
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.attr == "group":
            if f.value.id not in self._imported(adrg_path):
                self.notes.append(
                    f"{adrg_path.stem}: calls {f.value.id}.group without importing it (OpenDRG raises NameError "
                    f"on such cases); imported as written, from DRG_EX/{f.value.id}.py"
                )
            fn, path = self._group_fn("DRG_EX", f.value.id)
            local = self._local_lists(fn, path)
            ctx = Context(f.value.id, path, local, self)
            ifs = [s for s in fn.body if isinstance(s, ast.If)]
            if len(ifs) != 1 or not any(isinstance(s, ast.Return) for s in ifs[0].body):
                raise UntranslatableError(f"import opendrg: {path}: not one `if condition: return True`")
            return simplify(translate(ifs[0].test, ctx), ctx, ifs[0].test)
        raise UntranslatableError(f"import opendrg: {adrg_path}: split call {ast.unparse(call)} unknown")

    def _imported(self, path: Path) -> set[str]:
        names = set()
        for n in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                names |= {a.asname or a.name.split(".")[-1] for a in n.names}
        return names

    def adrg_entry(self, module: str) -> tuple[str, list[list[A]], list[tuple[str, list[list[A]]]], str | None]:
        """ADRG/<module>.py: (adrg, entry DNF, splits, fallback DRG returned when no split holds)."""
        fn, path = self._group_fn("ADRG", module)
        local = self._local_lists(fn, path)
        ctx = Context(module, path, local, self, self._ss_matched(fn, local, module))
        ifs = [s for s in fn.body if isinstance(s, ast.If)]
        if len(ifs) != 1:
            raise UntranslatableError(f"import opendrg: {path}: expected one top-level `if`, found {len(ifs)}")
        top = ifs[0]
        alts = simplify(translate(top.test, ctx), ctx, top.test)
        splits, fallback = [], None
        for st in top.body:
            if isinstance(st, ast.Expr):  # message(...)
                continue
            if isinstance(st, ast.If) and isinstance(st.test, ast.Call) and len(st.body) == 1:
                ret = st.body[0]
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Constant):
                    splits.append((ret.value.value, self._split_expr(st.test, path)))
                    continue
            if isinstance(st, ast.Return) and isinstance(st.value, ast.Constant):
                fallback = st.value.value or None
                continue
            raise UntranslatableError(f"import opendrg: {path}:{st.lineno}: statement unknown: {ast.unparse(st)}")
        adrg = module.split("_", 1)[0]
        if not ADRG_RE.match(adrg):
            raise UntranslatableError(f"import opendrg: {path}: module name {module} is not an ADRG code")
        return adrg, alts, splits, fallback

    def mdc(self, mdc: str) -> tuple[list[list[A]], list[Entry]]:
        """MDC/<mdc>.py: the entry DNF and the ordered entries (ADRGs and the QY test)."""
        fn, path = self._group_fn("MDC", mdc)
        local = self._local_lists(fn, path)
        mdc_zd = local.get("mdc_zd", [])
        ctx = Context(mdc, path, {"mdc_zd": mdc_zd}, self)
        entry: list[list[A]] | None = None
        entries: list[Entry] = []
        regions = self._regions(fn, mdc, mdc_zd, path)
        if regions:
            header = regions["header"]
            codes = [c for c in mdc_zd if not c.endswith(header)]
            ctx.local["mdc_zd"] = codes
        letter = mdc[3]
        i = 0
        body = fn.body
        while i < len(body):
            st = body[i]
            if isinstance(st, ast.If) and isinstance(st.test, ast.UnaryOp) and isinstance(st.test.op, ast.Not):
                if entry is not None:
                    raise UntranslatableError(f"import opendrg: {path}:{st.lineno}: a second entry test")
                entry = simplify(translate(st.test.operand, ctx), ctx, st.test)
            elif (
                isinstance(st, ast.Assign)
                and isinstance(st.value, ast.Call)
                and isinstance(st.value.func, ast.Attribute)
                and st.value.func.attr == "group"
            ):
                module = st.value.func.value.id
                adrg, alts, splits, fallback = self.adrg_entry(module)
                if fallback and not (splits and splits[-1][1] == TRUE):
                    splits.append((fallback, TRUE))
                    if fallback == adrg:
                        self.notes.append(f"{module}: no split holds -> the grouper returns the ADRG code {adrg}")
                if entries and entries[-1].adrg == adrg and entries[-1].kind != "qy":
                    prev = entries[-1]  # alternative entry conditions (AH1_1, AH1_2 ...)
                    if [d for d, _ in prev.splits] != [d for d, _ in splits]:
                        # different splits per alternative: each DRG also needs its alternative's entry
                        merged = []
                        for d, cond in prev.splits:
                            merged.append((d, _and(cond, prev.alts)))
                        for d, cond in splits:
                            merged.append((d, _and(cond, alts)))
                        prev.splits = merged
                        self.notes.append(f"{adrg}: alternatives with different splits, merged in order")
                    prev.alts = prev.alts + alts
                else:
                    if any(e.adrg == adrg for e in entries):
                        raise UntranslatableError(f"import opendrg: {path}: {adrg} appears twice, not consecutively")
                    entries.append(Entry(adrg, _kind(adrg), True, alts, splits))
            elif isinstance(st, ast.If) and _returns_qy(st, letter):
                test = st.test
                active = True
                if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
                    first = test.values[0]
                    if isinstance(first, ast.Constant) and first.value is False:
                        active = False
                        test = ast.BoolOp(ast.And(), test.values[1:]) if len(test.values) > 2 else test.values[1]
                alts = simplify(translate(test, ctx), ctx, test)
                entries.append(Entry(f"{letter}QY", "qy", active, alts))
                if not active:
                    self.notes.append(
                        f"{mdc}: QY test switched off in the source (`if False and ...`): imported inactive"
                    )
            elif isinstance(st, ast.If) and _is_result_check(st):
                pass
            elif regions and st in regions["statements"]:
                pass
            elif isinstance(st, (ast.Assign, ast.Expr, ast.Return, ast.For)):
                if isinstance(st, ast.Assign) and _assigns(st) not in ("mdc_zd", "dept_list", "zd_map", "type"):
                    if not (regions and _assigns(st) in ("zd_matched", "types")):
                        raise UntranslatableError(f"import opendrg: {path}:{st.lineno}: {ast.unparse(st)[:120]}")
            else:
                raise UntranslatableError(
                    f"import opendrg: {path}:{st.lineno}: statement unknown: {ast.unparse(st)[:120]}"
                )
            i += 1
        if entry is None:
            raise UntranslatableError(f"import opendrg: {path}: no entry test `if not (...): return ''`")
        if regions:
            entry = _and(entry, [[A("regions", ">=", regions["set"], str(regions["min"]))]])
        return entry, entries

    def _regions(self, fn: ast.FunctionDef, mdc: str, mdc_zd: list[str], path: Path) -> dict | None:
        """MDCZ's body-region pattern: mdc_zd lists header strings ending in a marker ('创伤') each
        followed by the codes of that region; the case needs codes of >= N regions (`len(types)<N`)."""
        src = ast.unparse(fn)
        if "zd_map" not in src:
            return None
        header = re.search(r"x\.endswith\('([^']+)'\)", src)
        need = re.search(r"if len\(types\) < (\d+):", src)
        if not header or not need or "set(record.zdList).intersection(zd_map.keys())" not in src:
            raise UntranslatableError(f"import opendrg: {path}: multiple-trauma region pattern unknown")
        region, mapping = "", {}
        for code in mdc_zd:
            if code.endswith(header.group(1)):
                region = code
            else:
                mapping[code] = region  # a later header wins, as zd_map[x]=type does
        self.region_rows = [(mdc, r, c) for c, r in mapping.items()]
        stmts = [
            s
            for s in fn.body
            if isinstance(s, (ast.For, ast.If, ast.Assign, ast.Expr))
            and any(k in ast.unparse(s) for k in ("zd_map", "zd_matched", "types", "type="))
            and not (isinstance(s, ast.If) and isinstance(s.test, ast.UnaryOp))
        ]
        return {"header": header.group(1), "min": int(need.group(1)), "set": mdc, "statements": stmts}

    def mdc_order(self) -> list[str]:
        tree = self._module("", "Grouper")
        fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "group"]
        if len(fns) != 1:
            raise UntranslatableError(f"import opendrg: {self.src}/Grouper.py has no group(record)")
        order = []
        for st in fns[0].body:
            if isinstance(st, ast.Assign) and isinstance(st.value, ast.Call):
                f = st.value.func
                if isinstance(f, ast.Attribute) and f.attr == "group" and isinstance(f.value, ast.Name):
                    order.append(f.value.id)
                    continue
            if isinstance(st, ast.If) and _is_result_check(st) or isinstance(st, (ast.Expr, ast.Return)):
                continue
            raise UntranslatableError(f"import opendrg: Grouper.py:{st.lineno}: statement unknown: {ast.unparse(st)}")
        return order


def _assigns(st: ast.Assign) -> str:
    t = st.targets[0]
    if isinstance(t, ast.Subscript):
        t = t.value
    return t.id if isinstance(t, ast.Name) else ""


def _is_result_check(st: ast.If) -> bool:
    return ast.unparse(st).replace(" ", "") in ("ifresult:\nreturnresult",)


def _returns_qy(st: ast.If, letter: str) -> bool:
    return any(
        isinstance(s, ast.Return) and isinstance(s.value, ast.Constant) and s.value.value == f"{letter}QY"
        for s in st.body
    )


def _kind(adrg: str) -> str:
    """CHS convention for the ADRG's 2nd letter: A-J surgical, K-Q non-OR procedure, R-Z medical
    (informational in format 2: the conditions decide)."""
    letter = adrg[1]
    return "surgical" if "A" <= letter <= "J" else "non_or" if "K" <= letter <= "Q" else "medical"


def _scheme_source(src: Path) -> str:
    """SOURCE line of the OpenDRG checkout the package sits in (../../SOURCE), if any."""
    for up in (src.parent.parent / "SOURCE", src.parent / "SOURCE"):
        if up.is_file():
            return up.read_text(encoding="utf-8").splitlines()[0].strip()
    return ""


def published_weights(path: str | Path, year: str) -> dict[str, float]:
    """drg -> weight for one year of a published weight list (CSV with year, drg, weight)."""
    import csv

    with Path(path).open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("year") == str(year)]
    if not rows:
        raise PipelineError(f"import opendrg: {path} has no weights for year {year}")
    try:
        return {r["drg"].strip(): float(r["weight"]) for r in rows}
    except (KeyError, ValueError) as exc:
        raise PipelineError(f"import opendrg: {path}: needs columns year, drg, weight (numbers): {exc}") from exc


def import_opendrg(
    src: str | Path,
    out: str | Path,
    name: str | None = None,
    version: str | None = None,
    qy: str = "source",
    weights: dict[str, float] | None = None,
) -> dict:
    """Import one OpenDRG scheme package (e.g. .../drg_group/chs_drg_11) into a format-2 pack at `out`.
    Returns row counts and the importer's notes; raises UntranslatableError on anything unknown.

    qy="national": OpenDRG's chs_drg_11 and chs_drg_10 switch the QY test off (`if False and ...`), a
    deviation from the national scheme; this imports those tests active, except in an MDC whose own
    entry tests procedures (MDCA: there it would catch every surgical case).

    weights: published relative weights (drg -> weight, e.g. Harbin's for haerbin_2022) become the
    DRGs' reference_weight; a published DRG the scheme does not have is reported in the notes."""
    src, out = Path(src), Path(out)
    if not (src / "Grouper.py").is_file() or not (src / "MDC").is_dir():
        raise PipelineError(f"import opendrg: {src} is not an OpenDRG scheme package (no Grouper.py / MDC/)")
    imp = OpenDrgImport(src)
    imp.region_rows = []
    mdc_rows, adrg_rows, drg_rows, cond_rows = [], [], [], []
    names = imp._dat_dict("DRG")
    seen_drg: set[str] = set()

    def conds(level: str, target: str, dnf: list[list[A]]) -> None:
        if dnf == TRUE:
            return
        if dnf == FALSE:
            raise UntranslatableError(f"import opendrg: {level} {target}: a condition that is never true")
        for alt, atoms in enumerate(dnf, start=1):
            for a in atoms:
                cond_rows.append((level, target, alt, a.kind, a.list, a.op, a.value))

    for seq, mdc in enumerate(imp.mdc_order(), start=1):
        entry, entries = imp.mdc(mdc)
        mdc_rows.append((mdc, names.get(mdc, mdc), seq))
        conds("mdc", mdc, entry)
        for aseq, e in enumerate(entries, start=1):
            if e.kind == "qy" and not e.active and qy == "national":
                if not any(a.kind in ("ppx", "px") for alt in entry for a in alt):
                    e.active = True
                    imp.notes.remove(
                        f"{mdc}: QY test switched off in the source (`if False and ...`): imported inactive"
                    )
                    imp.notes.append(f"{mdc}: QY test switched off in the source, imported active (--qy national)")
            if e.alts == FALSE:
                e.active = False
                e.alts = TRUE
                imp.notes.append(f"{e.adrg}: its entry tests only empty lists, never true: imported inactive")
            adrg_rows.append((e.adrg, names.get(e.adrg, ""), mdc, e.kind, aseq, "true" if e.active else "false"))
            conds("adrg", e.adrg, e.alts)
            splits = e.splits if e.kind != "qy" else [(e.adrg, TRUE)]
            for dseq, (drg, dnf) in enumerate(splits, start=1):
                if dnf == FALSE:
                    imp.notes.append(f"{drg}: its split condition tests an empty list, never true: left out")
                    continue
                if drg in seen_drg:
                    raise UntranslatableError(f"import opendrg: DRG {drg} is returned by two rules")
                seen_drg.add(drg)
                drg_rows.append((drg, e.adrg, names.get(drg, ""), dseq, (weights or {}).get(drg)))
                conds("drg", drg, dnf)
    if weights:
        unknown = sorted(set(weights) - seen_drg)
        imp.notes.append(
            f"reference weights: {len(set(weights) & seen_drg)} of {len(weights)} published DRGs matched"
            + (
                f"; not in the scheme: {', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}"
                if unknown
                else ""
            )
        )
    adrg_names = {}
    for d, _a, n, _s, _w in drg_rows:
        adrg_names.setdefault(d[:3], n)
    adrg_rows = [(a, n or adrg_names.get(a, ""), *rest) for a, n, *rest in adrg_rows]

    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "mdc": write_table(out, "mdc", mdc_rows),
        "adrg": write_table(out, "adrg", adrg_rows),
        "drg": write_table(out, "drg", drg_rows),
        "lists": write_table(out, "lists", ((n, c) for n, codes in imp.lists.items() for c in codes)),
        "conditions": write_table(out, "conditions", cond_rows),
    }
    mcc, cc, cce = imp._dat_dict("MCC"), imp._dat_dict("CC"), imp._dat_dict("CCE")
    sev = [(c, "MCC", t.strip()) for c, t in mcc.items()] + [(c, "CC", t.strip()) for c, t in cc.items()]
    counts["severity"] = write_table(out, "severity", sev)
    counts["cc_exclusions"] = write_table(out, "cc_exclusions", ((t.strip(), c) for c, t in cce.items()))
    counts["regions"] = write_table(out, "regions", imp.region_rows)
    codes = []
    icd = src / "ICD"
    for fname, kind in (("ZD_INFO", "diagnosis"), ("SS_INFO", "procedure")):
        if (icd / f"{fname}.dat").is_file():
            for line in (icd / f"{fname}.dat").read_text(encoding="utf-8").splitlines():
                code, _, label = line.partition(" ")
                if code:
                    codes.append((code, kind, label.strip()))
    counts["codes"] = write_table(out, "codes", dict((c[0], c) for c in codes).values())
    scheme = src.name
    manifest = {
        "format": 2,
        "name": name or scheme,
        "version": version or scheme,
        "code_system": {"diagnosis": "ICD-10 医保版 2.0", "procedure": "ICD-9-CM-3 医保版 2.0"},
        "description": f"OpenDRG scheme {scheme}, imported by `drg definitions import opendrg`",
        "source": f"{_scheme_source(src)} drg_group/{scheme}".strip(),
        "licence": "Apache-2.0 (OpenDRG/DRG_Python)",
        "settings": {"procedure_entry": "principal", "fallthrough": True, "ventilation": {"mode": "codes"}},
        "notes": imp.notes,
    }
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    parse_rule_pack(out)  # what the importer writes must load
    return {"counts": counts, "notes": imp.notes}
