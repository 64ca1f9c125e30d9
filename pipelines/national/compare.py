"""The national (cross-region) step of a quarter.

Each region runs its quarter on its own (its inbox, its warehouse: `doudi run --region`)
and finds what its own data shows. Two things only the union of the regions shows:

- one person enrolled as a beneficiary in two regions (rule D03, 运民发〔2023〕50号 三（二）);
- a death registered in one region of a beneficiary enrolled in another (the data of
  rule D01, 运民发〔2023〕50号 一（五）: a death away from home is registered where it happened).

This step reads every region's warehouse read-only (ATTACH ... READ_ONLY), copies the
quarter's roster (members, households) and the deaths delivered so far into a work
database, IDs written `<region>/<id>` so that regions' IDs cannot collide, and runs the
same linker over the union (`pipelines.link.linker.link_quarter`: the identity SQL, the
exact-ID pass, the roster deduplication and Splink with the committed model), on DuckDB or on
Splink's Spark backend (`backend`). Of what it finds only the cross-region part is kept
(two member rows in two regions; a death record of one region and a member of another):
within-region pairs are each region's own run. Rules D01 and D03 then run on those links with
their own SQL, parameters and texts (`pipelines.rules.engine.run_rule`).

Published in one transaction to the national warehouse (`national.roster_duplicates`,
`national.death_links`, `national.warnings`, `national.runs`), and as one workbook per region
for its caseworkers, `OUT/<Q>/<region>/跨地区比对.xlsx` (the folder of the quarter swapped in
whole after the warehouse commits). A refusal or failure publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.exports.evidence import render
from pipelines.exports.lists import SEVERITY_WORDS, STATUS_WORDS, write_workbook
from pipelines.link.linker import link_quarter
from pipelines.marts.publish import stage_rule_catalog
from pipelines.partitions import check_region
from pipelines.policy.params import default_parameters
from pipelines.quarters import Quarter
from pipelines.rules.catalog import rule
from pipelines.rules.engine import prepare_inputs, run_rule
from warehouse.connection import attach_read_only, connect, warehouse_lock
from warehouse.models import bind, model_sql
from warehouse.writes import delete_quarter, insert_arrow, insert_row, insert_select, replace_quarter, transaction

NATIONAL_RULES = ("D01", "D03")
SCHEMA_SQL = Path(__file__).resolve().parents[2] / "warehouse" / "national" / "schema.sql"
LIST_NAME = "跨地区比对.xlsx"
OTHER_SIDE = {"D01": "死亡登记地区", "D03": "另一享受地区"}
FINDINGS = "__national_findings"  # where the rules collect their findings (engine's `findings`)


class NationalRefused(ValueError):
    """Input the national step refuses: the message names the region and what is wrong."""

    def __init__(self, problems: list[str]):
        super().__init__("；".join(problems))
        self.problems = problems


@dataclass
class NationalReport:
    quarter: Quarter
    regions: list[str]
    backend: str
    region_runs: dict[str, str] = field(default_factory=dict)
    members: int = 0
    death_records: int = 0
    roster_pairs_compared: int = 0
    record_pairs_compared: int = 0
    roster_duplicates: int = 0
    death_links: int = 0
    warnings: dict[str, int] = field(default_factory=dict)  # rule -> count
    lists: list[dict] = field(default_factory=list)  # region, file, rows
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    link_seconds: dict[str, float] = field(default_factory=dict)  # the linker's steps (roster_dedupe, splink_records ...)


def warehouses_from_glob(pattern: str) -> dict[str, Path]:
    """Region warehouses named by a pattern with one `*`, which stands for the region:
    `var/regions/*/doudi.duckdb` -> {"14": var/regions/14/doudi.duckdb, ...}."""
    if pattern.count("*") != 1 or any(c in pattern for c in "?["):
        raise NationalRefused([f"地区数据仓库的路径模式 {pattern!r} 必须恰好含一个 *（代表地区代码），例如 var/regions/*/doudi.duckdb"])
    head, tail = pattern.split("*")
    matcher = re.compile(re.escape(head) + r"([^/]+)" + re.escape(tail) + r"\Z")
    found = {}
    base = Path(head).parent if not head.endswith("/") else Path(head)
    for path in sorted(base.glob(str(Path(pattern).relative_to(base)))) if base.is_dir() else []:
        match = matcher.match(str(path))
        if match:
            found[match.group(1)] = path
    if not found:
        raise NationalRefused([f"没有与 {pattern} 相符的地区数据仓库"])
    return found


def _check_inputs(regions: dict[str, Path], warehouse: Path) -> None:
    problems = []
    if len(regions) < 2:
        problems.append(f"跨地区比对至少需要两个地区，只给了 {len(regions)} 个")
    for region, path in regions.items():
        try:
            check_region(region)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if not Path(path).is_file():
            problems.append(f"地区 {region}：没有数据仓库 {path}")
        elif Path(path).resolve() == Path(warehouse).resolve():
            problems.append(f"地区 {region}：数据仓库 {path} 与全国数据仓库是同一个文件")
    shared: dict[Path, list[str]] = {}
    for region, path in regions.items():
        shared.setdefault(Path(path).resolve(), []).append(region)
    for path, names in shared.items():
        if len(names) > 1:
            problems.append(f"地区 {'、'.join(names)} 的数据仓库是同一个文件 {path}：每个地区须有自己的数据仓库"
                            "（DOUDI_WAREHOUSE 含 {region}，或逐一给出各地区的数据仓库）")
    if problems:
        raise NationalRefused(problems)


def _copy_region(con: duckdb.DuckDBPyConnection, region: str, path: Path, alias: str, quarter: Quarter) -> tuple[str | None, str | None]:
    """Copy the region's roster of the quarter and its deaths so far, IDs as `<region>/<id>`.
    Returns (the run that published the quarter, or None; what is wrong, or None)."""
    with warehouse_lock(path, wait=True):  # a run writing the region's warehouse finishes first
        attach_read_only(con, path, alias)
        try:
            published = con.execute(
                f"SELECT run_id FROM {alias}.audit.publications WHERE quarter = ? ORDER BY published_at DESC LIMIT 1", [str(quarter)]
            ).fetchone()
            if published is None:
                return None, f"地区 {region}：{quarter} 尚未发布（先运行 doudi run --region {region} --quarter {quarter}）"
            run_id = published[0]
            stale = con.execute(
                f"""SELECT count(*) FROM (
                        SELECT run_id FROM {alias}.staging.members WHERE quarter = $q
                        UNION ALL SELECT run_id FROM {alias}.staging.households WHERE quarter = $q
                        UNION ALL SELECT run_id FROM {alias}.staging.death WHERE quarter = $q)
                    WHERE run_id IS DISTINCT FROM $run""",
                {"q": str(quarter), "run": run_id},
            ).fetchone()[0]
            if stale:
                return run_id, (f"地区 {region}：{quarter} 的暂存数据来自一次未完成发布的运行（{stale} 行），"
                                "请重新运行该地区的本季度")
            prefix = {"region": f"{region}/", "q": str(quarter)}
            insert_select(
                con, "staging.households",
                f"SELECT * REPLACE ($region || household_id AS household_id) FROM {alias}.staging.households WHERE quarter = $q",
                prefix,
            )
            insert_select(
                con, "staging.members",
                f"""SELECT * REPLACE ($region || member_id AS member_id, $region || household_id AS household_id)
                    FROM {alias}.staging.members WHERE quarter = $q""",
                prefix,
            )
            insert_select(
                con, "staging.death",
                f"SELECT * REPLACE ($region || record_id AS record_id) FROM {alias}.staging.death WHERE quarter <= $q",
                prefix,
            )
            return run_id, None
        finally:
            con.execute(f"DETACH {alias}")


def copy_regions(con: duckdb.DuckDBPyConnection, regions: dict[str, Path], quarter: Quarter) -> dict[str, str]:
    """The union of the regions' rosters and deaths in the work database `con` (its schema
    applied); returns region -> the run that published its quarter. Raises NationalRefused
    naming every region that is unpublished or half-run."""
    problems, published = [], {}
    for i, (region, path) in enumerate(regions.items()):
        run_id, problem = _copy_region(con, region, path, f"region_{i}", quarter)
        if problem:
            problems.append(problem)
        else:
            published[region] = run_id
    if problems:
        raise NationalRefused(problems)
    return published


def _keep_cross_region(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> None:
    """Leave in the work database's linked tables only what crosses regions."""
    con.execute(
        """DELETE FROM linked.matches WHERE quarter = ?
           AND NOT (source = 'death' AND split_part(record_key, '/', 1) <> split_part(member_id, '/', 1))""",
        [str(quarter)],
    )
    con.execute(
        "DELETE FROM linked.roster_duplicates WHERE quarter = ? AND split_part(member_id_l, '/', 1) = split_part(member_id_r, '/', 1)",
        [str(quarter)],
    )


