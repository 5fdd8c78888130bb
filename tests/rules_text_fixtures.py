"""A small CHS-DRG 2.0-layout rule-text folder, written by tests (not NHSA data), with one ADRG per rule
form of the real text and the kinds of glitches the real text has. Codes are real ICD-10 / ICD-9-CM-3
医保版 codes; the grouping they get is this fixture's, not the national scheme's."""

from __future__ import annotations

from pathlib import Path

MDC = {
    "MDCA": ("先期分组", []),
    "MDCZ": ("多发严重创伤", None),  # regions below
    "MDCM": ("男性生殖系统疾病及功能障碍", ["C61.x00 前列腺恶性肿瘤", "C79.821 会阴继发恶性肿瘤"]),
    "MDCN": (
        "女性生殖系统疾病及功能障碍",
        ["C53.900 子宫颈恶性肿瘤", "# C79.821 会阴继发恶性肿瘤", "D25.900 子宫平滑肌瘤"],
    ),
    "MDCG": ("消化道疾病及功能障碍", ["K35.800 急性阑尾炎", "K40.900 腹股沟疝", "K29.700 胃炎"]),
    "MDCJ": ("乳房、皮肤疾病及功能障碍", ["C50.900 乳房恶性肿瘤", "L03.100 蜂窝织炎"]),
    "MDCS": ("感染及寄生虫病", ["A41.900 脓毒症"]),
}
REGIONS = {
    "头颈部创伤": ["S06.500 创伤性硬脑膜下出血"],
    "胸部创伤": ["S27.000 创伤性气胸"],
    "下肢创伤": ["S72.000 股骨颈骨折"],
}
ADRG = {  # code -> (name, file text)
    "AH2": (
        "有创呼吸机支持≥96小时",
        "入组条件：（其他诊断或手术或操作 1）+手术或操作 2\n其他诊断：\nZ93.000 气管造口状态\n"
        "手术或操作 1：\n31.1x00x005 暂时性气管切开术\n手术或操作 2：\n96.7201 呼吸机治疗[大于等于 96 小时]\n",
    ),
    "ZB1": ("多发性重要创伤开颅术", "包含以下主要手术或操作：\n01.2400 颅骨切开术\n"),
    "ZZ1": ("多发性重要创伤无手术", "符合 MDCZ 诊断表，且无手术或操作\n"),
    "MA1": (
        "男性生殖器官恶性肿瘤手术",
        "包含以下主要诊断：\nC61.x00 前列腺恶性肿瘤\n包含以下主要手术或操作：\n60.5x00 根治性前列腺切除术\n",
    ),
    "MR1": ("男性生殖系统恶性肿瘤", "包含以下主要诊断：\nC61.x00 前列腺恶性肿瘤\nC79.821 会阴继发恶性肿瘤\n"),
    "NA1": (
        "女性生殖器官恶性肿瘤的广泛切除手术",
        "入组条件 1：主要诊断+主要手术或操作 1\n或入组条件 2：主要诊断+手术或操作 2+手术或操作3\n"
        "主要诊断：\nC53.900 子宫颈恶性肿瘤\n主要手术或操作 1：\n68.6x00 根治性经腹子宫切除术\n"
        "手术或操作 2：\n68.4100 腹腔镜全子宫切除术\n手术或操作 3：\n40.5901 盆腔淋巴结清扫术\n",
    ),
    "NR1": ("女性生殖系统恶性肿瘤", "包含以下主要诊断：\nC53.900 子宫颈恶性肿瘤\n"),
    "NZ1": ("女性生殖系统其他疾病", "包含以下主要诊断：\nD25.900 子宫平滑肌瘤\n"),
    "GB1": ("阑尾切除术", "包含以下主要手术或操作：\n47.0901 腹腔镜阑尾切除术\n"),
    "GC1": (
        "疝修补术伴补片",
        "同时包含以下手术或操作：\n53.0200 单侧腹股沟直疝修补术\n和\n53.0500 单侧腹股沟疝补片修补术\n",
    ),
    "GR1": ("消化道其他疾病", "包含以下主要诊断：\nK35.800 急性阑尾炎\nK40.900 腹股沟疝\nK29.700 胃炎\n"),
    "JA1": (
        "乳房恶性肿瘤根治性切除伴乳房重建术",
        "入组条件 1：主要诊断+手术或操作 1+手术或操作 2\n或入组条件 2：主要诊断+手术或操作 1+手术或操作3+手术或操作 4\n"
        "主要诊断：\nC50.900 乳房恶性肿瘤\n手术或操作 1：\n85.4301 乳房改良根治术\n"
        "手术或操作 2：\n85.7000x001 乳房重建术\n手术或操作 3：\n85.5300x001 乳房假体置入术\n"
        "手术或操作 4：\n86.7000 带蒂皮瓣移植术\n",
    ),
    "JR1": ("乳房恶性肿瘤", "包含以下主要诊断：\nC50.900 乳房恶性肿瘤\n"),
    "JS1": ("皮肤疾病", "包含以下主要诊断：\nL03.100 蜂窝织炎\n"),
    "SB1": ("全身性感染疾病的手术", "包含全部手术或操作\n"),
    "SR1": (
        "脓毒症",
        "包含以下主要诊断或其他诊断：\nA41.900 脓毒症\n或包含以下其他诊断：\nR65.100 全身炎症反应综合征\n",
    ),
}
ALTERNATIVES = {  # the real text repeats an ADRG's alternatives one per file
    "JA1_1": "主要诊断：\nC50.900 乳房恶性肿瘤\n手术或操作 1：\n85.4301 乳房改良根治术\n"
    "手术或操作 2：\n85.7000x001 乳房重建术\n",
    "JA1_2": "主要诊断：\nC50.900 乳房恶性肿瘤\n手术或操作 1：\n85.4301 乳房改良根治术\n"
    "手术或操作 3：\n85.5300x001 乳房假体置入术\n手术或操作 4：\n86.7000 带蒂皮瓣移植术\n",
}
DRG = [
    "AH29 有创呼吸机支持≥96小时",
    "ZB19 多发性重要创伤开颅术",
    "ZZ11 多发性重要创伤无手术，伴严重并发症或合并症",
    "ZZ15 多发性重要创伤无手术，不伴严重并发症或合并症",
    "MA19 男性生殖器官恶性肿瘤手术",
    "MR11 男性生殖系统恶性肿瘤，伴严重并发症或合并症",
    "MR13 男性生殖系统恶性肿瘤，伴并发症或合并症",
    "MR15 男性生殖系统恶性肿瘤，不伴并发症或合并症",
    "NA19 女性生殖器官恶性肿瘤的广泛切除手术",
    "NR13 女性生殖系统恶性肿瘤，伴并发症或合并症",
    "NR15 女性生殖系统恶性肿瘤，不伴并发症或合并症",
    "NZ19 女性生殖系统其他疾病",
    "GB19 阑尾切除术",
    "GC19 疝修补术伴补片",
    "GR11 消化道其他疾病，伴严重并发症或合并症",
    "GR13 消化道其他疾病，伴并发症或合并症",
    "GR15 消化道其他疾病，不伴并发症或合并症",
    "JA19 乳房恶性肿瘤根治性切除伴乳房重建术",
    "JR19 乳房恶性肿瘤",
    "JS19 皮肤疾病",
    "SB19 全身性感染疾病的手术",
    "SR11 脓毒症，伴严重并发症或合并症",
    "SR15 脓毒症，不伴严重并发症或合并症",
]
MCC = ["J96.000 1", "N17.900 2"]
CC = ["E87.100 1", "C91.100B细胞型慢性淋巴细胞白血病 2"]  # the real CC.dat fuses two codes with names
CCE = ["J44.100 1", "变N18.900 2"]  # ... and CCE.dat glues two codes to a stray character


