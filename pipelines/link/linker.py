"""Linking a quarter's extract records to its roster members (`linked.matches`).

Every link passes the identity corroboration rules of `corroboration` (a record's name must
be the member's or a variant of it; a twin or sibling is never the member): an ID number
alone never proves a person.

1. Deterministic pass (SQL, `link_exact_id.sql`): equal cleaned IDs, including IDs read
   from certificate and student numbers and legacy 15-digit IDs upgraded to 18, with the
   name as corroboration. An equal ID under another person's name is an identity conflict
   (`linked.identity_conflicts`, rule Q02), not a link — unless a caseworker confirmed that
   name for that member (a Q02 returned 属实, `link_confirmed_identities.sql`).
2. Roster deduplication: member rows of one person in two households — equal valid IDs,
   then Splink for rows whose ID is damaged or missing, and (after step 3) two rows that
   one record links to equally well under the same name. The persons found this way
   (`linked.roster_persons`, `linked.roster_duplicates`) are what rule D03 reads.
3. Splink (committed model, prior re-estimated on the quarter) for the records the
   deterministic pass left whose ID is damaged or partial, or which could belong to a
   member whose own ID is damaged. Each record keeps its best member (and that member's
   other rows, if the person is enrolled twice).
4. A record linked to one row of a person enrolled twice is linked to the other rows too.

Steps 1 and 3 link identities, not records: the distinct (name, ID as written) the records
carry (`link_record_identities.sql`). A patient's many settlements, or one person's records
in several sources, are linked once, and each record then takes its identity's links.

Everything of the quarter is replaced in one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field

import duckdb
import polars as pl

from pipelines.link import corroboration, model, thresholds
from pipelines.link.extract_identities import materialize_extract_identities
from pipelines.link.names import first_character_pinyin, name_keys
from pipelines.link.probabilistic import ScoredPairs, score
from pipelines.link.sql_models import materialize_linkage
from pipelines.policy.window import history_window
from pipelines.quarters import Quarter
from warehouse.models import materialize
from warehouse.workdir import work_dir_of
from warehouse.writes import replace_quarter, transaction

MIN_PRIOR, MAX_PRIOR = 1e-12, 0.01  # a prior outside these is an artefact of tiny inputs
log = logging.getLogger(__name__)


@dataclass
class LinkReport:
    methods: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> method -> links
    record_pairs: ScoredPairs | None = None
    roster_pairs: ScoredPairs | None = None
    record_prior: float = 0.0
    roster_prior: float = 0.0
    candidates: int = 0
    duplicate_pairs: int = 0
    conflicts: dict[str, int] = field(default_factory=dict)  # source -> records carrying a member's ID under another name
    rejected_pairs: int = 0  # Splink's pairs that failed the name or sibling rule
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time (the benchmark reads it)

    @contextlib.contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)
            log.info("link step %s: %.1f s", name, self.seconds[name])


def link_params(quarter: Quarter) -> dict:
    window = history_window(quarter)
    return {"quarter": str(quarter), "q_end": window.end, "lookback_start": window.start}


def with_name_keys(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, name_keys(frame["name"])], how="horizontal")


def _union_find(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """member_id -> the smallest member_id of its connected component (pairs only; the
    pairs are few, a fraction of a percent of the roster)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def _persons(duplicates: pl.DataFrame) -> pl.DataFrame:
    """member_id, person_key, members: the member rows that are one person."""
    person = _union_find(list(zip(duplicates["left_id"].to_list(), duplicates["right_id"].to_list())))
    frame = pl.DataFrame({"member_id": list(person), "person_key": list(person.values())},
                         schema={"member_id": pl.Utf8, "person_key": pl.Utf8})
    return frame.with_columns(pl.len().over("person_key").cast(pl.Int32).alias("members"))


