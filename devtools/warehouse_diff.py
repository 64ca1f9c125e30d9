"""Two warehouses compared table by table: are a change's results the same as before?

    python -m devtools.warehouse_diff BEFORE.duckdb AFTER.duckdb [--schemas marts,rules,linked]

For every table of the schemas named (by default the published results: marts, rules,
linked, staging and quarantine), the rows of each warehouse are read in a fixed order,
without the columns that differ between any two runs (run ids, timestamps), and hashed.
Prints one line per table (rows before, rows after, same or not) and exits 1 when any
differs, naming the table; nothing of the rows themselves is printed (they hold names and
ID numbers). The redesign of issue 19 was shown to keep the demo's results with this.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import duckdb

DEFAULT_SCHEMAS = ("marts", "rules", "linked", "staging", "quarantine")
# Columns whose values differ between two runs of the same data: run ids and clocks, and
# the masked person key (a keyed hash whose secret each warehouse draws for itself).
VOLATILE = {"run_id", "published_at", "logged_at", "checked_at", "created_at", "generated_at", "finished_at", "started_at",
            "linked_at", "exported_at", "accepted_at", "written_at", "verified_at_run", "person_key"}


def table_digests(path: Path, schemas: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE list_contains(?, schema_name) ORDER BY ALL", [list(schemas)]
        ).fetchall()
        digests = {}
        for schema, table in tables:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
                [schema, table]).fetchall() if c not in VOLATILE]
            quoted = ", ".join(f'"{c}"::VARCHAR' for c in columns)
            rows = con.execute(f'SELECT {quoted} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
            digest = hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()
            digests[f"{schema}.{table}"] = (len(rows), digest)
        return digests
    finally:
        con.close()


def compare(before: Path, after: Path, schemas: tuple[str, ...] = DEFAULT_SCHEMAS) -> list[tuple[str, int | None, int | None, bool]]:
    a, b = table_digests(before, schemas), table_digests(after, schemas)
    return [(name, a.get(name, (None,))[0], b.get(name, (None,))[0], a.get(name) == b.get(name)) for name in sorted(a.keys() | b.keys())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.warehouse_diff", description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--schemas", default=",".join(DEFAULT_SCHEMAS))
    args = parser.parse_args(argv)
    rows = compare(Path(args.before), Path(args.after), tuple(s.strip() for s in args.schemas.split(",") if s.strip()))
    print(f"{'table':40} {'before':>9} {'after':>9}  same")
    for name, n_a, n_b, same in rows:
        print(f"{name:40} {n_a if n_a is not None else '-':>9} {n_b if n_b is not None else '-':>9}  {'yes' if same else 'NO'}")
    differing = [name for name, *_, same in rows if not same]
    print(f"\n{len(rows) - len(differing)} of {len(rows)} tables the same" + (f"; differ: {', '.join(differing)}" if differing else ""))
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