def _run_rules(con: duckdb.DuckDBPyConnection, q: Quarter) -> dict[str, int]:
    params = default_parameters().at(q.end)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {FINDINGS} AS SELECT * FROM rules.findings LIMIT 0")
    base = prepare_inputs(con, q, params, [rule(code) for code in NATIONAL_RULES], FINDINGS)
    counts = {code: run_rule(con, rule(code), q, base, params, FINDINGS) for code in NATIONAL_RULES}
    replace_quarter(con, "rules.findings", q, f"SELECT * FROM {FINDINGS}")
    return counts


def _region(column: str) -> pl.Expr:
    """The region of a `<region>/<id>` value."""
    return pl.col(column).str.splitn("/", 2).struct.field("field_0")


def _own_id(column: str) -> pl.Expr:
    """The region's own id of a `<region>/<id>` value."""
    return pl.col(column).str.splitn("/", 2).struct.field("field_1")


def _d03_evidence(evidence: str) -> str:
    """The other enrolments as the region's own household IDs, with their region."""
    data = json.loads(evidence)
    for other in data.get("other_enrolments") or []:
        region, _, household = str(other.get("household_id")).partition("/")
        other["region"], other["household_id"] = region, household
    return json.dumps(data, ensure_ascii=False)


def _results(con: duckdb.DuckDBPyConnection, q: Quarter, previous: pl.DataFrame) -> dict[str, pl.DataFrame]:
    quarter = str(q)  # the label the SQL binds
    duplicates = con.execute(
        """SELECT d.quarter, d.member_id_l, ml.household_id AS hh_l, d.member_id_r, mr.household_id AS hh_r,
                  d.match_probability, d.match_method
           FROM linked.roster_duplicates AS d
           LEFT JOIN staging.members AS ml ON ml.member_id = d.member_id_l AND ml.quarter = d.quarter
           LEFT JOIN staging.members AS mr ON mr.member_id = d.member_id_r AND mr.quarter = d.quarter
           WHERE d.quarter = ? ORDER BY ALL""",
        [quarter],
    ).pl()
    duplicates = duplicates.select(
        "quarter", _region("member_id_l").alias("region_l"), _own_id("member_id_l").alias("member_id_l"),
        _own_id("hh_l").alias("household_id_l"), _region("member_id_r").alias("region_r"),
        _own_id("member_id_r").alias("member_id_r"), _own_id("hh_r").alias("household_id_r"), "match_probability", "match_method",
    )
    deaths = con.execute(
        """SELECT l.quarter, l.record_key, l.member_id, m.household_id AS hh, l.match_probability, l.match_method
           FROM linked.matches AS l LEFT JOIN staging.members AS m ON m.member_id = l.member_id AND m.quarter = l.quarter
           WHERE l.quarter = ? AND l.source = 'death' ORDER BY ALL""",
        [quarter],
    ).pl()
    deaths = deaths.select(
        "quarter", _region("record_key").alias("death_region"), _own_id("record_key").alias("record_key"),
        _region("member_id").alias("member_region"), _own_id("member_id").alias("member_id"), _own_id("hh").alias("household_id"),
        "match_probability", "match_method",
    )
    # The national warnings model reads the rules' titles and last quarter's warnings by these names.
    stage_rule_catalog(con, [(code, rule(code).title) for code in NATIONAL_RULES])
    con.register("__previous_frame", previous.to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE __previous AS SELECT * FROM __previous_frame")
    con.unregister("__previous_frame")
    sql = model_sql("national/warnings")
    warnings = con.execute(f"{sql} ORDER BY region, county_code, township, village, household_id, member_id, rule_code",
                           bind(sql, {"quarter": quarter})).pl()
    if warnings.height:
        warnings = warnings.with_columns(
            pl.when(pl.col("rule_code") == "D03")
            .then(pl.col("evidence").map_elements(_d03_evidence, return_dtype=pl.Utf8))
            .otherwise(pl.col("evidence"))
            .alias("evidence")
        )
    return {"roster_duplicates": duplicates, "death_links": deaths, "warnings": warnings}


def _list_rows(warnings: pl.DataFrame) -> pl.DataFrame:
    """The national warnings as the rows of a caseworker list (pipelines.exports.lists)."""
    def text(record: dict) -> str:
        where = "、".join(record["other_regions"] or [])
        return f"【跨地区】{OTHER_SIDE[record['rule_code']]}：{where}。{render(record['rule_code'], record['evidence'])}"

    return warnings.with_columns(
        pl.lit(None, dtype=pl.Int64).alias("priority"),
        pl.struct("rule_code", "evidence", "other_regions").map_elements(text, return_dtype=pl.Utf8).alias("evidence_text"),
        pl.concat_str([pl.col("rule_code"), pl.lit(" "), pl.col("rule_title")]).alias("rule"),
        pl.col("severity").replace_strict(SEVERITY_WORDS, default=None).alias("severity_word"),
        pl.col("status").replace_strict(STATUS_WORDS, default=None).alias("status_word"),
        pl.lit(None, dtype=pl.Utf8).alias("verification_result"),
        pl.lit(None, dtype=pl.Utf8).alias("verification_note"),
    )


def _write_lists(warnings: pl.DataFrame, regions: list[str], quarter: Quarter, folder: Path) -> list[dict]:
    """One workbook per region (an empty one says the region was compared and nothing found)."""
    rows = _list_rows(warnings)
    written = []
    for region in regions:
        part = rows.filter(pl.col("region") == region)
        path = folder / region / LIST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        write_workbook(path, part, quarter)
        written.append({"region": region, "file": str(path.relative_to(folder)), "rows": part.height})
    return written


def _previous_warnings(warehouse: Path, q: Quarter) -> pl.DataFrame:
    empty = pl.DataFrame(schema={"region": pl.Utf8, "warning_id": pl.Utf8, "first_seen_quarter": pl.Utf8})
    if not warehouse.exists():
        return empty
    with connect(warehouse, read_only=True) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'national' AND table_name = 'warnings'"
        ).fetchone()[0]
        if not exists:
            return empty
        return con.execute(
            "SELECT region, warning_id, first_seen_quarter FROM national.warnings WHERE quarter = ? AND status IN ('new', 'persisting')",
            [str(q.previous)],
        ).pl()


