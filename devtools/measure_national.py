"""Timing the national step's linkage over the union of the regions (docs/scale-out.md).

    python -m devtools.measure_national --warehouse-glob 'DIR/*/doudi.duckdb' --quarter 2025Q1 \\
        --backend spark --repeat 3 [--json FILE]

Builds the union of the regions' rosters and deaths once, as `doudi national` does, then
runs the linker over it `repeat` times (`pipelines.link.linker.link_quarter`, which replaces
its own results each time) and reports the median wall time of each of its steps, among
them `roster_dedupe`: the deduplication of the union (exact IDs in DuckDB, then Splink on
the chosen backend), which is where the cross-region duplicates come from. On Spark the
first run also starts the session (JVM, Splink's jar): it is reported apart as `cold`, and
the medians are of the `repeat` runs after it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.link.linker import link_quarter
from pipelines.national.compare import copy_regions, warehouses_from_glob
from pipelines.quarters import Quarter
from warehouse.connection import connect


def measure(regions: dict[str, Path], quarter: str, backend: str, repeat: int, memory_limit: str | None = None) -> dict:
    q = Quarter.parse(quarter)
    result: dict = {"quarter": str(q), "regions": sorted(regions), "backend": backend, "repeat": repeat}
    with (
        tempfile.TemporaryDirectory(prefix="doudi-measure-") as work,
        connect(Path(work) / "work.duckdb", memory_limit=memory_limit) as con,
    ):
        started = time.time()
        copy_regions(con, regions, q)
        result["union_seconds"] = round(time.time() - started, 2)
        result["members"], result["death_records"] = con.execute(
            "SELECT (SELECT count(*) FROM staging.members), (SELECT count(DISTINCT record_id) FROM staging.death)").fetchone()
        runs = []
        for _ in range(repeat + (1 if backend == "spark" else 0)):
            started = time.time()
            report = link_quarter(con, q, memory_limit=memory_limit, backend=backend)
            runs.append({"total": time.time() - started, **report.seconds})
        if backend == "spark":
            result["cold"] = {k: round(v, 2) for k, v in runs.pop(0).items()}
        result["median_seconds"] = {k: round(statistics.median(r.get(k, 0.0) for r in runs), 2) for k in runs[0]}
        result["roster_dedupe_seconds"] = [round(r["roster_dedupe"], 2) for r in runs]
        result["roster_pairs_compared"] = report.roster_pairs.pairs_compared if report.roster_pairs else 0
        result["roster_pairs_by_rule"] = report.roster_pairs.pairs_by_rule if report.roster_pairs else {}
        result["record_pairs_compared"] = report.record_pairs.pairs_compared if report.record_pairs else 0
        result["roster_duplicate_pairs"], result["cross_region_pairs"] = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE split_part(member_id_l, '/', 1) <> split_part(member_id_r, '/', 1))
               FROM linked.roster_duplicates WHERE quarter = ?""", [str(q)]).fetchone()
        result["damaged_member_ids"] = con.execute("SELECT count(*) FILTER (WHERE NOT coalesce(id_number_valid, false)) "
                                                   "FROM staging.members").fetchone()[0]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.measure_national", description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse-glob", required=True, help="the regions' warehouses, * standing for the region")
    parser.add_argument("--quarter", required=True)
    parser.add_argument("--backend", choices=["duckdb", "spark"], default="spark")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = measure(warehouses_from_glob(args.warehouse_glob), args.quarter, args.backend, args.repeat, args.memory_limit)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    if args.backend == "spark":
        from pipelines.link.spark import stop_spark

        stop_spark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
