"""The extract records a warning rests on, as the department wrote them, and what the
project's identity corroboration makes of them (RULES.md, Identity corroboration).

A member warning names its records in `basis` (`death:GA2025…`). After a family's rules
have run, `attach_records` looks each one up — the latest copy delivered up to the
quarter, in the staging table its source spec names, with the name and ID number as
written and the record's date and detail (`record_date`, `record_detail` in
`sources/departments/<source>.yaml`) — together with how the linker matched it to the member
(`linked.matches`: method, probability, id_agreement, name_agreement), and writes the list
into the warning's evidence as `records`. The lists render it in Chinese
(`pipelines/rules/texts.py`, record_line).

`apply_identity_caveat` then holds every ineligibility warning to what its records prove:
one that rests on no record whose ID and name agree outright (`corroborated`) is at most
orange, and its action starts by asking the caseworker to verify the identity. A stop is
acted on only for a record that is certainly the member's.
"""

from __future__ import annotations

import duckdb

from pipelines.quarters import Quarter
from sources.registry import linked_sources

IDENTITY_CAVEAT = "先核实身份（部门记录的身份证号或姓名与花名册不完全一致，须核实是否为本人）；核实为本人后，"


def record_lookup_sql(keys_table: str) -> str:
    """SQL: the records named in `keys_table` (source, record_key), one row each — the latest
    copy delivered up to `$quarter` (full stocks: `$quarter`'s only) — with source_title,
    name_as_written, id_number_as_written, record_date and detail."""
    parts = []
    for spec in linked_sources():
        key = spec.key[0]
        date = f'"{spec.record_date}"::date' if spec.record_date else "null::date"
        detail = f'"{spec.record_detail}"::varchar' if spec.record_detail else "null::varchar"
        delivered = "quarter <= $quarter" if spec.delivery == "accumulating" else "quarter = $quarter"
        parts.append(
            f"""select '{spec.source}' as source, '{spec.title}' as source_title, "{key}"::varchar as record_key,
                       "{spec.person.name}" as name_as_written, "{spec.person.id_number}_raw" as id_number_as_written,
                       {date} as record_date, {detail} as detail, quarter as delivered_quarter
                from {spec.staging_table}
                where {delivered}
                  and "{key}"::varchar in (select record_key from {keys_table} where source = '{spec.source}')"""
        )
    return (
        "select * from (\n" + "\nunion all\n".join(parts) + "\n)\n"
        "qualify row_number() over (partition by source, record_key order by delivered_quarter desc) = 1"
    )


FINDING_RECORDS = "__finding_records"


def attach_records(con: duckdb.DuckDBPyConnection, quarter: Quarter, findings: str) -> str:
    """Write into each member finding of the table `findings` the linked records its basis
    names (evidence.records), reading the run's `int_links` and `int_roster`. Returns the
    table it leaves of (rule_code, member_id, corroborated, records), for
    `apply_identity_caveat`."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __basis_records AS
        WITH items AS (
            SELECT rule_code, member_id, unnest(basis) AS item FROM {findings} WHERE member_id IS NOT NULL
        )
        SELECT DISTINCT rule_code, member_id, split_part(item, ':', 1) AS source,
               substr(item, length(split_part(item, ':', 1)) + 2) AS record_key
        FROM items
        WHERE list_contains($sources, split_part(item, ':', 1))
        """,
        {"sources": [spec.source for spec in linked_sources()]},
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __basis_written AS {record_lookup_sql('__basis_records')}", {"quarter": str(quarter)}
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {FINDING_RECORDS} AS
        WITH records AS (
            SELECT b.rule_code, b.member_id, l.corroborated,
                   {{'source': b.source, 'source_title': w.source_title, 'record_key': b.record_key,
                    'name_as_written': w.name_as_written, 'id_number_as_written': w.id_number_as_written,
                    'roster_name': m.name, 'record_date': w.record_date, 'detail': w.detail,
                    'match_method': l.match_method, 'match_probability': round(l.match_probability, 4),
                    'id_agreement': l.id_agreement, 'name_agreement': l.name_agreement}} AS record
            FROM __basis_records AS b
            JOIN int_links AS l ON l.source = b.source AND l.record_key = b.record_key AND l.member_id = b.member_id
            JOIN __basis_written AS w ON w.source = b.source AND w.record_key = b.record_key
            JOIN int_roster AS m ON m.member_id = b.member_id
        )
        SELECT rule_code, member_id, bool_or(corroborated) AS corroborated,
               list(record ORDER BY record.record_date NULLS LAST, record.source, record.record_key) AS records
        FROM records
        GROUP BY ALL
        """
    )
    con.execute(
        f"""
        UPDATE {findings} AS f
        SET evidence = json_merge_patch(f.evidence, json_object('records', to_json(r.records)))
        FROM {FINDING_RECORDS} AS r
        WHERE f.rule_code = r.rule_code AND f.member_id = r.member_id
        """
    )
    return FINDING_RECORDS


def apply_identity_caveat(con: duckdb.DuckDBPyConnection, findings: str, finding_records: str) -> int:
    """An ineligibility finding of `findings` whose records (`finding_records`, from
    `attach_records`) include none that corroborates the member outright: at most orange,
    and verify the identity first. Returns how many."""
    held = con.execute(
        f"""
        SELECT count(*) FROM {findings} AS f JOIN {finding_records} AS r USING (rule_code, member_id)
        WHERE f.rule_kind = 'ineligibility' AND NOT r.corroborated
        """
    ).fetchone()[0]
    con.execute(
        f"""
        UPDATE {findings} AS f
        SET severity = CASE WHEN f.severity = 'red' THEN 'orange' ELSE f.severity END,
            action = $caveat || f.action
        FROM {finding_records} AS r
        WHERE f.rule_code = r.rule_code AND f.member_id = r.member_id
          AND f.rule_kind = 'ineligibility' AND NOT r.corroborated
        """,
        {"caveat": IDENTITY_CAVEAT},
    )
    return held
