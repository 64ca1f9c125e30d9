"""The Dagster definitions load, and their schedule and sensor do what they say, for one
region (`all`) and for an inbox split by region; and what they define (assets, checks,
partitions, jobs, schedules, sensors) is what `snapshots/definitions.json` records, so a
change to the graph shows in review. After a change on purpose:

    DOUDI_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/integration/test_definitions.py
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines import partitions as doudi_partitions
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
    assert isinstance(job.partitions_def, dg.TimeWindowPartitionsDefinition)
    assert quarter_key("2025Q3") in job.partitions_def.get_partition_keys()
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
    per_region = {"key": "dagster/partition/region", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    assert limits["dagster/partition/region"] == per_region
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


SNAPSHOT = Path(__file__).with_name("snapshots") / "definitions.json"
UPDATE_SNAPSHOTS = "DOUDI_UPDATE_SNAPSHOTS"


def _key(key: dg.AssetKey) -> str:
    return key.to_user_string()


class _PartitionNames:
    """Each distinct partitions definition once, under a short name (`quarter×region`);
    assets and jobs name theirs."""

    def __init__(self):
        self.described: dict[str, dict] = {}

    def name(self, p: dg.PartitionsDefinition | None) -> str | None:
        if p is None:
            return None
        described = self.describe(p)
        base = "×".join(d.name for d in p.partitions_defs) if isinstance(p, dg.MultiPartitionsDefinition) else (
            p.name if isinstance(p, dg.DynamicPartitionsDefinition) else "quarter" if isinstance(p, dg.TimeWindowPartitionsDefinition)
            else type(p).__name__)
        name, n = base, 1
        while self.described.get(name, described) != described:
            n += 1
            name = f"{base}#{n}"
        self.described[name] = described
        return name

    def describe(self, p: dg.PartitionsDefinition) -> dict:
        if isinstance(p, dg.MultiPartitionsDefinition):
            return {"multi": {d.name: self.describe(d.partitions_def) for d in p.partitions_defs}}
        if isinstance(p, dg.DynamicPartitionsDefinition):
            return {"dynamic": p.name}  # its keys (the regions) live in the instance
        if isinstance(p, dg.TimeWindowPartitionsDefinition):
            # The first window is the deployment's (DOUDI_FIRST_QUARTER): recorded as that.
            first = "DOUDI_FIRST_QUARTER" if p.start.date() == doudi_partitions.FIRST_QUARTER.start else p.start.date().isoformat()
            return {"time_window": {"cron": p.cron_schedule, "timezone": p.timezone, "fmt": p.fmt, "start": first,
                                    "end": p.end.isoformat() if p.end else None, "end_offset": p.end_offset}}
        if isinstance(p, dg.StaticPartitionsDefinition):
            return {"static": p.get_partition_keys()}
        return {type(p).__name__: None}


def definitions_snapshot(definitions: dg.Definitions) -> dict:
    """What the code location defines, as plain JSON: every asset (group, partitions, the
    assets it reads, its checks), every job (partitions, assets, checks, tags), schedule,
    sensor, resource and logger."""
    graph = definitions.resolve_asset_graph()
    repository = definitions.get_repository_def()
    names = _PartitionNames()
    checks: dict[str, dict] = {}
    for check in sorted(graph.asset_check_keys, key=lambda c: (_key(c.asset_key), c.name)):
        checks.setdefault(_key(check.asset_key), {})[check.name] = {"blocking": graph.get_check_spec(check).blocking}
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=_key):
        node = graph.get(key)
        assets[_key(key)] = {
            "group": node.group_name,
            "partitions": names.name(node.partitions_def),
            "reads": sorted(_key(k) for k in node.parent_keys),
            "checks": checks.get(_key(key), {}),
            "kinds": sorted(node.kinds),
        }
    jobs = {}
    for job in sorted(repository.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "partitions": names.name(job.partitions_def),
            "assets": sorted(_key(k) for k in layer.executable_asset_keys),
            "checks": sorted(f"{_key(c.asset_key)}:{c.name}" for c in layer.asset_graph.asset_check_keys
                             if c.asset_key in layer.executable_asset_keys),
            "tags": dict(sorted(job.tags.items())),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name, "default_status": s.default_status.value}
        for s in sorted(repository.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        s.name: {"jobs": sorted(t.job_name for t in s.targets), "minimum_interval_seconds": s.minimum_interval_seconds,
                 "type": s.sensor_type.value, "default_status": s.default_status.value}
        for s in sorted(repository.sensor_defs, key=lambda s: s.name)
    }
    return {
        "assets": assets,
        "jobs": jobs,
        "partitions": dict(sorted(names.described.items())),
        "schedules": schedules,
        "sensors": sensors,
        "resources": sorted(definitions.resources or {}),
        "loggers": sorted(definitions.loggers or {}),
    }


def _dump(snapshot: dict) -> str:
    return json.dumps(snapshot, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def snapshot_mismatch(recorded: str, current: dict) -> str | None:
    """None when the recorded snapshot is the current one; else a diff and what to do."""
    if recorded == _dump(current):
        return None
    diff = "".join(difflib.unified_diff(recorded.splitlines(True), _dump(current).splitlines(True), "recorded", "current", n=2))
    return (f"The Dagster definitions differ from {SNAPSHOT.name} (a change to assets, checks, partitions, jobs, schedules "
            f"or sensors). If the change is meant, regenerate the snapshot and commit it:\n"
            f"    {UPDATE_SNAPSHOTS}=1 .venv/bin/python -m pytest tests/integration/test_definitions.py\n{diff}")


def test_definitions_match_the_snapshot():
    current = definitions_snapshot(defs)
    if os.environ.get(UPDATE_SNAPSHOTS) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(_dump(current), encoding="utf-8")
    assert SNAPSHOT.exists(), f"no {SNAPSHOT}: write it with {UPDATE_SNAPSHOTS}=1"
    problem = snapshot_mismatch(SNAPSHOT.read_text(encoding="utf-8"), current)
    assert problem is None, problem


def test_the_snapshot_sees_a_change():
    current = definitions_snapshot(defs)
    assert current["assets"]["staging/medical"]["checks"]["delivery_accepted"] == {"blocking": True}
    assert current["jobs"]["quarterly_comparison"]["partitions"] == "quarter×region"
    assert current["partitions"]["quarter×region"]["multi"]["region"] == {"dynamic": "region"}
    changed = json.loads(_dump(current))
    del changed["assets"]["staging/medical"]["checks"]["value_quality"]
    problem = snapshot_mismatch(_dump(changed), current)
    assert problem and UPDATE_SNAPSHOTS in problem
    assert any(line.startswith("+") and '"value_quality"' in line for line in problem.splitlines())


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
