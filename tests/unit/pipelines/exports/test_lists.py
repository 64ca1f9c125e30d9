"""The township workbooks as caseworkers open, print and return them: row heights estimated
from the text, 序号 and 已逾期, the column order and page setup, an empty sheet's note, the
returned workbook read back by its headers (also in the layout of earlier quarters), and the
workbook printed to PDF by LibreOffice. Synthetic people only (测试甲, IDs of zeros)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pipelines.exports.lists import (
    CJK_UNITS,
    COLUMNS,
    EMPTY_SHEET_NOTE,
    LINE_PT,
    OVERDUE,
    SHEETS,
    VERIFICATION_CHOICES,
    WRAPPED,
    overdue,
    row_height,
    row_lines,
    sheet_rows,
    text_width,
    write_workbook,
)
from pipelines.quarters import Quarter

QUARTER = "2025Q1"  # ends on 2025-03-31
Q = Quarter.parse(QUARTER)
TOWNSHIP = "测试&镇"  # an & to check that the footer escapes it
NAMES = "甲乙丙丁戊己庚辛壬癸"
HEADERS = [label for _, label, _ in COLUMNS]
WIDTHS = {field: width for field, _, width in COLUMNS}


def long_evidence(i: int) -> str:
    """An evidence text of the usual shape (amounts, dates, record keys, an ID number), long
    enough for a dozen lines, ending in a marker of its own row."""
    return (
        f"近12个月刚性支出14,347.17元（医疗个人负担14,347.17元）（系统中有近3个月的医保结算数据），上年家庭总收入41,100元，"
        f"3人；扣除后月人均743.13元，低于低保标准840元，每人每月差额96.87元；家庭金融资产33,741.60元，未超过上限90,720元。"
        f"比对依据：医保结算：县中医院 JS{i:09d}（2025年1月6日），姓名 测试{NAMES[i % 10]}，身份证号 {synthetic_id(i)}，"
        f"身份证号、姓名一致；医保结算：社区卫生服务中心 JS{i + 500:09d}（2025年3月29日），身份证号、姓名一致。第{i}条依据完"
    )


def synthetic_id(i: int) -> str:
    return f"000000{i:012d}"  # region code 000000: no real person's number


def warning(i: int, kind: str = "ineligibility", *, priority: int | None = None, due: dt.date | None = dt.date(2025, 4, 30),
            evidence: str = "短依据", severity: str = "red") -> dict:
    """One row as `list_rows` gives it."""
    return {
        "priority": priority if priority is not None else 90 + 55 * i, "quarter": QUARTER, "county_code": "000001",
        "township": TOWNSHIP, "village": "测试村", "household_id": f"H{i:013d}", "name": f"测试{NAMES[i % 10]}",
        "id_number": synthetic_id(i), "rule_code": "N05", "rule_title": "医疗救助未落实", "rule_kind": kind,
        "severity": severity, "status": "new", "first_seen_quarter": QUARTER, "evidence_text": evidence,
        "action": "核实住院费用医疗救助落实情况，推送医保部门按规定给予住院救助", "due_date": due,
        "policy_ref": "焦民〔2024〕8号 二（三）2（1）", "warning_id": f"W{i:016d}", "rule": "N05 医疗救助未落实",
        "severity_word": {"red": "红色", "orange": "橙色", "yellow": "黄色"}[severity], "status_word": "新增",
        "verification_result": None, "verification_note": None,
    }


SCHEMA = {"priority": pl.Int64, "due_date": pl.Date, "verification_result": pl.Utf8, "verification_note": pl.Utf8}


def frame(records: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(records, schema_overrides=SCHEMA)


def header(sheet) -> list:
    return [c.value for c in sheet[1]]


def column(sheet, label: str) -> list:
    index = header(sheet).index(label) + 1
    return [sheet.cell(row=r, column=index).value for r in range(2, sheet.max_row + 1)]


# ---- row heights ------------------------------------------------------------------------


def test_a_cjk_character_is_about_two_width_units_and_ascii_one():
    assert text_width("") == 0
    assert text_width("JS000000001") == 11
    assert text_width("测试") == pytest.approx(2 * CJK_UNITS)
    assert text_width("（测试）a1") == pytest.approx(4 * CJK_UNITS + 2)


def test_lines_grow_with_the_text_and_shrink_with_the_width():
    assert row_lines(None, 36) == row_lines("", 36) == row_lines("短依据", 36) == 1
    text = "测" * 100
    # 36 units hold 17 CJK characters (Excel: 257 px of 14.7 px characters): 6 lines
    assert row_lines(text, 36) == 6
    assert row_lines(text, 22) > row_lines(text, 36)
    assert row_lines(text, 14) > row_lines(text, 22)
    assert row_lines(" ".join(["12345"] * 17), 36) < row_lines(text, 36)  # digits are half as wide
    assert row_lines("1" * 100, 36) < row_lines(text, 36)  # a word longer than a line breaks anywhere
    assert row_lines(text + text, 36) >= 2 * row_lines(text, 36) - 1


def test_explicit_newlines_start_lines():
    assert row_lines("甲\n乙\n丙", 36) == 3
    assert row_lines("甲\n\n丙", 36) == 3
    assert row_lines("测" * 100 + "\n甲", 36) == row_lines("测" * 100, 36) + 1


def _excel_lines(text: str, width: float) -> int:
    """Lines of a greedy wrap with Excel's metrics (Calibri 11: 7 px digits; CJK at 11 pt:
    14.7 px; a column of width w is 7w + 5 px, 6 px of it padding), breaking anywhere
    between CJK characters but not inside a word of ASCII characters (unless it is longer
    than a line)."""
    usable = int(width * 7 + 0.5) + 5 - 6
    lines, used = 1, 0.0
    for token in re.findall(r"[!-~]+|\s|[^\x00-\x7f]", text):
        size = sum(14.67 if ord(c) > 127 else 7.0 for c in token)
        if token.isspace():
            used = min(used + size, usable)
        elif used + size <= usable:
            used += size
        elif size <= usable:
            lines, used = lines + 1, size
        else:
            for c in token:
                step = 14.67 if ord(c) > 127 else 7.0
                if used + step > usable:
                    lines, used = lines + 1, 0.0
                used += step
    return lines


def _evidence_like_texts(count: int) -> list[str]:
    """Texts of the shape of the rendered evidence, actions and policy references."""
    rng = random.Random(20250331)
    words = ["近12个月", "刚性支出", "医疗个人负担", "上年家庭总收入", "扣除后月人均", "低于低保标准", "每人每月差额", "家庭金融资产",
             "未超过上限", "比对依据：", "医保结算：", "县中医院", "社区卫生服务中心", "姓名一致", "身份证号、姓名一致", "，", "；", "。", "（", "）"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(2, 40)):
            pick = rng.random()
            if pick < 0.75:
                parts.append(rng.choice(words))
            elif pick < 0.88:
                parts.append(f"{rng.randint(0, 10 ** rng.randint(1, 6)):,}.{rng.randint(0, 99):02d}元")
            elif pick < 0.94:
                parts.append(f"{rng.randint(2020, 2025)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日")
            elif pick < 0.97:
                parts.append(f" JS{rng.randint(0, 10 ** 9):09d}")
            else:
                parts.append(f"，身份证号 {synthetic_id(rng.randint(0, 999))}")
        texts.append("".join(parts))
    return texts


def test_the_estimate_never_needs_fewer_lines_than_excel_wraps_to():
    texts = _evidence_like_texts(400) + [long_evidence(i) for i in range(5)]
    widths = sorted({WIDTHS[f] for f in WRAPPED})
    short = [(w, t) for t in texts for w in widths if row_lines(t, w) < _excel_lines(t, w)]
    assert not short, f"{len(short)} cells would be cut off, e.g. width {short[0][0]}"
    # and not wastefully many: at most a line in ten more than the wrap needs
    needed = sum(_excel_lines(t, 36) for t in texts)
    assert sum(row_lines(t, 36) for t in texts) <= 1.1 * needed


def test_row_height_is_lines_times_line_height_plus_padding():
    assert row_height(1) == pytest.approx(LINE_PT + 4)
    assert row_height(10) - row_height(9) == pytest.approx(LINE_PT)
    assert row_height(100) == 409  # Excel's largest row height


# ---- 序号, 已逾期 -------------------------------------------------------------------------


def test_each_sheet_is_numbered_from_one_in_the_order_given_and_keeps_the_province_rank():
    kinds = ["ineligibility", "need", "ineligibility", "need", "ineligibility"]
    rows = frame([warning(i, kind, priority=p) for i, (kind, p) in enumerate(zip(kinds, [93, 148, 203, 7, 1210]))])
    ineligible = sheet_rows(rows, "ineligibility", Q)
    assert ineligible["seq"].to_list() == [1, 2, 3]
    assert ineligible["priority"].to_list() == [93, 203, 1210]  # not re-sorted: list_rows orders
    assert ineligible["warning_id"].to_list() == [f"W{i:016d}" for i in (0, 2, 4)]
    need = sheet_rows(rows, "need", Q)
    assert need["seq"].to_list() == [1, 2] and need["priority"].to_list() == [148, 7]
    assert sheet_rows(rows, "data_quality", Q).height == 0


def test_a_warning_due_on_or_before_the_quarters_last_day_is_overdue():
    dues = [dt.date(2025, 1, 15), dt.date(2025, 3, 31), dt.date(2025, 4, 1), None]
    rows = frame([warning(i, due=due) for i, due in enumerate(dues)])
    assert sheet_rows(rows, "ineligibility", Q)["overdue"].to_list() == [OVERDUE, OVERDUE, None, None]
    assert sheet_rows(rows, "ineligibility", Quarter.parse("2024Q4"))["overdue"].to_list() == [None, None, None, None]
    days = pl.DataFrame({"due": [dt.date(2025, 12, 31), dt.date(2026, 1, 1)]})
    assert days.select(overdue(pl.col("due"), Quarter.parse("2025Q4")).alias("mark"))["mark"].to_list() == [OVERDUE, None]


# ---- the workbook -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> Path:
    """疑似不符合条件: four rows, one with a long evidence text, one overdue; 救助需求预警 empty."""
    records = [warning(0, priority=148), warning(1, priority=203, evidence=long_evidence(1), severity="orange"),
               warning(2, priority=311, due=dt.date(2025, 3, 31), severity="yellow"), warning(3, priority=930)]
    path = tmp_path_factory.mktemp("book") / "township.xlsx"
    assert write_workbook(path, frame(records), Q) == {"疑似不符合条件": 4, "救助需求预警": 0}
    return path


def test_who_comes_first_and_stays_in_view_and_the_read_back_headers_are_kept(workbook):
    book = openpyxl.load_workbook(workbook)
    assert book.sheetnames == [title for _, title in SHEETS[:2]]
    for sheet in book.worksheets:
        assert header(sheet) == HEADERS
        assert HEADERS[:3] == ["序号", "姓名", "身份证号"]
        assert sheet.freeze_panes == "D2"  # the header row and 序号, 姓名, 身份证号
        assert {"预警编号", "季度", "核查结果", "核查说明"} <= set(HEADERS)
        assert "优先序号" not in HEADERS  # a township's 序号 is not the province's rank
        assert sheet.auto_filter.ref.startswith("A1:U")
        assert any(all(c in (v.formula1 or "") for c in VERIFICATION_CHOICES) for v in sheet.data_validations.dataValidation)
    sheet = book["疑似不符合条件"]
    assert column(sheet, "序号") == [1, 2, 3, 4]
    assert column(sheet, "全省优先序号") == [148, 203, 311, 930]
    assert column(sheet, "是否逾期") == [None, None, OVERDUE, None]
    assert column(sheet, "身份证号") == [synthetic_id(i) for i in range(4)]
    assert column(sheet, "办理期限")[2] == dt.datetime(2025, 3, 31)
    assert sheet.cell(row=2, column=HEADERS.index("预警等级") + 1).fill.fgColor.rgb.endswith("F8CBAD")  # red


def test_rows_are_as_tall_as_their_wrapped_text(workbook):
    sheet = openpyxl.load_workbook(workbook)["疑似不符合条件"]
    heights = [sheet.row_dimensions[r].height for r in range(2, 6)]
    lines = row_lines(long_evidence(1), WIDTHS["evidence_text"])
    assert lines >= 10
    assert heights[1] == pytest.approx(row_height(lines), abs=0.5)  # Excel keeps whole pixels
    action = warning(0)["action"]
    assert heights[0] == heights[2] == heights[3] == pytest.approx(row_height(row_lines(action, WIDTHS["action"])), abs=0.5)
    assert heights[0] >= 2 * LINE_PT  # the action needs more than one line too
    assert sheet.row_dimensions[1].height >= 2 * LINE_PT  # headers wrap in narrow columns


def test_the_page_is_landscape_a4_one_page_wide_with_the_header_row_on_every_page(workbook):
    for sheet in openpyxl.load_workbook(workbook).worksheets:
        assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.paperSize == 9
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.page_setup.fitToWidth in (None, 1) and sheet.page_setup.fitToHeight == 0
        assert sheet.print_title_rows == "$1:$1"
        assert sheet.oddFooter.left.text == "测试&&镇 2025Q1"  # && prints as &
        assert sheet.oddFooter.right.text == "第 &P 页，共 &N 页"
        assert sheet.title in sheet.oddHeader.center.text
        assert sheet.page_margins.left <= 0.3 and sheet.page_margins.right <= 0.3


def test_an_empty_sheet_says_so_over_its_first_row_but_holds_no_cell(workbook):
    sheet = openpyxl.load_workbook(workbook)["救助需求预警"]
    assert sheet.max_row == 1  # no data row, not even the note
    with zipfile.ZipFile(workbook) as archive:
        drawings = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/drawings/drawing")]
    assert len(drawings) == 1 and EMPTY_SHEET_NOTE in drawings[0]
    assert re.search(r"<xdr:from><xdr:col>0</xdr:col>.*?<xdr:row>1</xdr:row>", drawings[0])


def test_a_national_list_of_several_townships_has_no_township_in_its_footer(tmp_path):
    rows = frame([warning(0), {**warning(1), "township": "另一测试镇"}])
    write_workbook(tmp_path / "n.xlsx", rows, Q)
    sheet = openpyxl.load_workbook(tmp_path / "n.xlsx").worksheets[0]
    assert sheet.oddFooter.left.text == "2025Q1"


# ---- read back as a returned workbook -----------------------------------------------------


OLD_HEADERS = ["优先序号", "季度", "区县代码", "乡镇（街道）", "村（社区）", "户编号", "姓名", "身份证号", "预警类型", "预警等级",
               "预警状态", "首次发现", "预警依据", "处理建议", "办理期限", "政策依据", "预警编号", "核查结果", "核查说明"]


def _load_verifications(tmp_path: Path, files: dict[str, Path]):
    from pipelines.ingest.load import load_source
    from sources.registry import source
    from warehouse.connection import connect

    folder = tmp_path / "inbox" / "2025Q2" / "verifications"
    folder.mkdir(parents=True)
    for name, path in files.items():
        shutil.copy(path, folder / name)
    with connect(tmp_path / "w.duckdb") as con:
        outcome = load_source(con, source("verifications"), folder.parent, Quarter.parse("2025Q2"), "test")
        staged = con.execute("SELECT warning_id, list_quarter, result, note FROM staging.verifications ORDER BY ALL").fetchall()
    return outcome, staged


def test_a_returned_workbook_reads_as_its_rows_only(workbook, tmp_path):
    """The empty sheet's note is no row: nothing quarantined for a missing 预警编号."""
    outcome, staged = _load_verifications(tmp_path, {"returned.xlsx": workbook})
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (4, 4, 0)
    assert staged == [(f"W{i:016d}", QUARTER, None, None) for i in range(4)]


