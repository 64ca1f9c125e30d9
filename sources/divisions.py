"""County names for the 6-digit GB/T 2260 administrative division codes the roster carries
(区县代码), as the quarter's report shows them.

The table is `sources/reference/gbt2260_divisions.csv` (columns code, name, level; level is
province, city or county): the province-, prefecture- and county-level divisions only, no
townships. Provenance (also in `sources/reference/README.md`): derived with `rebuild` from
`cpca/resources/adcodes.csv` of the PyPI package cpca 0.5.5 (MIT licence, wheel of
2021-02-20, the file dated 2020-11-07; github.com/DQinYuan/chinese_province_city_area_mapper),
a list of the National Bureau of Statistics' 12-digit 统计用区划代码 with names. Its content
is older than its date: it matches the divisions of about the end of 2016 (it has 清江浦区,
created in October 2016, but not 梁平区 of December 2016, 临安区 of 2017, 滦州市 or 云州区
of 2018), so a county created or renamed since then shows as its code until the table is
refreshed.

Refreshing it from the Ministry of Civil Affairs' yearly 中华人民共和国县以上行政区划代码
(www.mca.gov.cn, 民政数据 → 行政区划代码): save the table as a two-column file of
code and name (CSV, UTF-8 or GBK, a header row or none; what Excel saves is fine), then

    .venv/bin/python -m sources.divisions 县以上行政区划代码.csv

rewrites the table; update the edition in `sources/reference/README.md` and commit both.

`county_name(code)` is what the report prints: the county's name, prefixed with its city
where the name alone is ambiguous (城区 is a district of 晋城市 and of 阳泉市: 140502 →
晋城市城区), with the province where the city is not a named division (北京市朝阳区); a code
the table does not know is shown as the code itself, never an error.
"""

from __future__ import annotations

import csv
import functools
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("reference") / "gbt2260_divisions.csv"
# Prefecture-level placeholders of the statistical codes (110100 市辖区, 500200 县, 419000
# 省直辖县级行政区划): not a place with a name of its own, left out of the table.
PLACEHOLDERS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
UNKNOWN = "区县不详"


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str


def level_of(code: str) -> str:
    """province (140000), city (140500) or county (140502), from the code's digits."""
    if code.endswith("0000"):
        return "province"
    return "city" if code.endswith("00") else "county"


@functools.cache
def divisions() -> dict[str, Division]:
    with TABLE.open(encoding="utf-8", newline="") as f:
        return {row["code"]: Division(row["code"], row["name"], row["level"]) for row in csv.DictReader(f)}


@functools.cache
def _ambiguous_names() -> frozenset[str]:
    counts = Counter(d.name for d in divisions().values() if d.level == "county")
    return frozenset(name for name, n in counts.items() if n > 1)


def _code(value) -> str:
    return str(value).strip() if value is not None else ""


def county_name(code) -> str:
    """晋城市城区 for 140502, 泽州县 for 140525, the code itself for a code the table lacks."""
    code = _code(code)
    if not code:
        return UNKNOWN
    known = divisions().get(code)
    if known is None:
        return code
    if known.level != "county" or known.name not in _ambiguous_names():
        return known.name
    parent = divisions().get(code[:4] + "00") or divisions().get(code[:2] + "0000")
    return parent.name + known.name if parent else known.name


def province_name(code) -> str | None:
    """山西省 for any code starting 14; None where the table has no such province."""
    found = divisions().get(_code(code)[:2] + "0000")
    return found.name if found else None


def region_name(prefix) -> str:
    """山西省 for 14, 晋城市 for 1405, 晋城市城区 for 140502 (a parameter's region, a GB/T 2260
    prefix); the prefix itself where the table lacks it."""
    prefix = _code(prefix)
    if len(prefix) == 6:
        return county_name(prefix)
    known = divisions().get(prefix.ljust(6, "0"))
    return known.name if known else prefix


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: neither UTF-8 nor GBK")


def rebuild(source: Path, target: Path = TABLE) -> int:
    """Write the table from a file whose first two columns are a division code (6 digits,
    or the 12-digit statistical code of a county or above) and its name; rows of townships
    and villages, headers and placeholders are skipped. Returns the rows written."""
    rows: dict[str, tuple[str, str]] = {}
    for record in csv.reader(_read_text(source).splitlines()):
        if len(record) < 2:
            continue
        code, name = record[0].strip(), re.sub(r"\s+", "", record[1])
        if re.fullmatch(r"\d{12}", code) and code.endswith("000000"):
            code = code[:6]
        if not re.fullmatch(r"\d{6}", code) or not name or name in PLACEHOLDERS:
            continue
        rows[code] = (name, level_of(code))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["code", "name", "level"])
        writer.writerows([code, name, level] for code, (name, level) in sorted(rows.items()))
    divisions.cache_clear()
    _ambiguous_names.cache_clear()
    return len(rows)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m sources.divisions CODE_NAME_FILE")
    print(f"{rebuild(Path(sys.argv[1]))} divisions written to {TABLE}")
