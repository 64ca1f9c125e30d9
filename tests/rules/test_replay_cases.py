"""Every replay case in tests/rules/replay_cases.yaml: a parameter change replayed on a rule
case's published quarter gains, loses and changes exactly the warnings the case names,
and leaves the published warehouse as it was, byte for byte."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
import yaml

from pipelines.marts.publish import ensure_person_key_secret
from pipelines.quarters import Quarter
from pipelines.whatif.replay import ReplayRequest, run_replay
from tests.rules.runner import run_case
from warehouse.connection import connect
from warehouse.writes import insert_row

CASES = yaml.safe_load(Path(__file__).with_name("replay_cases.yaml").read_text(encoding="utf-8"))["cases"]
RULE_CASES = Path(__file__).with_name("cases")


def rule_case(rule: str, name: str) -> dict:
    cases = yaml.safe_load((RULE_CASES / f"{rule}.yaml").read_text(encoding="utf-8"))["cases"]
    return next(c for c in cases if c["name"] == name)


def published_case_warehouse(case: dict, workdir: Path) -> Path:
    """The rule case's warehouse with its quarter marked published (a rule case runs the
    rules but does not publish: the replay refuses a quarter that was not published), with
    the person-key secret a publication makes (the masked household list is keyed by it)."""
    run_case(case, workdir)
    warehouse = workdir / "warehouse.duckdb"
    with connect(warehouse) as con:
        insert_row(con, "audit.publications", run_id="case", quarter=case["quarter"], warnings=0, households=0)
        ensure_person_key_secret(con)
    return warehouse


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _changes(households_csv: Path) -> set[tuple[str, str, str]]:
    with households_csv.open(encoding="utf-8-sig") as handle:
        return {(row["变化"], row["规则"], row["家庭编号"]) for row in csv.DictReader(handle)}


@pytest.mark.parametrize("replay", CASES, ids=[c["name"] for c in CASES])
def test_replay_case(replay, tmp_path):
    case = rule_case(**replay["case"])
    warehouse = published_case_warehouse(case, tmp_path / "case")
    before = checksum(warehouse)
    result = run_replay(ReplayRequest(warehouse, [Quarter.parse(case["quarter"])], replay["set"], tmp_path / "whatif"))
    expected = {("新增", w["rule"], w["household"]) for w in replay.get("gained", [])}
    expected |= {("减少", w["rule"], w["household"]) for w in replay.get("lost", [])}
    expected |= {("变化", w["rule"], w["household"]) for w in replay.get("changed", [])}
    assert _changes(result.files["households.csv"]) == expected
    assert (result.gained, result.lost) == (len(replay.get("gained", [])), len(replay.get("lost", [])))
    assert checksum(warehouse) == before, "the published warehouse changed"
