"""Every format and habit of CONTRACT.md §2, with small files built here, read through
the real loader into a temporary warehouse."""

from __future__ import annotations

import codecs
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.ingest.load import load_source
from pipelines.quarters import Quarter
from sources.readers import InputRefused, detect_encoding, read_file
from sources.registry import source
from warehouse.connection import connect

QUARTER = "2025Q3"
ID_A = "140502198001014736"  # valid
ID_X = "11010519491231002X"  # valid, ends in X
DEATH_HEADER = "记录编号,姓名,身份证号,死亡日期,信息来源"


def _write(tmp_path: Path, source_name: str, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "inbox" / QUARTER / source_name
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return tmp_path / "inbox" / QUARTER


def load(tmp_path: Path, source_name: str, files: dict[str, bytes]):
    quarter_dir = _write(tmp_path, source_name, files)
    with connect(tmp_path / "w.duckdb") as con:
        outcome = load_source(con, source(source_name), quarter_dir, Quarter.parse(QUARTER), "test")
        staged = con.execute(f"SELECT * FROM staging.{source_name} WHERE quarter = ? ORDER BY source_file, source_row", [QUARTER]).pl()
        quarantined = con.execute(f"SELECT * FROM quarantine.{source_name} WHERE quarter = ? ORDER BY source_file, source_row", [QUARTER]).pl()
    assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined
    return outcome, staged, quarantined


def deaths_csv(rows: list[str], header: str = DEATH_HEADER, title: str | None = None) -> str:
    lines = ([title, ""] if title else []) + [header] + rows
    return "\n".join(lines) + "\n"


ROWS = [f"SW1,张三,{ID_A},2025-07-03,公安户籍注销", f"SW2,李四,{ID_X},2025/7/4,殡葬"]


@pytest.mark.parametrize(
    "encoding,prefix",
    [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("gb18030", b""), ("gbk", b"")],
)
def test_csv_encodings(tmp_path, encoding, prefix):
    outcome, staged, _ = load(tmp_path, "death", {"d.csv": prefix + deaths_csv(ROWS).encode(encoding)})
    assert staged["name"].to_list() == ["张三", "李四"]
    assert staged["info_source"].to_list() == ["公安户籍注销", "殡葬火化"]
    expected = {"utf-8": "utf-8-sig" if prefix else "utf-8", "gb18030": "gb18030", "gbk": "gb18030"}[encoding]
    assert outcome.files[0].encoding == expected


def test_utf16_tab_separated_export(tmp_path):
    text = deaths_csv([r.replace(",", "\t") for r in ROWS], header=DEATH_HEADER.replace(",", "\t"))
    outcome, staged, _ = load(tmp_path, "death", {"d.txt": codecs.BOM_UTF16_LE + text.encode("utf-16-le")})
    assert staged["id_number"].to_list() == [ID_A, ID_X]
    assert outcome.files[0].encoding == "utf-16"


def test_title_rows_and_header_aliases_and_extra_columns(tmp_path):
    header = "序号,编号,死者姓名,公民身份号码,死亡时间,数据来源,备注"
    rows = [f"1,SW1,张三,{ID_A},20250703,公安,", f"2,SW2,李四,{ID_X},2025年7月4日,卫健,补录"]
    outcome, staged, _ = load(tmp_path, "death", {"d.csv": deaths_csv(rows, header=header, title="2025年第三季度死亡人员名单").encode()})
    assert staged["death_date"].to_list() == [dt.date(2025, 7, 3), dt.date(2025, 7, 4)]
    assert outcome.files[0].header_row == 3
    assert "序号" in outcome.files[0].message and "备注" in outcome.files[0].message
    assert staged["source_row"].to_list() == [4, 5]


def test_several_files_are_one_extract(tmp_path):
    files = {"a.csv": deaths_csv(ROWS[:1]).encode(), "b.csv": deaths_csv(ROWS[1:]).encode("gb18030")}
    outcome, staged, _ = load(tmp_path, "death", files)
    assert len(outcome.files) == 2 and staged.height == 2


def test_messy_ids_in_csv(tmp_path):
    rows = [
        f"SW1,张三, {ID_A[:6]} {ID_A[6:]} ,2025-07-03,公安",  # spaces
        "SW2,李四,１４０５０２１９８００１０１４７３６,2025-07-03,公安",  # full width
        f"SW3,王五,{ID_X.lower()},2025-07-03,公安",  # lower-case x
        f"SW4,赵六,'{ID_A},2025-07-03,公安",  # leading apostrophe
        "SW5,钱七,1.40502E+17,2025-07-03,公安",  # Excel General format
        "SW6,孙八,140502198001015000,2025-07-03,公安",  # Excel number format, 15 digits kept
        "SW7,周九,1.40502198001015E+17,2025-07-03,公安",
        "SW8,吴十,140502800101473,2025-07-03,公安",  # legacy 15 digits
    ]
    _, staged, _ = load(tmp_path, "death", {"d.csv": deaths_csv(rows).encode()})
    by_key = {r["record_id"]: r for r in staged.iter_rows(named=True)}
    for key in ("SW1", "SW2", "SW4"):
        assert by_key[key]["id_number"] == ID_A and by_key[key]["id_number_valid"]
    assert by_key["SW3"]["id_number"] == ID_X
    for key, partial in (("SW5", "140502"), ("SW6", "140502198001015"), ("SW7", "140502198001015")):
        assert by_key[key]["id_number"] is None and by_key[key]["id_number_partial"] == partial
        assert by_key[key]["id_number_flag"] == "excel_rounded"
    assert by_key["SW8"]["id_number"] == ID_A and by_key["SW8"]["id_number_flag"] == "upgraded_15"


def _xlsx(path: Path, rows: list[list], title: str | None = None) -> bytes:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    r = 0
    if title:
        sheet.write(0, 0, title)
        r = 2
    for row in rows:
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), date_format)
            elif value is not None:
                sheet.write(r, c, value)
        r += 1
    workbook.close()
    return path.read_bytes()


