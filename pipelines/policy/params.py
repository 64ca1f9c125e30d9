"""Dated, cited rule parameters, by date and by region (in the style of OpenFisca and
PolicyEngine parameters).

Every number a rule uses lives in `parameters/*.yaml`, keyed by the date the value takes
effect, each value with the document and clause it comes from. The loader refuses a value
without a reference, so a number cannot enter the rules without saying where it is from.
A quarter uses the values in force on its last day.

A parameter's `values:` are the default, in force wherever no region has its own; its
`regions:` hold values keyed by a GB/T 2260 prefix (province `14`, city `1405`, county
`140502`) and date. For a household's county the most specific region in force applies,
else the default. `documents.yaml` says which region each policy document governs: where a
value cites a document of another region (a Shanxi county on 焦民〔2024〕8号, Jiaozuo's),
the citation shown for that county reads `参照 焦民〔2024〕8号 …` (`Documents.cite`).

A deployment adds its own documents and regional values in its own folder
(`DOUDI_PARAMETERS_DIR`, or `Parameters.load(base, own)`): a file there may define a
`documents:`-style `documents.yaml`, and for a parameter already defined only `regions:`
(a region and date defined twice is refused), so the built-in files are never edited.

Each parameter knows the file it is defined in (`Parameter.file`) and has a dotted name
`<file stem>.<name>` (`expenditure_poverty.financial_asset_limit_months`): a rule lists
the parameters it binds (`Rule.parameters`) and its docstring names their files.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

PARAMETER_DIR = Path(__file__).with_name("parameters")
DOCUMENTS_FILE = "documents.yaml"
# A deployment's own parameter folder (its documents and regional values), added to the
# built-in one by every run.
PARAMETERS_DIR_VARIABLE = "DOUDI_PARAMETERS_DIR"
REGION_CODE = re.compile(r"\d{2}(\d{2}(\d{2})?)?")
REFERRED = "参照 "  # how a citation of another region's document is shown


class ParameterError(ValueError):
    """A parameter file is malformed, a value lacks its reference, or nothing is in force."""


# ---- documents and their regions ------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    number: str  # 文号 as the references write it: 晋市民〔2023〕2号
    region: str  # the GB/T 2260 prefix it governs: 14 (a province), 1405 (a city)
    issuer: str
    title: str


@dataclass(frozen=True)
class Documents:
    by_number: dict[str, Document] = field(default_factory=dict)

    def governs(self, number: str, county: str | None) -> bool:
        document = self.by_number[number]
        return county is None or str(county).startswith(document.region)

    def named_in(self, text: str) -> list[Document]:
        """The known documents a reference names, in the order it names them."""
        found = [(text.find(n), d) for n, d in self.by_number.items() if n in text]
        return [d for _, d in sorted(found, key=lambda x: x[0])]

    def cite(self, text: str, county: str | None) -> str:
        """`text` as cited for a household of `county`: each document of another region
        marked `参照 ` (a county that is unknown is not marked: nothing can be said)."""
        if county is None or not text:
            return text
        for number in sorted(self.by_number, key=len, reverse=True):
            if number in text and not self.governs(number, county):
                text = re.sub(rf"(?<!{REFERRED}){re.escape(number)}", REFERRED + number, text)
        return text


def _load_documents(path: Path, into: dict[str, Document]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for number, spec in data.items():
        where = f"{path}: {number}"
        if not isinstance(spec, dict) or not REGION_CODE.fullmatch(str(spec.get("region", ""))):
            raise ParameterError(f"{where}: needs `region:`, a GB/T 2260 prefix of 2, 4 or 6 digits (quoted, e.g. \"1405\")")
        document = Document(str(number), str(spec["region"]), str(spec.get("issuer") or ""), str(spec.get("title") or ""))
        if into.get(document.number, document) != document:
            raise ParameterError(f"{where}: already declared with another region or title")
        into[document.number] = document


# ---- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterValue:
    name: str
    start: dt.date
    value: Any
    reference: str
    quote: str | None
    unit: str | None
    description: str
    region: str = ""  # the region the value is keyed by; "" for the default


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    unit: str | None
    values: tuple[ParameterValue, ...]  # the default, sorted by start
    file: str = ""  # the file it is defined in (`deadlines.yaml`), as a rule's docstring names it
    regions: dict[str, tuple[ParameterValue, ...]] = field(default_factory=dict)  # prefix -> values by start
    # False for a value that must be one for the whole warehouse (the history window the
    # linker reads): the loader refuses regional values for it.
    by_region: bool = True

    @property
    def dotted_name(self) -> str:
        return f"{Path(self.file).stem}.{self.name}" if self.file else self.name

    @staticmethod
    def _in_force(values: tuple[ParameterValue, ...], day: dt.date) -> ParameterValue | None:
        current = None
        for value in values:
            if value.start <= day:
                current = value
        return current

    def at(self, day: dt.date, county: str | None = None) -> ParameterValue:
        """The value in force on `day` for a household of `county`: the most specific
        region (longest prefix of the county code) that has one, else the default."""
        if county:
            for region in sorted((r for r in self.regions if str(county).startswith(r)), key=len, reverse=True):
                found = self._in_force(self.regions[region], day)
                if found is not None:
                    return found
        current = self._in_force(self.values, day)
        if current is None:
            raise ParameterError(f"parameter {self.name} has no value in force on {day} (earliest {self.values[0].start})")
        return current

    def regional_overrides(self) -> list[ParameterValue]:
        return [v for region in sorted(self.regions) for v in self.regions[region]]


class ParameterSet:
    """The values in force on one day (for one county, or the defaults), with references."""

    def __init__(self, day: dt.date, values: dict[str, ParameterValue], county: str | None = None, documents: Documents | None = None):
        self.day = day
        self.county = county
        self.documents = documents or Documents()
        self._values = values

    def __getitem__(self, name: str) -> Any:
        return self.entry(name).value

    def reference(self, name: str) -> str:
        """The value's reference as cited for this set's county (`参照 …` for a document
        of another region)."""
        return self.documents.cite(self.entry(name).reference, self.county)

    def entry(self, name: str) -> ParameterValue:
        return self._values[name]

    def cited(self, names: list[str]) -> dict[str, dict]:
        """{name: {value, since, reference[, region]}} for the evidence of a warning."""
        out = {}
        for n in names:
            entry = self.entry(n)
            out[n] = {"value": entry.value, "since": entry.start.isoformat(), "reference": self.reference(n)}
            if entry.region:
                out[n]["region"] = entry.region
        return out


class Parameters:
    def __init__(self, parameters: dict[str, Parameter], documents: Documents | None = None):
        self.parameters = parameters
        self.documents = documents or Documents()

    @classmethod
    def load(cls, directory: Path = PARAMETER_DIR, *own: Path) -> "Parameters":
        """The parameters of `directory`, with each folder of `own` (a deployment's)
        adding its documents, new parameters and regional values."""
        parameters: dict[str, Parameter] = {}
        documents: dict[str, Document] = {}
        for folder in (directory, *own):
            folder = Path(folder)
            if not folder.is_dir():
                raise ParameterError(f"no parameter folder at {folder}")
            if (folder / DOCUMENTS_FILE).exists():
                _load_documents(folder / DOCUMENTS_FILE, documents)
            for path in sorted(folder.glob("*.yaml")):
                if path.name != DOCUMENTS_FILE:
                    _load_file(path, parameters, overlay=folder != Path(directory))
        return cls(parameters, Documents(documents))

    def at(self, day: dt.date, county: str | None = None) -> ParameterSet:
        in_force = {}
        for name, parameter in self.parameters.items():
            try:
                in_force[name] = parameter.at(day, county)
            except ParameterError:
                continue  # reported when a rule asks for it
        return _CheckedSet(day, in_force, self.parameters, county, self.documents)

    def by_dotted_name(self) -> dict[str, Parameter]:
        return {p.dotted_name: p for p in self.parameters.values()}

    def find(self, name: str) -> Parameter:
        """A parameter by its dotted name (`expenditure_poverty.financial_asset_limit_months`)
        or its bare name; an unknown name is refused with the nearest valid ones."""
        if name in self.parameters:
            return self.parameters[name]
        dotted = self.by_dotted_name()
        if name in dotted:
            return dotted[name]
        import difflib

        near = difflib.get_close_matches(name, list(dotted) + list(self.parameters), n=3, cutoff=0.5)
        hint = f"；最接近的参数名：{'、'.join(near)}" if near else ""
        raise ParameterError(f"未知参数 {name}{hint}（全部参数见 docs/rules.md）")

    def with_values(self, parameter: str, values: tuple[ParameterValue, ...], regions: dict | None = None) -> "Parameters":
        """A copy in which `parameter` has these default values (and regions, if given)."""
        changed = dict(self.parameters)
        old = changed[parameter]
        changed[parameter] = replace(old, values=values, regions=old.regions if regions is None else regions)
        return Parameters(changed, self.documents)


def _values_of(name: str, where: str, spec: dict, unit, description, region: str = "") -> tuple[ParameterValue, ...]:
    if not isinstance(spec, dict) or not spec:
        raise ParameterError(f"{where}: needs dated values (YYYY-MM-DD: {{value, reference}})")
    values = []
    for start, entry in spec.items():
        if not isinstance(start, dt.date):
            raise ParameterError(f"{where}: {start!r} is not a date (YYYY-MM-DD)")
        if not isinstance(entry, dict) or "value" not in entry:
            raise ParameterError(f"{where} at {start}: needs `value:`")
        reference = str(entry.get("reference") or "").strip()
        if not reference:
            raise ParameterError(f"{where} at {start}: value {entry['value']!r} has no reference to a document and clause")
        values.append(ParameterValue(name, start, entry["value"], reference, entry.get("quote"), unit, description, region))
    return tuple(sorted(values, key=lambda v: v.start))


def _regions_of(name: str, where: str, spec, unit, description) -> dict[str, tuple[ParameterValue, ...]]:
    if not isinstance(spec, dict):
        raise ParameterError(f"{where}: `regions:` maps a GB/T 2260 prefix (\"1405\") to dated values")
    regions = {}
    for region, dated in spec.items():
        region = str(region)
        if not REGION_CODE.fullmatch(region):
            raise ParameterError(f"{where}: region {region!r} is not a GB/T 2260 prefix of 2, 4 or 6 digits (quote it: \"1405\")")
        regions[region] = _values_of(name, f"{where} region {region}", dated, unit, description, region)
    return regions


def _load_file(path: Path, parameters: dict[str, Parameter], overlay: bool) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, spec in data.items():
        where = f"{path.name}: {name}"
        if not isinstance(spec, dict):
            raise ParameterError(f"{where}: needs a description and dated values")
        if name in parameters:
            if not overlay or set(spec) - {"regions"}:
                raise ParameterError(f"{where}: defined twice (a deployment's folder may only add `regions:` to it)")
            _add_regions(parameters, name, where, spec.get("regions"))
            continue
        if "values" not in spec or not spec["values"]:
            raise ParameterError(f"{where}: needs a description and dated values")
        if not spec.get("description"):
            raise ParameterError(f"{where}: has no description")
        unit, description = spec.get("unit"), spec["description"]
        regions = _regions_of(name, where, spec.get("regions") or {}, unit, description)
        by_region = bool(spec.get("by_region", True))
        if regions and not by_region:
            raise ParameterError(f"{where}: is one value for the whole warehouse (by_region: false), it cannot have `regions:`")
        parameters[name] = Parameter(
            name, description, unit, _values_of(name, where, spec["values"], unit, description), path.name, regions, by_region
        )


def _add_regions(parameters: dict[str, Parameter], name: str, where: str, spec) -> None:
    old = parameters[name]
    if not old.by_region:
        raise ParameterError(f"{where}: is one value for the whole warehouse (by_region: false), it cannot have `regions:`")
    added = _regions_of(name, where, spec or {}, old.unit, old.description)
    regions = dict(old.regions)
    for region, values in added.items():
        clash = {v.start for v in regions.get(region, ())} & {v.start for v in values}
        if clash:
            raise ParameterError(f"{where}: region {region} at {min(clash)} is defined twice")
        regions[region] = tuple(sorted((*regions.get(region, ()), *values), key=lambda v: v.start))
    parameters[name] = replace(old, regions=regions)


class _CheckedSet(ParameterSet):
    def __init__(self, day, values, known, county=None, documents=None):
        super().__init__(day, values, county, documents)
        self._known = known

    def entry(self, name: str) -> ParameterValue:
        if name not in self._values:
            if name in self._known:
                raise ParameterError(f"parameter {name} has no value in force on {self.day}")
            raise ParameterError(f"unknown parameter {name}")
        return self._values[name]


def deployment_folders() -> tuple[Path, ...]:
    """The deployment's own parameter folder, if `DOUDI_PARAMETERS_DIR` names one."""
    folder = os.environ.get(PARAMETERS_DIR_VARIABLE)
    return (Path(folder),) if folder else ()


@functools.cache
def _load_cached(folders: tuple[Path, ...]) -> Parameters:
    return Parameters.load(PARAMETER_DIR, *folders)


def default_parameters() -> Parameters:
    """The built-in parameters with the deployment's own folder (`DOUDI_PARAMETERS_DIR`)."""
    return _load_cached(deployment_folders())
