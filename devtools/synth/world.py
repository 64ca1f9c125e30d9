"""The true state of a synthetic province, quarter by quarter.

People (on the roster or not), households and their members, and what happens to them:
deaths, detentions, disability certificates, school enrolment, medical settlements, and
the local standards. Nothing here is messy: `extracts` renders this state as departments
would write it, and `truth` derives from it what the pipeline must find.

Quarters are indexed 0..Q-1 in arrays; each table says in which quarters a row holds.
Every step works on whole columns (numpy, polars); loops run over quarters only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from devtools.synth.geography import OUTSIDE_REGIONS, build_geography
from devtools.synth.identity import make_ids, make_names, to_legacy15
from pipelines.quarters import Quarter, add_months

CATEGORIES = ["低保", "支出型低保", "特困", "低保边缘", "刚性支出困难", "防返贫监测"]
CATEGORY_SHARES = [0.52, 0.06, 0.12, 0.15, 0.07, 0.08]
PAYING = {"低保", "支出型低保", "特困"}
MARGINAL = {"低保边缘", "刚性支出困难", "防返贫监测"}
DISABILITY_CATEGORIES = ["视力", "听力", "言语", "肢体", "智力", "精神", "多重"]
DISABILITY_SHARES = [0.12, 0.12, 0.03, 0.35, 0.12, 0.15, 0.11]
GRADES = ["一级", "二级", "三级", "四级"]
GRADE_SHARES = [0.2, 0.3, 0.25, 0.25]
DETENTION_TYPES = ["看守所羁押", "监狱服刑", "强制隔离戒毒", "社区矫正"]
DEATH_SOURCES = ["公安户籍注销", "卫健死亡医学证明", "殡葬火化"]


@dataclass
class SynthConfig:
    quarters: list[Quarter]
    households: int = 5000
    seed: int = 20250101
    outside_per_member: float = 3.0  # people never on the roster, per roster member
    entrants_per_quarter: float = 0.03  # new households, share of the initial number
    exit_hazard: float = 0.025  # households leaving the roster per quarter
    duplicate_enrolment: float = 0.004  # beneficiaries enrolled in a second household
    medical_per_member: float = 0.8  # settlements per roster member per quarter
    medical_per_outsider: float = 0.45  # settlements per outside person per quarter (those who see a doctor)
    counties: list[tuple] | None = None


@dataclass
class World:
    config: SynthConfig
    quarters: list[Quarter]
    geography: pl.DataFrame
    persons: pl.DataFrame
    households: pl.DataFrame  # static attributes
    household_quarters: pl.DataFrame  # (q, household_id) while on the roster, with dated fields
    memberships: pl.DataFrame  # member rows with first_q / last_q (exclusive)
    deaths: pl.DataFrame
    death_records: pl.DataFrame
    certificates: pl.DataFrame
    detentions: pl.DataFrame
    students: pl.DataFrame  # per school year
    settlements: pl.DataFrame
    standards: pl.DataFrame
    notes: dict = field(default_factory=dict)

    def roster_members(self, q: int) -> pl.DataFrame:
        """Member rows listed on the roster of quarter index q, with household fields."""
        hq = self.household_quarters.filter(pl.col("q") == q)
        return (
            self.memberships.filter((pl.col("first_q") <= q) & (pl.col("last_q") > q))
            .join(hq, on="household_id", how="inner", maintain_order="left")
        )


def _dates_between(rng, start: dt.date, end: dt.date, n: int) -> np.ndarray:
    span = (end - start).days
    return np.datetime64(start) + rng.integers(0, span + 1, size=n).astype("timedelta64[D]")


def _years_before(reference: dt.date, ages: np.ndarray, rng) -> np.ndarray:
    """Birth dates for ages (in whole years) at the reference date."""
    days = (ages * 365.25).astype(np.int64) + rng.integers(0, 365, size=len(ages))
    return (np.datetime64(reference) - days.astype("timedelta64[D]")).astype("datetime64[D]")


def build_world(config: SynthConfig) -> World:
    rng = np.random.default_rng(config.seed)
    quarters = config.quarters
    n_q = len(quarters)
    reference = quarters[0].start
    geography = build_geography(rng, config.counties)

    # ---- households -------------------------------------------------------------------
    n0 = config.households
    entrants = int(round(config.entrants_per_quarter * n0))
    enter_q = np.concatenate([np.zeros(n0, dtype=np.int64)] + [np.full(entrants, q) for q in range(1, n_q)])
    n_h = len(enter_q)
    exit_q = enter_q + rng.geometric(config.exit_hazard, size=n_h)  # may lie beyond the horizon
    village_rows = geography.sample(n_h, with_replacement=True, seed=int(rng.integers(1 << 31)))
    category = np.array(CATEGORIES)[rng.choice(len(CATEGORIES), size=n_h, p=CATEGORY_SHARES)]
    size = np.where(
        category == "特困",
        1,
        np.where(
            np.isin(category, ["低保", "支出型低保"]),
            rng.choice([1, 2, 3, 4, 5], size=n_h, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
            rng.choice([1, 2, 3, 4, 5, 6], size=n_h, p=[0.1, 0.25, 0.25, 0.2, 0.12, 0.08]),
        ),
    )
    county = village_rows["county_code"].to_numpy()
    serial = np.arange(1, n_h + 1)
    household_id = np.char.add(np.char.add("H", county.astype("<U6")), np.char.zfill(serial.astype(str), 7))
    # Listed members: usually the declared size; now and then the roster lists fewer.
    listed = np.where(rng.random(n_h) < 0.05, np.maximum(1, size - 1), size)

    # ---- members and persons ----------------------------------------------------------------
    owner = np.repeat(np.arange(n_h), listed)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(listed) - listed, listed)
    n_m = len(owner)
    relation = np.full(n_m, "子女", dtype=object)
    relation[position == 0] = "户主"
    second = position == 1
    relation[second & (rng.random(n_m) < 0.7)] = "配偶"
    later = position >= 2
    draw = rng.random(n_m)
    relation[later & (draw < 0.15)] = "父母"
    relation[later & (draw >= 0.15) & (draw < 0.25)] = "孙子女"
    relation[later & (draw >= 0.25) & (draw < 0.30)] = "兄弟姐妹"
    cat_m = category[owner]
    head_age = np.where(
        cat_m == "特困",
        np.where(rng.random(n_m) < 0.7, rng.integers(60, 93, n_m), rng.integers(18, 60, n_m)),
        rng.integers(25, 86, n_m),
    )
    head_age_of_household = head_age[np.searchsorted(owner, owner, side="left")]  # the head's draw
    age = head_age_of_household.copy()
    age = np.where(relation == "配偶", np.clip(age + rng.normal(0, 4, n_m).round().astype(int), 18, 99), age)
    age = np.where(relation == "子女", np.clip(age - rng.integers(20, 38, n_m), 0, 80), age)
    age = np.where(relation == "父母", np.clip(age + rng.integers(20, 32, n_m), 40, 100), age)
    age = np.where(relation == "孙子女", np.clip(age - rng.integers(45, 62, n_m), 0, 40), age)
    age = np.where(relation == "兄弟姐妹", np.clip(age + rng.integers(-8, 9, n_m), 1, 99), age)
    head_male = rng.random(n_h) < 0.6
    male = rng.random(n_m) < 0.5
    male = np.where(relation == "户主", head_male[owner], male)
    male = np.where(relation == "配偶", ~head_male[owner], male)
    birth = _years_before(reference, age, rng)
    region_draw = rng.random(n_m)
    other_county = np.array([c[0] for c in (config.counties or [])] or geography["county_code"].unique().sort().to_list())
    region = np.where(
        region_draw < 0.85,
        county[owner],
        np.where(region_draw < 0.95, rng.choice(other_county, n_m), rng.choice(OUTSIDE_REGIONS, n_m)),
    )
    ids = make_ids(rng, region.astype("<U6"), birth, male)
    names = make_names(rng, n_m)
    # Children and grandchildren usually carry the head's surname.
    head_names = names[np.searchsorted(owner, owner, side="left")]
    same_surname = np.isin(relation, ["子女", "孙子女"]) & (rng.random(n_m) < 0.85) & (np.strings.find(names, "·") < 0)
    with_head_surname = np.strings.add(np.strings.slice(head_names, 0, 1), np.strings.slice(names, 1, None))
    names = np.where(same_surname, with_head_surname, names)

    # ---- people who are never on the roster -------------------------------------------------
    n_out = int(round(config.outside_per_member * n_m))
    out_age = np.clip(rng.gamma(3.0, 14.0, n_out).astype(int), 0, 99)
    out_male = rng.random(n_out) < 0.5
    out_birth = _years_before(reference, out_age, rng)
    in_province = rng.random(n_out) < 0.8
    all_counties = geography["county_code"].unique().sort().to_numpy()
    out_county = rng.choice(all_counties, n_out)
    out_region = np.where(in_province, out_county, rng.choice(OUTSIDE_REGIONS, n_out))
    out_ids = make_ids(rng, out_region.astype("<U6"), out_birth, out_male, taken=ids)
    out_names = make_names(rng, n_out)

    persons = pl.DataFrame(
        {
            "person_id": np.arange(n_m + n_out, dtype=np.int64),
            "id_number": np.concatenate([ids, out_ids]).astype(str),
            "name": np.concatenate([names, out_names]).astype(str),
            "sex": np.where(np.concatenate([male, out_male]), "男", "女"),
            "birth_date": np.concatenate([birth, out_birth]).astype("datetime64[D]"),
            "county_code": np.concatenate([county[owner], out_county]).astype(str),
            "on_roster": np.concatenate([np.ones(n_m, bool), np.zeros(n_out, bool)]),
        }
    )

    # ---- roster values: benefit, income, assets ---------------------------------------------
    standards = _standards(rng, geography, quarters)
    urban = village_rows["urban"].to_numpy()
    s_now = _standard_at(standards, county, np.where(urban, "城市", "农村"), reference)
    share_of_line = np.select(
        [category == "低保", category == "特困", category == "支出型低保", category == "低保边缘"],
        [rng.uniform(0.15, 0.9, n_h), rng.uniform(0.0, 0.5, n_h), rng.uniform(1.0, 2.0, n_h), rng.uniform(1.05, 1.5, n_h)],
        default=rng.uniform(1.2, 3.0, n_h),
    )
    income = np.round(share_of_line * size * s_now * 12, -1)
    benefit = np.select(
        [category == "特困", np.isin(category, ["低保", "支出型低保"])],
        [np.round(s_now * 1.3), np.maximum(np.round((s_now * size - income / 12) / 10) * 10, 60)],
        default=0,
    )
    assets_per_person = np.where(
        rng.random(n_h) < 0.15, rng.uniform(36.2, 60, n_h), rng.uniform(0, 30, n_h)
    ) * s_now
    # A few households hold exactly the 36-month limit (a threshold case the rules must get right).
    exact_limit = rng.random(n_h) < 0.01
    assets_per_person = np.where(exact_limit, 36 * s_now, assets_per_person)
    assets = np.round(assets_per_person * size, 2)
    approval = np.where(
        category == "支出型低保",
        _dates_between(rng, add_months(reference, -13), add_months(reference, -1), n_h),
        _dates_between(rng, dt.date(reference.year - 8, 1, 1), add_months(reference, -2), n_h),
    )
    # Entrants are approved in the quarter they join.
    entrant = enter_q > 0
    for q in range(1, n_q):
        pick = enter_q == q
        approval[pick] = _dates_between(rng, quarters[q].start, quarters[q].end - dt.timedelta(days=20), int(pick.sum()))
    households = pl.DataFrame(
        {
            "household_id": household_id.astype(str),
            "county_code": county.astype(str),
            "township": village_rows["township"],
            "village": village_rows["village"],
            "urban_rural": np.where(urban, "城市", "农村"),
            "category": category,
            "household_size": size.astype(np.int32),
            "monthly_benefit_yuan": benefit.astype(float),
            "annual_income_yuan": income.astype(float),
            "financial_assets_yuan": assets.astype(float),
            "enter_q": enter_q,
            "exit_q": exit_q,
            "first_approval": approval.astype("datetime64[D]"),
            "entrant": entrant,
        }
    )

    # ---- memberships (member rows) -----------------------------------------------------------
    beneficiary = np.where(np.isin(cat_m, list(PAYING)), rng.random(n_m) < 0.92, rng.random(n_m) < 0.85)
    beneficiary[relation == "户主"] |= cat_m[relation == "户主"] == "特困"
    memberships = pl.DataFrame(
        {
            "member_id": np.char.add("M", np.char.zfill(np.arange(1, n_m + 1).astype(str), 9)).astype(str),
            "household_id": household_id[owner].astype(str),
            "person_id": np.arange(n_m, dtype=np.int64),
            "relation": relation.astype(str),
            "is_beneficiary": beneficiary,
            "first_q": enter_q[owner],
            "last_q": np.full(n_m, 10_000, dtype=np.int64),
            "duplicate_of": pl.Series([None] * n_m, dtype=pl.Utf8),
        }
    )
    memberships = _add_duplicate_enrolments(rng, config, memberships, households, persons)
    memberships = _roster_identity(rng, memberships, persons, latest_birth=reference)

    # ---- deaths and what the roster does about them --------------------------------------------
    deaths, memberships = _deaths(rng, quarters, persons, memberships, households)
    death_records = _death_records(rng, quarters, deaths)
    household_quarters = _household_quarters(rng, quarters, households, memberships)

    certificates = _certificates(rng, quarters, persons, memberships, households, deaths)
    detentions = _detentions(rng, quarters, persons)
    students = _students(rng, quarters, persons, memberships)
    settlements = _settlements(rng, config, quarters, persons, memberships, household_quarters, deaths)
    return World(
        config=config,
        quarters=quarters,
        geography=geography,
        persons=persons,
        households=households,
        household_quarters=household_quarters,
        memberships=memberships,
        deaths=deaths,
        death_records=death_records,
        certificates=certificates,
        detentions=detentions,
        students=students,
        settlements=settlements,
        standards=standards,
    )


# ---- standards ---------------------------------------------------------------------------


def _standards(rng, geography: pl.DataFrame, quarters: list[Quarter]) -> pl.DataFrame:
    """Per county and 城乡类别: a monthly standard from the January before the horizon,
    raised every 1 July (so a standard changes in the middle of each year), and the
    previous year's per-capita disposable income from each 1 January."""
    rows = []
    first_year, last_year = quarters[0].year - 1, quarters[-1].year
    for county in geography["county_code"].unique().sort().to_list():
        base = {"城市": rng.uniform(760, 830), "农村": rng.uniform(560, 640)}
        income = {"城市": rng.uniform(38000, 46000), "农村": rng.uniform(15000, 19000)}
        for urban_rural in ("城市", "农村"):
            standard = round(base[urban_rural] / 5) * 5
            for year in range(first_year, last_year + 1):
                disposable = round(income[urban_rural] * (1.05 ** (year - first_year)), -1)
                rows.append((county, urban_rural, float(standard), dt.date(year, 1, 1), float(disposable)))
                standard = round(standard * rng.uniform(1.03, 1.06) / 5) * 5
                rows.append((county, urban_rural, float(standard), dt.date(year, 7, 1), float(disposable)))
    return pl.DataFrame(
        rows,
        schema={
            "county_code": pl.Utf8,
            "urban_rural": pl.Utf8,
            "monthly_standard_yuan": pl.Float64,
            "effective_date": pl.Date,
            "disposable_income_yuan": pl.Float64,
        },
        orient="row",
    )


