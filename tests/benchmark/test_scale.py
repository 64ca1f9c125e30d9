"""County and city scale, end to end through `doudi bench` (marker `benchmark`; not in the
default run: `make bench-test` or `pytest -m benchmark`).

What is asserted is what must hold at any speed: the run completes within the memory
budget, every row read is accounted for, each stage handled the rows it should, and the
linkage keeps its quality at scale. The times are measured and written to JSON
(`bench-cache/<scale>.json`), for the README and the issue notes, not asserted: this machine
is shared and noisy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from devtools.bench import SCALES, STAGES, MemorySampler, ensure_data, run_bench
from pipelines.quarters import quarter_range
from sources.registry import all_sources, linked_sources

pytestmark = pytest.mark.benchmark

CACHE = Path(os.environ.get("DOUDI_BENCH_CACHE", Path(__file__).parents[2] / "bench-cache"))
MEMORY_LIMIT = "6GB"  # DuckDB's share; the process as a whole must stay within PEAK_BUDGET_GB
PEAK_BUDGET_GB = {"county": 6.0, "city": 12.0}
REPEATS = {"county": 3, "city": 1}


SEED, QUARTERS = 20250101, "2025Q1:2025Q2"


def _latest_run(con, quarter: str) -> str:
    return con.execute("SELECT run_id FROM audit.ingest_log WHERE quarter = ? ORDER BY logged_at DESC LIMIT 1", [quarter]).fetchone()[0]


def _count(con, sql: str, *params) -> int:
    return int(con.execute(sql, list(params)).fetchone()[0])


@pytest.mark.parametrize("scale", ["county", "city"])
def test_a_quarter_at_scale(scale):
    baseline_gb = MemorySampler.rss_bytes() / 2**30  # this process before the bench
    summary = run_bench(scale, SEED, CACHE, REPEATS[scale], QUARTERS, MEMORY_LIMIT, CACHE / f"{scale}.json")
    written = json.loads((CACHE / f"{scale}.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(summary, ensure_ascii=False)) and written["scale"] == scale
    quarter = str(quarter_range(QUARTERS)[-1])
    assert summary["quarter"] == quarter and len(summary["repeats_detail"]) == REPEATS[scale]
    stages = summary["stages"]
    assert list(stages) == STAGES
    assert all(s["seconds_median"] > 0 for s in stages.values())
    assert all(set(r["stages"]) >= set(STAGES) and all(r["stages"][n] > 0 for n in STAGES) for r in summary["repeats_detail"])

    # The policy replay of the same quarters with no change reproduces what was published.
    replay = summary["policy_replay"]
    assert (replay["no_change"]["gained"], replay["no_change"]["lost"]) == (0, 0), replay
    assert replay["asset_limit_48"]["gained"] > 0, replay  # a higher asset limit raises N01 for more households

    # The floors, measured in the same run: the raw read saw the quarter's CSV rows, and the
    # linker finds at least what the exact-ID join of the same records finds, per source.
    floors = summary["floors"]
    assert floors["duckdb_read"]["rows"] > 0 and floors["polars_read"]["rows"] == floors["duckdb_read"]["rows"]
    linker_recall = {row["source"]: row["recall"] for row in summary["link_quality"]}
    for source, exact in floors["exact_join"]["sources"].items():
        assert linker_recall[source] >= exact["recall"], (source, linker_recall[source], exact)
    assert all(0 <= v["precision"] <= 1 and 0 <= v["recall"] <= 1 for v in floors["plain_splink"]["sources"].values())

    # Memory: sampled while the quarter ran, above what the process held before, within budget.
    assert baseline_gb < summary["peak_rss_gb_max"] <= PEAK_BUDGET_GB[scale]
    assert all(0 < s["peak_rss_gb"] <= summary["peak_rss_gb_max"] for s in stages.values()), stages

    # Ingest: every data row the generator wrote for the quarter was read, file by file.
    inbox = ensure_data(scale, SEED, CACHE, quarter_range(QUARTERS))  # the cached inbox the bench ran
    delivered = json.loads((inbox / "truth" / "manifest.json").read_text(encoding="utf-8"))["rows_delivered"][quarter]
    files = [p for p in (inbox / quarter).rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert stages["ingest"]["rows"] == sum(delivered.values())
    # extracts at the contract's proportions: ~2.5 members per household, medical ~12x the roster
    assert stages["ingest"]["rows"] > 12 * 2 * SCALES[scale]
    with duckdb.connect(str(CACHE / f"work-{scale}" / "warehouse.duckdb"), read_only=True) as con:
        run = _latest_run(con, quarter)
        log = con.execute("SELECT source, count(*), sum(rows_read), sum(rows_loaded) FROM audit.ingest_log "
                          "WHERE quarter = ? AND run_id = ? GROUP BY source", [quarter, run]).fetchall()
        assert {source: read for source, _, read, _ in log} == delivered
        assert sum(n for _, n, _, _ in log) == len(files)  # one log row per file in the inbox
        unbalanced = _count(con, "SELECT count(*) FROM audit.ingest_log WHERE rows_read <> rows_loaded + rows_quarantined")
        assert unbalanced == 0
        assert _count(con, "SELECT count(DISTINCT quarter) FROM audit.publications") == 2

        # Each later stage counted the rows it left in the warehouse for the quarter.
        checked = {spec.source for spec in all_sources() if spec.delivery == "roster" or spec.person is not None}
        assert stages["checks"]["rows"] == sum(loaded for source, _, _, loaded in log if source in checked) > 0
        assert stages["link"]["rows"] == _count(con, "SELECT count(*) FROM linked.matches WHERE quarter = ?", quarter) > 0
        assert stages["rules"]["rows"] == _count(con, "SELECT count(*) FROM rules.findings WHERE quarter = ?", quarter) > 0
        assert stages["marts"]["rows"] == _count(con, "SELECT count(*) FROM marts.warnings WHERE quarter = ?", quarter) > 0
        assert stages["lists"]["rows"] == stages["marts"]["rows"]

    # Linkage keeps its quality at scale, for every linked department.
    assert {row["source"] for row in summary["link_quality"]} >= {spec.source for spec in linked_sources()}
    for row in summary["link_quality"]:
        assert row["precision"] >= 0.995, row
        assert row["recall"] >= 0.99, row
