"""Scoring a warehouse against a synthetic province's truth (`doudi evaluate`).

Warnings are matched on (quarter, rule_code, household_id, member_id); links on
(quarter, source, record_key, member_id). Precision counts as right anything the truth
lists (warnings resting on unrecoverable links included); recall is over what a linker can
be expected to find (recoverable links), and separately over what an exact-ID join could
find (`requires` exact or roster), so the cost of the damaged IDs is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from warehouse.connection import connect

WARNING_KEY = ["quarter", "rule_code", "household_id", "member_id"]
LINK_KEY = ["quarter", "source", "record_key", "member_id"]


@dataclass
class Score:
    true_positive: int
    false_positive: int
    false_negative: int

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positive + self.false_negative
        return self.true_positive / expected if expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _score(found: pl.DataFrame, expected: pl.DataFrame, key: list[str]) -> Score:
    found = found.select(key).unique()
    expected = expected.select(key).unique()
    tp = found.join(expected, on=key, how="semi", nulls_equal=True).height
    return Score(tp, found.height - tp, expected.height - tp)


def load_truth(truth_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    warnings = pl.read_csv(truth_dir / "warnings.csv", schema_overrides={"member_id": pl.Utf8, "household_id": pl.Utf8})
    links = pl.read_csv(truth_dir / "links.csv", schema_overrides={"record_key": pl.Utf8, "member_id": pl.Utf8})
    return warnings, links


def load_found(warehouse: Path) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """The published warnings and links, and the quarters published."""
    with connect(warehouse, read_only=True) as con:
        quarters = [r[0] for r in con.execute("SELECT DISTINCT quarter FROM audit.publications ORDER BY 1").fetchall()]
        warnings = con.execute(
            "SELECT quarter, rule_code, household_id, member_id, severity, due_date FROM marts.warnings"
            " WHERE status IN ('new','persisting')"
        ).pl()
        links = con.execute("SELECT quarter, source, record_key, member_id, match_method FROM linked.matches").pl()
    links = links.filter(pl.col("quarter").is_in(quarters))
    return warnings, links, quarters


def warning_scores(found: pl.DataFrame, truth: pl.DataFrame, quarters: list[str], rules: list[str] | None = None) -> pl.DataFrame:
    rules = rules or sorted(set(truth["rule_code"].unique().to_list()) | set(found["rule_code"].unique().to_list()))
    rows = []
    for rule in rules:
        f = found.filter((pl.col("rule_code") == rule) & pl.col("quarter").is_in(quarters))
        t_all = truth.filter((pl.col("rule_code") == rule) & pl.col("quarter").is_in(quarters))
        t = t_all.filter(pl.col("requires") != "unrecoverable")
        overall = _score(f, t, WARNING_KEY)
        right = f.select(WARNING_KEY).unique().join(t_all.select(WARNING_KEY).unique(), on=WARNING_KEY, how="semi", nulls_equal=True).height
        overall = Score(overall.true_positive, f.select(WARNING_KEY).unique().height - right, overall.false_negative)
        exact_truth = t.filter(pl.col("requires").is_in(["exact", "roster"]))
        found_exact = f.join(exact_truth.select(WARNING_KEY), on=WARNING_KEY, how="semi", nulls_equal=True)
        exact_recall = _score(found_exact, exact_truth, WARNING_KEY).recall
        true_severity = t_all.select(WARNING_KEY + [pl.col("severity").alias("true_severity")])
        matched = f.join(true_severity, on=WARNING_KEY, how="inner", nulls_equal=True)
        severity_agree = (matched["severity"] == matched["true_severity"]).mean() if matched.height else None
        rows.append(
            {
                "rule_code": rule, "expected": t.height, "found": f.height, "true_positive": overall.true_positive,
                "precision": round(overall.precision, 4), "recall": round(overall.recall, 4),
                "recall_exact_id_cases": round(exact_recall, 4),
                "severity_agreement": None if severity_agree is None else round(float(severity_agree), 4),
            }
        )
    return pl.DataFrame(rows)


def link_scores(found: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    quarters = sorted(set(found["quarter"].unique().to_list()))
    truth = truth.filter(pl.col("quarter").is_in(quarters))
    rows = []
    for source in sorted(truth["source"].unique().to_list()):
        f = found.filter(pl.col("source") == source)
        t_all = truth.filter(pl.col("source") == source)
        recoverable = t_all.filter(pl.col("link_class") != "unrecoverable")
        correct = f.join(t_all.select(LINK_KEY), on=LINK_KEY, how="semi").height
        found_n = f.select(LINK_KEY).unique().height
        recall = _score(f, recoverable, LINK_KEY).recall
        exact = recoverable.filter(pl.col("link_class") == "exact")
        fuzzy = recoverable.filter(pl.col("link_class") == "fuzzy")
        rows.append(
            {
                "source": source, "true_links": recoverable.height, "found": found_n,
                "precision": round(correct / found_n, 4) if found_n else 1.0,
                "recall": round(recall, 4),
                "recall_exact_class": round(_score(f, exact, LINK_KEY).recall, 4),
                "recall_fuzzy_class": round(_score(f, fuzzy, LINK_KEY).recall, 4) if fuzzy.height else None,
                "unrecoverable": t_all.height - recoverable.height,
            }
        )
    return pl.DataFrame(rows)


def evaluate(truth_dir: Path, warehouse: Path, rules: list[str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per-rule warning scores, per-source link scores) over the published quarters."""
    truth_warnings, truth_links = load_truth(truth_dir)
    found_warnings, found_links, quarters = load_found(warehouse)
    return warning_scores(found_warnings, truth_warnings, quarters, rules), link_scores(found_links, truth_links)