def _standard_at(standards: pl.DataFrame, county: np.ndarray, urban_rural: np.ndarray, day: dt.date) -> np.ndarray:
    current = (
        standards.filter(pl.col("effective_date") <= day)
        .sort("effective_date")
        .group_by(["county_code", "urban_rural"], maintain_order=True)
        .last()
    )
    frame = pl.DataFrame({"county_code": county.astype(str), "urban_rural": urban_rural.astype(str)})
    joined = frame.join(current, on=["county_code", "urban_rural"], how="left", maintain_order="left")
    return joined["monthly_standard_yuan"].to_numpy()


# ---- roster identity: duplicates and IDs as the roster holds them ------------------------------


def _add_duplicate_enrolments(
    rng, config: SynthConfig, memberships: pl.DataFrame, households: pl.DataFrame, persons: pl.DataFrame
) -> pl.DataFrame:
    """Some adult beneficiaries are also enrolled in a second household (D03)."""
    adults = memberships.join(persons.select("person_id", "birth_date"), on="person_id", maintain_order="left").filter(
        pl.col("is_beneficiary") & (pl.col("birth_date") < pl.lit(dt.date(2005, 1, 1)))
    )
    k = int(round(config.duplicate_enrolment * memberships.height))
    if k == 0 or adults.height == 0:
        return memberships
    chosen = adults.sample(min(k, adults.height), seed=int(rng.integers(1 << 31)))
    other = households.sample(chosen.height, with_replacement=True, seed=int(rng.integers(1 << 31)))
    start = memberships.height
    extra = pl.DataFrame(
        {
            "member_id": np.strings.add("M", np.strings.zfill(np.arange(start + 1, start + chosen.height + 1).astype(str), 9)),
            "household_id": other["household_id"],
            "person_id": chosen["person_id"],
            "relation": rng.choice(["父母", "其他", "兄弟姐妹"], chosen.height),
            "is_beneficiary": np.ones(chosen.height, bool),
            "first_q": np.maximum(other["enter_q"].to_numpy(), 0),
            "last_q": np.full(chosen.height, 10_000, dtype=np.int64),
            "duplicate_of": chosen["member_id"],
        }
    )
    # Not the same household twice.
    first_household = chosen.select(pl.col("member_id").alias("duplicate_of"), pl.col("household_id").alias("h0"))
    extra = extra.join(first_household, on="duplicate_of", maintain_order="left")
    extra = extra.filter(pl.col("household_id") != pl.col("h0")).drop("h0")
    return pl.concat([memberships, extra.select(memberships.columns)])


