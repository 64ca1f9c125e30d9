"""The floors `doudi bench` measures beside its stages, in the same run on the same data.

A stage's time means little alone: on a slow disk or a busy machine everything is slow.
Each floor is the least a stage's job could cost done the plainest way, so a change is
judged by the distance between the stage and its floor, not by the clock:

- `raw_read_floors`: the quarter's inbox CSV files read into DuckDB tables, and read by
  polars into Parquet, with no header search, cleaning, counting or audit (the ingest's floor);
- `exact_join_floor`: the exact-ID join the bureaus use today, on the same records
  (the linkage's floor in time; in recall it is what the linker must beat);
- `plain_splink_floor`: a competent plain Splink model, documented settings, trained and
  run on the same records (what linking costs and finds without doudi's own passes).

The raw read writes only into the folder it is given and removes what it wrote; the two
linkage floors open the warehouse read-only (their inputs are temporary tables) and keep
Splink's scratch in the warehouse's private work folder (`warehouse/workdir.py`).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import polars as pl
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

from devtools.compare_linkage import EXACT_ID_JOIN_SQL, source_scores
from sources.readers import CSV_SUFFIXES, is_data_file

# ---- raw read ---------------------------------------------------------------------------

HEAD_BYTES = 64 * 1024  # what is read of a file to tell its encoding, delimiter and width
HEAD_ROWS = 30  # the rows of the head the width is taken from (the ingest's header scan)
DELIMITERS = (",", "\t", ";", "|")  # the ingest's candidates (sources/readers.py)
DECODE_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Dialect:
    encoding: str  # utf-8 (with or without BOM), utf-16 (with BOM) or gb18030
    delimiter: str
    width: int  # the most fields of a row in the head: title lines above the header have fewer


def inbox_files(quarter_dir: Path) -> tuple[list[Path], list[Path]]:
    """(CSV files, Excel files) the ingest reads for the quarter: the data files
    (`sources.readers.is_data_file`) anywhere under each registered source's folder."""
    from sources.registry import all_sources

    text, excel = [], []
    for spec in all_sources():
        folder = quarter_dir / spec.source
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if is_data_file(p)):
                (text if path.suffix.lower() in CSV_SUFFIXES else excel).append(path)
    return text, excel


def _encoding(head: bytes) -> str:
    """UTF-16 by its BOM, UTF-8 when the head decodes (an incremental decoder, so a
    character cut at the end of the head is no fault), else GB18030 (which covers GBK)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def sniff(path: Path) -> Dialect:
    """The file's encoding, delimiter and width from its first HEAD_BYTES: both floors
    get the same explicit dialect, so neither pays for a sniffer the other skips, and a
    title line above the header cannot make a reader take the file for one column."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    encoding = _encoding(head)
    text = codecs.getincrementaldecoder(encoding)("replace").decode(head, final=False)
    counts = {d: text.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    try:
        width = max((len(row) for row in itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter), HEAD_ROWS)), default=1)
    except csv.Error:
        width = max((line.count(delimiter) + 1 for line in text.splitlines()[:HEAD_ROWS]), default=1)
    return Dialect(encoding, delimiter, max(width, 1))


def _utf8_chunks(path: Path, encoding: str) -> Iterator[bytes]:
    """The file decoded to UTF-8 (undecodable bytes replaced: a floor must not stop)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    with path.open("rb") as handle:
        while chunk := handle.read(DECODE_CHUNK):
            yield decoder.decode(chunk).encode("utf-8")
    if tail := decoder.decode(b"", final=True):
        yield tail.encode("utf-8")


class _NoCount:
    """PipeStream's record counter, doing nothing: the floor does not count records twice."""

    def feed(self, data: bytes) -> None:
        pass

    def finish(self) -> None:
        pass


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_csv_sql(table: str, path: Path, dialect: Dialect, parallel: bool) -> str:
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(dialect.width)) + "}"
    return (
        f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_csv({_quoted(str(path))}, header = false, skip = 0, "
        f"auto_detect = false, columns = {columns}, delim = {_quoted(dialect.delimiter)}, quote = '\"', escape = '\"', "
        f"null_padding = true, strict_mode = false, encoding = 'utf-8', parallel = {str(parallel).lower()})"
    )


def _duckdb_read_file(con: duckdb.DuckDBPyConnection, path: Path, table: str, dialect: Dialect, scratch: Path, parallel: bool) -> None:
    """One file into `table`: UTF-8 read by DuckDB itself; anything else decoded by
    Python on its way through a named pipe (no decoded copy on disk), as the ingest does."""
    from sources.csvstream import PipeStream

    if dialect.encoding == "utf-8":
        con.execute(_read_csv_sql(table, path, dialect, parallel))
        return
    stream = PipeStream(scratch, table, _utf8_chunks(path, dialect.encoding), _NoCount())
    with stream:
        con.execute(_read_csv_sql(table, stream.path, dialect, parallel))
    if stream.error is not None:
        raise stream.error


def _duckdb_read(con: duckdb.DuckDBPyConnection, path: Path, table: str, scratch: Path) -> tuple[int, bool]:
    """(rows, whether Python decoded the file). DuckDB's parallel reader refuses
    null_padding with a newline inside quotes, and a file whose head is UTF-8 may not be
    further on: each is read again the way that works."""
    dialect, parallel = sniff(path), True
    for _attempt in range(3):
        try:
            _duckdb_read_file(con, path, table, dialect, scratch, parallel)
            break
        except duckdb.Error as exc:
            message = str(exc)
            if parallel and "parallel=false" in message:
                parallel = False
            elif dialect.encoding == "utf-8" and "unicode" in message.lower():
                dialect = replace(dialect, encoding="gb18030")
            else:
                raise
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0], dialect.encoding != "utf-8"


