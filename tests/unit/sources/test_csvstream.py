"""The normalised stream and the second record counter (sources/csvstream.py)."""

from __future__ import annotations

import csv
import io
import itertools
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.csvstream import PipeStream, RecordCounter, normalised_chunks


def _normalised(tmp_path: Path, data: bytes, encoding: str = "utf-8") -> bytes:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return b"".join(normalised_chunks(path, encoding))


def test_line_endings_of_every_kind_become_lf(tmp_path):
    assert _normalised(tmp_path, b"a\r\nb\nc\rd\r\n") == b"a\nb\nc\nd\n"


def test_a_crlf_split_between_chunks_is_one_line_ending(tmp_path, monkeypatch):
    import sources.csvstream as module

    monkeypatch.setattr(module, "CHUNK", 4)
    assert _normalised(tmp_path, b"abc\r\ndef\r\n") == b"abc\ndef\n"
    assert _normalised(tmp_path, b"abc\r") == b"abc\n"


def test_gbk_and_bom_arrive_as_plain_utf8(tmp_path):
    assert _normalised(tmp_path, "姓名\r\n张三\r\n".encode("gb18030"), "gb18030") == "姓名\n张三\n".encode()
    assert _normalised(tmp_path, "\ufeff姓名\n".encode()) == "姓名\n".encode()
    assert _normalised(tmp_path, "姓名\r\n".encode("utf-16"), "utf-16") == "姓名\n".encode()


def _count(data: bytes, skip: int = 0, piece: int = 7) -> RecordCounter:
    counter = RecordCounter(",", skip)
    for i in range(0, len(data), piece):
        counter.feed(data[i:i + piece])
    counter.finish()
    return counter


def test_records_and_their_first_lines():
    data = b'title\nh1,h2\n1,a\n\n2,"multi\nline"\n3,a"b\n4,"x""y"\n   \n,\n5,last'
    counter = _count(data, skip=2)
    assert counter.records == 7
    assert counter.record_lines.tolist() == [3, 5, 7, 8, 9, 10, 11]


def test_an_unterminated_quote_runs_to_the_end_as_one_record():
    assert _count(b'1,"open\n2,b\n3,c\n').records == 1


def _python_csv_records(text: str) -> int:
    return sum(1 for row in csv.reader(io.StringIO(text, newline="")) if row)


cells = st.text(alphabet=st.sampled_from(list('ab,"\n 张')), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cells, min_size=1, max_size=4), max_size=8), st.integers(1, 9))
def test_the_counter_agrees_with_pythons_csv_module(rows, piece):
    """Python's csv module (an independent parser) sees as many records as the counter."""
    text = "\n".join(",".join(row) for row in rows)
    assert _count(text.encode(), piece=piece).records == _python_csv_records(text)


def test_the_pipe_is_drained_when_nobody_reads_it(tmp_path):
    counter = RecordCounter(",", 0)
    chunks = iter([b"a,b\n" * 100_000])
    with PipeStream(tmp_path, "t", chunks, counter) as stream:
        path = stream.path
        assert path.exists()
    assert not path.exists()
    assert counter.records == 100_000
    assert not [t for t in threading.enumerate() if t.name == "doudi-pipe-t"]


def _ends_in_quotes_by_scan(text: bytes, in_quotes: bool, delimiter: bytes) -> bool:
    """The definition, byte by byte (what RecordCounter computed before it used a pattern):
    a quote opens a field only at its start; inside one, "" is a quote and " closes it."""
    at_field_start, i = not in_quotes, 0
    while i < len(text):
        c = text[i]
        if in_quotes and c == 34 and i + 1 < len(text) and text[i + 1] == 34:
            i += 2
            continue
        if in_quotes and c == 34:
            in_quotes = False
        elif not in_quotes and c == 34 and at_field_start:
            in_quotes = True
        at_field_start = not in_quotes and c == delimiter[0]
        i += 1
    return in_quotes


@pytest.mark.parametrize("delimiter", [",", "\t", "|", ";"])
def test_the_quote_state_of_a_line_is_the_scans_for_every_short_line(delimiter):

    counter = RecordCounter(delimiter, 0)
    alphabet = [b'"', delimiter.encode(), b"a", "张".encode()]
    for length in range(8):
        for parts in itertools.product(alphabet, repeat=length):
            text = b"".join(parts)
            for in_quotes in (False, True):
                assert counter._ends_in_quotes(text, in_quotes) == _ends_in_quotes_by_scan(text, in_quotes, delimiter.encode()), (text, in_quotes)