def _corrupt_one_digit(rng, ids: np.ndarray) -> np.ndarray:
    """Change one digit (not the check digit) so that the check digit no longer fits."""
    from devtools.synth.identity import check_chars

    out = np.asarray(ids, dtype="<U18").copy()
    todo = np.arange(len(out))
    while len(todo):
        digits = np.frombuffer(out[todo].astype("S18").tobytes(), dtype=np.uint8).reshape(-1, 18).copy()
        pos = rng.integers(6, 17, len(todo))
        rows = np.arange(len(todo))
        digits[rows, pos] = (digits[rows, pos] - 48 + rng.integers(1, 10, len(todo))) % 10 + 48
        candidate = np.frombuffer(digits.tobytes(), dtype="S18").astype("<U18")
        still_valid = check_chars(np.strings.slice(candidate, 0, 17)) == np.strings.slice(candidate, 17, 18)
        out[todo[~still_valid]] = candidate[~still_valid]
        todo = todo[still_valid]
    return out


def _roster_identity(rng, memberships: pl.DataFrame, persons: pl.DataFrame, latest_birth: dt.date | None = None) -> pl.DataFrame:
    """The ID, birth date and sex as the roster holds them, and the Q01 defects.

    roster_id_kind: exact | legacy15 | typo | empty | format (spaces, lower-case x);
    roster_birth_shift / roster_sex_flipped: 出生日期 or 性别 keyed wrongly.
    """
    m = memberships.join(persons.select("person_id", "id_number", "birth_date", "sex"), on="person_id", how="left", maintain_order="left")
    n = m.height
    ids = m["id_number"].to_numpy().astype("<U18")
    draw = rng.random(n)
    born_early = (m["birth_date"] < dt.date(1985, 1, 1)).to_numpy()
    kind = np.full(n, "exact", dtype=object)
    kind[draw < 0.004] = "typo"
    kind[(draw >= 0.004) & (draw < 0.006)] = "empty"
    kind[(draw >= 0.006) & (draw < 0.016)] = "format"
    kind[(draw >= 0.016) & (draw < 0.026) & born_early] = "legacy15"
    # A duplicate enrolment is often written differently from the first one.
    dup = m["duplicate_of"].is_not_null().to_numpy()
    dup_draw = rng.random(n)
    kind[dup & (dup_draw < 0.15)] = "typo"
    kind[dup & (dup_draw >= 0.15) & (dup_draw < 0.3) & born_early] = "legacy15"
    kind[dup & (dup_draw >= 0.3) & (dup_draw < 0.45)] = "format"
    text = ids.astype(object)
    typo = kind == "typo"
    text[typo] = _corrupt_one_digit(rng, ids[typo])
    text[kind == "empty"] = ""
    legacy = kind == "legacy15"
    text[legacy] = to_legacy15(ids[legacy])
    fmt = kind == "format"
    spaced = np.strings.add(np.strings.add(np.strings.slice(ids[fmt], 0, 6), " "), np.strings.slice(ids[fmt], 6, None))
    text[fmt] = np.strings.lower(spaced)
    extra = rng.random(n)
    birth_shift = np.where((extra < 0.002) & ~dup, rng.choice([-365, -31, 31, 365, 10], n), 0)
    if latest_birth is not None:
        # A birth date keyed late stays in the past (earlier instead): one after the extract
        # date cannot be true, and the ingest quarantines the member (date_after_extract)
        # instead of loading a roster row that raises Q01. No draw here: the rest of the
        # generation is the same.
        shifted = m["birth_date"].to_numpy().astype("datetime64[D]") + birth_shift.astype("timedelta64[D]")
        birth_shift = np.where(shifted > np.datetime64(latest_birth), -birth_shift, birth_shift)
    sex_flipped = (extra >= 0.002) & (extra < 0.004) & ~dup
    return m.drop("id_number", "birth_date", "sex").with_columns(
        pl.Series("roster_id_text", text.astype(str)),
        pl.Series("roster_id_kind", kind.astype(str)),
        pl.Series("roster_birth_shift", birth_shift.astype(np.int64)),
        pl.Series("roster_sex_flipped", sex_flipped),
    )


