"""Scoring candidate pairs with the committed Splink model (DuckDB backend; Spark in `spark`).

Splink works in a DuckDB of its own (in memory, spilling to disk), so its intermediate
tables never land in the warehouse. Inputs arrive as polars frames built by `linker`.
Its spill goes to a `doudi-splink-*` folder in the run's work folder beside the warehouse
(`warehouse/workdir.py`), swept by the next run if this one dies; when the warehouse is
encrypted (a key is set) the spill is encrypted too (`temp_file_encryption`), like the
warehouse's own.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.link import blocking, model

# What Splink is given of each identity (link_identities.sql and names.py): what the
# comparisons read, then the ID keys of the blocking rules.
SPLINK_COLUMNS = [
    "unique_id", "household_id", "name_s", "name_py", "surname", "id18", "id_valid", "partial15", "partial6",
    "rounded15", "rounded6", "birth_date", "birth_from_id", "sex", *blocking.ID_KEY_COLUMNS,
]
SPLINK_SCHEMA = {
    c: (pl.Boolean if c in ("id_valid", "birth_from_id") else pl.Date if c == "birth_date" else pl.Utf8) for c in SPLINK_COLUMNS
}


@dataclass
class ScoredPairs:
    pairs: pl.DataFrame  # left_id, right_id, match_probability, match_weight
    pairs_compared: int = 0
    pairs_by_rule: dict[str, int] = field(default_factory=dict)


def _connection(memory_limit: str | None, threads: int | None, temp_dir: str) -> duckdb.DuckDBPyConnection:
    from warehouse.connection import _httpfs_extension_path, _sql_literal, default_memory_limit, warehouse_key

    con = duckdb.connect(":memory:")
    if warehouse_key():
        # The scratch holds the same names and ID numbers as the warehouse: whatever it
        # spills is encrypted as the warehouse's spill is (writing it needs httpfs's OpenSSL).
        con.execute(f"LOAD {_sql_literal(_httpfs_extension_path())}")
        con.execute("SET temp_file_encryption = true")
    con.execute("SET temp_directory = ?", [temp_dir])

    con.execute("SET memory_limit = ?", [memory_limit or default_memory_limit()])
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _score_on_duckdb(left, right, prior, threshold, memory_limit, threads, model_path, names, work_dir=None) -> tuple[pl.DataFrame, dict]:
    from splink import Linker
    from splink.internals.duckdb.database_api import DuckDBAPI

    from warehouse.workdir import temp_dir

    link_type = "link_only" if right is not None else "dedupe_only"
    with temp_dir(work_dir, "doudi-splink-") as tmp:
        con = _connection(memory_limit, threads, tmp)
        try:
            db = DuckDBAPI(con)
            con.register("__left", left.select(SPLINK_COLUMNS).to_arrow())
            con.execute("CREATE TABLE a_records AS SELECT * FROM __left")
            inputs = [db.register("a_records", dataset_display_name="a_records")]
            if right is not None:
                con.register("__right", right.select(SPLINK_COLUMNS).to_arrow())
                con.execute("CREATE TABLE b_members AS SELECT * FROM __right")
                inputs.append(db.register("b_members", dataset_display_name="b_members"))
            settings = model.trained_settings(prior, link_type, model_path)
            linker = Linker(inputs if right is not None else inputs[0], settings, log_level=logging.WARNING)
            blocked = linker.inference.compute_blocked_pairs_for_predict()
            counts = con.execute(f"SELECT match_key, count(*) FROM {blocked.physical_name} GROUP BY ALL").fetchall()
            by_rule = {names[int(k)]: int(n) for k, n in counts}
            predictions = linker.inference.predict(threshold_match_probability=threshold)
            frame = con.execute(
                f"SELECT unique_id_l, unique_id_r, source_dataset_l, match_probability, match_weight FROM {predictions.physical_name}"
                if right is not None
                else "SELECT unique_id_l, unique_id_r, NULL AS source_dataset_l, match_probability, match_weight "
                f"FROM {predictions.physical_name}"
            ).pl()
        finally:
            con.close()
    return frame, by_rule


def score(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    prior: float,
    threshold: float,
    memory_limit: str | None = None,
    threads: int | None = None,
    model_path: Path = model.MODEL_PATH,
    backend: str = "duckdb",
    work_dir: Path | None = None,
) -> ScoredPairs:
    """Pairs scoring at least `threshold`: records (left) against members (right), or,
    with `right=None`, members against each other (one person enrolled twice), on the
    chosen backend (duckdb here, in-process; spark for what outgrows one machine).
    `work_dir`: the run's work folder (`warehouse.workdir`), where the scratch spills."""
    empty = pl.DataFrame(schema={"left_id": pl.Utf8, "right_id": pl.Utf8, "match_probability": pl.Float64, "match_weight": pl.Float64})
    if left.height == 0 or (right is not None and right.height == 0):
        return ScoredPairs(empty)
    names = blocking.RULE_NAMES  # Splink's match_key: the rule's place in BLOCKING_RULES (the dedupe rules likewise)
    if backend == "spark":
        from pipelines.link.spark import score_on_spark

        frame, counts = score_on_spark(left, right, prior, threshold, SPLINK_COLUMNS)
        by_rule = {names[k]: n for k, n in counts.items()}
    elif backend == "duckdb":
        frame, by_rule = _score_on_duckdb(left, right, prior, threshold, memory_limit, threads, model_path, names, work_dir)
    else:
        raise ValueError(f"unknown link_backend {backend!r}: duckdb or spark")
    if right is not None:
        # Splink orders the two inputs itself; put the record on the left.
        swapped = pl.col("source_dataset_l") != "a_records"
        frame = frame.select(
            pl.when(swapped).then(pl.col("unique_id_r")).otherwise(pl.col("unique_id_l")).alias("left_id"),
            pl.when(swapped).then(pl.col("unique_id_l")).otherwise(pl.col("unique_id_r")).alias("right_id"),
            "match_probability",
            "match_weight",
        )
    else:
        frame = frame.select(
            pl.col("unique_id_l").alias("left_id"), pl.col("unique_id_r").alias("right_id"), "match_probability", "match_weight"
        )
    return ScoredPairs(frame.cast(empty.schema), sum(by_rule.values()), by_rule)


