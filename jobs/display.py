"""How figures, names and Chinese text are shown to people: the pages and plots of the release report,
the release comparison and the coding-quality page.

Why here, once: the readers are provincial insurance staff. They read Chinese, money in 元 with two
decimals and thousands separators, shares as percentages, and never scientific notation (a budget gap
of -1.442e-08 % is 0.00 %). Chinese must render on any machine that ran `pip install`, with no system
font and no network: plots use Noto Sans SC from the `pylopdf-fonts-zh-cn` wheel (SIL OFL 1.1, a project
dependency), and each HTML page embeds a subset of the same font holding only the characters it uses
(tens of KB), so a browser on a machine without Chinese fonts still draws the text.
"""

from __future__ import annotations

import base64
import html
import io
import math
from functools import cache
from pathlib import Path

FONT_FAMILY = "DRG Noto Sans SC"
FALLBACK_FONTS = "'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif"
STYLE = """body{{font-family:'{family}',{fallback};margin:2em auto;max-width:1120px;color:#222;line-height:1.45}}
section{{display:inline-block;vertical-align:top;width:540px;margin:0 10px 24px 0}}
section.wide{{width:1090px}}
img{{width:530px}}h1{{font-size:1.5em}}h2{{font-size:1.08em;margin-bottom:.3em}}
table{{border-collapse:collapse;font-size:.82em;margin-top:6px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}
th{{background:#f2f4f7;font-weight:600}}.muted{{color:#666}}.bad{{color:#b03a2e}}.ok{{color:#1e7b45}}
dl{{display:grid;grid-template-columns:max-content auto;gap:2px 14px}}dt{{font-weight:600}}dd{{margin:0}}"""


# ------------------------------------------------------------------------------------------ numbers
def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("<NA>", "NaT")


def number(value, digits: int = 2) -> str:
    """`12,345.68`; never scientific notation; a value that rounds to zero shows as 0.00, not -0.00."""
    if _missing(value):
        return "—"
    text = f"{float(value):,.{digits}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "")) == 0 else text


def count(value) -> str:
    """A count with thousands separators: `12,345`."""
    return "—" if _missing(value) else f"{int(value):,}"


def yuan(value) -> str:
    """Money: `26,550.00 元`."""
    return "—" if _missing(value) else f"{number(value, 2)} 元"


def percent(value, digits: int = 2, ratio: bool = True) -> str:
    """A share as a percentage: ratio 0.0523 -> `5.23%` (ratio=False: the value is already in percent)."""
    return "—" if _missing(value) else f"{number(float(value) * (100 if ratio else 1), digits)}%"


def signed_percent(value, digits: int = 1) -> str:
    """A change ratio with its sign: 0.2 -> `+20.0%`."""
    if _missing(value):
        return "—"
    text = percent(value, digits)
    rounds_to_zero = float(text.rstrip("%").replace(",", "")) == 0
    return text if text.startswith("-") or rounds_to_zero else "+" + text


# --------------------------------------------------------------------------------------------- font
@cache
def font_path() -> Path | None:
    """Noto Sans SC as installed with the project (None if the wheel is missing: a clear note instead)."""
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return None
    path = Path(pylopdf_fonts_zh_cn.sans_path())
    return path if path.is_file() else None


@cache
def use_cjk_font() -> str | None:
    """Make matplotlib draw Chinese with the packaged font (once per process); its family name, or None."""
    from matplotlib import font_manager, rcParams

    path = font_path()
    if path is None:
        return None
    font_manager.fontManager.addfont(str(path))
    family = font_manager.FontProperties(fname=str(path)).get_name()
    rcParams["font.family"] = [family, "DejaVu Sans"]
    rcParams["axes.unicode_minus"] = False  # the font's hyphen-minus, not U+2212 it may lack
    return family


def font_face(text: str) -> str:
    """A CSS @font-face embedding the packaged font cut to the characters of `text` (self-contained page)."""
    path = font_path()
    if path is None:
        return ""
    from fontTools import subset

    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = subset.load_font(str(path), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(set(text))) + "0123456789,.%-+—元")
    subsetter.subset(font)
    buffer = io.BytesIO()
    subset.save_font(font, buffer, options)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"@font-face{{font-family:'{FONT_FAMILY}';src:url(data:font/otf;base64,{data}) format('opentype');"
            "font-weight:normal;font-style:normal}")


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML page (lang zh-CN) with the font for its own characters embedded."""
    style = STYLE.format(family=FONT_FAMILY, fallback=FALLBACK_FONTS)
    text = html.unescape(title + body)
    return ("<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{font_face(text)}\n{style}</style></head>"
            f"<body>{body}</body></html>")


# ------------------------------------------------------------------------------------------- tables
def table(frame, columns: list[tuple[str, str, object]], limit: int = 30, empty: str = "无") -> str:
    """An HTML table of `frame`: columns are (header, source column, formatter or None for text);
    numbers right-aligned. An empty frame is one muted line."""
    if frame is None or len(frame) == 0:
        return f"<p class='muted'>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _c, _f in columns)
    rows = []
    for _, row in frame.head(limit).iterrows():
        cells = []
        for _h, col, fmt in columns:
            value = row.get(col)
            text = fmt(value) if fmt else ("" if _missing(value) else str(value))
            cells.append(f"<td class='n'>{html.escape(text)}</td>" if fmt else f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class='muted'>另有 {len(frame) - limit:,} 行未列出</p>" if len(frame) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def short_labels(ids: list[str], names: list | None = None, width: int = 8) -> list[str]:
    """Axis labels for hospitals: the short or full name when the reference table gives one (cut to
    `width` characters), else the shortest tail of the id that tells the shown ids apart (`…0042`)."""
    names = names or [None] * len(ids)
    labels: list[str | None] = [None if _missing(n) or not str(n).strip() or n == i else str(n).strip()[:width]
                                for i, n in zip(ids, names, strict=True)]
    codes = [str(i) for i, lab in zip(ids, labels, strict=True) if lab is None]
    tail = 4
    while tail < max((len(c) for c in codes), default=0) and len({c[-tail:] for c in codes}) < len(set(codes)):
        tail += 1
    short = {c: (c if len(c) <= tail + 1 else "…" + c[-tail:]) for c in codes}
    return [lab if lab is not None else short[str(i)] for i, lab in zip(ids, labels, strict=True)]