# ---- deaths ------------------------------------------------------------------------------


def _deaths(rng, quarters, persons: pl.DataFrame, memberships: pl.DataFrame, households: pl.DataFrame):
    """Who dies when; roster members stay listed for a while after dying (the lag D01
    catches); outsiders die too (most death records are about them)."""
    n_q = len(quarters)
    reference = quarters[0].start
    roster_people = memberships.join(households.select("household_id", "category"), on="household_id", maintain_order="left").group_by(
        "person_id", maintain_order=True
    ).agg(pl.col("category").first())
    roster = roster_people.join(persons.select("person_id", "birth_date"), on="person_id", maintain_order="left")
    age = (np.datetime64(reference) - roster["birth_date"].to_numpy().astype("datetime64[D]")).astype(np.int64) / 365.25
    hazard = np.select([age < 40, age < 60, age < 75], [0.001, 0.004, 0.012], default=0.035)
    hazard = hazard * np.where(roster["category"].to_numpy() == "特困", 1.5, 1.0)
    person = roster["person_id"].to_numpy()
    alive = np.ones(len(person), dtype=bool)
    death_q = np.full(len(person), -99, dtype=np.int64)
    death_date = np.full(len(person), np.datetime64("NaT"), dtype="datetime64[D]")
    # Deaths in the half year before the first quarter, registered late (the overdue cases).
    early = rng.random(len(person)) < 0.003
    death_q[early] = -1
    death_date[early] = _dates_between(rng, add_months(reference, -6), reference - dt.timedelta(days=1), int(early.sum()))
    alive &= ~early
    for q, quarter in enumerate(quarters):
        dies = alive & (rng.random(len(person)) < hazard)
        death_q[dies] = q
        death_date[dies] = _dates_between(rng, quarter.start, quarter.end, int(dies.sum()))
        alive &= ~dies
    roster_deaths = pl.DataFrame(
        {"person_id": person[death_q != -99], "death_q": death_q[death_q != -99], "death_date": death_date[death_q != -99]}
    )
    # Outsiders: three deaths for every roster death, spread over the quarters.
    outsiders = persons.filter(~pl.col("on_roster"))
    per_q = max(1, int(round(3 * roster_deaths.height / max(n_q, 1))))
    picks = outsiders.sample(min(outsiders.height, per_q * n_q), seed=int(rng.integers(1 << 31)))
    q_of = np.repeat(np.arange(n_q), per_q)[: picks.height]
    starts = np.array([np.datetime64(quarter.start) for quarter in quarters], dtype="datetime64[D]")
    out_dates = starts[q_of] + rng.integers(
        0, 90, picks.height
    ).astype("timedelta64[D]")
    outsider_deaths = pl.DataFrame({"person_id": picks["person_id"], "death_q": q_of, "death_date": out_dates})
    deaths = pl.concat([roster_deaths, outsider_deaths.cast(roster_deaths.schema)])
    # How long the roster keeps listing a dead member: lag 0 = already removed in the
    # quarter of death; "never" = the bureau missed it within the horizon.
    lags = rng.choice([0, 1, 2, 3, 10_000], size=roster_deaths.height, p=[0.1, 0.5, 0.25, 0.07, 0.08])
    removal = roster_deaths.with_columns(
        (pl.col("death_q").clip(lower_bound=0) + pl.Series(lags)).alias("removed_q")
    ).select("person_id", "removed_q")
    memberships = memberships.join(removal, on="person_id", how="left", maintain_order="left").with_columns(
        pl.min_horizontal("last_q", pl.col("removed_q").fill_null(10_000)).alias("last_q")
    ).drop("removed_q")
    return deaths.with_columns(pl.col("death_date").cast(pl.Date)), memberships