def write_scheme(root: Path, extra_adrg_text: dict[str, str] | None = None) -> Path:
    """Write the fixture folder under `root`; `extra_adrg_text` replaces ADRG file texts (e.g. an unknown
    header). Returns the scheme folder."""
    folder = root / "CHS_DRG_20"
    (folder / "ADRG").mkdir(parents=True)
    (folder / "MDC").mkdir()
    (root / "SOURCE").write_text("test fixture, not NHSA data\n", encoding="utf-8")
    (folder / "MDC.dat").write_text("\n".join(f"{m} {n}" for m, (n, _) in MDC.items()), encoding="utf-8")
    for code, (name, lines) in MDC.items():
        if lines is None:
            text = "".join(f"{region}\n包含以下诊断：\n" + "\n".join(codes) + "\n" for region, codes in REGIONS.items())
        else:
            text = "包含以下主要诊断：\n" + "\n".join(lines) + "\n" if lines else ""
        (folder / "MDC" / f"{code}_{name}.dat").write_text(text, encoding="utf-8")
    texts = {**{a: t for a, (_n, t) in ADRG.items()}, **(extra_adrg_text or {})}
    (folder / "ADRG.dat").write_text("\n".join(f"{a} {n}" for a, (n, _) in ADRG.items()), encoding="utf-8")
    for code, (name, _) in ADRG.items():
        (folder / "ADRG" / f"{code}_{name}.dat").write_text(texts[code], encoding="utf-8")
    for alt, text in ALTERNATIVES.items():
        (folder / "ADRG" / f"{alt}_{ADRG[alt[:3]][0]}.dat").write_text(text, encoding="utf-8")
    (folder / "DRG.dat").write_text("\n".join(DRG), encoding="utf-8")
    (folder / "MCC.dat").write_text("\n".join(MCC), encoding="utf-8")
    (folder / "CC.dat").write_text("\n".join(CC), encoding="utf-8")
    (folder / "CCE.dat").write_text("\n".join(CCE), encoding="utf-8")
    (folder / "ZD_INVALID.dat").write_text("W10.x00 在楼梯或台阶上跌倒和跌落\n", encoding="utf-8")
    (folder / "SS_INVALID.dat").write_text("89.0300 全面会诊\n", encoding="utf-8")
    return folder