def hazard_links(truth_dir: Path, warehouse: Path) -> pl.DataFrame | None:
    """Per identity hazard the generator planted (truth/hazards.csv): how many of its records
    the warehouse linked — to the member whose ID the record carries (or whose twin's it is:
    wrong, except for `renamed`, the member's own record under a changed name) or to anyone
    — and how many it holds as identity conflicts (rule Q02). None without hazards.csv."""
    path = Path(truth_dir) / "hazards.csv"
    if not path.exists():
        return None
    hazards = pl.read_csv(path, schema_overrides={"record_key": pl.Utf8, "person_id": pl.Utf8})
    roster = pl.read_csv(Path(truth_dir) / "roster_persons.csv", schema_overrides={"member_id": pl.Utf8, "person_id": pl.Utf8})
    with connect(warehouse, read_only=True) as con:
        quarters = [r[0] for r in con.execute("SELECT DISTINCT quarter FROM audit.publications ORDER BY 1").fetchall()]
        links = con.execute("SELECT quarter, source, record_key, member_id FROM linked.matches").pl()
        has_conflicts = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'linked' AND table_name = 'identity_conflicts'"
        ).fetchone()[0]
        conflicts = (
            con.execute("SELECT quarter, source, record_key, member_id FROM linked.identity_conflicts").pl() if has_conflicts else None
        )
    hazards = hazards.filter(pl.col("delivered_quarter") <= (quarters[-1] if quarters else ""))
    links = links.filter(pl.col("quarter").is_in(quarters))
    keys = ["source", "record_key"]
    # a record is read from its delivery on: deaths and settlements accumulate, the full
    # stocks are read in the quarter delivered only
    accumulating = pl.col("source").is_in(["death", "medical"])
    in_view = (pl.col("quarter") >= pl.col("delivered_quarter")) & (accumulating | (pl.col("quarter") == pl.col("delivered_quarter")))
    linked = hazards.join(links, on=keys, how="inner").filter(in_view)
    carried = linked.join(roster, on=["quarter", "member_id", "person_id"], how="semi")
    rows = []
    for hazard in sorted(hazards["hazard"].unique().to_list()):
        h = hazards.filter(pl.col("hazard") == hazard)
        row = {
            "hazard": hazard,
            "records": h.select(keys).unique().height,
            "linked_to_their_member": carried.filter(pl.col("hazard") == hazard).select(keys).unique().height,
            "linked_to_anyone": linked.filter(pl.col("hazard") == hazard).select(keys).unique().height,
        }
        if conflicts is not None:
            held = h.join(conflicts.filter(pl.col("quarter").is_in(quarters)), on=keys, how="inner").filter(in_view)
            row["identity_conflicts"] = held.select(keys).unique().height
        rows.append(row)
    return pl.DataFrame(rows)
