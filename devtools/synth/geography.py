"""Counties, townships and villages of the synthetic province.

County codes are real GB/T 2260 codes of Shanxi (the seeds' cities: Jincheng, Yuncheng,
Yangquan); township and village names are made up from common name parts.
"""

from __future__ import annotations

import numpy as np
import polars as pl

# code, county, city, share of households that are urban
COUNTIES = [
    ("140502", "城区", "晋城市", 0.85),
    ("140525", "泽州县", "晋城市", 0.25),
    ("140581", "高平市", "晋城市", 0.35),
    ("140802", "盐湖区", "运城市", 0.60),
    ("140821", "临猗县", "运城市", 0.20),
    ("140302", "城区", "阳泉市", 0.90),
    ("140322", "盂县", "阳泉市", 0.25),
]
# A small country of three provinces (Shanxi 14, Henan 41, Hebei 13), for the regional and
# national steps (`doudi synth --country`, tests of the Spark backend and the national step).
COUNTRY_COUNTIES = [
    ("140502", "城区", "晋城市", 0.85),
    ("140821", "临猗县", "运城市", 0.20),
    ("410802", "解放区", "焦作市", 0.80),
    ("410882", "沁阳市", "焦作市", 0.40),
    ("130102", "长安区", "石家庄市", 0.90),
]
# People registered outside the province still turn up in its extracts.
OUTSIDE_REGIONS = ["410802", "410882", "130102", "370102", "610113", "150102", "140105", "140211"]

_TOWN_STEMS = list("东西南北金银石河山川柳杨桃李安平兴和高大小新古龙凤")
_TOWN_STEMS2 = ["关", "街", "城", "庄", "村", "岭", "沟", "坪", "堡", "口", "里", "店", "头"]
_VILLAGE_STEMS = list("东西南北上下前后中大小王李张刘赵陈杨马高郭")
_VILLAGE_STEMS2 = ["沟", "河", "庄", "坡", "峪", "岭", "湾", "坪", "头", "营", "寨", "窑"]


def build_geography(rng: np.random.Generator, counties: list[tuple] | None = None) -> pl.DataFrame:
    """One row per village: county_code, county_name, township, village, urban."""
    rows = []
    for code, county, city, urban_share in counties or COUNTIES:
        n_towns = int(rng.integers(4, 7))
        towns: set[str] = set()
        while len(towns) < n_towns:
            stem = rng.choice(_TOWN_STEMS) + rng.choice(_TOWN_STEMS2)
            urban_town = len(towns) < max(1, round(n_towns * urban_share))
            towns.add(stem + ("街道" if urban_town else rng.choice(["镇", "乡"])))
        for town in sorted(towns, key=lambda t: (not t.endswith("街道"), t)):
            urban_town = town.endswith("街道")
            villages: set[str] = set()
            n_villages = int(rng.integers(4, 9))
            while len(villages) < n_villages:
                stem = rng.choice(_VILLAGE_STEMS) + rng.choice(_VILLAGE_STEMS2)
                villages.add(stem + ("社区" if urban_town else "村"))
            for village in sorted(villages):
                rows.append((code, county, city, town, village, urban_town))
    return pl.DataFrame(
        rows, schema=["county_code", "county_name", "city", "township", "village", "urban"], orient="row"
    )