def _death_records(rng, quarters, deaths: pl.DataFrame) -> pl.DataFrame:
    """Each death registered by one or two of 公安, 卫健 and 殡葬, in the quarter of death
    or the next one; a few dates keyed a year late (after the quarter's end)."""
    n_q = len(quarters)
    n = deaths.height
    first_source = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    second = rng.random(n) < 0.35
    second_source = (first_source + rng.integers(1, 3, n)) % 3
    base_q = np.clip(deaths["death_q"].to_numpy(), 0, None)
    late = rng.random(n) < 0.15
    delivered_1 = base_q + late
    delivered_2 = base_q + (rng.random(n) < 0.3)
    rows = pl.concat(
        [
            deaths.with_columns(pl.Series("source_idx", first_source), pl.Series("delivered_q", delivered_1)),
            deaths.filter(pl.Series(second)).with_columns(
                pl.Series("source_idx", second_source[second]), pl.Series("delivered_q", delivered_2[second])
            ),
        ]
    ).filter(pl.col("delivered_q") < n_q)
    keyed_late = rng.random(rows.height) < 0.005
    rows = rows.with_columns(
        pl.when(pl.Series(keyed_late)).then(pl.col("death_date").dt.offset_by("1y")).otherwise(pl.col("death_date")).alias("recorded_date"),
        pl.Series("info_source", np.array(DEATH_SOURCES)[rows["source_idx"].to_numpy()]),
    )
    return rows.with_columns(
        pl.format("SW{}{}", pl.col("delivered_q") + 1, pl.int_range(pl.len()).cast(pl.Utf8).str.zfill(7)).alias("record_id")
    ).select("record_id", "person_id", "recorded_date", "info_source", "delivered_q")


# ---- households over the quarters -------------------------------------------------------------