def test_excel_with_title_typed_cells_and_numeric_ids(tmp_path):
    rows = [
        DEATH_HEADER.split(","),
        ["SW1", "张三", ID_A, dt.date(2025, 7, 3), "公安户籍注销"],  # ID as text, date as a date cell
        ["SW2", "李四", 140502198001015000.0, 45841, "卫健"],  # ID typed as a number: Excel keeps 15 digits; date as serial
        ["SW3", "王五", 140502800101473, "2025年7月3日", "殡葬"],  # a legacy 15-digit number survives
        [None, None, None, None, None],  # an empty row is not a record
    ]
    content = _xlsx(tmp_path / "src.xlsx", rows, title="2025年第三季度死亡信息")
    outcome, staged, _ = load(tmp_path, "death", {"d.xlsx": content})
    by_key = {r["record_id"]: r for r in staged.iter_rows(named=True)}
    assert by_key["SW1"]["id_number"] == ID_A and by_key["SW1"]["death_date"] == dt.date(2025, 7, 3)
    assert by_key["SW2"]["id_number"] is None and by_key["SW2"]["id_number_partial"] == "140502198001015"
    assert by_key["SW2"]["death_date"] == dt.date(2025, 7, 3) and by_key["SW2"]["death_date_flag"] == "excel_serial"
    assert by_key["SW3"]["id_number"] == ID_A
    assert outcome.files[0].header_row == 3 and staged.height == 3


def test_money_and_derived_out_of_pocket(tmp_path):
    header = "结算流水号,姓名,身份证号,结算日期,就诊类别,医疗总费用,基本医保支付,大病保险支付,医疗救助支付,其他补充支付,个人负担"
    rows = [
        f"JS1,张三,{ID_A},2025-07-03,住院,\"1,234.50\",600元,0,0,0,634.5",
        f"JS2,张三,{ID_A},2025-07-04,住院,1000,600,100,50,,",  # 个人负担 empty: total minus payments
    ]
    _, staged, _ = load(tmp_path, "medical", {"m.csv": ("\n".join([header, *rows]) + "\n").encode()})
    by_key = {r["settlement_id"]: r for r in staged.iter_rows(named=True)}
    assert by_key["JS1"]["total_cost_yuan"] == Decimal("1234.50") and by_key["JS1"]["basic_insurance_yuan"] == Decimal("600")
    assert by_key["JS2"]["out_of_pocket_yuan"] == Decimal("250.00") and by_key["JS2"]["out_of_pocket_yuan_flag"] == "derived"


