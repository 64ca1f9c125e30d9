"""Two member rows that one record links to strongly, with one name, in two households,
are one person enrolled twice (`shared_record_bridges`)."""

import duckdb
import polars as pl

from pipelines.link.linker import shared_record_bridges

MEMBERS = pl.DataFrame(
    {
        "unique_id": ["m1", "m2", "m3", "m4", "m5"],
        "household_id": ["H1", "H2", "H3", "H3", "H4"],
        "name_s": ["张三", "张三", "李四", "李四", "张三"],
    }
)


def links(*rows):
    con = duckdb.connect()
    con.register("frame", pl.DataFrame(rows, schema=["source", "record_key", "member_id", "match_probability"], orient="row").to_arrow())
    con.execute("CREATE TEMP TABLE __links AS SELECT * FROM frame")
    return con


def test_a_record_linked_strongly_to_namesakes_in_two_households_bridges_them():
    con = links(("death", "D1", "m1", 0.999), ("death", "D1", "m2", 0.995), ("medical", "S1", "m2", 1.0), ("medical", "S1", "m1", 1.0))
    bridges = shared_record_bridges(con, "__links", MEMBERS)
    # one pair, however many records it shares; its probability is that of its best record
    # (a record's is the weaker of its two links)
    assert bridges.to_dicts() == [
        {"left_id": "m1", "right_id": "m2", "match_probability": 1.0, "match_method": "shared_records"}
    ]
    only_death = links(("death", "D1", "m2", 0.995), ("death", "D1", "m1", 0.999))
    assert shared_record_bridges(only_death, "__links", MEMBERS)["match_probability"].to_list() == [0.995]


def test_no_bridge_within_a_household_across_names_weakly_or_across_sources():
    con = links(
        ("death", "D2", "m3", 1.0), ("death", "D2", "m4", 1.0),  # one household
        ("death", "D3", "m1", 1.0), ("death", "D3", "m3", 1.0),  # two names
        ("death", "D4", "m1", 1.0), ("death", "D4", "m5", 0.9),  # one link is weak
        ("death", "D5", "m2", 1.0), ("medical", "D5", "m5", 1.0),  # same key, two sources
    )
    assert shared_record_bridges(con, "__links", MEMBERS).height == 0
