"""Which pairs Splink compares: the ID keys and the blocking rules, each defined once.

Splink scores only the pairs a blocking rule lets through; a pair no rule catches is never
linked probabilistically, however alike the two sides are. Everything that depends on the
rules is generated from the objects here, so that none of it can drift from the rest:

- the key columns of `warehouse/intermediate/link_identities.sql` (`IdKey.sql`),
- the semi-joins of `link_candidate_records.sql` that pick the records near a member whose
  own ID is damaged (a record no rule could pair with such a member is not sent to Splink),
- the rules Splink gets, on DuckDB and on Spark (`splink_rules`), for records against
  members and for member rows against each other,
- the columns Splink is given (`probabilistic.SPLINK_COLUMNS`),
- the rule names `audit.link_runs` counts the pairs by (`RULE_NAMES`, in Splink's order:
  a pair is counted under the first rule that catches it).

`tests/unit/pipelines/link/test_blocking_pairs.py` holds a hand-built pair per rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from splink.internals.blocking_rule_library import CustomRule

ID_LENGTH = 18


@dataclass(frozen=True)
class IdKey:
    """An 18-character ID (`id18`) with digits `first` to `last` (counted from 1) left out:
    two IDs that differ only there share the key. `rule` names the blocking rule that
    pairs on it."""

    column: str
    first: int
    last: int
    rule: str

    @property
    def drops(self) -> str:
        return f"digits {self.first}-{self.last}"

    @property
    def sql(self) -> str:
        """The key as a DuckDB expression over `id18`."""
        kept = []
        if self.first > 1:
            kept.append(f"substr(id18, 1, {self.first - 1})")
        if self.last < ID_LENGTH:
            kept.append(f"substr(id18, {self.last + 1}, {ID_LENGTH - self.last})")
        return " || ".join(kept)


# A single wrong digit, or two neighbouring digits swapped, leaves an 18-digit ID equal to
# the right one everywhere else. The ID has four parts (region 1-6, birth year 7-10, birth
# month-day 11-14, sequence and check 15-18): an error inside one part leaves the other
# three intact, and a swap across a boundary leaves everything outside the pair intact.
# Each key keeps at least 12 characters, so a block holds one or two people, and the
# number of pairs grows with the data, not its square.
ID_KEYS: tuple[IdKey, ...] = (
    # an error in the region (the county code)
    IdKey("k_no_region", 1, 6, rule="ID_WITHOUT_REGION"),
    # an error in the birth year
    IdKey("k_no_year", 7, 10, rule="ID_WITHOUT_BIRTH_YEAR"),
    # an error in the birth month or day
    IdKey("k_no_month_day", 11, 14, rule="ID_WITHOUT_MONTH_DAY"),
    # an error in the sequence number or the check character
    IdKey("k_no_sequence", 15, 18, rule="ID_WITHOUT_SEQUENCE"),
    # a swap across the region / birth year boundary
    IdKey("k_no_6_7", 6, 7, rule="ID_WITHOUT_DIGITS_6_7"),
    # a swap across the birth year / month boundary
    IdKey("k_no_10_11", 10, 11, rule="ID_WITHOUT_DIGITS_10_11"),
    # a swap across the birth day / sequence boundary
    IdKey("k_no_14_15", 14, 15, rule="ID_WITHOUT_DIGITS_14_15"),
)
ID_KEY_COLUMNS = [key.column for key in ID_KEYS]

# At least one of the two IDs cannot be trusted as it stands (typo, Excel, missing). Two
# valid IDs either agree (the deterministic pass linked them) or belong to two people.
EITHER_DAMAGED = "(NOT coalesce(l.id_valid, false) OR NOT coalesce(r.id_valid, false))"


@dataclass(frozen=True)
class BlockingRule:
    """A blocking rule: its name (as `audit.link_runs` counts pairs by it) and its
    condition, DuckDB SQL over the two sides `l` and `r` (Splink translates it for Spark)."""

    name: str
    condition: str

    def splink(self, dedupe: bool = False) -> CustomRule:
        """The rule for Splink; `dedupe`: between member rows, never of one household
        (two rows of one household are never "the same person enrolled twice")."""
        condition = f"({self.condition}) AND l.household_id <> r.household_id" if dedupe else self.condition
        return CustomRule(condition, sql_dialect="duckdb")


BLOCKING_RULES: tuple[BlockingRule, ...] = (
    # One per ID key (above): one wrong digit or one swap of neighbours, on either side.
    *(BlockingRule(key.rule, f"l.{key.column} = r.{key.column} AND {EITHER_DAMAGED}") for key in ID_KEYS),
    # An ID that went through Excel keeps 15 significant digits: rounded where it was
    # written out in scientific form (`rounded15` is the full ID rounded the same way) ...
    # (One rule per direction and form: an OR across columns would defeat the hash join and
    # compare every pair.)
    BlockingRule("EXCEL_15_DIGITS_LEFT", "l.partial15 = r.rounded15"),
    BlockingRule("EXCEL_15_DIGITS_RIGHT", "r.partial15 = l.rounded15"),
    # ... or the first 15 as Excel stores the number (cut off: 140502198001011000).
    BlockingRule("EXCEL_15_DIGITS_CUT_LEFT", "l.partial15 = substr(r.id18, 1, 15)"),
    BlockingRule("EXCEL_15_DIGITS_CUT_RIGHT", "r.partial15 = substr(l.id18, 1, 15)"),
    # A roster member without a usable ID is found by name and birth date (a record's birth
    # date is read from its ID).
    BlockingRule(
        "NAME_AND_BIRTH_DATE",
        "l.name_s = r.name_s AND l.birth_date = r.birth_date AND "
        "(l.id18 IS NULL OR r.id18 IS NULL OR NOT coalesce(l.id_valid, false) OR NOT coalesce(r.id_valid, false))",
    ),
    # Not blocked on: an ID that Excel cut to six digits (only the region is left). A name
    # and a county are not enough to say who a record is about, and pairing every such
    # record with every namesake in the county would cost more than it could ever find.
)
RULE_NAMES = [rule.name for rule in BLOCKING_RULES]


def splink_rules(link_type: str, dialect: str = "duckdb") -> list[dict]:
    """The rules as Splink's settings hold them: records against members (`link_only`),
    or member rows against each other (`dedupe_only`)."""
    dedupe = link_type != "link_only"
    return [rule.splink(dedupe).get_blocking_rule(dialect).as_dict() for rule in BLOCKING_RULES]


# ---- the SQL generated from the keys -------------------------------------------------------


def key_columns_sql(indent: str) -> str:
    """The key columns of `link_identities.sql`'s select list."""
    return f",\n{indent}".join(f"{key.sql} as {key.column}" for key in ID_KEYS)


def record_key_columns_sql(alias: str) -> str:
    """`r.k_no_region, r.k_no_year, ...`: the keys as a select list of `alias`."""
    return ", ".join(f"{alias}.{key.column}" for key in ID_KEYS)


def near_damaged_member_sql(indent: str) -> str:
    """The records of `records` sharing an ID key with a member of `damaged_members`:
    one semi-join per key, united (the keys pair what the ID rules pair)."""
    joins = [
        f"select unique_id from records as r semi join damaged_members as m on r.{key.column} = m.{key.column}" for key in ID_KEYS
    ]
    return f"\n{indent}union ".join(joins)
