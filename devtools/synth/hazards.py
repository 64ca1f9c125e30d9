"""Identity hazards of hand-kept registers: records an ID number alone would pin on the
wrong roster member (the project's identity corroboration, rule Q02).

Added to each person-bearing delivery after its own damage (`extracts`), as real
departments' files hold them:
  id_copied  another person's record carrying a roster member's ID (copied from the row
             above); every person source. The record is nobody's on the roster: no link,
             and a Q02 for the member whose ID it carries.
  newborn    a newborn's hospital settlement under the mother's ID, in the baby's name or
             as “某某之子/之女” (medical). No link; Q02 for the mother.
  sibling    a twin's or sibling's record: a valid ID one or two digits from the member's ID
             as the roster writes it (members whose roster ID is mistyped included), the
             member's birth date, the member's surname and another given name — a twin's
             often one character from the member's. No link, no Q02 (the IDs differ).
  renamed    a member's own record under a name changed since (another given name): the
             member's, but with an ID match and another name it is a Q02 for the
             caseworker, not a link the pipeline can make alone.

New records get keys of their source's form in a range the world never uses; the hidden
columns `__hazard` and `__hazard_person` (the roster person whose ID the record carries, or
whose sibling it is) go to the truth. Each delivery draws from its own seed (seed, quarter,
source), so the rest of the generation is the same with or without hazards.
"""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import polars as pl

from devtools.synth.identity import GIVEN_CHARS, SURNAMES, check_chars
from sources.registry import source as source_spec

