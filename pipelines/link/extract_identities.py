"""`int_extract_identities`: who each extract record says it is about, built from the
department specs (`person:` in `sources/departments/<source>.yaml`) rather than kept as a
SQL file, so that a new department is linked by declaring it.

One CTE per linked source brings the staged rows its window names (`sources.registry.WINDOWS`):
  history           every copy delivered up to the quarter whose record_date lies in the
                    history window (`$lookback_start` < date <= `$q_end`)
  delivered_so_far  every copy delivered up to the quarter (a record is linked if any copy links)
  quarter           this quarter's delivery only
with the identity fields the linker compares. `identity_key` names the identity as written
(name and every form of the ID): the many settlements of one patient, or one person's
records in several sources, share it, and the linker links each identity once (a
province's medical extract holds each patient several times a quarter, and the lookback
window several quarters).
"""

from __future__ import annotations

import duckdb

from sources.registry import WINDOWS, SourceSpec, linked_sources
from warehouse.models import bind

TABLE = "int_extract_identities"

# MD5 (128 bits; two identities sharing a key is not a practical risk) as hex text: the key
# is also Splink's unique_id, and DuckDB turns a 128-bit integer into text about a hundred
# times slower than it computes the hash.
IDENTITY_KEY_SQL = """md5(concat_ws(chr(31), coalesce(name, chr(0)), coalesce(id_number, chr(0)),
                             coalesce(id_number_valid::varchar, chr(0)), coalesce(id_number_partial, chr(0)),
                             coalesce(id_number_raw, chr(0)), coalesce(id_number_flag, chr(0))))"""


def _window_sql(spec: SourceSpec) -> str:
    window = spec.person.window
    if window == "history":
        date = f'"{spec.record_date}"'
        return f"quarter <= $quarter and {date} > $lookback_start and {date} <= $q_end"
    if window == "delivered_so_far":
        return "quarter <= $quarter"
    return "quarter = $quarter"


def _source_cte(spec: SourceSpec) -> str:
    person = spec.person
    ids = person.id_number
    return (
        f"from_{spec.source} as (\n"
        f"    select '{spec.source}' as source, \"{spec.key[0]}\"::varchar as record_key, \"{person.name}\" as name,\n"
        f'           "{ids}" as id_number, "{ids}_valid" as id_number_valid, "{ids}_partial" as id_number_partial,\n'
        f'           "{ids}_raw" as id_number_raw, "{ids}_flag" as id_number_flag, quarter as delivered_quarter\n'
        f"    from {spec.staging_table}\n"
        f"    where {_window_sql(spec)}\n"
        ")"
    )


def union_order() -> list[SourceSpec]:
    """The linked sources in the union's order: by window (history, delivered so far, this
    quarter), then source order. It is the order the hand-written model had (medical,
    death, then the full stocks); the linker takes `any_value` of an identity's rows, so
    the order is kept for the links to stay the same."""
    return sorted(linked_sources(), key=lambda spec: WINDOWS.index(spec.person.window))


def extract_identities_sql() -> str:
    """The model's SQL (parameters `$quarter`, `$lookback_start`, `$q_end`)."""
    specs = union_order()
    if not specs:
        raise ValueError("no department spec declares person: nothing to link")
    unioned = "\n    union all ".join(f"select * from from_{spec.source}" for spec in specs)
    ctes = [_source_cte(spec) for spec in specs]
    ctes.append(f"unioned as (\n    {unioned}\n)")
    ctes.append(f"final as (\n    select *, {IDENTITY_KEY_SQL} as identity_key\n    from unioned\n)")
    return "with\n\n" + ",\n\n".join(ctes) + "\n\nselect * from final\n"


def materialize_extract_identities(con: duckdb.DuckDBPyConnection, params: dict) -> str:
    """Build `int_extract_identities` as a temporary table for the run; return its name."""
    sql = extract_identities_sql()
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} AS {sql}", bind(sql, params))
    return TABLE
