"""The world of one quarter as each department delivers it.

A delivery is a table with the source's canonical column names holding clean values
(dates as dates, money as numbers) except the ID number and name, which already carry the
record's own damage (a typo, a legacy 15-digit form, a missing ID...). File-level habits
(encoding, Excel, date and money formats, header wording) are the writer's.

Hidden columns, dropped before writing, start with `__`: the true person, what happened
to the ID, which county's file the row goes in, and whether the row is meant to be
quarantined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from devtools.synth.hazards import add_hazards
from devtools.synth.identity import check_chars
from devtools.synth.messiness import choose_id_damage, render_ids, render_names
from devtools.synth.world import World, school_year_of
from pipelines.ingest.load import DATE_AFTER_EXTRACT, latest_extract_date

ID_DAMAGE_RATES = {
    "medical": {"missing": 0.008, "typo_sub": 0.006, "typo_swap": 0.003, "format": 0.03, "legacy15": 0.02},
    "death": {"missing": 0.015, "typo_sub": 0.008, "typo_swap": 0.004, "format": 0.03, "legacy15": 0.06},
    "detention": {"missing": 0.01, "typo_sub": 0.006, "typo_swap": 0.003, "format": 0.03, "legacy15": 0.03},
    "disability": {"typo_sub": 0.004, "typo_swap": 0.002, "format": 0.03, "legacy15": 0.02},
    "education": {"typo_sub": 0.003, "typo_swap": 0.002, "format": 0.02},
}
BAD_DATE_RATE = 0.001  # rows whose date reads 不详: they must be quarantined
SCHOOL_KINDS = {
    "学前": "实验幼儿园", "小学": "第一小学", "初中": "第二中学", "高中": "第一中学",
    "中职": "职业中学", "高职": "职业技术学院", "本科": "学院", "研究生": "大学研究生院",
}


@dataclass
class Delivery:
    source: str
    records: pl.DataFrame
    split_by: str | None  # hidden column naming the file a row goes to


def _people(world: World) -> pl.DataFrame:
    return world.persons.select("person_id", "id_number", "name", "sex", "birth_date", "county_code")


def _with_identity(rng, world: World, frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Add the person's name and ID as this department writes them."""
    people = _people(world)
    frame = frame.join(people, left_on="__person_id", right_on="person_id", how="left", maintain_order="left")
    born_early = (frame["birth_date"] < dt.date(1985, 1, 1)).to_numpy()
    damage = choose_id_damage(rng, frame.height, born_early, ID_DAMAGE_RATES.get(source, {}))
    id_text = render_ids(rng, frame["id_number"], damage)
    names, variant = render_names(rng, frame["name"], {})
    return frame.with_columns(
        id_text.alias("id_number_text"),
        pl.Series("__id_damage", damage),
        _sibling_like(id_text, frame["id_number"], damage).alias("__sibling_like"),
        names.alias("name_text"),
        pl.Series("__name_variant", variant),
        pl.col("county_code").alias("__county"),
    ).drop("id_number", "name", "sex", "birth_date", "county_code").rename(
        {"id_number_text": "id_number", "name_text": "name"}
    )


def _sibling_like(written: pl.Series, true: pl.Series, damage: np.ndarray) -> pl.Series:
    """A mistyped ID that still passes its check digit with the birth date intact: to the
    SIBLING RULE it is a twin's ID, so with a name that is only near the member's the
    record cannot be linked (the truth calls that link unrecoverable)."""
    text = written.to_numpy().astype("<U18")
    typo = np.isin(damage, ["typo_sub", "typo_swap"]) & (np.strings.str_len(text) == 18) & np.strings.isdigit(np.strings.slice(text, 0, 17))
    valid = np.zeros(len(text), dtype=bool)
    if typo.any():
        valid[typo] = check_chars(np.strings.slice(text[typo], 0, 17)) == np.strings.slice(text[typo], 17, 18)
    birth_kept = np.strings.slice(text, 6, 14) == np.strings.slice(true.to_numpy().astype("<U18"), 6, 14)
    return pl.Series(typo & valid & birth_kept)


def _bad_dates(rng, frame: pl.DataFrame, column: str) -> pl.DataFrame:
    bad = pl.Series(rng.random(frame.height) < BAD_DATE_RATE)
    return frame.with_columns(
        pl.when(bad).then(pl.lit(column)).otherwise(None).alias("__bad_date_column"),
        pl.when(bad).then(pl.lit(f"invalid:{column}")).otherwise(None).alias("__expect_quarantine"),
    )


def households(world: World, q: int) -> Delivery:
    hq = world.household_quarters.filter(pl.col("q") == q)
    records = hq.select(
        "household_id",
        "county_code",
        "township",
        "village",
        "urban_rural",
        "category",
        "approval_date",
        pl.col("validity_end_written").alias("validity_end"),
        "household_size",
        "monthly_benefit_yuan",
        "annual_income_yuan",
        "financial_assets_yuan",
        pl.col("county_code").alias("__county"),
    )
    return Delivery("households", records, "__county")