def test_returned_workbooks_are_read_by_their_headers_in_this_and_the_old_layout(workbook, tmp_path):
    filled = tmp_path / "filled.xlsx"
    book = openpyxl.load_workbook(workbook)
    sheet = book["疑似不符合条件"]
    names = header(sheet)
    sheet.cell(row=3, column=names.index("核查结果") + 1, value="属实")
    sheet.cell(row=3, column=names.index("核查说明") + 1, value="入户核实")
    book.save(filled)
    old = tmp_path / "old.xlsx"  # a list of an earlier quarter: 优先序号 first, no 序号 or 是否逾期
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "疑似不符合条件"
    sheet.append(OLD_HEADERS)
    values = {**warning(7), "priority": 93, "quarter": "2024Q4", "verification_result": "不属实", "verification_note": "已外出务工"}
    fields = {"优先序号": "priority", "预警编号": "warning_id", "核查结果": "verification_result", "核查说明": "verification_note"}
    sheet.append([values.get(fields.get(h, ""), values["quarter"] if h == "季度" else "x") for h in OLD_HEADERS])
    book.save(old)
    outcome, staged = _load_verifications(tmp_path, {"filled.xlsx": filled, "old.xlsx": old})
    assert outcome.rows_quarantined == 0
    results = {w: (q, r, n) for w, q, r, n in staged if r}
    assert results == {f"W{1:016d}": (QUARTER, "属实", "入户核实"), f"W{7:016d}": ("2024Q4", "不属实", "已外出务工")}