def roster_duplicates(
    con: duckdb.DuckDBPyConnection, members: pl.DataFrame, report: LinkReport, memory_limit, threads, backend: str = "duckdb"
) -> pl.DataFrame:
    """Pairs of member rows (in different households) that are one person."""
    con.register("__members_keys", members.select("unique_id", "household_id", "id18", "id_valid").to_arrow())
    exact = con.execute(
        """SELECT a.unique_id AS left_id, b.unique_id AS right_id, 1.0::DOUBLE AS match_probability, 'exact_id' AS match_method
           FROM __members_keys a JOIN __members_keys b ON a.id18 = b.id18 AND a.unique_id < b.unique_id
           WHERE a.id_valid AND b.id_valid AND a.household_id <> b.household_id"""
    ).pl()
    con.unregister("__members_keys")
    n = members.height
    valid_share = float(members["id_valid"].mean() or 0.0)
    expected = max(exact.height, 1) / max(valid_share**2, 0.5)
    report.roster_prior = min(max(expected / max(n * (n - 1) / 2, 1), MIN_PRIOR), MAX_PRIOR)
    damaged = members.filter(~pl.col("id_valid"))
    scored = ScoredPairs(pl.DataFrame())
    fuzzy = pl.DataFrame(schema={"left_id": pl.Utf8, "right_id": pl.Utf8, "match_probability": pl.Float64, "match_method": pl.Utf8})
    if damaged.height:
        scored = score(members, None, report.roster_prior, thresholds.NEED, memory_limit, threads, backend=backend,
                       work_dir=work_dir_of(con))
        fuzzy = scored.pairs.select(
            pl.min_horizontal("left_id", "right_id").alias("left_id"),
            pl.max_horizontal("left_id", "right_id").alias("right_id"),
            "match_probability",
            pl.lit("probabilistic").alias("match_method"),
        )
    report.roster_pairs = scored
    pairs = pl.concat([exact.select(fuzzy.columns), fuzzy]).unique(["left_id", "right_id"], keep="first", maintain_order=True)
    # Two member rows are one person only on the same corroboration as a record and a member:
    # an ID copied to another household's row under another name is not the same person.
    pairs = corroboration.judge_pairs(con, pairs, members, members, symmetric=True).select(fuzzy.columns)
    report.duplicate_pairs = pairs.height
    return pairs


def shared_record_bridges(con: duckdb.DuckDBPyConnection, links: str, members: pl.DataFrame) -> pl.DataFrame:
    """Two member rows linked to one record, both strongly, bearing the same name, in two
    households: one person enrolled twice (typically both rows with IDs mistyped in
    different ways, which the roster deduplication cannot pair). Reads the quarter's
    links from the table `links` (source, record_key, member_id, match_probability: the
    table of `record_links`); returns roster-duplicate pairs.

    The shared records are found in DuckDB (a self-join of the links, a few tens of
    thousands of pairs in a province) and the names compared in polars, which joins in the
    order written. Given the name comparison in SQL, DuckDB joined the two member-name
    lists on the name first (every pair of namesakes in a province): a province run
    spilled 19 GB and spent minutes there.
    """
    shared_records = con.execute(
        f"""SELECT least(a.member_id, b.member_id) AS left_id, greatest(a.member_id, b.member_id) AS right_id,
                  least(a.match_probability, b.match_probability) AS match_probability
           FROM {links} AS a
           JOIN {links} AS b ON a.source = b.source AND a.record_key = b.record_key AND a.member_id < b.member_id
           WHERE a.match_probability >= ? AND b.match_probability >= ?""",
        [thresholds.INELIGIBILITY, thresholds.INELIGIBILITY],
    ).pl()
    member_names = members.select("unique_id", "household_id", "name_s")
    return (
        shared_records.join(member_names.rename(lambda c: f"left_{c}"), left_on="left_id", right_on="left_unique_id")
        .join(member_names.rename(lambda c: f"right_{c}"), left_on="right_id", right_on="right_unique_id")
        .filter((pl.col("left_household_id") != pl.col("right_household_id")) & (pl.col("left_name_s") == pl.col("right_name_s")))
        .group_by("left_id", "right_id", maintain_order=True)
        .agg(pl.col("match_probability").max())
        .with_columns(pl.lit("shared_records").alias("match_method"))
    )


