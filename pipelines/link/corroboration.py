"""Identity corroboration: when a record that matches a roster member's ID is that member.

An ID number alone never proves a person. Hand-kept registers copy the ID from the row
above, settle a newborn's bill under a parent's ID, and hold twins whose IDs differ by one
digit. So every link the linker makes passes the two named rules of this module, and
nothing else in the project decides them:

NAME RULE (`name_agreement`): a record links to a member only when its name is the
  member's name or a variant of it. Names are compared by their key: the name as cleaned
  at ingest (NFKC, no spaces, one middle dot), without the dot between the parts of a
  minority name, each character made simplified (OpenCC, per character). Then
    same        the cleaned names are identical
    normalised  the keys are identical (traditional characters, a dropped middle dot)
    variant     the keys are one character apart: one changed, added or dropped (a typo,
                a same-sounding character)
    different   anything further apart: another person's name
    missing     a side has no name: nothing to corroborate the ID with
  and, for a link only, `confirmed`: the name is `different` but a caseworker confirmed the
  record is the member's (a Q02 warning returned 属实: a changed name, say).
  An ID match (exact, repaired, from a certificate or student number) with a `different`
  name is an identity conflict (rule Q02), not a link.

SIBLING RULE (`sibling_sql`): a record whose own ID is valid, one or two digits from the
  member's ID, with the member's birth date and a name that is not the member's (a variant
  included), is a twin or a sibling of the member, not the member with a mistyped ID. No
  link, whatever Splink scores.

A link's `id_agreement` and `name_agreement` are kept in `linked.matches`; the rules read
`corroborated` (ID and name agree outright) to decide whether a warning may ask to stop a
benefit, and the lists say in Chinese how each record was matched (`pipelines/exports/
evidence.py`).
"""

from __future__ import annotations

import duckdb
import polars as pl

from pipelines.link.names import _char_keys

# RULES.md, Q02: "a name one character away from it (one character changed, added or dropped)".
NAME_VARIANT_MAX_EDITS = 1
# RULES.md, Identity corroboration: "An ID one or two digits from a roster member's".
SIBLING_MAX_ID_DIGITS = 2
MIDDLE_DOT = "·"  # ingest writes every dot of a minority name as this one

NAME_AGREEMENTS = ("same", "normalised", "variant", "different", "missing", "confirmed")
# A link is made only on these; a `different` name on an equal ID is a conflict.
LINKING_NAMES = ("same", "normalised", "variant")
# ID and name agree outright (or a caseworker said so): what a stop warning (D01, D02)
# needs to be acted on as it stands.
AGREEING_NAMES = ("same", "normalised", "confirmed")

# How the record's ID compares with the member's, from strongest to weakest.
ID_AGREEMENTS = {
    "same": "the cleaned IDs are equal and valid",
    "upgraded_15": "equal once the 15-digit legacy number is upgraded to 18",
    "from_certificate": "the ID carried by the disability certificate number is the member's",
    "from_student_no": "the ID carried by the national student number is the member's",
    "same_invalid": "equal, but the check digit fails (or the number may be Excel-rounded)",
    "one_digit": "one digit differs",
    "swapped": "two neighbouring digits swapped",
    "two_digits": "two digits differ",
    "excel_15": "the 15 digits Excel keeps agree",
    "member_missing": "the roster holds no usable ID for the member (name and birth date agree)",
    "partial": "part of the ID agrees",
}
AGREEING_IDS = ("same", "upgraded_15", "from_certificate", "from_student_no")


def name_key(name: str | None) -> str | None:
    """The name as compared: no middle dot, every character simplified."""
    if not name:
        return None
    return "".join(_char_keys(c)[0] for c in name if c != MIDDLE_DOT) or None


def within_one_edit(a: str, b: str) -> bool:
    """True when a and b are at most one character changed, added or dropped apart."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > NAME_VARIANT_MAX_EDITS:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]  # one changed
    return a[i:] == b[i + 1 :]  # one added to the shorter


def name_agreement(record_name: str | None, member_name: str | None) -> str:
    """The NAME RULE: same | normalised | variant | different | missing."""
    if not record_name or not member_name:
        return "missing"
    if record_name == member_name:
        return "same"
    a, b = name_key(record_name), name_key(member_name)
    if a is None or b is None:
        return "missing"
    if a == b:
        return "normalised"
    return "variant" if within_one_edit(a, b) else "different"


def sibling_sql(record: str = "r", member: str = "m") -> str:
    """The SIBLING RULE in SQL, for a pair with a `name_agreement` column and the two
    identities' id18, id_valid and birth_date as `<record>_id18` ... (never null)."""
    r, m = record, member
    return (
        f"coalesce({r}_id_valid AND {m}_id18 IS NOT NULL AND {r}_id18 <> {m}_id18 "
        f"AND damerau_levenshtein({r}_id18, {m}_id18) <= {SIBLING_MAX_ID_DIGITS} "
        f"AND {r}_birth_date = {m}_birth_date AND name_agreement NOT IN {AGREEING_NAMES!r}, false)"
    )