# ---- printed by LibreOffice -------------------------------------------------------------

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
POPPLER = shutil.which("pdftotext") and shutil.which("pdfinfo")
PRINTS = pytest.mark.skipif(
    not (SOFFICE and POPPLER),
    reason="printing to PDF needs LibreOffice (soffice) and poppler-utils (pdftotext, pdfinfo); .ci/run installs "
    "libreoffice-calc-nogui and poppler-utils",
)
A4_LANDSCAPE = (841.9, 595.3)  # points
PRINTED_ROWS = 16


@dataclasses.dataclass
class Printed:
    pdf: Path
    pages: list[str]  # pdftotext -raw, one string per page
    sizes: list[tuple[float, float]]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> Printed:
    """A workbook of two or more printed pages of 疑似不符合条件 (long evidence texts) and an
    empty 救助需求预警, converted once; LibreOffice runs with a profile of its own."""
    folder = tmp_path_factory.mktemp("printed")
    records = [warning(i, evidence=long_evidence(i) if i % 2 else "短依据", due=dt.date(2025, 3, 31) if i == 2 else dt.date(2025, 4, 30),
                       severity=["red", "orange", "yellow"][i % 3]) for i in range(PRINTED_ROWS)]
    book = folder / "township.xlsx"
    write_workbook(book, frame(records), Q)
    done = subprocess.run(
        [SOFFICE, f"-env:UserInstallation={(folder / 'profile').as_uri()}", "--headless", "--norestore",
         "--convert-to", "pdf", "--outdir", str(folder), str(book)],
        capture_output=True, text=True, timeout=180,
    )
    pdf = folder / "township.pdf"
    assert done.returncode == 0 and pdf.exists(), done.stderr[-2000:]
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "999", str(pdf)], capture_output=True, text=True, check=True).stdout
    sizes = [(float(w), float(h)) for w, h in re.findall(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info, flags=re.M)]
    return Printed(pdf, pages, sizes)


