"""Generated delivery files against the CSV reader: every record below the header comes out
parsed or rejected, or the file is refused naming it; never rows missing, never a traceback.

Each file is made from random cells (Chinese text, quotes, delimiters, line breaks inside
cells), quoted properly or sloppily, in one of the encodings departments use, with or
without a BOM, with title lines and blank lines, line endings mixed at random, and
sometimes cut off mid-record. The expected count of records comes from Python's csv
module on the decoded text: a parser independent of both DuckDB and the reader's own
counter. `make test` tries FUZZ_EXAMPLES files; the `slow` run many more.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.readers import InputRefused, read_csv_file
from sources.registry import source

FUZZ_EXAMPLES = int(os.environ.get("DOUDI_FUZZ_EXAMPLES", "500"))
SLOW_EXAMPLES = 5000
HEADERS = ["记录编号", "姓名", "身份证号", "死亡日期", "信息来源"]
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "utf-16"]
DELIMITERS = [",", "\t", ";", "|"]
ENDINGS = ["\n", "\r\n", "\r"]
TITLES = ["2025年第三季度死亡人员名单", "制表单位：某县民政局", "", "导出时间：2025-10-08 09:12"]

cell_text = st.text(alphabet=st.sampled_from(list("张王李三四5 0X-/年") + ['"', ",", "\t", ";", "|", "\n"]), max_size=12)


@st.composite
def delivery(draw):
    delimiter = draw(st.sampled_from(DELIMITERS))
    encoding = draw(st.sampled_from(ENCODINGS))
    sloppy = draw(st.booleans())  # cells written as a clerk's macro would, quotes unescaped
    records = draw(st.lists(st.lists(cell_text, min_size=len(HEADERS) - 1, max_size=len(HEADERS) + 1), max_size=25))
    lines = [title for title in draw(st.lists(st.sampled_from(TITLES), max_size=3))]
    lines.append(delimiter.join(HEADERS))
    for cells in records:
        if sloppy:
            lines.append(delimiter.join(c.replace("\n", " ") for c in cells))
        else:
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=delimiter, lineterminator="", quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))).writerow(cells)
            lines.append(buffer.getvalue())
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line between records
    endings = draw(st.lists(st.sampled_from(ENDINGS), min_size=len(lines), max_size=len(lines)))
    if draw(st.booleans()):
        endings = [endings[0]] * len(lines)  # one line ending throughout, as most files have
    text = "".join(line + ending for line, ending in zip(lines, endings))
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no line break after the last line
    data = text.encode("utf-16") if encoding == "utf-16" else (codecs.BOM_UTF8 if encoding == "utf-8-sig" else b"") + text.encode(
        "utf-8" if encoding == "utf-8-sig" else encoding
    )
    if records and draw(st.integers(0, 4)) == 0:  # cut off mid-transfer
        data = data[: draw(st.integers(len(data) * 2 // 3, len(data)))]
    return data, delimiter, len(lines) - len(records) - sum(1 for line in lines[len(lines) - len(records):] if line == "")


def expected_records(data: bytes, delimiter: str) -> int | None:
    """Records below the header by Python's csv module (None: no header left)."""
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else None
    if encoding is None:
        try:
            data.decode("utf-8")
            encoding = "utf-8-sig"
        except UnicodeDecodeError as exc:
            encoding = "utf-8-sig" if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data" else "gb18030"
    text = data.decode(encoding, errors="ignore").lstrip("\ufeff")
    rows = [row for row in csv.reader(io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n"), newline=""), delimiter=delimiter)]
    for index, row in enumerate(rows):
        if row == HEADERS:
            return sum(1 for r in rows[index + 1:] if r)
    return None


@pytest.fixture(scope="module")
def workspace():
    folder = Path(tempfile.mkdtemp(prefix="doudi-fuzz-"))
    con = duckdb.connect(":memory:")
    yield folder, con
    con.close()
    shutil.rmtree(folder)


def check_one(workspace, data: bytes, delimiter: str) -> None:
    folder, con = workspace
    path = folder / "fuzz.csv"
    path.write_bytes(data)
    expected = expected_records(data, delimiter)
    try:
        reading = read_csv_file(path, "death/fuzz.csv", source("death"), con, "__fuzz", folder)
    except InputRefused as refused:
        assert "death/fuzz.csv" in str(refused)
        return
    parsed = con.execute("SELECT count(*) FROM __fuzz").fetchone()[0]
    assert parsed + len(reading.rejected) == reading.records_counted
    if expected is not None:
        assert reading.records_counted == expected, (reading.records_counted, expected)
    reading.close(con)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(delivery())
def test_generated_files_lose_no_record(workspace, case):
    data, delimiter, _ = case
    check_one(workspace, data, delimiter)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(delivery())
def test_many_more_generated_files_lose_no_record(workspace, case):
    data, delimiter, _ = case
    check_one(workspace, data, delimiter)
