"""Train the person-linkage model and write it to `model/<version>.json`.

    python -m devtools.train [--households 20000] [--seed 7]

Trained on a synthetic province (there is no real data in this repository), on the pairs
the linker actually scores: records whose ID is damaged or partial, and records whose
person's roster ID is damaged, against the roster. (Splink only ever sees those: two
intact IDs are settled by the deterministic pass. Learning m on all pairs would make a
typo look like rare evidence, since most true pairs have no typo.)
- m probabilities from the generator's truth (`estimate_m_from_label_column`: every pair
  of identities of one person), so they are the shares of true matches that compare each
  way; levels the truth never shows get a value from what they mean (PRIOR_M);
- u probabilities by random sampling of record-member pairs, except for the ID levels that
  two different people essentially never reach, whose u is set from how densely a real
  province fills the ID space (RARE_U);
- the prior is re-estimated on every run, so it is not part of what is learned here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import tempfile
from pathlib import Path

import duckdb
import polars as pl

from pipelines.link import model
from pipelines.link.extract_identities import materialize_extract_identities
from pipelines.link.linker import link_params, with_name_keys
from pipelines.link.probabilistic import SPLINK_COLUMNS
from pipelines.link.sql_models import materialize_linkage
from pipelines.quarters import quarter_range
from warehouse.connection import connect
from warehouse.models import materialize

RECORD_SAMPLE = 2_000_000


def _identities(warehouse: Path, quarter, truth: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Identities of a sample of records and of all members, each with the true person."""
    links = pl.read_csv(truth / "links.csv", schema_overrides={"record_key": pl.Utf8, "member_id": pl.Utf8})
    persons = pl.read_csv(truth / "roster_persons.csv", schema_overrides={"member_id": pl.Utf8, "person_id": pl.Utf8})
    persons = persons.filter(pl.col("quarter") == str(quarter))
    record_person = (
        links.filter(pl.col("quarter") == str(quarter))
        .join(persons.select("member_id", "person_id"), on="member_id")
        .select("source", "record_key", "person_id")
        .unique(["source", "record_key"])
    )
    with connect(warehouse) as con:
        params = link_params(quarter)
        materialize(con, "intermediate/int_roster", params)
        materialize_extract_identities(con, params)
        materialize(con, "intermediate/link_record_identities", params)
        materialize_linkage(con, "intermediate/link_identities", params)  # its ID keys come from blocking.py
        # The linker's records are identities (link_record_identities); an identity is the
        # person of any of its records.
        keys = con.execute("SELECT source, record_key, identity_key AS unique_id FROM int_extract_identities").pl()
        record_person = keys.join(record_person, on=["source", "record_key"]).select("unique_id", "person_id").unique("unique_id")
        members = con.execute("SELECT * FROM link_identities WHERE side = 'member'").pl()
        records = con.execute(
            f"SELECT * FROM link_identities WHERE side = 'record' AND (id18 IS NOT NULL OR partial15 IS NOT NULL OR partial6 IS NOT NULL) "
            f"USING SAMPLE reservoir({RECORD_SAMPLE} ROWS) REPEATABLE (3)"
        ).pl()
    members = members.join(persons.select(pl.col("member_id").alias("unique_id"), "person_id"), on="unique_id", how="left")
    records = records.join(record_person, on="unique_id", how="left")
    label = pl.coalesce(pl.col("person_id"), pl.concat_str([pl.lit("nobody:"), pl.col("unique_id")])).alias("person_label")
    records, members = records.with_columns(label), members.with_columns(label)
    # The linker's population: damaged or partial record IDs, and records of people whose
    # roster ID is damaged.
    damaged_people = members.filter(~pl.col("id_valid"))["person_label"]
    records = records.filter(
        (~pl.col("id_valid") & (pl.col("id18").is_not_null() | pl.col("partial15").is_not_null()))
        | pl.col("person_label").is_in(damaged_people.implode())
    )
    # One record and one member row per person: m must count record-member pairs only,
    # not the many pairs of one person's own settlements (or member rows) with each other.
    records = records.unique("person_label", keep="first", maintain_order=True)
    members = members.unique("person_label", keep="first", maintain_order=True)
    return with_name_keys(records), with_name_keys(members)