def link_quarter(
    con: duckdb.DuckDBPyConnection, quarter: Quarter, memory_limit: str | None = None, threads: int | None = None, backend: str = "duckdb"
) -> LinkReport:
    """Link the quarter's records and replace the quarter's linked.* and audit.link_runs
    (`write_quarter`); Splink scores on `backend` (duckdb, or spark: `spark`).

    The SQL models are temporary tables named after them (int_roster, link_exact_id, ...);
    the stages after them take and return frames and table names (`candidate_identities`,
    `roster_duplicates`, `record_links`, `shared_record_bridges`, `identity_conflicts`)."""
    report = LinkReport()
    params = link_params(quarter)
    corroboration.install(con)
    with report.step("identities"):
        materialize(con, "intermediate/int_roster", params)
        materialize_extract_identities(con, params)  # built from the department specs
        materialize(con, "intermediate/link_record_identities", params)
    with report.step("exact"):
        deterministic_pairs(con, params)
    with report.step("candidates"):
        found = candidate_identities(con, params)
    members, candidates = found.members, found.records
    report.candidates = candidates.height

    # ---- one person, several member rows ------------------------------------------------
    with report.step("roster_dedupe"):
        duplicates = roster_duplicates(con, members, report, memory_limit, threads, backend)
        persons = _persons(duplicates)

    # ---- records the deterministic pass left ---------------------------------------------
    report.record_prior = found.record_prior()
    with report.step("splink_records"):
        scored = score(candidates, members, report.record_prior, thresholds.NEED, memory_limit, threads, backend=backend,
                       work_dir=work_dir_of(con))
    report.record_pairs = scored

    # ---- combine, keep each record's best person, spread over that person's rows ----------
    combine_started = time.perf_counter()
    accepted = corroboration.judge_pairs(con, scored.pairs, candidates, members)
    report.rejected_pairs = scored.pairs.height - accepted.height
    links = record_links(con, quarter, accepted, members, persons, duplicates)
    new_bridges = shared_record_bridges(con, links, members).join(
        duplicates.select("left_id", "right_id"), on=["left_id", "right_id"], how="anti"
    )
    if new_bridges.height:
        duplicates = pl.concat([duplicates, new_bridges.select(duplicates.columns).cast(duplicates.schema)])
        report.duplicate_pairs = duplicates.height
        persons = _persons(duplicates)
    conflicts = identity_conflicts(con, quarter, links)
    report.seconds["combine"] = round(time.perf_counter() - combine_started, 3)
    write_started = time.perf_counter()
    write_quarter(con, quarter, links, conflicts, duplicates, persons, link_runs(report, candidates.height, members.height))
    report.seconds["write"] = round(time.perf_counter() - write_started, 3)
    for source, method, n in con.execute(f"SELECT source, match_method, count(*) FROM {links} GROUP BY ALL ORDER BY ALL").fetchall():
        report.methods.setdefault(source, {})[method] = int(n)
    report.conflicts = dict(con.execute(f"SELECT source, count(*) FROM {conflicts} GROUP BY ALL ORDER BY ALL").fetchall())
    return report


@dataclass
class Candidates:
    """What Splink compares: the roster's members and the records the deterministic pass
    left (both with name keys), and the counts the prior of records rests on."""

    members: pl.DataFrame
    records: pl.DataFrame
    n_records: int  # the quarter's record identities
    n_valid_records: int  # ... of which with a valid ID
    n_exact: int  # ... linked by the deterministic pass

    def record_prior(self) -> float:
        """The share of record-member pairs that match, from what the deterministic pass
        found (at least one link to find)."""
        members_valid = float(self.members["id_valid"].mean() or 1.0)
        valid_share = (self.n_valid_records / self.n_records if self.n_records else 1.0) * members_valid
        expected_links = max(self.n_exact, 1) / max(valid_share, 0.5)
        return min(max(expected_links / max(self.n_records * self.members.height, 1), MIN_PRIOR), MAX_PRIOR)


def candidate_identities(con: duckdb.DuckDBPyConnection, params: dict) -> Candidates:
    """The identities of the quarter (`link_identities`) and, of its records, those Splink
    is to see (`link_candidate_records`). Needs int_roster, link_record_identities and the
    deterministic pass (link_exact_id); drops link_identities and link_record_identities
    once read (Splink runs in a DuckDB of its own: this one lets go of what it no longer
    needs)."""
    identities = materialize_linkage(con, "intermediate/link_identities", params)
    surname_keys(con, identities)
    candidates = materialize_linkage(con, "intermediate/link_candidate_records", params, table="__candidates")
    members = with_name_keys(con.execute(f"SELECT * FROM {identities} WHERE side = 'member'").pl())
    records = with_name_keys(con.execute(f"SELECT * FROM {candidates}").pl())
    n_records, n_valid_records, n_exact = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE id_valid), "
        "(SELECT count(DISTINCT identity_key) FROM link_exact_id WHERE decision = 'link') "
        f"FROM {identities} WHERE side = 'record'"
    ).fetchone()
    con.execute(f"DROP TABLE {identities}; DROP TABLE {candidates}; DROP TABLE link_record_identities")
    return Candidates(members, records, n_records, n_valid_records, n_exact)


def surname_keys(con: duckdb.DuckDBPyConnection, identities: str) -> str:
    """`__surname_keys` (first_char, surname_py): the pinyin of the first character of every
    name of `identities`, which link_candidate_records.sql reads (built in Python: the
    pinyin comes from `names`). Returns the table's name."""
    first_chars = [r[0] for r in con.execute(f"SELECT DISTINCT left(name, 1) FROM {identities} WHERE name IS NOT NULL").fetchall()]
    with _registered(con, __surname_keys_frame=first_character_pinyin(first_chars)):
        con.execute("CREATE OR REPLACE TEMP TABLE __surname_keys AS SELECT * FROM __surname_keys_frame")
    return "__surname_keys"


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, **frames: pl.DataFrame):
    """The frames visible to `con` under the names given, for the block's duration."""
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


