import datetime as dt

import pytest

from pipelines.rules.catalog import all_rules
from pipelines.policy.params import ParameterError, Parameters, default_parameters


def test_every_value_carries_a_reference():
    params = default_parameters()
    for parameter in params.parameters.values():
        for value in parameter.values:
            assert value.reference.strip(), parameter.name


def test_every_rule_parameter_is_defined_and_in_force_in_2025():
    in_force = default_parameters().at(dt.date(2025, 9, 30))
    for rule in all_rules():
        for name in rule.parameters:
            assert in_force.reference(name)


def test_a_value_without_a_reference_is_refused(tmp_path):
    (tmp_path / "x.yaml").write_text(
        "limit:\n  description: a limit\n  values:\n    2024-01-01:\n      value: 3\n", encoding="utf-8"
    )
    with pytest.raises(ParameterError, match="no reference"):
        Parameters.load(tmp_path)


def test_the_value_in_force_on_the_day_applies(tmp_path):
    (tmp_path / "x.yaml").write_text(
        "limit:\n  description: a limit\n  values:\n"
        "    2024-01-01:\n      value: 3\n      reference: 文件甲\n"
        "    2025-07-01:\n      value: 4\n      reference: 文件乙\n",
        encoding="utf-8",
    )
    params = Parameters.load(tmp_path)
    assert params.at(dt.date(2025, 6, 30))["limit"] == 3
    assert params.at(dt.date(2025, 7, 1))["limit"] == 4
    assert params.at(dt.date(2025, 7, 1)).reference("limit") == "文件乙"
    with pytest.raises(ParameterError, match="no value in force"):
        params.at(dt.date(2023, 1, 1))["limit"]
