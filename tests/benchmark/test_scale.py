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

from devtools.bench import SCALES, run_bench

pytestmark = pytest.mark.benchmark

CACHE = Path(os.environ.get("DOUDI_BENCH_CACHE", Path(__file__).parents[2] / "bench-cache"))
MEMORY_LIMIT = "6GB"  # DuckDB's share; the process as a whole must stay within PEAK_BUDGET_GB
PEAK_BUDGET_GB = {"county": 6.0, "city": 12.0}
REPEATS = {"county": 3, "city": 1}


@pytest.mark.parametrize("scale", ["county", "city"])
def test_a_quarter_at_scale(scale):
    summary = run_bench(scale, 20250101, CACHE, REPEATS[scale], "2025Q1:2025Q2", MEMORY_LIMIT, CACHE / f"{scale}.json")
    assert json.loads((CACHE / f"{scale}.json").read_text(encoding="utf-8"))["scale"] == scale
    stages = summary["stages"]
    assert set(stages) == {"ingest", "checks", "link", "rules", "marts", "lists"}
    assert all(s["seconds_median"] > 0 for s in stages.values())
    # extracts at the contract's proportions: ~2.5 members per household, medical ~12x the roster
    assert stages["ingest"]["rows"] > 12 * 2 * SCALES[scale]
    assert stages["link"]["rows"] > 0 and stages["marts"]["rows"] > 0
    assert summary["peak_rss_gb_max"] <= PEAK_BUDGET_GB[scale]
    with duckdb.connect(str(CACHE / f"work-{scale}" / "warehouse.duckdb"), read_only=True) as con:
        unbalanced = con.execute("SELECT count(*) FROM audit.ingest_log WHERE rows_read <> rows_loaded + rows_quarantined").fetchone()[0]
        assert unbalanced == 0
        published = con.execute("SELECT count(DISTINCT quarter) FROM audit.publications").fetchone()[0]
        assert published == 2
    for row in summary["link_quality"]:
        assert row["precision"] >= 0.995, row
        assert row["recall"] >= 0.99, row