def test_minority_names_and_spaces(tmp_path):
    rows = [f"SW1,阿依古丽.买买提,{ID_A},2025-07-03,公安", f"SW2,张 三,{ID_X},2025-07-03,公安"]
    _, staged, _ = load(tmp_path, "death", {"d.csv": deaths_csv(rows).encode()})
    assert staged["name"].to_list() == ["阿依古丽·买买提", "张三"]


def test_disability_id_from_certificate_and_student_number(tmp_path):
    header = "残疾人证号,姓名,身份证号,残疾类别,残疾等级,发证日期,证件状态"
    _, staged, _ = load(tmp_path, "disability", {"d.csv": f"{header}\n{ID_A}42,张三,,肢体,二级,2020-01-01,有效\n".encode()})
    assert staged["id_number"].item() == ID_A and staged["id_number_flag"].item() == "from_certificate"
    assert staged["grade"].item() == "二级"
    header = "全国学籍号,学生姓名,身份证号,学校名称,学段,就读方式,是否高收费,学年学费,学年住宿费,学年保育教育费,资助金额,学籍状态"
    _, staged, _ = load(tmp_path, "education", {"e.csv": f"{header}\nG{ID_X},李四,,一中,高中,全日制,否,1000,500,0,,在读\n".encode()})
    assert staged["id_number"].item() == ID_X and staged["id_number_flag"].item() == "from_student_no"
    assert staged["aid_yuan"].item() is None


def test_bad_rows_are_quarantined_with_reasons(tmp_path):
    rows = [
        f"SW1,张三,{ID_A},2025-07-03,公安",
        f"SW2,李四,{ID_X},不详,公安",  # unreadable date in a required field
        f",王五,{ID_A},2025-07-03,公安",  # no key
        f"SW4,赵六,{ID_A}",  # too few fields
        f"SW5,钱七,{ID_A},2025-07-03,公安,多余",  # too many fields
        f"SW1,张三,{ID_A},2025-07-03,公安",  # the same record again
    ]
    outcome, staged, quarantined = load(tmp_path, "death", {"d.csv": deaths_csv(rows).encode()})
    assert staged["record_id"].to_list() == ["SW1"]
    reasons = dict(zip(quarantined["source_row"].to_list(), quarantined["reason_code"].to_list()))
    assert reasons == {3: "invalid:death_date", 4: "missing:record_id", 5: "csv_malformed", 6: "csv_malformed", 7: "duplicate_record"}
    assert outcome.rows_read == 6 and outcome.rows_quarantined == 5


def test_truncated_file_keeps_its_encoding_and_loses_no_row(tmp_path):
    content = deaths_csv(ROWS + ["SW3,王五六七,1405"]).encode()
    cut = content[: content.rindex("六".encode()) + 1]  # in the middle of a character
    outcome, staged, quarantined = load(tmp_path, "death", {"d.csv": cut})
    assert outcome.files[0].encoding == "utf-8" and "截断" in outcome.files[0].message
    assert staged.height == 2 and quarantined["reason_code"].to_list() == ["csv_malformed"]


def test_missing_required_column_refuses_the_source_naming_file_and_column(tmp_path):
    header = "记录编号,姓名,身份证号,信息来源"
    with pytest.raises(InputRefused) as refused:
        load(tmp_path, "death", {"d.csv": f"{header}\nSW1,张三,{ID_A},公安\n".encode()})
    assert "death/d.csv" in str(refused.value) and "死亡日期" in str(refused.value)
    with connect(tmp_path / "w.duckdb") as con:
        logged = con.execute("SELECT outcome, file FROM audit.ingest_log").fetchall()
    assert logged == [("refused", "death/d.csv")]


def test_garbage_bytes_are_refused(tmp_path):
    garbage = bytes(range(128, 256)) * 20
    with pytest.raises(InputRefused, match="无法识别编码"):
        load(tmp_path, "death", {"g.csv": garbage})
    with pytest.raises(ValueError, match="NUL"):
        (tmp_path / "bin.csv").write_bytes(b"PK\x03\x04\x00\x00abc")
        detect_encoding(tmp_path / "bin.csv")


