"""A delivered CSV as one clean byte stream, and a second count of its records.

Departments' files are not what a CSV parser expects: GB18030 from older systems, UTF-16
from Excel's "Unicode text", a BOM, and line endings mixed within one file (Excel writes
CRLF, a clerk adds a line in another editor with LF; a report title exported above the
header ends in LF). DuckDB's strict parser, given mixed line endings, either stops with
"state machine reached an invalid state" or (worse) returns no rows at all without a
word. So every CSV is streamed to DuckDB through a named pipe as UTF-8 with LF line
endings only: no plaintext copy of a converted file is ever written to disk.

While the stream is written, `RecordCounter` counts the records in it with a parser of
its own (quote state tracked line by line, the rules of Python's csv module). The loader
compares that count with what DuckDB parsed plus what it rejected: a file whose two counts
differ is refused rather than loaded short (`readers.read_csv_file`). The counter also
gives each record's first physical line, which is the row number people are shown.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CHUNK = 4 * 1024 * 1024


def normalised_chunks(path: Path, encoding: str, truncated_tail: int = 0) -> Iterator[bytes]:
    """The file as UTF-8 bytes without BOM, every CRLF and lone CR turned into LF.

    `encoding` is what `readers.detect_encoding` found (the whole file decodes strictly,
    so UTF-8 is passed through as bytes); `truncated_tail` bytes of an incomplete last
    character are left out. A CR at the end of a chunk waits for the next one, so a CRLF
    split between chunks is still one line ending.
    """
    utf8 = encoding in ("utf-8", "utf-8-sig")
    decoder = None if utf8 else codecs.getincrementaldecoder(encoding)("strict")
    remaining = path.stat().st_size - truncated_tail
    pending_cr = False
    first = True
    with path.open("rb") as handle:
        while remaining > 0:
            raw = handle.read(min(CHUNK, remaining))
            if not raw:
                break
            remaining -= len(raw)
            data = raw if decoder is None else decoder.decode(raw, final=remaining <= 0).encode("utf-8")
            if first:
                first = False
                if data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8):]
                elif data.startswith("\ufeff".encode()):
                    data = data[3:]
            if pending_cr:
                data = b"\r" + data
            pending_cr = data.endswith(b"\r") and remaining > 0
            if pending_cr:
                data = data[:-1]
            if b"\r" in data:
                data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if data:
                yield data
    if pending_cr:
        yield b"\n"


class RecordCounter:
    """Counts the CSV records of a normalised stream after its first `skip_lines` lines,
    and remembers the physical line (1-based) each record starts on.

    A record ends at a line feed outside quotes; a quote opens a quoted field only at the
    start of a field, `""` inside one is a quote (Python's csv module and DuckDB agree on
    this). An empty line is not a record (DuckDB skips it too); a line of spaces or of
    delimiters is one.
    """

    def __init__(self, delimiter: str, skip_lines: int):
        self.delimiter = delimiter.encode()
        self.skip_lines = skip_lines
        self.line = 0  # physical lines completed
        self.in_quotes = False
        self.record_open = False  # inside a record that started on an earlier line
        self._starts: list[np.ndarray] = []
        self._batch: list[int] = []
        self._partial = b""

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return
        self._partial = data[cut + 1:]
        for text in data[:cut].split(b"\n"):
            self._line(text)
        if len(self._batch) > 65536:
            self._starts.append(np.array(self._batch, dtype=np.int64))
            self._batch = []

    def _line(self, text: bytes) -> None:
        self.line += 1
        if self.line <= self.skip_lines:
            return
        if not self.record_open:
            if not text:
                return  # an empty line between records
            self._batch.append(self.line)
        if b'"' in text:  # without a quote the state cannot change
            self.in_quotes = self._ends_in_quotes(text, self.in_quotes)
        self.record_open = self.in_quotes

    def _ends_in_quotes(self, text: bytes, in_quotes: bool) -> bool:
        """Whether the line ends inside a quoted field. One regular-expression match (the
        scan used to be a Python loop over every byte of every quoted line, a fifth of a
        large file's load): fields separated by the delimiter, each unquoted, quoted and
        closed (anything up to the next delimiter may follow the closing quote), or, the
        last one only, quoted and still open. A line that starts inside a quoted field is
        scanned as if its opening quote stood before it."""
        match = self._line_pattern.match(b'"' + text if in_quotes else text)
        return match is not None and match.group("open") is not None

    @functools.cached_property
    def _line_pattern(self) -> re.Pattern[bytes]:
        d = re.escape(self.delimiter)
        inside = rb'(?:[^"]|"")*+'  # a quoted field's content: "" is a quote, possessive as the scan is greedy
        field = rb'(?:"' + inside + rb'"[^' + d + rb']*+|[^"' + d + rb'][^' + d + rb']*+|)'
        return re.compile(rb"(?:" + field + d + rb")*+(?:(?P<open>\"" + inside + rb")\Z|" + field + rb"\Z)", re.S)

    def finish(self) -> None:
        if self._partial:  # a last line without a line feed
            self._line(self._partial)
            self._partial = b""
        # A quoted field still open at the end runs to the end of the file: one record
        # (DuckDB rejects it as one, with its first line).

    @property
    def record_lines(self) -> np.ndarray:
        """The first physical line of every record, in order."""
        parts = [*self._starts, np.array(self._batch, dtype=np.int64)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    @property
    def records(self) -> int:
        return sum(len(p) for p in self._starts) + len(self._batch)


class PipeStream:
    """Writes `chunks` into a named pipe for one reader (DuckDB's read_csv), counting the
    records as they pass, in a thread of its own.

    Use as a context manager around the query that reads `path`. On leaving, a reader that
    stopped early (or never opened the pipe) does not leave the writer blocked: what is
    left is drained. The pipe is created mode 0600 and removed; no data is ever at rest.
    """

    def __init__(self, folder: Path, name: str, chunks: Iterator[bytes], counter: RecordCounter):
        self.path = folder / f"{name}.pipe"
        self._chunks = chunks
        self.counter = counter
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name=f"doudi-pipe-{name}", daemon=True)

    def _write(self) -> None:
        try:
            with open(self.path, "wb") as out:
                for chunk in self._chunks:
                    self.counter.feed(chunk)
                    out.write(chunk)
            self.counter.finish()
        except BrokenPipeError:
            self.error = BrokenPipeError("the reader closed the pipe before the end of the file")
        except BaseException as exc:  # surfaced by the caller, never lost in the thread
            self.error = exc

    def __enter__(self) -> PipeStream:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.mkfifo(self.path, 0o600)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread.is_alive():
            self._drain()
        self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _drain(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while self._thread.is_alive():
                try:
                    if not os.read(fd, 1 << 20):
                        time.sleep(0.005)
                except BlockingIOError:
                    time.sleep(0.005)
        finally:
            os.close(fd)