# The links of the quarter: each identity's (the deterministic pass's, and Splink's best
# person for it), taken by every record of the identity, and spread over the other member
# rows of that person. Reads link_exact_id and int_extract_identities, and the frames
# __scored, __persons and __duplicates.
RECORD_LINKS_SQL = """
WITH probabilistic AS (
    SELECT left_id AS identity_key,
           right_id AS member_id, match_probability, match_weight, member_name, id_agreement, name_agreement,
           coalesce(p.person_key, right_id) AS person_key
    FROM __scored LEFT JOIN __persons AS p ON p.member_id = right_id
),
ranked AS (
    SELECT *,
           first_value(person_key) OVER w AS best_person,
           first_value(member_name) OVER w AS best_name,
           first_value(match_weight) OVER w AS best_weight
    FROM probabilistic
    WINDOW w AS (PARTITION BY identity_key ORDER BY match_weight DESC, member_id)
),
best AS (
    -- The person of each record's best member; and members who score as well and
    -- bear the same name: one person on two member rows whose IDs the roster wrote
    -- wrongly in two different ways (the roster deduplication cannot pair those).
    SELECT * FROM ranked
    WHERE person_key = best_person OR (match_weight >= best_weight - 1.0 AND member_name = best_name)
),
identity_links AS (
    SELECT identity_key, member_id, match_probability, match_method, id_agreement, name_agreement
    FROM link_exact_id WHERE decision = 'link'
    UNION ALL
    SELECT identity_key, member_id, match_probability, 'probabilistic', id_agreement, name_agreement FROM best
),
direct AS (  -- each record takes its identity's links
    SELECT r.source, r.record_key, l.member_id, l.match_probability, l.match_method, l.id_agreement, l.name_agreement
    FROM identity_links AS l JOIN int_extract_identities AS r USING (identity_key)
),
cluster_strength AS (  -- how sure we are that a person's member rows are one person
    SELECT p.person_key, min(d.match_probability) AS strength
    FROM __duplicates AS d JOIN __persons AS p ON p.member_id = d.left_id
    GROUP BY ALL
),
spread AS (  -- how the record compares with the row it matched; that row is this one's person
    SELECT d.source, d.record_key, other.member_id,
           least(d.match_probability, s.strength) AS match_probability, 'roster_duplicate' AS match_method,
           d.id_agreement, d.name_agreement
    FROM direct AS d
    JOIN __persons AS mine ON mine.member_id = d.member_id
    JOIN __persons AS other ON other.person_key = mine.person_key AND other.member_id <> d.member_id
    JOIN cluster_strength AS s ON s.person_key = mine.person_key
)
SELECT ?::VARCHAR AS quarter, source, record_key, member_id, match_probability, match_method, id_agreement, name_agreement
FROM (SELECT * FROM direct UNION ALL SELECT * FROM spread)
-- One row per record and member. A record delivered twice (two quarters' copies, written
-- two ways) can link to the same member twice with the same probability: the strongest
-- agreement is kept, so two runs of the same data always keep the same row.
QUALIFY row_number() OVER (PARTITION BY source, record_key, member_id ORDER BY match_probability DESC,
                           match_method = 'roster_duplicate',
                           list_position(['same', 'upgraded_15', 'from_certificate', 'from_student_no', 'same_invalid', 'excel_15',
                                          'one_digit', 'swapped', 'two_digits', 'member_missing', 'partial'], id_agreement) NULLS LAST,
                           list_position(['same', 'normalised', 'variant', 'confirmed', 'different', 'missing'], name_agreement) NULLS LAST,
                           match_method, id_agreement, name_agreement) = 1
"""


def record_links(
    con: duckdb.DuckDBPyConnection, quarter: Quarter, accepted: pl.DataFrame, members: pl.DataFrame, persons: pl.DataFrame,
    duplicates: pl.DataFrame,
) -> str:
    """The quarter's links (`linked.matches`' columns) into the temporary table `__links`,
    from the deterministic pass (link_exact_id), Splink's pairs that passed corroboration
    (`accepted`: left_id an identity, right_id a member), and the persons enrolled twice
    (`persons`, `duplicates`: `roster_duplicates`). Returns the table's name."""
    scored = accepted.join(
        members.select(pl.col("unique_id").alias("right_id"), pl.col("name_s").alias("member_name")), on="right_id", how="left"
    )
    with _registered(con, __scored=scored, __persons=persons, __duplicates=duplicates):
        con.execute(f"CREATE OR REPLACE TEMP TABLE __links AS {RECORD_LINKS_SQL}", [str(quarter)])
    return "__links"