def duckdb_floor(files: list[Path], scratch: Path, memory_limit: str | None = None) -> dict:
    """Every file into one new DuckDB database file, one table per file, every field as
    text: DuckDB's own parser with padding instead of rejects, no header search, no
    second count. DuckDB 1.5 decodes only UTF-8, UTF-16 and Latin-1, and its Latin-1 is
    not byte-transparent (it refuses the bytes 0x80-0x9F, which GBK uses for rarer
    characters), so a GBK/GB18030 file is decoded by Python's codec through a named pipe:
    for those files the floor includes decoding, as the ingest's reading does."""
    from warehouse.connection import default_memory_limit

    database = scratch / "raw-read.duckdb"
    database.unlink(missing_ok=True)
    rows = decoded = decoded_bytes = 0
    started = time.perf_counter()
    con = duckdb.connect(str(database), config={"memory_limit": memory_limit or default_memory_limit()})
    try:
        for index, path in enumerate(files):
            n, was_decoded = _duckdb_read(con, path, f"file_{index}", scratch)
            rows += n
            decoded += was_decoded
            decoded_bytes += path.stat().st_size if was_decoded else 0
    finally:
        con.close()  # the checkpoint that writes the tables is part of the cost
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "decoded_files": decoded, "decoded_bytes": decoded_bytes}


def polars_floor(files: list[Path], scratch: Path) -> dict:
    """Every file read by polars as text (invalid UTF-8 replaced, so GBK is parsed but not
    decoded: polars has no GBK decoder; a UTF-16 file, a rare delivery, is misread) and
    written as Parquet: the fastest plain read the Python stack offers. The schema is the
    head's width: polars takes a file's width from its first line, which may be a title."""
    rows = 0
    started = time.perf_counter()
    for index, path in enumerate(files):
        dialect = sniff(path)
        frame = pl.read_csv(
            path, has_header=False, schema={f"c{i}": pl.String for i in range(dialect.width)}, separator=dialect.delimiter,
            quote_char='"', encoding="utf8-lossy", truncate_ragged_lines=True, missing_columns="insert",
        )
        frame.write_parquet(scratch / f"file_{index}.parquet")
        rows += frame.height
    return {"rows": rows, "seconds": time.perf_counter() - started}


def raw_read_floors(quarter_dir: Path, work: Path, memory_limit: str | None = None) -> dict:
    """The raw read of the files the ingest reads for one quarter (`<inbox>/<quarter>/`),
    by DuckDB and by polars, each timed on its own. Excel files are counted, not read:
    no fast xlsx reader is installed, and openpyxl would make the floor the slow part.

    What it writes (personal data) goes into a 0700 folder inside `work` (give it the
    warehouse's private work folder) and is removed before it returns."""
    files, excel = inbox_files(quarter_dir)
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="doudi-floor-read-", dir=work) as tmp:
        duck = duckdb_floor(files, Path(tmp), memory_limit)
    with tempfile.TemporaryDirectory(prefix="doudi-floor-read-", dir=work) as tmp:
        polar = polars_floor(files, Path(tmp))
    return {
        "files": len(files), "bytes": sum(p.stat().st_size for p in files), "rows": duck["rows"], "polars_rows": polar["rows"],
        "decoded_files": duck["decoded_files"], "decoded_bytes": duck["decoded_bytes"],
        "xlsx_files": len(excel), "xlsx_bytes": sum(p.stat().st_size for p in excel),
        "duckdb_seconds": duck["seconds"], "polars_seconds": polar["seconds"],
    }