# Share of the delivery's rows, per source and hazard. Deaths and detentions are where a
# copied ID does most harm (a stop warning), so they carry the most.
HAZARD_RATES = {
    "medical": {"id_copied": 0.002, "newborn": 0.001, "sibling": 0.001, "renamed": 0.002},
    "death": {"id_copied": 0.03, "sibling": 0.015, "renamed": 0.01},
    "detention": {"id_copied": 0.03, "sibling": 0.015, "renamed": 0.01},
    "disability": {"id_copied": 0.01, "sibling": 0.01, "renamed": 0.005},
    "education": {"id_copied": 0.01, "sibling": 0.01, "renamed": 0.005},
}
SIBLING_ON_DAMAGED_ROSTER_ID = 0.3  # share of sibling records aimed at members whose roster ID is mistyped


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (the generator's own: names it makes must be far apart)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _given(rng, n: int, length: np.ndarray) -> np.ndarray:
    chars = np.array(list(GIVEN_CHARS))
    first = chars[rng.integers(0, len(chars), n)]
    second = chars[rng.integers(0, len(chars), n)]
    return np.where(length == 2, np.char.add(first, second), first)


def _other_person_names(rng, targets: np.ndarray) -> np.ndarray:
    """For each target name, a name with another surname and another given name (at least
    two characters apart from it)."""
    out = np.empty(len(targets), dtype=object)
    todo = np.arange(len(targets))
    while len(todo):
        surname = np.array(list(SURNAMES))[rng.integers(0, len(SURNAMES), len(todo))]
        names = np.char.add(surname, _given(rng, len(todo), rng.integers(1, 3, len(todo)) + (rng.random(len(todo)) < 0.4)))
        ok = np.array([n[0] != t[0] and edit_distance(n, t) >= 2 for n, t in zip(names, targets[todo])])
        out[todo[ok]] = names[ok]
        todo = todo[~ok]
    return out.astype(str)


def _sibling_names(rng, targets: np.ndarray) -> np.ndarray:
    """The target's surname and another given name; half of them twins' names, one
    character from the target's."""
    out = np.empty(len(targets), dtype=object)
    todo = np.arange(len(targets))
    twin = rng.random(len(targets)) < 0.5
    while len(todo):
        t = targets[todo]
        surname = np.strings.slice(t, 0, 1)
        fresh = np.char.add(surname, _given(rng, len(todo), rng.integers(1, 3, len(todo))))
        chars = np.array(list(GIVEN_CHARS))[rng.integers(0, len(GIVEN_CHARS), len(todo))]
        twin_name = np.char.add(np.strings.slice(t, 0, -1), chars)
        names = np.where(twin[todo] & (np.strings.str_len(t) >= 2), twin_name, fresh)
        ok = names != t
        out[todo[ok]] = names[ok]
        todo = todo[~ok]
    return out.astype(str)


def _sibling_ids(rng, base: np.ndarray) -> np.ndarray:
    """A valid ID one or two digits from `base`: the last sequence digit moved by one, the
    check digit recomputed."""
    body = np.strings.slice(base, 0, 16)
    last = np.strings.slice(base, 16, 17).astype(np.int64)
    moved = np.where(last == 9, 8, np.where(last == 0, 1, last + np.where(rng.random(len(base)) < 0.5, -1, 1)))
    first17 = np.char.add(body, moved.astype(str))
    return np.char.add(first17, check_chars(first17))


def _roster_people(world, q: int) -> pl.DataFrame:
    """The people on quarter q's roster, one row each, with their true identity and how the
    roster writes their ID."""
    members = world.roster_members(q).select("person_id", "county_code", "roster_id_text", "roster_id_kind", "roster_birth_shift")
    people = world.persons.select("person_id", "id_number", "name", "sex", "birth_date")
    return members.unique("person_id", keep="first").join(people, on="person_id", how="left").sort("person_id")


def _pick_in_county(rng, templates: pl.DataFrame, pool: pl.DataFrame) -> pl.DataFrame:
    """For each template row, a random person of `pool` in the template's county (rows of
    counties without one are dropped); the pool's columns are prefixed `t_`."""
    if templates.height == 0 or pool.height == 0:
        return templates.clear().with_columns([pl.lit(None, dtype=pool[c].dtype).alias(f"t_{c}") for c in pool.columns])
    pool = pool.sort("county_code")
    sizes = pool.group_by("county_code", maintain_order=True).len()
    offsets = sizes.with_columns((pl.col("len").cum_sum() - pl.col("len")).alias("offset"))
    t = templates.join(offsets, left_on="__county", right_on="county_code", how="inner", maintain_order="left")
    index = (t["offset"].to_numpy() + np.floor(rng.random(t.height) * t["len"].to_numpy())).astype(np.int64)
    picked = pool[index].rename({c: f"t_{c}" for c in pool.columns})
    return pl.concat([t.drop("len", "offset"), picked], how="horizontal")


def _templates(rng, frame: pl.DataFrame, rate: float) -> pl.DataFrame:
    usable = frame.filter(pl.col("__expect_quarantine").is_null() if "__expect_quarantine" in frame.columns else pl.lit(True))
    n = int(rng.binomial(usable.height, rate)) if usable.height else 0
    return usable[np.sort(rng.choice(usable.height, n, replace=False))] if n else usable.clear()


def _new_keys(source: str, q: int, rows: pl.DataFrame, start: int) -> pl.Series:
    """Keys of the source's form that the world never hands out; a certificate or G
    student number carries the ID the record is written with."""
    index = np.arange(start, start + rows.height)
    if source == "death":
        keys = [f"SW{q + 1}9{i:06d}" for i in index]
    elif source == "detention":
        keys = [f"JY9{(q + 1) % 10}{i:06d}" for i in index]
    elif source == "medical":
        dates = rows["settlement_date"].dt.strftime("%Y%m%d").to_list()
        keys = [f"JS{d}9{(q + 1) % 10}{i:07d}" for d, i in zip(dates, index)]
    elif source == "disability":  # the certificate number carries the ID it was issued under
        keys = [f"{t}{c}" for t, c in zip(rows["id_number"].to_list(), rows["certificate_no"].str.slice(18).to_list())]
    else:  # education: a G number carries the ID; others are L + 17 digits
        keys = [
            f"G{t}" if k.startswith("G") else f"L9{(q + 1) % 10}{i:015d}"
            for k, t, i in zip(rows["student_no"].to_list(), rows["id_number"].to_list(), index)
        ]
    return pl.Series(source_spec(source).key[0], keys, dtype=pl.Utf8)


def add_hazards(world, q: int, source: str, frame: pl.DataFrame, part: int = 0) -> pl.DataFrame:
    """The delivery `frame` (part `part` of the quarter's delivery of `source`) with its
    hazard records added and its renamed records renamed."""
    person_dtype = frame.schema["__person_id"]
    frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("__hazard"), pl.lit(None, dtype=person_dtype).alias("__hazard_person"))
    rates = HAZARD_RATES.get(source)
    if not rates or frame.height == 0:
        return frame
    rng = np.random.default_rng([world.config.seed, q, zlib.crc32(source.encode()), part])

    roster = _roster_people(world, q).with_columns(pl.col("person_id").cast(person_dtype))
    readable = roster.filter(pl.col("roster_id_kind").is_in(["exact", "format", "legacy15"]))
    key = source_spec(source).key[0]  # the record's key: settlement_id, record_id...
    added = []

    # id_copied: another person's record under a member's ID.
    copied = _pick_in_county(rng, _templates(rng, frame, rates["id_copied"]), readable)
    if copied.height:
        added.append(copied.with_columns(
            pl.Series("name", _other_person_names(rng, copied["t_name"].to_numpy().astype(str))),
            pl.col("t_id_number").alias("id_number"),
            pl.lit("id_copied").alias("__hazard"),
        ))

    # newborn: a baby's settlement under the mother's ID.
    if "newborn" in rates:
        end = world.quarters[q].end
        mothers = readable.filter(
            (pl.col("sex") == "女") & pl.col("birth_date").is_between(dt.date(end.year - 42, 1, 1), dt.date(end.year - 19, 1, 1))
        )
        babies = _pick_in_county(rng, _templates(rng, frame, rates["newborn"]), mothers)
        if babies.height:
            mother = babies["t_name"].to_numpy().astype(str)
            styled = np.char.add(mother, np.where(rng.random(babies.height) < 0.5, "之子", "之女"))
            named = np.where(rng.random(babies.height) < 0.5, styled, _other_person_names(rng, mother))
            added.append(babies.with_columns(
                pl.Series("name", named.astype(str)),
                pl.col("t_id_number").alias("id_number"),
                pl.lit("县妇幼保健院").alias("institution"),
                pl.lit("住院").alias("visit_type"),
                pl.lit("newborn").alias("__hazard"),
            ))

    # sibling: a twin's or sibling's record, the ID one or two digits from the member's.
    eligible = roster.filter(
        (pl.col("roster_birth_shift") == 0) & ~pl.col("name").str.contains("·")
        & (pl.col("roster_id_kind").is_in(["exact", "format", "legacy15"])
           | ((pl.col("roster_id_kind") == "typo") & (pl.col("roster_id_text").str.slice(6, 8) == pl.col("id_number").str.slice(6, 8))))
    )
    templates = _templates(rng, frame, rates["sibling"])
    damaged_share = rng.random(templates.height) < SIBLING_ON_DAMAGED_ROSTER_ID
    siblings = pl.concat([
        _pick_in_county(rng, templates.filter(pl.Series(damaged_share)), eligible.filter(pl.col("roster_id_kind") == "typo")),
        _pick_in_county(rng, templates.filter(pl.Series(~damaged_share)), eligible.filter(pl.col("roster_id_kind") != "typo")),
    ])
    if siblings.height:
        on_typo = siblings["t_roster_id_kind"].to_numpy() == "typo"  # the ID as the roster mistypes it
        base = np.where(on_typo, siblings["t_roster_id_text"].to_numpy(), siblings["t_id_number"].to_numpy()).astype("<U18")
        ids = _sibling_ids(rng, base)
        taken = world.persons["id_number"].implode()
        siblings = siblings.with_columns(
            pl.Series("id_number", ids.astype(str)),
            pl.Series("name", _sibling_names(rng, siblings["t_name"].to_numpy().astype(str))),
            pl.lit("sibling").alias("__hazard"),
        ).filter(~pl.col("id_number").is_in(taken))
        added.append(siblings)

    # renamed: the member's own records under a new given name.
    # (joins and unique keep their input's order: the rows drawn below, and the files'
    # row order, must not depend on polars' threads)
    true_names = roster.select(pl.col("person_id").alias("__person_id"), "name")
    renamed = frame.with_row_index("__row").join(true_names, on="__person_id", how="inner", suffix="_true", maintain_order="left")
    n = int(rng.binomial(renamed.height, min(1.0, rates["renamed"] * frame.height / max(renamed.height, 1)))) if renamed.height else 0
    if n:
        pick = renamed[np.sort(rng.choice(renamed.height, n, replace=False))].filter(~pl.col("name_true").str.contains("·"))
        true = pick["name_true"].to_numpy().astype(str)
        new = np.empty(len(true), dtype=object)
        todo = np.arange(len(true))
        while len(todo):
            candidate = np.char.add(np.strings.slice(true[todo], 0, 1), _given(rng, len(todo), np.full(len(todo), 2)))
            ok = np.array([edit_distance(c, t) >= 2 for c, t in zip(candidate, true[todo])])
            new[todo[ok]] = candidate[ok]
            todo = todo[~ok]
        changes = pl.DataFrame({"__row": pick["__row"], "__new_name": pl.Series(new.astype(str))})
        frame = (
            frame.with_row_index("__row").join(changes, on="__row", how="left", maintain_order="left")
            .with_columns(
                pl.coalesce("__new_name", "name").alias("name"),
                pl.when(pl.col("__new_name").is_not_null()).then(pl.lit("renamed")).otherwise(pl.col("__name_variant")).alias("__name_variant"),
                pl.when(pl.col("__new_name").is_not_null()).then(pl.lit("renamed")).otherwise(pl.col("__hazard")).alias("__hazard"),
                pl.when(pl.col("__new_name").is_not_null()).then(pl.col("__person_id")).otherwise(pl.col("__hazard_person")).alias("__hazard_person"),
            )
            .drop("__row", "__new_name")
        )

    if not added:
        return frame
    new_rows = pl.concat([a for a in added if a.height], how="vertical_relaxed")
    new_rows = new_rows.with_columns(
        _new_keys(source, q, new_rows, part * 100_000),
        pl.col("t_person_id").alias("__hazard_person"),
        pl.lit(None, dtype=person_dtype).alias("__person_id"),
        pl.lit("none").alias("__id_damage"),
        pl.lit("none").alias("__name_variant"),
    )
    if "__sibling_like" in new_rows.columns:
        new_rows = new_rows.with_columns(pl.lit(False).alias("__sibling_like"))
    if "__bad_date_column" in new_rows.columns:
        new_rows = new_rows.with_columns(
            pl.lit(None, dtype=pl.Utf8).alias("__bad_date_column"), pl.lit(None, dtype=pl.Utf8).alias("__expect_quarantine")
        )
    new_rows = new_rows.unique(key, keep="first", maintain_order=True).join(frame.select(key), on=key, how="anti", maintain_order="left")
    return pl.concat([frame, new_rows.select(frame.columns)], how="vertical_relaxed")