def members(rng, world: World, q: int) -> Delivery:
    m = world.roster_members(q).join(_people(world).drop("id_number", "county_code"), on="person_id", how="left", maintain_order="left")
    age = ((pl.lit(world.quarters[q].end) - pl.col("birth_date")).dt.total_days() / 365.25).floor()
    draw = rng.random(m.height)
    employment = (
        pl.when(age.is_between(6, 22)).then(pl.lit("学生"))
        .when(age >= 60).then(pl.lit("退休"))
        .when(age < 6).then(pl.lit(None, dtype=pl.Utf8))
        .when(pl.Series(draw < 0.55)).then(pl.lit("在业"))
        .when(pl.Series(draw < 0.85)).then(pl.lit("无业"))
        .otherwise(pl.lit("丧失劳动能力"))
    )
    written_sex = pl.when(pl.col("roster_sex_flipped")).then(
        pl.when(pl.col("sex") == "男").then(pl.lit("女")).otherwise(pl.lit("男"))
    ).otherwise(pl.col("sex"))
    records = m.select(
        "member_id",
        "household_id",
        "name",
        pl.col("roster_id_text").alias("id_number"),
        written_sex.alias("sex"),
        (pl.col("birth_date") + pl.duration(days=pl.col("roster_birth_shift"))).alias("birth_date"),
        "relation",
        pl.when(pl.col("is_beneficiary")).then(pl.lit("是")).otherwise(pl.lit("否")).alias("is_beneficiary"),
        employment.alias("employment"),
        pl.col("county_code").alias("__county"),
        pl.col("person_id").alias("__person_id"),
    )
    return Delivery("members", records, "__county")


# Above this many settlements a quarter, the medical extract is built and written one
# county at a time (one file per county, as it is written anyway), so that a province of
# 30 million settlements fits in memory. Below it, in one piece.
MEDICAL_CHUNK_ROWS = 3_000_000


def medical(rng, world: World, q: int) -> Iterator[Delivery]:
    s = world.settlements.filter((pl.col("q") == q) | ((pl.col("q") == q - 1) & pl.col("redelivered")))
    if s.height <= MEDICAL_CHUNK_ROWS:
        yield _medical_delivery(rng, world, q, s)
        return
    county = world.persons.select(pl.col("person_id").alias("__person_id"), pl.col("county_code").alias("__chunk_county"))
    s = s.join(county, left_on="person_id", right_on="__person_id", how="left", maintain_order="left")
    for part, code in enumerate(s["__chunk_county"].unique().sort().to_list()):
        yield _medical_delivery(rng, world, q, s.filter(pl.col("__chunk_county") == code).drop("__chunk_county"), part)


def _medical_delivery(rng, world: World, q: int, s: pl.DataFrame, part: int = 0) -> Delivery:
    frame = s.select(
        "settlement_id",
        pl.col("person_id").alias("__person_id"),
        "settlement_date",
        "institution",
        "visit_type",
        "total_cost_yuan",
        "basic_insurance_yuan",
        "critical_illness_yuan",
        "medical_assistance_yuan",
        "other_supplementary_yuan",
        "out_of_pocket_yuan",
    )
    frame = _with_identity(rng, world, frame, "medical")
    frame = _bad_dates(rng, frame, "settlement_date")
    # 个人负担 left empty now and then (the pipeline derives it); the record keeps its value.
    frame = frame.with_columns(pl.Series("__blank_out_of_pocket_yuan", rng.random(frame.height) < 0.08))
    return Delivery("medical", add_hazards(world, q, "medical", frame, part), "__county")


def disability(rng, world: World, q: int) -> Delivery:
    c = world.certificates.filter(pl.col("from_q") <= q)
    status = pl.when(pl.col("cancel_q").is_not_null() & (pl.col("cancel_q") <= q)).then(pl.lit("注销")).otherwise(pl.col("base_status"))
    frame = c.select(
        "certificate_no",
        pl.col("person_id").alias("__person_id"),
        "category",
        "grade",
        "issue_date",
        status.alias("status"),
    )
    frame = _with_identity(rng, world, frame, "disability")
    # The register often leaves 身份证号 empty (the certificate number carries it).
    blank = rng.random(frame.height) < 0.4
    frame = frame.with_columns(
        pl.when(pl.Series(blank)).then(pl.lit("")).otherwise(pl.col("id_number")).alias("id_number"),
        pl.when(pl.Series(blank)).then(pl.lit("from_certificate")).otherwise(pl.col("__id_damage")).alias("__id_damage"),
    )
    return Delivery("disability", add_hazards(world, q, "disability", frame), "__county")