def _household_quarters(rng, quarters, households: pl.DataFrame, memberships: pl.DataFrame) -> pl.DataFrame:
    """(q, household) while the household is on the roster, with its approval date and
    validity end as the roster shows them that quarter. 支出型低保 approvals last a year;
    when one lapses the bureau renews it, ends it, or (sometimes) leaves it lapsed."""
    n_q = len(quarters)
    h = households
    approval = h["first_approval"].to_numpy().astype("datetime64[D]")
    n = h.height
    explicit = rng.random(n) < 0.35
    is_expenditure = (h["category"] == "支出型低保").to_numpy()
    validity = _plus_one_year(approval)
    exit_q = h["exit_q"].to_numpy().copy()
    frames = []
    handled = np.zeros(n, dtype=bool)  # the current approval's lapse has been dealt with
    for q, quarter in enumerate(quarters):
        lapsed = is_expenditure & (validity < np.datetime64(quarter.start)) & ~handled
        decision = rng.random(n)
        renew = lapsed & (decision < 0.45)
        end = lapsed & (decision >= 0.45) & (decision < 0.8)
        approval = np.where(renew, validity + rng.integers(0, 20, n).astype("timedelta64[D]"), approval)
        validity = np.where(renew, _plus_one_year(approval), validity)
        explicit = np.where(renew, rng.random(n) < 0.35, explicit)
        exit_q = np.where(end, np.minimum(exit_q, q), exit_q)
        handled = (handled | lapsed) & ~renew
        active = (h["enter_q"].to_numpy() <= q) & (exit_q > q)
        frames.append(
            pl.DataFrame(
                {
                    "q": np.full(int(active.sum()), q),
                    "household_id": h["household_id"].to_numpy()[active],
                    "approval_date": approval[active],
                    "validity_end_written": np.where(explicit & is_expenditure, validity, np.datetime64("NaT"))[active],
                    "validity_end": np.where(is_expenditure, validity, np.datetime64("NaT"))[active],
                }
            )
        )
    hq = pl.concat(frames).with_columns(
        pl.col("approval_date").cast(pl.Date), pl.col("validity_end_written").cast(pl.Date), pl.col("validity_end").cast(pl.Date)
    )
    # A household with nobody listed any more has left the roster.
    listed = []
    for q in range(n_q):
        ids = memberships.filter((pl.col("first_q") <= q) & (pl.col("last_q") > q)).select("household_id").unique(maintain_order=True)
        listed.append(ids.with_columns(pl.lit(q).alias("q")))
    hq = hq.join(pl.concat(listed), on=["q", "household_id"], how="semi", maintain_order="left")
    return hq.join(h.drop("first_approval", "enter_q", "exit_q", "entrant"), on="household_id", how="left", maintain_order="left")


def _plus_one_year(days: np.ndarray) -> np.ndarray:
    """The same calendar day a year later; 29 February becomes 28 February."""
    series = pl.Series(days.astype("datetime64[D]")).cast(pl.Date)
    return series.dt.offset_by("1y").to_numpy().astype("datetime64[D]")


# ---- disability certificates ---------------------------------------------------------------------


def _certificates(rng, quarters, persons, memberships, households, deaths) -> pl.DataFrame:
    """One certificate per holder. Roster members hold them far more often than others,
    marginal families and 特困 most of all (the cases N02 and N03 look for)."""
    roster_cat = (
        memberships.join(households.select("household_id", "category", "household_size"), on="household_id", maintain_order="left")
        .group_by("person_id", maintain_order=True)
        .agg(pl.col("category").first(), pl.col("household_size").first())
    )
    p = persons.join(roster_cat, on="person_id", how="left", maintain_order="left")
    cat = p["category"].fill_null("").to_numpy()
    share = np.select(
        [cat == "特困", cat == "低保边缘", (cat == "低保") & (p["household_size"].fill_null(0).to_numpy() == 1), cat != ""],
        [0.45, 0.3, 0.3, 0.15],
        default=0.03,
    )
    holder = rng.random(p.height) < share
    h = p.filter(pl.Series(holder))
    n = h.height
    category = rng.choice(len(DISABILITY_CATEGORIES), n, p=DISABILITY_SHARES)
    grade = rng.choice(4, n, p=GRADE_SHARES)
    status = np.array(["有效", "注销", "过期"])[rng.choice(3, n, p=[0.88, 0.04, 0.08])]
    reference = quarters[0].start
    issued_in = np.where(rng.random(n) < 0.08, rng.integers(0, len(quarters), n), -1)
    issue = _dates_between(rng, dt.date(reference.year - 10, 1, 1), reference - dt.timedelta(days=1), n)
    for q, quarter in enumerate(quarters):
        pick = issued_in == q
        issue[pick] = _dates_between(rng, quarter.start, quarter.end, int(pick.sum()))
    certs = h.select("person_id", "id_number").with_columns(
        pl.Series("category", np.array(DISABILITY_CATEGORIES)[category]),
        pl.Series("grade", np.array(GRADES)[grade]),
        pl.Series("base_status", status),
        pl.Series("issue_date", issue.astype("datetime64[D]")).cast(pl.Date),
        pl.Series("from_q", np.maximum(issued_in, 0)),
    )
    certs = certs.with_columns(
        pl.concat_str([pl.col("id_number"), (pl.Series(category) + 1).cast(pl.Utf8), (pl.Series(grade) + 1).cast(pl.Utf8)]).alias(
            "certificate_no"
        )
    )
    # After a death the federation cancels the certificate, usually within a quarter or two.
    cancel = deaths.select("person_id", "death_q").with_columns(
        (pl.col("death_q").clip(lower_bound=0) + pl.Series(rng.choice([1, 2, 10_000], deaths.height, p=[0.5, 0.3, 0.2]))).alias(
            "cancel_q"
        )
    )
    return certs.join(cancel.select("person_id", "cancel_q"), on="person_id", how="left", maintain_order="left").drop("id_number")


# ---- detention ----------------------------------------------------------------------------------


