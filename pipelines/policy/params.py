"""Dated, cited rule parameters (in the style of OpenFisca parameters).

Every number a rule uses lives in `parameters/*.yaml`, keyed by the date the value takes
effect, each value with the document and clause it comes from. The loader refuses a value
without a reference, so a number cannot enter the rules without saying where it is from.
A quarter uses the values in force on its last day. Each parameter knows the file it is
defined in (`Parameter.file`): a rule lists the parameters it binds (`Rule.parameters`)
and its docstring names their files, so from a rule one finds the file to change.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PARAMETER_DIR = Path(__file__).with_name("parameters")


class ParameterError(ValueError):
    """A parameter file is malformed, a value lacks its reference, or nothing is in force."""


@dataclass(frozen=True)
class ParameterValue:
    name: str
    start: dt.date
    value: Any
    reference: str
    quote: str | None
    unit: str | None
    description: str


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    unit: str | None
    values: tuple[ParameterValue, ...]  # sorted by start
    file: str = ""  # the file it is defined in (`deadlines.yaml`), as a rule's docstring names it

    def at(self, day: dt.date) -> ParameterValue:
        current = None
        for value in self.values:
            if value.start <= day:
                current = value
        if current is None:
            raise ParameterError(f"parameter {self.name} has no value in force on {day} (earliest {self.values[0].start})")
        return current


class ParameterSet:
    """The values in force on one day, with their references."""

    def __init__(self, day: dt.date, values: dict[str, ParameterValue]):
        self.day = day
        self._values = values

    def __getitem__(self, name: str) -> Any:
        return self._values[name].value

    def reference(self, name: str) -> str:
        return self._values[name].reference

    def entry(self, name: str) -> ParameterValue:
        return self._values[name]

    def cited(self, names: list[str]) -> dict[str, dict]:
        """{name: {value, since, reference}} for the evidence of a warning."""
        return {
            n: {"value": self._values[n].value, "since": self._values[n].start.isoformat(), "reference": self._values[n].reference}
            for n in names
        }


class Parameters:
    def __init__(self, parameters: dict[str, Parameter]):
        self.parameters = parameters

    @classmethod
    def load(cls, directory: Path = PARAMETER_DIR) -> "Parameters":
        parameters: dict[str, Parameter] = {}
        for path in sorted(Path(directory).glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for name, spec in data.items():
                where = f"{path.name}: {name}"
                if name in parameters:
                    raise ParameterError(f"{where}: defined twice")
                if not isinstance(spec, dict) or "values" not in spec or not spec["values"]:
                    raise ParameterError(f"{where}: needs a description and dated values")
                if not spec.get("description"):
                    raise ParameterError(f"{where}: has no description")
                values = []
                for start, entry in spec["values"].items():
                    if not isinstance(start, dt.date):
                        raise ParameterError(f"{where}: {start!r} is not a date (YYYY-MM-DD)")
                    if not isinstance(entry, dict) or "value" not in entry:
                        raise ParameterError(f"{where} at {start}: needs `value:`")
                    reference = str(entry.get("reference") or "").strip()
                    if not reference:
                        raise ParameterError(f"{where} at {start}: value {entry['value']!r} has no reference to a document and clause")
                    values.append(
                        ParameterValue(name, start, entry["value"], reference, entry.get("quote"), spec.get("unit"), spec["description"])
                    )
                values.sort(key=lambda v: v.start)
                parameters[name] = Parameter(name, spec["description"], spec.get("unit"), tuple(values), path.name)
        return cls(parameters)

    def at(self, day: dt.date) -> ParameterSet:
        in_force = {}
        for name, parameter in self.parameters.items():
            try:
                in_force[name] = parameter.at(day)
            except ParameterError:
                continue  # reported when a rule asks for it
        return _CheckedSet(day, in_force, self.parameters)


class _CheckedSet(ParameterSet):
    def __init__(self, day, values, known):
        super().__init__(day, values)
        self._known = known

    def entry(self, name: str) -> ParameterValue:
        if name not in self._values:
            if name in self._known:
                raise ParameterError(f"parameter {name} has no value in force on {self.day}")
            raise ParameterError(f"unknown parameter {name}")
        return self._values[name]

    def __getitem__(self, name: str) -> Any:
        return self.entry(name).value

    def reference(self, name: str) -> str:
        return self.entry(name).reference


@functools.cache
def default_parameters() -> Parameters:
    return Parameters.load()
