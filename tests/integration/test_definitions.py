"""The Dagster definitions load, and their schedule and sensor do what they say, for one
region (`all`) and for an inbox split by region."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import dagster as dg

import pytest

from pipelines.definitions import defs
from pipelines.ingest.sensors import quarter_readiness
from pipelines.partitions import quarter_from_key, quarter_key


def test_definitions_load():
    job = defs.resolve_job_def("quarterly_comparison")
    partitions = job.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert partitions.partition_dimension_names == ["quarter", "region"]
    assert quarter_key("2025Q3") in partitions.get_partitions_def_for_dimension("quarter").get_partition_keys()
    region = partitions.get_partitions_def_for_dimension("region")
    assert isinstance(region, dg.DynamicPartitionsDefinition) and region.name == "region"
    keys = {tuple(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for expected in [("staging", "medical"), ("linked", "matches"), ("rules", "ineligibility"), ("rules", "need"),
                     ("marts", "warnings"), ("marts", "household_cases"), ("marts", "quarterly_comparison"),
                     ("marts", "warnings_masked"), ("exports", "township_lists"), ("exports", "report")]:
        assert expected in keys


def test_the_national_job_is_partitioned_by_quarter_only():
    job = defs.resolve_job_def("national_comparison")
    assert isinstance(job.partitions_def, dg.TimeWindowPartitionsDefinition) and quarter_key("2025Q3") in job.partitions_def.get_partition_keys()
    assert job.tags.get("doudi/national") == "write"
    regional = defs.resolve_job_def("quarterly_comparison")
    assert dg.AssetKey(["national", "cross_region"]) not in regional.asset_layer.executable_asset_keys
    assert dg.AssetKey(["marts", "warnings"]) in regional.asset_layer.executable_asset_keys


def test_one_run_per_region_at_a_time():
    """The instance's queue: a limit of one per value of the tag Dagster puts on every run of
    a region's partition, several regions at once, one national run."""
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text(encoding="utf-8"))["concurrency"]["runs"]
    limits = {limit["key"]: limit for limit in config["tag_concurrency_limits"]}
    assert limits["dagster/partition/region"] == {"key": "dagster/partition/region", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    assert limits["doudi/national"]["limit"] == 1
    assert config["max_concurrent_runs"] > 1


def test_every_staged_source_has_a_blocking_check():
    graph = defs.resolve_asset_graph()
    checks = {(tuple(c.asset_key.path), c.name) for c in graph.asset_check_keys}
    for key in graph.get_all_asset_keys():
        if key.path[0] == "staging":
            assert (tuple(key.path), "delivery_accepted") in checks
            spec = graph.get_check_spec(dg.AssetCheckKey(key, "delivery_accepted"))
            assert spec.blocking


@pytest.fixture()
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _dimensions(request: dg.RunRequest) -> dict[str, str]:
    """The quarter (as its label) and region a run request is for."""
    keys = dict(request.partition_key.keys_by_dimension) if isinstance(request.partition_key, dg.MultiPartitionKey) else {
        "quarter": request.tags["dagster/partition/quarter"], "region": request.tags["dagster/partition/region"]}
    return keys | {"quarter": str(quarter_from_key(keys["quarter"]))}


def _added(result) -> list[str]:
    return sorted(k for request in result.dynamic_partitions_requests for k in request.partition_keys)


def test_schedule_runs_the_quarter_just_ended(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("DOUDI_INBOX", str(tmp_path / "inbox"))
    schedule = defs.resolve_schedule_def("quarterly_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2025, 10, 5, 6, 0), repository_def=defs.get_repository_def(), instance=instance
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert [_dimensions(r) for r in requests] == [{"quarter": "2025Q3", "region": "all"}]
    assert instance.get_dynamic_partitions("region") == ["all"]


def test_schedule_runs_every_region_of_a_split_inbox(instance, monkeypatch, tmp_path):
    for region in ("14", "41", "山西"):
        (tmp_path / "inbox" / region).mkdir(parents=True)
    (tmp_path / "inbox" / "a b").mkdir()  # not a region key: skipped
    monkeypatch.setenv("DOUDI_INBOX", str(tmp_path / "inbox" / "{region}"))
    monkeypatch.delenv("DOUDI_WAREHOUSE", raising=False)
    schedule = defs.resolve_schedule_def("quarterly_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 1, 5, 6, 0), repository_def=defs.get_repository_def(), instance=instance
    )
    result = schedule.evaluate_tick(context)
    assert sorted(r["region"] for r in map(_dimensions, result.run_requests)) == ["14", "41", "山西"]
    assert {r["quarter"] for r in map(_dimensions, result.run_requests)} == {"2025Q4"}
    assert len({r.run_key for r in result.run_requests}) == 3
    assert sorted(instance.get_dynamic_partitions("region")) == ["14", "41", "山西"]


def test_inbox_readiness(small_province):
    ready, fingerprint, why = quarter_readiness(small_province / "2025Q1", now=time.time() + 3600)
    assert ready and fingerprint and not why
    # A quarter whose files are still arriving waits.
    ready, _, why = quarter_readiness(small_province / "2025Q1", now=time.time(), settle=10**9)
    assert not ready and "更新" in why


def test_inbox_sensor_requests_complete_quarters(small_province, monkeypatch, instance):
    monkeypatch.setenv("DOUDI_INBOX", str(small_province))
    monkeypatch.setattr("pipelines.ingest.sensors.SETTLE_SECONDS", 0)
    sensor = defs.resolve_sensor_def("inbox_sensor")
    result = sensor.evaluate_tick(dg.build_sensor_context(definitions=defs, instance=instance, instance_ref=instance.get_ref()))
    assert sorted((d["quarter"], d["region"]) for d in map(_dimensions, result.run_requests)) == [("2025Q1", "all"), ("2025Q2", "all")]
    assert os.environ["DOUDI_INBOX"] == str(small_province)
    assert _added(result) == ["all"]  # the daemon adds them to the instance before launching


def test_inbox_sensor_requests_each_region(small_province, monkeypatch, instance, tmp_path):
    """Two regions' inboxes under one root: a run per region and complete quarter; a
    region whose quarter lacks a source waits, saying which."""
    root = tmp_path / "inbox"
    shutil.copytree(small_province / "2025Q1", root / "14" / "2025Q1")
    shutil.copytree(small_province / "2025Q1", root / "41" / "2025Q1")
    shutil.rmtree(root / "41" / "2025Q1" / "death")
    monkeypatch.setenv("DOUDI_INBOX", str(root / "{region}"))
    monkeypatch.setenv("DOUDI_WAREHOUSE", str(tmp_path / "{region}.duckdb"))
    monkeypatch.setattr("pipelines.ingest.sensors.SETTLE_SECONDS", 0)
    sensor = defs.resolve_sensor_def("inbox_sensor")
    result = sensor.evaluate_tick(dg.build_sensor_context(definitions=defs, instance=instance, instance_ref=instance.get_ref()))
    assert [_dimensions(r) for r in result.run_requests] == [{"quarter": "2025Q1", "region": "14"}]
    assert _added(result) == ["14"]
    shutil.copytree(small_province / "2025Q1" / "death", root / "41" / "2025Q1" / "death")
    result = sensor.evaluate_tick(dg.build_sensor_context(definitions=defs, instance=instance, instance_ref=instance.get_ref()))
    assert sorted(d["region"] for d in map(_dimensions, result.run_requests)) == ["14", "41"]
    assert _added(result) == ["14", "41"]