# ---- linkage ----------------------------------------------------------------------------

def _quarter_truth(truth_links: pl.DataFrame, quarter: str) -> pl.DataFrame:
    return truth_links.filter(pl.col("quarter") == quarter)


def _linkage_inputs(con: duckdb.DuckDBPyConnection, quarter: str) -> None:
    """The linker's inputs as temporary tables (they work on a read-only warehouse)."""
    from pipelines.link.extract_identities import materialize_extract_identities
    from pipelines.link.linker import link_params
    from pipelines.quarters import Quarter
    from warehouse.models import materialize

    params = link_params(Quarter.parse(quarter))
    materialize(con, "intermediate/int_roster", params)
    materialize_extract_identities(con, params)


def exact_join_floor(warehouse: Path, quarter: str, truth_links: pl.DataFrame) -> dict:
    """The exact-ID join of the quarter's records to its roster, as bureaus do today
    (`devtools/compare_linkage.py`: equal ID text, spaces, full width and case aside), on
    a warehouse where the quarter has been run. Only the join is timed; the scores are
    `compare_linkage`'s, against the truth's links of the quarter."""
    from warehouse.connection import connect

    with connect(warehouse, read_only=True) as con:
        _linkage_inputs(con, quarter)
        started = time.perf_counter()
        found = con.execute(EXACT_ID_JOIN_SQL, [quarter]).pl()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "sources": source_scores(found, _quarter_truth(truth_links, quarter))}


# A plain Splink model as its documentation teaches it, with no doudi pass before it:
# extract identities (name and ID as written) against roster members, link only.
# - Blocking: the same ID text, or the same name and birth date (read from the ID). Two
#   rules, no OR inside a rule (an OR defeats the join and compares everything), never the
#   birth date alone (thousands share one).
# - Comparisons: name exact / Jaro-Winkler >= 0.9 / >= 0.7; ID exact / Levenshtein <= 1 /
#   <= 2; birth date exact.
# - Training: the prior from the exact-ID rule at an assumed recall of 0.8 (the value of
#   Splink's documented example); u by random sampling (PLAIN_U_MAX_PAIRS, fixed seed); m
#   by EM on the same name (ID and birth date free), then on the same ID (name free), each
#   session capped at PLAIN_EM_MAX_PAIRS (a common name blocks many pairs). EM on the
#   prediction rule (name, birth date) could never train the birth date, and on the ID
#   alone never its disagreement level (the birth date is read from the ID).
# - Prediction: pairs at match probability >= PLAIN_THRESHOLD, each record's best member kept.
PLAIN_BLOCKING_RULES = [block_on("id_number"), block_on("name", "birth_date")]
PLAIN_SETTINGS = SettingsCreator(
    link_type="link_only",
    unique_id_column_name="unique_id",
    comparisons=[
        cl.JaroWinklerAtThresholds("name", [0.9, 0.7]),
        cl.LevenshteinAtThresholds("id_number", [1, 2]),
        cl.ExactMatch("birth_date"),
    ],
    blocking_rules_to_generate_predictions=PLAIN_BLOCKING_RULES,
    retain_intermediate_calculation_columns=False,
    retain_matching_columns=False,
    linker_uid="doudi_plain_floor",  # given, so that Linker does not write one into the constant
)
PLAIN_EM_RULES = [block_on("name"), block_on("id_number")]
PLAIN_EM_MAX_PAIRS = 1e6
PLAIN_PRIOR_RECALL = 0.8
PLAIN_U_MAX_PAIRS = 1e6
PLAIN_U_SEED = 7
PLAIN_THRESHOLD = 0.9
PLAIN_DESCRIPTION = (
    "Splink link_only, identities (name, ID as written) vs roster members; blocking: ID exact | name + birth date from ID; "
    "comparisons: name JW 0.9/0.7, ID Levenshtein 1/2, birth date exact; prior from exact ID at recall 0.8; "
    f"u random sampling {PLAIN_U_MAX_PAIRS:.0e} pairs seed {PLAIN_U_SEED}; m by EM on name, then on ID (each <= {PLAIN_EM_MAX_PAIRS:.0e} pairs); "
    f"threshold {PLAIN_THRESHOLD}, best member per record"
)

_BIRTH_FROM_ID = """CASE WHEN length(id_number) = 18 THEN try_strptime(substr(id_number, 7, 8), '%Y%m%d')::DATE
    WHEN length(id_number) = 15 THEN try_strptime('19' || substr(id_number, 7, 6), '%Y%m%d')::DATE END"""
