"""Every rule case in tests/rules/cases/*.yaml, through the real ingest, linker and rules.

A case lists what must be raised (`expect`) for the rules it checks (`check`, by default
the file's rule): exactly those warnings, with the severity, due date and evidence given.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from tests.rules.runner import run_case

CASE_DIR = Path(__file__).with_name("cases")


def _cases():
    for path in sorted(CASE_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            case.setdefault("check", [data["rule"]])
            yield pytest.param(case, id=f"{data['rule']}: {case['name']}")


def _same(expected, actual) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(_same(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(_same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and actual is not None:
        return abs(float(expected) - float(actual)) < 0.005
    if isinstance(expected, dt.date):
        return str(expected) == str(actual)[:10]
    return expected == actual


@pytest.mark.parametrize("case", list(_cases()))
def test_rule_case(case, tmp_path):
    findings = [f for f in run_case(case, tmp_path) if f["rule"] in case["check"]]
    members = {m["member_id"]: m["household_id"] for m in case.get("members", [])}
    expected = case.get("expect") or []
    unmatched = list(findings)
    for want in expected:
        household = want.get("household") or members[want["member"]]
        match = next(
            (f for f in unmatched
             if f["rule"] == want["rule"] and f["household"] == household and f["member"] == want.get("member")
             and f["severity"] == want["severity"]
             and ("due_date" not in want or str(f["due_date"]) == str(want["due_date"]))
             and _same(want.get("evidence", {}), f["evidence"])
             and ("action" not in want or want["action"] in (f["action"] or ""))),
            None,
        )
        assert match is not None, f"expected {want}, found {findings}"
        unmatched.remove(match)
    assert not unmatched, f"not expected: {unmatched}"