def _detentions(rng, quarters, persons: pl.DataFrame) -> pl.DataFrame:
    adults = persons.filter(pl.col("birth_date") < pl.lit(dt.date(quarters[0].year - 16, 1, 1)))
    share = np.where(adults["on_roster"].to_numpy(), 0.008, 0.015)
    picked = adults.filter(pl.Series(rng.random(adults.height) < share))
    n = picked.height
    kind = rng.choice(4, n, p=[0.3, 0.35, 0.1, 0.25])
    start = quarters[0].start
    admission = _dates_between(rng, dt.date(start.year - 3, start.month, 1), quarters[-1].end, n)
    low = np.array([30, 365, 540, 180])[kind]
    high = np.array([240, 2000, 730, 900])[kind]
    release = admission + rng.integers(low, high + 1).astype("timedelta64[D]")
    facility = np.array(["市看守所", "省第一监狱", "省强制隔离戒毒所", "县司法局社区矫正中心"])[kind]
    return picked.select("person_id").with_columns(
        pl.format("JY{}", pl.int_range(pl.len()).cast(pl.Utf8).str.zfill(8)).alias("record_id"),
        pl.Series("detention_type", np.array(DETENTION_TYPES)[kind]),
        pl.Series("admission_date", admission.astype("datetime64[D]")).cast(pl.Date),
        pl.Series("release_date", release.astype("datetime64[D]")).cast(pl.Date),
        pl.Series("facility", facility),
        pl.Series("planned_release_shown", rng.random(n) < 0.5),
    )


# ---- students -----------------------------------------------------------------------------------

_STAGE_BY_AGE = [
    (3, 5, "学前", 0.75),
    (6, 11, "小学", 0.98),
    (12, 14, "初中", 0.97),
    (15, 17, "高中", 0.85),
    (18, 21, "本科", 0.45),
    (22, 24, "研究生", 0.06),
]
_FEES = {  # tuition, boarding, childcare (yuan per school year)
    "学前": (0, 0, (2000, 6000)),
    "小学": (0, (0, 800), 0),
    "初中": (0, (0, 1000), 0),
    "高中": ((800, 1600), (400, 1200), 0),
    "中职": ((0, 2000), (400, 1200), 0),
    "高职": ((4000, 8000), (800, 1500), 0),
    "本科": ((4000, 6500), (800, 1500), 0),
    "研究生": ((8000, 10000), (1000, 1500), 0),
}


def school_year_of(quarter: Quarter) -> int:
    """The school year (by its starting calendar year) current on the quarter's last day."""
    return quarter.end.year if quarter.end.month >= 9 else quarter.end.year - 1


def _students(rng, quarters, persons: pl.DataFrame, memberships: pl.DataFrame) -> pl.DataFrame:
    years = sorted({school_year_of(q) for q in quarters})
    frames = []
    roster = set(memberships["person_id"].to_list())
    for year in years:
        sept = dt.date(year, 9, 1)
        age = ((pl.lit(sept) - pl.col("birth_date")).dt.total_days() / 365.25).floor().cast(pl.Int64)
        p = persons.with_columns(age.alias("age"))
        for low, high, stage, share in _STAGE_BY_AGE:
            in_age = p.filter(pl.col("age").is_between(low, high))
            on_roster = in_age["on_roster"].to_numpy()
            take = rng.random(in_age.height) < np.where(on_roster, share, share * 0.6)
            frames.append(in_age.filter(pl.Series(take)).select("person_id", "on_roster").with_columns(
                pl.lit(year).alias("school_year"), pl.lit(stage).alias("stage")
            ))
    s = pl.concat(frames)
    n = s.height
    stage = s["stage"].to_numpy().astype(object)
    vocational = (stage == "高中") & (rng.random(n) < 0.3)
    stage[vocational] = "中职"
    college = (stage == "本科") & (rng.random(n) < 0.45)
    stage[college] = "高职"

    def fee(kind: int) -> np.ndarray:
        out = np.zeros(n)
        for name, fees in _FEES.items():
            spec = fees[kind]
            pick = stage == name
            if isinstance(spec, tuple):
                out[pick] = np.round(rng.uniform(spec[0], spec[1], int(pick.sum())), -1)
        return out

    tuition, boarding, childcare = fee(0), fee(1), fee(2)
    high_fee = rng.random(n) < 0.04
    tuition = np.where(high_fee, tuition + rng.uniform(15000, 40000, n).round(-2), tuition)
    full_time = rng.random(n) < np.where(np.isin(stage, ["高职", "本科", "研究生"]), 0.9, 0.995)
    on_roster = s["on_roster"].to_numpy()
    aided = rng.random(n) < np.where(on_roster, 0.55, 0.2)
    aid = np.where(aided, np.round(rng.uniform(500, 3500, n), -1), 0.0)
    aid_written_empty = ~aided & (rng.random(n) < 0.5)  # "no aid" written as an empty cell
    status = np.array(["在读", "休学", "毕业", "退学"])[rng.choice(4, n, p=[0.92, 0.02, 0.04, 0.02])]
    with_g_number = rng.random(n) < 0.88
    del roster
    return s.with_columns(
        pl.Series("stage", stage.astype(str)),
        pl.Series("study_mode", np.where(full_time, "全日制", "非全日制")),
        pl.Series("high_fee", high_fee),
        pl.Series("tuition_yuan", tuition),
        pl.Series("boarding_yuan", boarding),
        pl.Series("childcare_yuan", childcare),
        pl.Series("aid_yuan", aid),
        pl.Series("aid_written_empty", aid_written_empty),
        pl.Series("enrolment_status", status),
        pl.Series("g_number", with_g_number),
        pl.Series("other_number", np.char.add("L", np.char.zfill(rng.integers(0, 10**12, n).astype(str), 17)).astype(str)),
    )


# ---- medical settlements ----------------------------------------------------------------------------

ASSISTANCE_RATE = {"特困": 0.9, "低保": 0.7, "支出型低保": 0.7}


