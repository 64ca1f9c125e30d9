"""The exact-ID join against doudi's linker, side by side, on a synthetic province.

    doudi compare-linkage --inbox DIR --quarter 2025Q2

Loads the inbox's quarters up to the one asked (ingest only, untimed), then links that
quarter three ways, timing each:
  - exact ID: the join the bureaus use today, equal ID text (spaces, full width and case
    aside), nothing read from certificate or student numbers, no 15-digit upgrade;
  - deterministic: doudi's first pass alone (cleaned IDs, IDs carried by certificate and
    student numbers, legacy numbers upgraded, Excel-suspect IDs only with the name);
  - linker: the whole of it (deterministic pass, roster deduplication, Splink);
and scores each against `DIR/truth/links.csv`: precision, recall and F1 per source; the
linker's precision on the links strong enough to raise an ineligibility warning; and the
pairs Splink compared.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import polars as pl

from devtools.evaluate import LINK_KEY, load_truth
from pipelines.link import thresholds
from pipelines.link.linker import deterministic_pairs, link_params, link_quarter
from pipelines.quarters import Quarter, quarter_range
from warehouse.connection import connect
from warehouse.models import materialize

# The join the bureaus use today: equal ID text (spaces, full width and case aside).
EXACT_ID_JOIN_SQL = """SELECT DISTINCT ? AS quarter, r.source, r.record_key, m.member_id
   FROM int_extract_identities AS r JOIN int_roster AS m ON r.id_number_raw = m.id_number_raw"""


def source_scores(found: pl.DataFrame, truth: pl.DataFrame) -> dict[str, dict]:
    """Precision, recall and F1 per source of `found` links against the truth's."""
    out = {}
    for source in sorted(truth["source"].unique().to_list()):
        f = found.filter(pl.col("source") == source).select(LINK_KEY).unique()
        t_all = truth.filter(pl.col("source") == source)
        recoverable = t_all.filter(pl.col("link_class") != "unrecoverable").select(LINK_KEY)
        correct = f.join(t_all.select(LINK_KEY), on=LINK_KEY, how="semi").height
        found_recoverable = f.join(recoverable, on=LINK_KEY, how="semi").height
        precision = correct / f.height if f.height else 1.0
        recall = found_recoverable / recoverable.height if recoverable.height else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[source] = {"found": f.height, "true": recoverable.height, "precision": precision, "recall": recall, "f1": f1}
    return out


def compare(inbox: Path, quarter: str, memory_limit: str | None = None) -> dict:
    from pipelines.ingest.load import load_source
    from pipelines.link.extract_identities import materialize_extract_identities
    from sources.registry import all_sources

    target = Quarter.parse(quarter)
    first = min(Quarter.parse(p.name) for p in inbox.iterdir() if p.is_dir() and p.name[:4].isdigit())
    truth_warnings, truth_links = load_truth(inbox / "truth")
    del truth_warnings
    truth = truth_links.filter(pl.col("quarter") == quarter)
    with tempfile.TemporaryDirectory(prefix="doudi-compare-") as tmp:
        warehouse = Path(tmp) / "compare.duckdb"
        with connect(warehouse, memory_limit=memory_limit) as con:
            for q in quarter_range(f"{first}:{target}"):
                for spec in all_sources():
                    if (inbox / str(q) / spec.source).exists() or spec.required_folder:
                        load_source(con, spec, inbox / str(q), q, "compare")
            params = link_params(target)
            materialize(con, "intermediate/int_roster", params)
            materialize_extract_identities(con, params)
            started = time.time()
            exact = con.execute(EXACT_ID_JOIN_SQL, [quarter]).pl()
            exact_seconds = time.time() - started
            started = time.time()
            materialize(con, "intermediate/link_record_identities", params)
            exact_pairs = deterministic_pairs(con, params)
            deterministic = con.execute(
                f"""SELECT DISTINCT ? AS quarter, r.source, r.record_key, e.member_id
                   FROM {exact_pairs} AS e JOIN int_extract_identities AS r USING (identity_key) WHERE e.decision = 'link'""",
                [quarter],
            ).pl()
            deterministic_seconds = time.time() - started
            started = time.time()
            report = link_quarter(con, target, memory_limit=memory_limit)
            linker_seconds = time.time() - started
            found = con.execute(
                "SELECT quarter, source, record_key, member_id, match_probability FROM linked.matches WHERE quarter = ?", [quarter]
            ).pl()
    strong = found.filter(pl.col("match_probability") >= thresholds.INELIGIBILITY)
    return {
        "quarter": quarter,
        "exact": {"seconds": exact_seconds, "sources": source_scores(exact, truth)},
        "deterministic": {"seconds": deterministic_seconds, "sources": source_scores(deterministic, truth)},
        "linker": {"seconds": linker_seconds, "sources": source_scores(found, truth)},
        "linker_ineligibility_links": source_scores(strong, truth),
        "splink_candidate_records": report.candidates,
        "splink_pairs_compared": report.record_pairs.pairs_compared if report.record_pairs else 0,
        "splink_pairs_by_rule": report.record_pairs.pairs_by_rule if report.record_pairs else {},
        "roster_pairs_compared": report.roster_pairs.pairs_compared if report.roster_pairs else 0,
        "roster_duplicate_pairs": report.duplicate_pairs,
        "prior": report.record_prior,
    }


def print_comparison(result: dict) -> None:
    print(f"\nlinkage of {result['quarter']} — seconds: exact ID {result['exact']['seconds']:.1f}, "
          f"deterministic {result['deterministic']['seconds']:.1f}, linker {result['linker']['seconds']:.1f} "
          "(precision P, recall R on recoverable links, F1)")
    header = (f"{'source':<11}{'true':>7} | {'exact ID: P':>11}{'R':>7}{'F1':>7} | {'determ.: P':>10}{'R':>7}{'F1':>7} | "
              f"{'linker: P':>9}{'R':>7}{'F1':>7} | {'P ≥' + str(thresholds.INELIGIBILITY):>8}")
    print(header)
    print("-" * len(header))
    for source, e in result["exact"]["sources"].items():
        d = result["deterministic"]["sources"][source]
        lk = result["linker"]["sources"][source]
        s = result["linker_ineligibility_links"][source]
        print(f"{source:<11}{e['true']:>7} | {e['precision']:>11.4f}{e['recall']:>7.4f}{e['f1']:>7.4f} | "
              f"{d['precision']:>10.4f}{d['recall']:>7.4f}{d['f1']:>7.4f} | "
              f"{lk['precision']:>9.4f}{lk['recall']:>7.4f}{lk['f1']:>7.4f} | {s['precision']:>8.4f}")
    print(f"\nSplink: {result['splink_candidate_records']:,} records left by the deterministic pass, compared in "
          f"{result['splink_pairs_compared']:,} pairs ({', '.join(f'{k} {v:,}' for k, v in result['splink_pairs_by_rule'].items())}); "
          f"roster deduplication compared {result['roster_pairs_compared']:,} pairs, "
          f"{result['roster_duplicate_pairs']:,} pairs of member rows are one person; "
          f"prior {result['prior']:.3g}")