# SQL: how a record's ID compares with a member's when it is not equal (the pairs Splink
# found), from the `r_`/`m_` identities of link_identities.sql.
ID_AGREEMENT_SQL = """
    CASE
        WHEN r_id18 = m_id18 THEN CASE WHEN r_id_valid AND m_id_valid THEN 'same' ELSE 'same_invalid' END
        WHEN r_partial15 IS NOT NULL THEN 'excel_15'
        WHEN m_partial15 IS NOT NULL THEN 'excel_15'
        WHEN m_id18 IS NULL THEN 'member_missing'
        WHEN r_id18 IS NULL THEN 'partial'
        WHEN levenshtein(r_id18, m_id18) = 1 THEN 'one_digit'
        WHEN damerau_levenshtein(r_id18, m_id18) = 1 THEN 'swapped'
        WHEN damerau_levenshtein(r_id18, m_id18) = 2 THEN 'two_digits'
        ELSE 'partial'
    END
"""

# SQL, over linked.matches: the link corroborates the person outright.
CORROBORATED_SQL = (
    f"(id_agreement IN {AGREEING_IDS!r} AND name_agreement IN {AGREEING_NAMES!r} "
    "AND match_method <> 'roster_duplicate')"
)


PAIR_COLUMNS = ("unique_id", "name", "id18", "id_valid", "birth_date", "partial15")


def judge_pairs(
    con: duckdb.DuckDBPyConnection, pairs: pl.DataFrame, left: pl.DataFrame, right: pl.DataFrame, symmetric: bool = False
) -> pl.DataFrame:
    """The pairs (left_id, right_id, ...) that pass the NAME RULE and the SIBLING RULE, with
    their `name_agreement` and `id_agreement`. `left` and `right` are identities as
    link_identities.sql builds them (PAIR_COLUMNS). With `symmetric` (two member rows), the
    sibling rule is tried with either row as the one whose ID is valid."""
    if pairs.height == 0:
        return pairs.with_columns(pl.lit(None, dtype=pl.Utf8).alias("name_agreement"), pl.lit(None, dtype=pl.Utf8).alias("id_agreement"))
    install(con)
    left_ids, right_ids = pairs["left_id"].unique().implode(), pairs["right_id"].unique().implode()
    con.register("__judged_pairs", pairs.to_arrow())
    con.register("__judged_left", left.select(PAIR_COLUMNS).filter(pl.col("unique_id").is_in(left_ids)).to_arrow())
    con.register("__judged_right", right.select(PAIR_COLUMNS).filter(pl.col("unique_id").is_in(right_ids)).to_arrow())
    sibling = sibling_sql("r", "m") + (f" OR {sibling_sql('m', 'r')}" if symmetric else "")
    try:
        return con.execute(
            f"""
            WITH paired AS (
                SELECT p.*,
                       r.name AS r_name, r.id18 AS r_id18, r.id_valid AS r_id_valid, r.birth_date AS r_birth_date, r.partial15 AS r_partial15,
                       m.name AS m_name, m.id18 AS m_id18, m.id_valid AS m_id_valid, m.birth_date AS m_birth_date, m.partial15 AS m_partial15
                FROM __judged_pairs AS p
                JOIN __judged_left AS r ON r.unique_id = p.left_id
                JOIN __judged_right AS m ON m.unique_id = p.right_id
            ),
            named AS (
                SELECT *, {name_agreement_sql('r_name', 'm_name')} AS name_agreement FROM paired
            )
            SELECT {", ".join(pairs.columns)}, name_agreement, {ID_AGREEMENT_SQL} AS id_agreement
            FROM named
            WHERE name_agreement IN {LINKING_NAMES!r} AND NOT ({sibling})
            """
        ).pl()
    finally:
        for name in ("__judged_pairs", "__judged_left", "__judged_right"):
            con.unregister(name)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Make `name_agreement(record_name, member_name)` callable from the connection's SQL.

    SQL calls it as `CASE WHEN a = b THEN 'same' ELSE name_agreement(a, b) END`: DuckDB
    evaluates a CASE branch only for its own rows, so Python sees only the few pairs whose
    names differ as written."""
    try:
        con.remove_function("name_agreement")
    except (duckdb.InvalidInputException, duckdb.CatalogException):
        pass
    con.create_function(
        "name_agreement", name_agreement, [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        null_handling="special",
    )


def name_agreement_sql(record_name: str, member_name: str) -> str:
    """The SQL expression of the NAME RULE for two name columns."""
    return f"(CASE WHEN {record_name} = {member_name} THEN 'same' ELSE name_agreement({record_name}, {member_name}) END)"
