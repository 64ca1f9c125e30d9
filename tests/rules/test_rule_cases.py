"""Every rule case in tests/rules/cases/*.yaml, through the real rules.

A case lists what must be raised (`expect`) for the rules it checks (`check`, by default
the file's rule): exactly those warnings, with the severity, due date and evidence given.
A case runs against staging rows and links built from it (tests/rules/runner.py), or, marked
`end_to_end: true`, through the real ingest and linker from the files a department sends.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from pipelines.rules.catalog import rule
from tests.rules.runner import NeedsEndToEnd, run_case

CASE_DIR = Path(__file__).with_name("cases")


def _cases():
    for path in sorted(CASE_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            case.setdefault("check", [data["rule"]])
            way = "end to end" if case.get("end_to_end") else "fast"
            yield pytest.param(case, id=f"{data['rule']}: {case['name']} ({way})")


def _case(code: str, index: int) -> dict:
    return yaml.safe_load((CASE_DIR / f"{code}.yaml").read_text(encoding="utf-8"))["cases"][index]


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
    kinds = tuple(sorted({rule(code).kind for code in case["check"]}))  # a family reads no other's findings
    findings = [f for f in run_case(case, tmp_path, kinds=kinds) if f["rule"] in case["check"]]
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


@pytest.mark.parametrize(("code", "index"), [("D01", 0), ("N01", 0)])
def test_the_fast_way_gives_what_the_ingest_and_the_linker_give(code, index, tmp_path):
    case = _case(code, index)
    assert not case.get("end_to_end")
    fast = run_case(case, tmp_path / "fast", end_to_end=False)
    assert fast and fast == run_case(case, tmp_path / "e2e", end_to_end=True)


@pytest.mark.parametrize(("code", "index"), [("D01", 10), ("D01", 8), ("D03", 1), ("Q02", 3)])
def test_a_case_that_rests_on_the_linker_is_refused_the_fast_way(code, index, tmp_path):
    case = _case(code, index)  # a name one character off; an outsider's record with a member's name; the roster
    assert case.get("end_to_end")
    with pytest.raises(NeedsEndToEnd):
        run_case(case, tmp_path, end_to_end=False)