def identity_conflicts(con: duckdb.DuckDBPyConnection, quarter: Quarter, links: str) -> str:
    """The quarter's identity conflicts (`linked.identity_conflicts`' columns) into the
    temporary table `__conflicts`: the deterministic pass's (link_exact_id), but for a
    record that `links` (the table of `record_links`) links to the member. Returns the
    table's name."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __conflicts AS
           -- one row per record and member (a death delivered twice is one record); a record
           -- another copy of which links to the member is that member's, not a conflict
           SELECT ?::VARCHAR AS quarter, r.source, r.record_key, e.member_id, e.record_name AS name_as_written
           FROM link_exact_id AS e JOIN int_extract_identities AS r USING (identity_key)
           ANTI JOIN {links} AS l ON l.source = r.source AND l.record_key = r.record_key AND l.member_id = e.member_id
           WHERE e.decision = 'conflict'
           QUALIFY row_number() OVER (PARTITION BY r.source, r.record_key, e.member_id ORDER BY r.delivered_quarter DESC) = 1""",
        [str(quarter)],
    )
    return "__conflicts"


def link_runs(report: LinkReport, n_records: int, n_members: int) -> pl.DataFrame:
    """The rows of `audit.link_runs` (but the quarter): what Splink did, step by step."""
    now = dt.datetime.now()
    rows = []
    for step, pairs, left, right, prior in (
        ("records", report.record_pairs, n_records, n_members, report.record_prior),
        ("roster", report.roster_pairs, n_members, n_members, report.roster_prior),
    ):
        rows.append({
            "model_version": model.MODEL_VERSION, "step": step, "records_left": left, "records_right": right, "prior": prior,
            "pairs_compared": pairs.pairs_compared if pairs else 0,
            "pairs_by_rule": json.dumps(pairs.pairs_by_rule if pairs else {}),
            "links": pairs.pairs.height if pairs and pairs.pairs.height else 0,
            "linked_at": now,
        })
    return pl.DataFrame(rows, schema=LINK_RUNS_SCHEMA)


LINK_RUNS_SCHEMA = {
    "model_version": pl.Utf8, "step": pl.Utf8, "records_left": pl.Int64, "records_right": pl.Int64, "prior": pl.Float64,
    "pairs_compared": pl.Int64, "pairs_by_rule": pl.Utf8, "links": pl.Int64, "linked_at": pl.Datetime("us"),
}


def write_quarter(
    con: duckdb.DuckDBPyConnection, quarter: Quarter, links: str, conflicts: str, duplicates: pl.DataFrame, persons: pl.DataFrame,
    runs: pl.DataFrame,
) -> None:
    """Replace the quarter's linked.* and audit.link_runs in one transaction: `links` and
    `conflicts` are tables (`record_links`, `identity_conflicts`), `duplicates` the roster
    duplicates (left_id, right_id, match_probability, match_method), `persons`
    (member_id, person_key, members) and `runs` (`link_runs`) frames."""
    at = {"quarter": str(quarter)}
    with _registered(con, __duplicates=duplicates, __persons=persons, __link_runs=runs), transaction(con):
        replace_quarter(con, "linked.matches", quarter, f"SELECT * FROM {links}", in_transaction=True)
        replace_quarter(con, "linked.identity_conflicts", quarter, f"SELECT * FROM {conflicts}", in_transaction=True)
        replace_quarter(
            con, "linked.roster_duplicates", quarter,
            "SELECT $quarter AS quarter, left_id AS member_id_l, right_id AS member_id_r, match_probability, match_method "
            "FROM __duplicates", at, in_transaction=True,
        )
        replace_quarter(con, "linked.roster_persons", quarter,
                        "SELECT $quarter AS quarter, member_id, person_key, members FROM __persons", at, in_transaction=True)
        replace_quarter(con, "audit.link_runs", quarter, "SELECT $quarter AS quarter, * FROM __link_runs", at, in_transaction=True)


def deterministic_pairs(con: duckdb.DuckDBPyConnection, params: dict) -> str:
    """The deterministic pass (`link_exact_id`: links and identity conflicts) over the
    quarter's identities and roster, with the identities caseworkers confirmed; needs
    int_roster and link_record_identities. Returns the table's name."""
    corroboration.install(con)
    materialize(con, "intermediate/int_verifications", params)
    materialize(con, "intermediate/link_confirmed_identities", params)
    return materialize(con, "intermediate/link_exact_id", params)