def train(households: int, seed: int, out: Path = model.MODEL_PATH) -> dict:
    from splink import Linker
    from splink.internals.duckdb.database_api import DuckDBAPI

    from devtools.synth.generate import generate
    from pipelines.ingest.load import load_source
    from sources.registry import all_sources

    quarter = quarter_range("2025Q1")[0]
    with tempfile.TemporaryDirectory(prefix="doudi-train-") as tmp:
        inbox = Path(tmp) / "inbox"
        generate(inbox, [quarter], households=households, seed=seed)
        warehouse = Path(tmp) / "train.duckdb"
        with connect(warehouse) as con:
            for spec in all_sources():
                load_source(con, spec, inbox / str(quarter), quarter, "train")
        records, members = _identities(warehouse, quarter, inbox / "truth")

    con = duckdb.connect()
    columns = SPLINK_COLUMNS + ["person_label"]
    con.register("__r", records.select(columns).to_arrow())
    con.register("__m", members.select(columns).to_arrow())
    con.execute("CREATE TABLE a_records AS SELECT * FROM __r; CREATE TABLE b_members AS SELECT * FROM __m")
    db = DuckDBAPI(con)
    settings = model.untrained_settings()
    settings.additional_columns_to_retain = ["person_label"]
    linker = Linker(
        [db.register("a_records", dataset_display_name="a_records"), db.register("b_members", dataset_display_name="b_members")],
        settings,
        log_level=logging.WARNING,
    )
    # The prior is re-estimated on every run; this one only makes the saved model complete.
    linker.training.estimate_probability_two_random_records_match(["l.person_label = r.person_label"], recall=1.0)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e7, seed=seed)
    linker.training.estimate_m_from_label_column("person_label")
    out.parent.mkdir(parents=True, exist_ok=True)
    linker.misc.save_model_to_json(str(out), overwrite=True)
    # The committed form: what was learned, no blocking rules (generated on every run).
    trained = model.learned_model(json.loads(out.read_text(encoding="utf-8")))
    _set_rare_u(trained)
    _fill_prior_m(trained)
    out.write_text(json.dumps(trained, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    meta = {
        "version": model.MODEL_VERSION,
        "trained_on": dt.date.today().isoformat(),
        "data": f"synthetic province (doudi synth), {households} households, seed {seed}, quarter {quarter}",
        "records_sampled": records.height,
        "members": members.height,
        "training_prior": trained["probability_two_random_records_match"],
        "note": "The prior is re-estimated on every run; m and u are reused.",
    }
    model.META_PATH.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return meta


# m for levels the training truth does not show (or shows too rarely to count on), set from
# what they mean: the share of true matches in which two identities compare that way.
PRIOR_M = {
    "id18": {
        "two different valid IDs": 1e-4,  # a person with two valid IDs: a registration error
        "same ID, check digit wrong on both": 0.01,  # one wrong ID copied between departments
        "same valid ID": 0.01,  # only met when one row of a person twice enrolled is damaged
        "two digits wrong": 5e-4,
        "only Excel's six digits agree": 0.01,
        "All other comparisons": 5e-4,
    },
    "birth_date": {  # when one side has no full ID, its birth date is usually right
        "Exact match on birth_date": 0.95,
        "Abs difference of 'birth_date <= 31 day'": 0.02,
        "Abs difference of 'birth_date <= 366 day'": 0.02,
        "All other comparisons": 0.01,
    },
    "sex": {"Exact match on sex": 0.99, "All other comparisons": 0.01},
}

# u for the ID levels two different people almost never reach, for a province of about
# 35 million people whose IDs spread over ~130 county codes, ~29,000 birth dates and 1,000
# sequence numbers (a synthetic province is far too sparse to count these on):
# - one digit wrong: an ID has ~180 one-edit neighbours, ~0.7% of them taken -> ~1.3 real
#   people within one edit, out of 35 million: 4e-8;
# - 15 Excel digits (rounded or cut): ~1 person shares region, birth date and first sequence digit: 1e-7;
# - region and birth date: ~9 people share them: 3e-7; two digits wrong: 1e-6;
# - the same ID: only a data-entry collision: 1e-10.
RARE_U = {
    "same valid ID": 1e-10,
    "same ID, check digit wrong on both": 1e-10,
    "one digit wrong or two swapped": 4e-8,
    "Excel's 15 digits (rounded or cut) and the name agree": 1e-7,
    "region and birth date agree": 3e-7,
    "two digits wrong": 1e-6,
}


def _fill_prior_m(trained: dict) -> None:
    for comparison in trained["comparisons"]:
        defaults = PRIOR_M.get(comparison["output_column_name"], {})
        for level in comparison["comparison_levels"]:
            label = level.get("label_for_charts")
            if label in defaults and (level.get("m_probability") is None or label in ("two different valid IDs", "same valid ID")):
                level["m_probability"] = defaults[label]


def _set_rare_u(trained: dict) -> None:
    for comparison in trained["comparisons"]:
        if comparison["output_column_name"] != "id18":
            continue
        for level in comparison["comparison_levels"]:
            label = level.get("label_for_charts")
            if label in RARE_U:
                level["u_probability"] = RARE_U[label]
        regions = [lv for lv in comparison["comparison_levels"] if lv.get("label_for_charts") == "only Excel's six digits agree"]
        for level in regions:  # ~130 county codes in a province
            level["u_probability"] = level.get("u_probability") or 1 / 130


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(train(args.households, args.seed), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