def score_pairs_directly(left: pl.DataFrame, right: pl.DataFrame, prior: float, model_path: Path = model.MODEL_PATH) -> pl.DataFrame:
    """Every left row against every right row, blocking aside (for inspecting the model:
    which level each comparison reached, and the weight)."""
    from splink import Linker
    from splink.internals.duckdb.database_api import DuckDBAPI

    with tempfile.TemporaryDirectory(prefix="doudi-splink-") as tmp:
        con = _connection(None, None, tmp)
        try:
            db = DuckDBAPI(con)
            extra = [c for c in left.columns if c.startswith("tf_")]  # hardcoded term frequencies, if given
            con.register("__left", left.select(SPLINK_COLUMNS + extra).cast(SPLINK_SCHEMA).to_arrow())
            con.register("__right", right.select(SPLINK_COLUMNS + extra).cast(SPLINK_SCHEMA).to_arrow())
            con.execute("CREATE TABLE a_records AS SELECT * FROM __left; CREATE TABLE b_members AS SELECT * FROM __right")
            inputs = [db.register(name, dataset_display_name=name) for name in ("a_records", "b_members")]
            settings = model.trained_settings(prior, "link_only", model_path)
            settings["retain_intermediate_calculation_columns"] = True
            linker = Linker(inputs, settings, log_level=logging.WARNING)
            scored = linker.inference.score_pairs(inputs[0], inputs[1])
            return con.execute(f"SELECT * FROM {scored.physical_name}").pl()
        finally:
            con.close()
