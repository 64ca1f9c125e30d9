"""Scoring candidate pairs with the committed Splink model on Spark (`link_backend: spark`).

For the steps that outgrow one machine: the roster deduplication over the union of many
regions' rosters (one person enrolled in two provinces, rule D03), and records of one
region against the rosters of all. The model is the same committed JSON; only the SQL of
its levels and of the blocking rules changes dialect (see `spark_settings`). Results equal
the DuckDB path's (tests/integration/test_spark_backend.py).

The session: an active one is used if there is one (a cluster's, e.g. under
spark-submit or Databricks); else one is started from the environment:
  DOUDI_SPARK_MASTER       the master URL (default local[*], in-process)
  DOUDI_SPARK_DRIVER_MEMORY  e.g. 4g (default 2g)
  DOUDI_SPARK_PARTITIONS   shuffle partitions (default 8: right for local mode; raise on a cluster)
Splink's similarity functions (damerau_levenshtein, jaro_winkler) come from the jar Splink
ships; it is added to a session started here, and must be on a cluster's classpath.

A session started here keeps its scratch (checkpoints, shuffle files: personal data) in a
private folder `doudi-spark-<pid>-*` (mode 0700) of the system's temporary folder, and
removes it when it stops (`stop_spark`) or the process exits; a later run sweeps the
folder of a process that died (`warehouse/workdir.py`). Not in a run's work folder: the
session outlives the run that started it (a long-lived process, the tests), and later runs
of other warehouses use it too.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import uuid

import polars as pl

from pipelines.link import model
from warehouse.workdir import SPARK_PREFIX

LOG = logging.getLogger(__name__)


class SparkUnavailable(RuntimeError):
    """The Spark backend was asked for but pyspark or Java is missing."""


_SCRATCH: list[str] = []  # the scratch folders of sessions started by this process


def _remove_scratch() -> None:
    while _SCRATCH:
        shutil.rmtree(_SCRATCH.pop(), ignore_errors=True)


atexit.register(_remove_scratch)


_SESSION: list = []  # the session this process uses, once there is one


def spark_session():
    """The session of this process: the active one (a cluster's), or one started here on
    first use."""
    if not _SESSION:
        _SESSION.append(_start_session())
    return _SESSION[0]


def _start_session():
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("link_backend 'spark' needs pyspark (pip install pyspark) and Java 17+") from None
    from splink.backends.spark import similarity_jar_location

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    scratch = tempfile.mkdtemp(prefix=f"{SPARK_PREFIX}{os.getpid()}-")  # 0700
    _SCRATCH.append(scratch)
    builder = (
        SparkSession.builder.master(os.environ.get("DOUDI_SPARK_MASTER", "local[*]"))
        .appName("doudi-linkage")
        .config("spark.jars", similarity_jar_location())
        .config("spark.driver.memory", os.environ.get("DOUDI_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.shuffle.partitions", os.environ.get("DOUDI_SPARK_PARTITIONS", "8"))
        .config("spark.default.parallelism", os.environ.get("DOUDI_SPARK_PARTITIONS", "8"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", os.path.join(scratch, "warehouse"))
        .config("spark.local.dir", os.path.join(scratch, "local"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no Java, or a master that cannot be reached
        raise SparkUnavailable(f"cannot start Spark ({type(exc).__name__}): is Java 17+ installed?") from None
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(os.path.join(scratch, "checkpoints"))
    return session


def stop_spark() -> None:
    """Stop the session started here (not a cluster's own), e.g. at the end of a run or test."""
    if _SESSION:
        session = _SESSION.pop()
        if os.environ.get("DOUDI_SPARK_MASTER", "local").startswith("local"):
            session.stop()
            _remove_scratch()


def spark_settings(prior: float, link_type: str) -> dict:
    """The committed model with each level's SQL and the blocking rules written for Spark:
    generated from the same objects as DuckDB's (`model.trained_settings`)."""
    return model.trained_settings(prior, link_type, dialect="spark")


def _input_table(spark, frame: pl.DataFrame, view: str) -> None:
    """A frame as a Spark view read from Parquet in the session's checkpoint folder.

    A DataFrame made straight from the driver's Arrow table is a local relation: every one
    of Splink's dozen blocking joins scans it again and Spark broadcasts it whole (its size
    estimate is tiny), which ran a 2 GB driver out of heap at 150,000 members. Written once
    and read back, Spark plans on files (sizes, partitions), as it does with Splink's own
    intermediate tables."""
    data = spark.createDataFrame(frame.to_arrow())
    checkpoint = spark.sparkContext.getCheckpointDir()
    if checkpoint:
        path = f"{checkpoint.rstrip('/')}/{view}-{uuid.uuid4().hex[:8]}"
        data.write.mode("overwrite").parquet(path)
        data = spark.read.parquet(path)
    else:  # a cluster's session without a checkpoint folder: keep it in the executors instead
        data = data.persist()
    data.createOrReplaceTempView(view)


def score_on_spark(left: pl.DataFrame, right: pl.DataFrame | None, prior: float, threshold: float, columns: list[str]):
    """Like `probabilistic.score` (records against members, or members against each other
    with `right=None`): the pairs at or above `threshold` and the pairs compared per rule."""
    from splink import Linker
    from splink.backends.spark import SparkAPI

    spark = spark_session()
    link_type = "link_only" if right is not None else "dedupe_only"
    db = SparkAPI(spark_session=spark, break_lineage_method="parquet")
    frames = [left] + ([right] if right is not None else [])
    inputs = []
    for name, frame in zip(("a_records", "b_members"), frames):
        _input_table(spark, frame.select(columns), f"__doudi_{name}")
        inputs.append(db.register(f"__doudi_{name}", dataset_display_name=name))
    linker = Linker(inputs if right is not None else inputs[0], spark_settings(prior, link_type), log_level=logging.WARNING)
    blocked = linker.inference.compute_blocked_pairs_for_predict()
    counts = spark.sql(f"SELECT match_key, count(*) AS n FROM {blocked.physical_name} GROUP BY match_key").collect()
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    rows = spark.sql(
        f"SELECT unique_id_l, unique_id_r, {'source_dataset_l' if right is not None else 'NULL'} AS source_dataset_l, "
        f"match_probability, match_weight FROM {predictions.physical_name}"
    ).toArrow()
    frame = pl.from_arrow(rows)
    return frame, {int(r["match_key"]): int(r["n"]) for r in counts}
