"""The Dagster definitions load, and their schedule and sensor do what they say."""

from __future__ import annotations

import datetime as dt
import os
import time

import dagster as dg

from pipelines.definitions import defs
from pipelines.ingest.sensors import quarter_readiness


def test_definitions_load():
    job = defs.resolve_job_def("quarterly_comparison")
    assert job.partitions_def is not None
    assert "2025Q3" in job.partitions_def.get_partition_keys()
    keys = {tuple(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for expected in [("staging", "medical"), ("linked", "matches"), ("rules", "ineligibility"), ("rules", "need"),
                     ("marts", "warnings"), ("marts", "household_cases"), ("marts", "quarterly_comparison"),
                     ("marts", "warnings_masked"), ("exports", "township_lists"), ("exports", "report")]:
        assert expected in keys


def test_every_staged_source_has_a_blocking_check():
    graph = defs.resolve_asset_graph()
    checks = {(tuple(c.asset_key.path), c.name) for c in graph.asset_check_keys}
    for key in graph.get_all_asset_keys():
        if key.path[0] == "staging":
            assert (tuple(key.path), "delivery_accepted") in checks
            spec = graph.get_check_spec(dg.AssetCheckKey(key, "delivery_accepted"))
            assert spec.blocking


def test_schedule_runs_the_quarter_just_ended():
    schedule = defs.resolve_schedule_def("quarterly_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2025, 10, 5, 6, 0), repository_def=defs.get_repository_def()
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2025Q3"


def test_inbox_readiness(small_province):
    ready, fingerprint, why = quarter_readiness(small_province / "2025Q1", now=time.time() + 3600)
    assert ready and fingerprint and not why
    # A quarter whose files are still arriving waits.
    ready, _, why = quarter_readiness(small_province / "2025Q1", now=time.time(), settle=10**9)
    assert not ready and "更新" in why


def test_inbox_sensor_requests_complete_quarters(small_province, monkeypatch):
    monkeypatch.setenv("DOUDI_INBOX", str(small_province))
    monkeypatch.setattr("pipelines.ingest.sensors.SETTLE_SECONDS", 0)
    sensor = defs.resolve_sensor_def("inbox_sensor")
    result = sensor.evaluate_tick(dg.build_sensor_context(definitions=defs))
    assert sorted(r.partition_key for r in result.run_requests) == ["2025Q1", "2025Q2"]
    assert os.environ["DOUDI_INBOX"] == str(small_province)