def _publish(warehouse: Path, report: NationalReport, results: dict[str, pl.DataFrame], run_id: str) -> None:
    with connect(warehouse, schema=False) as con:
        con.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
        with transaction(con):
            for name, frame in results.items():
                delete_quarter(con, f"national.{name}", report.quarter)
                insert_arrow(con, f"national.{name}", frame.to_arrow())
            insert_row(
                con, "national.runs", run_id=run_id, quarter=str(report.quarter), regions=report.regions,
                region_runs=json.dumps(report.region_runs), link_backend=report.backend, members=report.members,
                death_records=report.death_records, roster_pairs_compared=report.roster_pairs_compared,
                record_pairs_compared=report.record_pairs_compared, roster_duplicates=report.roster_duplicates,
                death_links=report.death_links, warnings=sum(report.warnings.values()), seconds=json.dumps(report.seconds),
                link_seconds=json.dumps(report.link_seconds), published_at=dt.datetime.now(),
            )


def run_national(
    quarter: Quarter,
    regions: dict[str, Path],
    warehouse: Path,
    out: Path,
    backend: str = "duckdb",
    memory_limit: str | None = None,
    threads: int | None = None,
    run_id: str | None = None,
) -> NationalReport:
    """The cross-region step of one quarter over the regions' warehouses (region -> path).

    Raises NationalRefused (nothing published) when a region is missing, unpublished or
    its quarter half-run; any other failure also publishes nothing."""
    warehouse, out = Path(warehouse), Path(out)
    regions = {r: Path(p) for r, p in sorted(regions.items())}
    _check_inputs(regions, warehouse)
    report = NationalReport(quarter, list(regions), backend)
    run_id = run_id or uuid.uuid4().hex
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".national-work-", dir=warehouse.parent))
    lists = out / f".{quarter}-{uuid.uuid4().hex[:8]}"
    try:
        with connect(work / "work.duckdb", memory_limit=memory_limit, threads=threads) as con:
            started = time.time()
            report.region_runs = copy_regions(con, regions, quarter)
            report.members, report.death_records = con.execute(
                "SELECT (SELECT count(*) FROM staging.members), (SELECT count(DISTINCT record_id) FROM staging.death)"
            ).fetchone()
            report.seconds["union"] = round(time.time() - started, 2)

            started = time.time()
            linked = link_quarter(con, quarter, memory_limit=memory_limit, threads=threads, backend=backend)
            report.roster_pairs_compared = linked.roster_pairs.pairs_compared if linked.roster_pairs else 0
            report.record_pairs_compared = linked.record_pairs.pairs_compared if linked.record_pairs else 0
            report.seconds["link"] = round(time.time() - started, 2)
            report.link_seconds = dict(linked.seconds)

            started = time.time()
            _keep_cross_region(con, quarter)
            report.warnings = _run_rules(con, quarter)
            results = _results(con, quarter, _previous_warnings(warehouse, quarter))
            report.roster_duplicates = results["roster_duplicates"].height
            report.death_links = results["death_links"].height
            report.seconds["rules"] = round(time.time() - started, 2)

        started = time.time()
        report.lists = _write_lists(results["warnings"], report.regions, quarter, lists)
        _publish(warehouse, report, results, run_id)
        target = out / str(quarter)
        if target.exists():
            shutil.rmtree(target)
        lists.rename(target)
        report.seconds["publish"] = round(time.time() - started, 2)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if lists.exists():
            shutil.rmtree(lists, ignore_errors=True)
