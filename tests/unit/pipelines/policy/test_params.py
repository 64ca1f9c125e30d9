import datetime as dt

import pytest
import yaml

from pipelines.policy.params import PARAMETER_DIR, ParameterError, Parameters, default_parameters
from pipelines.policy.window import LOOKBACK_PARAMETER
from pipelines.rules.catalog import all_rules
from pipelines.rules.engine import ENGINE_PARAMETERS

# Who reads a parameter besides the rules that list it: the engine, for the shared inputs
# (int_standards' defaults), and the history window the linker and the rules share.
NAMED_CONSUMERS = {"engine": set(ENGINE_PARAMETERS), "history window": {LOOKBACK_PARAMETER}}


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


def test_every_parameter_knows_its_file():
    for parameter in default_parameters().parameters.values():
        defined = yaml.safe_load((PARAMETER_DIR / parameter.file).read_text(encoding="utf-8"))
        assert parameter.name in defined, (parameter.name, parameter.file)


def test_a_parameter_is_loaded_with_the_file_it_is_defined_in(tmp_path):
    for file, name in (("a.yaml", "first"), ("b.yaml", "second")):
        (tmp_path / file).write_text(
            f"{name}:\n  description: d\n  values:\n    2024-01-01:\n      value: 1\n      reference: 文件甲\n", encoding="utf-8"
        )
    parameters = Parameters.load(tmp_path).parameters
    assert (parameters["first"].file, parameters["second"].file) == ("a.yaml", "b.yaml")


def test_every_parameter_is_read_by_a_rule_or_a_named_consumer():
    read = {name for rule in all_rules() for name in rule.parameters}.union(*NAMED_CONSUMERS.values())
    defined = set(default_parameters().parameters)
    assert defined - read == set(), "defined but read by nothing"
    assert read - defined == set(), "read but defined nowhere"