@PRINTS
def test_printed_pages_are_landscape_a4(printed):
    assert len(printed.sizes) == len(printed.pages) >= 3
    for width, height in printed.sizes:
        assert (width, height) == pytest.approx(A4_LANDSCAPE, abs=1)


@PRINTS
def test_all_columns_fit_the_first_page_and_the_header_row_repeats_on_the_second(printed):
    first, second = (_squeeze(p) for p in printed.pages[:2])
    assert "疑似不符合条件" in first and "疑似不符合条件" in second  # both pages of the first sheet
    for label in HEADERS:
        assert _squeeze(label) in first, f"{label} is not on page 1"
        assert _squeeze(label) in second, f"{label} is not repeated on page 2"
    assert "乡镇（街道）" in first and "测试&镇" in first  # the last column, with its values
    last_row = f"W{PRINTED_ROWS - 1:016d}"
    assert last_row not in first and last_row in _squeeze("".join(printed.pages[1:-1]))  # page 2 goes on


@PRINTS
def test_long_evidence_prints_in_full(printed):
    everything = _squeeze("".join(printed.pages))
    for i in range(1, PRINTED_ROWS, 2):
        assert _squeeze(long_evidence(i)) in everything, f"the evidence of row {i + 1} is cut off"
    assert OVERDUE in everything


@PRINTS
def test_the_footer_names_township_quarter_and_page(printed):
    total = len(printed.pages)
    for number, page in enumerate(printed.pages, start=1):
        assert "测试&镇 2025Q1" in page
        assert re.search(rf"第\s*{number}\s*页，共\s*{total}\s*页", page), f"page {number} has no page number"


@PRINTS
def test_an_empty_sheet_prints_its_note(printed):
    last = _squeeze(printed.pages[-1])
    assert "救助需求预警" in last and EMPTY_SHEET_NOTE in last
    assert all(_squeeze(label) in last for label in HEADERS)