def education(rng, world: World, q: int) -> Delivery:
    year = school_year_of(world.quarters[q])
    s = world.students.filter(pl.col("school_year") == year)
    frame = s.select(pl.col("person_id").alias("__person_id"), pl.all().exclude("person_id"))
    frame = _with_identity(rng, world, frame, "education")
    true_ids = frame.select("__person_id").join(
        world.persons.select(pl.col("person_id").alias("__person_id"), pl.col("id_number").alias("true_id")),
        on="__person_id", how="left", maintain_order="left",
    )["true_id"]
    student_no = pl.when(pl.col("g_number")).then(pl.concat_str([pl.lit("G"), pl.Series(true_ids)])).otherwise(pl.col("other_number"))
    blank = pl.Series(rng.random(frame.height) < 0.25)
    county_names = dict(world.geography.select("county_code", "county_name").unique().iter_rows())
    kind = pl.col("stage").replace_strict(SCHOOL_KINDS, default="学校")
    school = pl.concat_str([pl.col("__county").replace_strict(county_names, default="外地"), kind])
    frame = frame.with_columns(
        student_no.alias("student_no"),
        school.alias("school"),
        pl.when(blank).then(pl.lit("")).otherwise(pl.col("id_number")).alias("id_number"),
        pl.when(blank & pl.col("g_number")).then(pl.lit("from_student_no"))
        .when(blank).then(pl.lit("missing"))
        .otherwise(pl.col("__id_damage")).alias("__id_damage"),
        pl.when(pl.col("high_fee")).then(pl.lit("是")).otherwise(pl.lit("否")).alias("high_fee"),
        pl.when(pl.col("aid_written_empty")).then(None).otherwise(pl.col("aid_yuan")).alias("aid_yuan"),
    )
    frame = frame.select(
        "student_no", "name", "id_number", "school", "stage", "study_mode", "high_fee", "tuition_yuan",
        "boarding_yuan", "childcare_yuan", "aid_yuan", "enrolment_status", "__person_id", "__id_damage",
        "__name_variant", "__sibling_like", "__county",
    )
    return Delivery("education", add_hazards(world, q, "education", frame), "__county")


def death(rng, world: World, q: int) -> Delivery:
    d = world.death_records.filter(pl.col("delivered_q") == q)
    frame = d.select(
        "record_id",
        pl.col("person_id").alias("__person_id"),
        pl.col("recorded_date").alias("death_date"),
        "info_source",
    )
    frame = _with_identity(rng, world, frame, "death")
    frame = _bad_dates(rng, frame, "death_date")
    # A death date keyed a year late (world._death_records) lies after the latest day the
    # delivery can have been extracted: the ingest must quarantine it (before hazards are
    # drawn, so that no hazard record copies the impossible date).
    latest = latest_extract_date(world.quarters[q])
    frame = frame.with_columns(
        pl.when(pl.col("__expect_quarantine").is_null() & (pl.col("death_date") > latest))
        .then(pl.lit(DATE_AFTER_EXTRACT)).otherwise(pl.col("__expect_quarantine")).alias("__expect_quarantine")
    )
    frame = add_hazards(world, q, "death", frame)
    return Delivery("death", frame.with_columns(pl.col("info_source").alias("__file")), "__file")


def detention(rng, world: World, q: int) -> Delivery:
    quarter_end = world.quarters[q].end
    d = world.detentions.filter(pl.col("admission_date") <= quarter_end)
    shown = pl.when(pl.col("release_date") <= quarter_end).then(pl.col("release_date")).when(
        pl.col("planned_release_shown") & (pl.col("detention_type") == "监狱服刑")
    ).then(pl.col("release_date")).otherwise(None)
    frame = d.select(
        "record_id",
        pl.col("person_id").alias("__person_id"),
        "detention_type",
        "admission_date",
        shown.alias("release_date"),
        "facility",
    )
    frame = _with_identity(rng, world, frame, "detention")
    frame = add_hazards(world, q, "detention", _bad_dates(rng, frame, "admission_date"))
    return Delivery("detention", frame.with_columns(pl.lit("province").alias("__file")), "__file")


def standards(world: World, q: int) -> Delivery | None:
    """Delivered in every quarter but the second (the warehouse must remember them)."""
    if q == 1:
        return None
    s = world.standards.filter(pl.col("effective_date") <= world.quarters[q].end)
    return Delivery("standards", s.with_columns(pl.lit("standards").alias("__file")), "__file")


def deliveries(rng: np.random.Generator, world: World, q: int) -> Iterator[Delivery]:
    """The quarter's deliveries one at a time (a large medical extract in several parts,
    one per county), so that only one is in memory while it is written."""
    yield households(world, q)
    yield members(rng, world, q)
    yield from medical(rng, world, q)
    yield disability(rng, world, q)
    yield education(rng, world, q)
    yield death(rng, world, q)
    yield detention(rng, world, q)
    extra = standards(world, q)
    if extra is not None:
        yield extra