def _settlements(rng, config: SynthConfig, quarters, persons, memberships, household_quarters, deaths) -> pl.DataFrame:
    """Settlements per quarter. Roster members see doctors more; in some households one
    member is seriously ill (repeated costly hospital stays: the N01/N06 cases). Medical
    assistance is usually paid for beneficiaries' hospital stays, but not always (N05)."""
    n_q = len(quarters)
    death_day = deaths.select("person_id", "death_date")
    ill_household = household_quarters.filter(pl.col("q") == pl.col("q").min().over("household_id")).select(
        "household_id", "category"
    )
    draw = rng.random(ill_household.height)
    cat = ill_household["category"].to_numpy()
    ill_household = ill_household.filter(
        pl.Series((np.isin(cat, list(MARGINAL)) & (draw < 0.35)) | (np.isin(cat, ["低保", "支出型低保"]) & (draw < 0.12)))
    )
    seriously_ill = (
        memberships.join(ill_household, on="household_id", how="semi", maintain_order="left")
        .group_by("household_id", maintain_order=True)
        .agg(pl.col("person_id").first())
        .select("person_id")
        .unique(maintain_order=True)
    )
    frames = []
    outsiders = persons.filter(~pl.col("on_roster")).select("person_id")
    for q, quarter in enumerate(quarters):
        listed = memberships.filter((pl.col("first_q") <= q) & (pl.col("last_q") > q)).select("person_id", "household_id", "is_beneficiary")
        categories = household_quarters.filter(pl.col("q") == q).select("household_id", "category")
        listed = listed.join(categories, on="household_id", maintain_order="left")
        roster_people = listed.group_by("person_id", maintain_order=True).agg(
            pl.col("category").filter(pl.col("is_beneficiary")).first().alias("paying_category")
        )
        visits = rng.poisson(config.medical_per_member, roster_people.height)
        seen = outsiders.sample(fraction=0.5, seed=int(rng.integers(1 << 31)))
        out_visits = rng.poisson(config.medical_per_outsider * 2, seen.height)
        ill = roster_people.join(seriously_ill, on="person_id", how="semi", maintain_order="left")
        ill_visits = rng.poisson(1.3, ill.height)
        base = pl.concat(
            [
                roster_people.select("person_id", "paying_category").with_columns(pl.Series("n", visits), pl.lit(False).alias("serious")),
                seen.with_columns(
                    pl.lit(None, dtype=pl.Utf8).alias("paying_category"), pl.Series("n", out_visits), pl.lit(False).alias("serious")
                ),
                ill.select("person_id", "paying_category").with_columns(pl.Series("n", ill_visits), pl.lit(True).alias("serious")),
            ]
        )
        rows = base.select(pl.all().repeat_by(pl.col("n")).explode()).drop_nulls("n").drop("n")
        n = rows.height
        serious = rows["serious"].to_numpy()
        visit = np.where(serious, 0, rng.choice(3, n, p=[0.15, 0.65, 0.2]))
        total = np.select(
            [visit == 0, visit == 1],
            [np.where(serious, rng.uniform(20000, 80000, n), np.exp(rng.normal(9.0, 0.7, n))), rng.uniform(50, 800, n)],
            default=rng.uniform(200, 3000, n),
        ).round(2)
        basic = (total * np.where(visit == 0, rng.uniform(0.5, 0.7, n), rng.uniform(0.3, 0.6, n))).round(2)
        critical = np.where((visit == 0) & (total > 20000), ((total - 20000) * rng.uniform(0.4, 0.6, n)).round(2), 0.0)
        other = np.where(rng.random(n) < 0.08, (total * 0.05).round(2), 0.0)
        rate = rows["paying_category"].replace_strict(ASSISTANCE_RATE, default=0.0, return_dtype=pl.Float64).to_numpy()
        paid = (visit == 0) & (rate > 0) & (rng.random(n) < 0.72)
        assistance = np.where(paid, ((total - basic - critical - other) * rate).round(2), 0.0)
        day = _dates_between(rng, quarter.start, quarter.end, n)
        frame = rows.select("person_id").with_columns(
            pl.Series("settlement_date", day.astype("datetime64[D]")).cast(pl.Date),
            pl.Series("visit_type", np.array(["住院", "普通门诊", "门诊慢特病"])[visit]),
            pl.Series("total_cost_yuan", total),
            pl.Series("basic_insurance_yuan", basic),
            pl.Series("critical_illness_yuan", critical),
            pl.Series("medical_assistance_yuan", assistance),
            pl.Series("other_supplementary_yuan", other),
            pl.lit(q).alias("q"),
        )
        # Nobody is treated after death.
        frame = frame.join(death_day, on="person_id", how="left", maintain_order="left").filter(
            pl.col("death_date").is_null() | (pl.col("settlement_date") <= pl.col("death_date"))
        ).drop("death_date")
        frames.append(frame)
    s = pl.concat(frames)
    institutions = np.array(["县人民医院", "市第一人民医院", "乡镇卫生院", "县中医院", "社区卫生服务中心"])
    institution = institutions[rng.integers(0, 5, len(frames) and sum(f.height for f in frames))]
    s = s.with_columns(
        (
            pl.col("total_cost_yuan")
            - pl.col("basic_insurance_yuan")
            - pl.col("critical_illness_yuan")
            - pl.col("medical_assistance_yuan")
            - pl.col("other_supplementary_yuan")
        ).round(2).alias("out_of_pocket_yuan"),
        pl.format("JS{}{}", pl.col("settlement_date").dt.strftime("%Y%m%d"), pl.int_range(pl.len()).cast(pl.Utf8).str.zfill(8)).alias(
            "settlement_id"
        ),
        pl.Series("institution", institution),
    )
    # A few settlements are delivered again with the next quarter's extract.
    again = rng.random(s.height) < 0.03
    return s.with_columns(pl.Series("redelivered", again) & (pl.col("q") < n_q - 1))