def test_a_broken_excel_file_is_refused(tmp_path):
    with pytest.raises(InputRefused, match="Excel"):
        load(tmp_path, "death", {"d.xlsx": b"PK\x03\x04 not really a workbook"})


def test_empty_folder_and_missing_folder_are_refused(tmp_path):
    (tmp_path / "inbox" / QUARTER / "death").mkdir(parents=True)
    (tmp_path / "inbox" / QUARTER / "death" / ".DS_Store").write_bytes(b"\x00")
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(InputRefused, match="没有 .csv 或 .xlsx"):
            load_source(con, source("death"), tmp_path / "inbox" / QUARTER, Quarter.parse(QUARTER), "t")
        with pytest.raises(InputRefused, match="缺少数据源文件夹 detention"):
            load_source(con, source("detention"), tmp_path / "inbox" / QUARTER, Quarter.parse(QUARTER), "t")
        # An optional source may be absent.
        outcome = load_source(con, source("standards"), tmp_path / "inbox" / QUARTER, Quarter.parse(QUARTER), "t")
        assert not outcome.folder_present


def test_header_only_file_is_empty_not_an_error(tmp_path):
    outcome, staged, _ = load(tmp_path, "death", {"d.csv": (DEATH_HEADER + "\n").encode(), "e.csv": deaths_csv(ROWS).encode()})
    assert [f.outcome for f in outcome.files] == ["empty", "loaded"] and staged.height == 2


def test_reloading_a_quarter_replaces_it(tmp_path):
    load(tmp_path, "death", {"d.csv": deaths_csv(ROWS).encode()})
    (tmp_path / "inbox" / QUARTER / "death" / "d.csv").write_bytes(deaths_csv(ROWS[:1]).encode())
    _, staged, _ = load(tmp_path, "death", {})
    assert staged.height == 1


def test_only_identical_copies_are_duplicates_and_the_first_copy_is_kept(tmp_path):
    """Same key and the same values: a copy (the first by file and row is kept, the others
    point to it). Same key, another value: both kept (the key check reports them). Copies
    across two files of one delivery count too."""
    first = [
        f"SW1,张三,{ID_A},2025-07-03,公安",
        f"SW2,李四,{ID_X},2025-07-04,公安",
        f"SW2,李四,{ID_X},2025-07-05,公安",  # the same key, another date: not a copy
        f"SW1,张三,{ID_A},2025-07-03,公安",  # a copy of row 2
    ]
    second = [f"SW1,张三,{ID_A},2025-07-03,公安", f"SW3,王五,{ID_A},2025-07-03,公安"]
    files = {"a.csv": deaths_csv(first).encode(), "b.csv": deaths_csv(second).encode()}
    outcome, staged, quarantined = load(tmp_path, "death", files)
    kept = list(zip(staged["source_file"].to_list(), staged["source_row"].to_list()))
    assert kept == [("death/a.csv", 2), ("death/a.csv", 3), ("death/a.csv", 4), ("death/b.csv", 3)]
    copies = quarantined.filter(quarantined["reason_code"] == "duplicate_record")
    assert list(zip(copies["source_file"].to_list(), copies["source_row"].to_list())) == [("death/a.csv", 5), ("death/b.csv", 2)]
    assert set(copies["reason"].to_list()) == {"与 death/a.csv 第2行完全相同的重复记录"}
    assert outcome.rows_read == 6 and outcome.rows_quarantined == 2


def test_batches_come_in_file_order_even_when_duckdb_may_reorder(tmp_path):
    """The rows of a file reach staging in the order of its lines, with each row's line
    number, also when DuckDB is allowed to return a scan out of order."""
    rows = [f"SW{i:05d},张三,{ID_A},2025-07-03,公安" for i in range(3000)]
    quarter_dir = _write(tmp_path, "death", {"d.csv": deaths_csv(rows).encode()})
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("SET preserve_insertion_order = false")
        spec = source("death")
        readings = read_file(quarter_dir / "death" / "d.csv", "death/d.csv", spec, con, "__raw_order", tmp_path)
        frames = [frame for reading in readings for frame in reading.batches(con, size=700)]
    ids = [r for frame in frames for r in frame["record_id"].to_list()]
    lines = [n for frame in frames for n in frame["source_row"].to_list()]
    assert ids == [f"SW{i:05d}" for i in range(3000)] and lines == list(range(2, 3002))