PLAIN_RECORDS_SQL = f"""SELECT unique_id, name, id_number, {_BIRTH_FROM_ID} AS birth_date FROM (
    SELECT identity_key AS unique_id, any_value(name) AS name, any_value(id_number_raw) AS id_number
    FROM int_extract_identities GROUP BY identity_key)"""
PLAIN_MEMBERS_SQL = f"""SELECT unique_id, name, id_number, {_BIRTH_FROM_ID} AS birth_date FROM (
    SELECT member_id AS unique_id, any_value(name) AS name, any_value(id_number_raw) AS id_number
    FROM int_roster GROUP BY member_id)"""


def _train(linker) -> None:
    linker.training.estimate_probability_two_random_records_match([PLAIN_BLOCKING_RULES[0]], recall=PLAIN_PRIOR_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=PLAIN_U_MAX_PAIRS, seed=PLAIN_U_SEED)
    for rule in PLAIN_EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=PLAIN_EM_MAX_PAIRS)


def _best_members(pairs: pl.DataFrame) -> pl.DataFrame:
    """identity_key -> the member it scored highest with (ties: the smallest member_id)."""
    swapped = pl.col("source_dataset_l") != "a_records"
    oriented = pairs.select(
        pl.when(swapped).then(pl.col("unique_id_r")).otherwise(pl.col("unique_id_l")).alias("identity_key"),
        pl.when(swapped).then(pl.col("unique_id_l")).otherwise(pl.col("unique_id_r")).alias("member_id"),
        "match_probability",
    )
    ordered = oriented.sort(["identity_key", "match_probability", "member_id"], descending=[False, True, False])
    return ordered.unique("identity_key", keep="first").select("identity_key", "member_id")


def _plain_splink(records: pl.DataFrame, members: pl.DataFrame, scratch: str, memory_limit: str | None) -> tuple[pl.DataFrame, float, float]:
    """(best member per identity, training seconds, predict seconds) in a scratch DuckDB."""
    from splink import Linker
    from splink.internals.duckdb.database_api import DuckDBAPI

    from pipelines.link.probabilistic import _connection

    con = _connection(memory_limit, None, scratch)
    try:
        con.register("__records", records.to_arrow())
        con.register("__members", members.to_arrow())
        con.execute("CREATE TABLE a_records AS SELECT * FROM __records; CREATE TABLE b_members AS SELECT * FROM __members")
        db = DuckDBAPI(con)
        inputs = [db.register(name, dataset_display_name=name) for name in ("a_records", "b_members")]
        started = time.perf_counter()
        linker = Linker(inputs, PLAIN_SETTINGS, log_level=logging.ERROR)
        _train(linker)
        trained = time.perf_counter()
        predictions = linker.inference.predict(threshold_match_probability=PLAIN_THRESHOLD)
        pairs = con.execute(f"SELECT unique_id_l, unique_id_r, source_dataset_l, match_probability FROM {predictions.physical_name}").pl()
        best = _best_members(pairs)
        done = time.perf_counter()
    finally:
        con.close()
    return best, trained - started, done - trained


def plain_splink_floor(warehouse: Path, quarter: str, truth_links: pl.DataFrame, memory_limit: str | None = None) -> dict:
    """A competent plain Splink model (PLAIN_SETTINGS, trained on the quarter's own
    records) linking the quarter's distinct extract identities to its roster members, on a
    warehouse where the quarter has been run: what probabilistic linkage alone costs and
    finds, beside doudi's linker. Inputs are built untimed; training and prediction are
    timed apart. Scored like the exact join."""
    from warehouse.connection import connect
    from warehouse.workdir import temp_dir

    with connect(warehouse, read_only=True) as con:
        _linkage_inputs(con, quarter)
        records = con.execute(PLAIN_RECORDS_SQL).pl()
        members = con.execute(PLAIN_MEMBERS_SQL).pl()
        keys = con.execute("SELECT DISTINCT source, record_key, identity_key FROM int_extract_identities").pl()
    with temp_dir(warehouse, "doudi-floor-") as scratch:
        best, training, predict = _plain_splink(records, members, scratch, memory_limit)
    found = keys.join(best, on="identity_key").select(pl.lit(quarter).alias("quarter"), "source", "record_key", "member_id")
    return {
        "seconds": training + predict, "training_seconds": training, "predict_seconds": predict,
        "records": records.height, "members": members.height, "links": found.height,
        "sources": source_scores(found, _quarter_truth(truth_links, quarter)), "settings": PLAIN_DESCRIPTION,
    }
