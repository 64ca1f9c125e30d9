"""What the pipeline must find in a synthetic province: the true links and warnings.

Links: every delivered record about a person who stands on the quarter's roster, with a
class saying what a linker needs to find it:
  exact          the cleaned ID equals the roster's cleaned ID
  fuzzy          one side's ID is damaged (a typo, an Excel-rounded number, an empty or
                 mistyped roster ID) but the other side and the name identify the person
  unrecoverable  no usable identity (no ID, or only the six digits Excel leaves); or an
                 identity the project's corroboration may not accept on its own: the
                 member's record under a changed name (an ID match with another name is a
                 Q02 for the caseworker), a mistyped ID that still passes its check digit,
                 or a valid ID one digit from the member's mistyped roster ID, with a name
                 only near the member's (to the sibling rule, a twin)
The identity hazards (devtools/synth/hazards.py: another person's record under a member's
ID, a newborn's bill under the mother's, a twin's record) are nobody's on the roster: no
link. `hazards.csv` lists them.

Warnings: RULES.md applied to the true state as delivered (the records' own values, the
standards delivered so far), using the recoverable links; warnings that only an
unrecoverable link would add are listed too, marked as such. This is a second, independent
reading of RULES.md, in polars over clean data, written without looking at the
pipeline's SQL; where the two disagree one of them has misread the rules. Each warning
says which link classes it rests on (`requires`: exact, fuzzy, roster or unrecoverable).
Q02 is read from the records as written, with this module's own reading of the name rule
(`names_compatible`), not the pipeline's.
"""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata

import polars as pl

from devtools.synth.hazards import edit_distance
from devtools.synth.world import World
from pipelines.quarters import Quarter, add_months
from sources.registry import source as source_spec

READABLE = {"none", "format", "legacy15", "from_certificate", "from_student_no"}
PAYING = ["低保", "支出型低保", "特困"]
MARGINAL = ["低保边缘", "刚性支出困难", "防返贫监测"]
STUDY_STAGES = ["学前", "小学", "初中", "高中", "中职", "高职", "本科"]
ASSISTANCE_RATE = {"特困": 0.9, "低保": 0.7, "支出型低保": 0.7}
N06_SHARE = 0.25
DEFAULT_STANDARDS = None  # the generator always delivers standards for its counties


ROSTER_READABLE = ["exact", "format", "legacy15"]
# Name habits that leave the name the same once cleaned (spaces, the traditional form):
# ID and name agree outright. A same-sounding or mistyped character is only near it.
NAME_AGREES = ["none", "space", "traditional"]
NAME_DOTS = "·•.・‧"


def _requires(flag: str, then: str = "fuzzy", otherwise: str = "exact") -> pl.Expr:
    """What a warning asks of the linker: `then` where the column `flag` holds."""
    return pl.when(pl.col(flag)).then(pl.lit(then)).otherwise(pl.lit(otherwise))


def _unrecoverable_if(condition: pl.Expr, link_class: pl.Expr) -> pl.Expr:
    return pl.when(condition).then(pl.lit("unrecoverable")).otherwise(link_class)


@functools.cache
def _to_simplified():
    import opencc

    return opencc.OpenCC("t2s")


def name_key(name: str | None) -> str:
    """A name as RULES.md compares it: full width, spaces and the dots of minority names
    normalised, traditional characters made simplified."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(c for c in text if not c.isspace() and c not in NAME_DOTS)
    return _to_simplified().convert(text)


def names_compatible(written: str | None, roster: str | None) -> bool:
    """The same name or a variant: equal once normalised, or one character changed, added
    or dropped."""
    a, b = name_key(written), name_key(roster)
    return bool(a) and bool(b) and (a == b or edit_distance(a, b) <= 1)


def _read_class(damage: pl.Expr) -> pl.Expr:
    return (
        pl.when(damage.is_in(list(READABLE))).then(pl.lit("exact"))
        .when(damage.is_in(["typo_sub", "typo_swap"])).then(pl.lit("typo"))
        .when(damage == "excel15").then(pl.lit("partial15"))
        .when(damage == "excel6").then(pl.lit("partial6"))
        .otherwise(pl.lit("missing"))
    )


def link_class(extract_read: pl.Expr, roster_kind: pl.Expr) -> pl.Expr:
    roster_ok = roster_kind.is_in(["exact", "format", "legacy15"])
    return (
        pl.when((extract_read == "exact") & roster_ok).then(pl.lit("exact"))
        .when(extract_read.is_in(["typo", "partial15"]) & roster_ok).then(pl.lit("fuzzy"))
        .when((extract_read == "exact") & roster_kind.is_in(["typo", "empty"])).then(pl.lit("fuzzy"))
        .otherwise(pl.lit("unrecoverable"))
    )


class Truth:
    def __init__(self, world: World, records: dict[int, dict[str, pl.DataFrame]], metas: pl.DataFrame):
        self.world = world
        self.quarters = world.quarters
        self.records = records  # q -> source -> clean records (canonical columns + __person_id)
        # one row per delivered record copy: q, source, record_key, __person_id, __id_damage, __expect_quarantine
        self.metas = metas

    # ---- links ----------------------------------------------------------------------------
    def _linkable_records(self, q: int, source: str) -> pl.DataFrame:
        """Records of `source` that quarter q links, one row per record key with the best
        way its copies can be read."""
        m = self.metas.filter(pl.col("source") == source)
        if source == "death":
            m = m.filter(pl.col("q") <= q)
        elif source == "medical":
            m = m.filter(pl.col("q") <= q)
        else:
            m = m.filter(pl.col("q") == q)
        m = m.filter(pl.col("__expect_quarantine").is_null())
        m = m.with_columns(_read_class(pl.col("__id_damage")).alias("read"))
        if source == "disability":  # the certificate number carries the ID, whatever 身份证号 says
            m = m.with_columns(pl.lit("exact").alias("read"))
        elif source == "education":  # so does a G + ID student number
            g_number = pl.col("record_key").str.starts_with("G")
            m = m.with_columns(pl.when(g_number).then(pl.lit("exact")).otherwise(pl.col("read")).alias("read"))
        rank = pl.col("read").replace_strict({"exact": 0, "typo": 1, "partial15": 2, "partial6": 3, "missing": 4}, return_dtype=pl.Int32)
        # a record renamed in every copy delivered cannot be linked on its own
        renamed = m.group_by("record_key").agg((pl.col("__name_variant") == "renamed").all().alias("renamed"))
        m = m.sort(rank).group_by("record_key", maintain_order=True).first().join(renamed, on="record_key", how="left")
        if source == "medical":
            window = self._medical_window(q)
            m = m.join(window.select("settlement_id"), left_on="record_key", right_on="settlement_id", how="semi")
        return m

    def _medical_window(self, q: int) -> pl.DataFrame:
        end = self.quarters[q].end
        start = add_months(end, -12)
        frames = [self.records[k]["medical"] for k in range(q + 1)]
        s = pl.concat(frames).unique("settlement_id", keep="first")
        return s.filter((pl.col("settlement_date") > start) & (pl.col("settlement_date") <= end))

    def roster(self, q: int) -> pl.DataFrame:
        return self.world.roster_members(q)

    def links(self, q: int) -> pl.DataFrame:
        roster = self.roster(q).select("member_id", "household_id", "person_id", "roster_id_kind", "roster_birth_shift").join(
            self.world.persons.select("person_id", pl.col("id_number").str.ends_with("000").alias("__id_ends_000")),
            on="person_id", how="left",
        )
        frames = []
        for source in ("medical", "disability", "education", "death", "detention"):
            recs = self._linkable_records(q, source)
            joined = recs.join(roster, left_on="__person_id", right_on="person_id", how="inner")
            cls = link_class(pl.col("read"), pl.col("roster_id_kind"))
            # A damaged ID and a mistyped name together are two faults: not recoverable.
            cls = _unrecoverable_if((cls == "fuzzy") & (pl.col("__name_variant") == "mistyped"), cls)
            # A mistyped ID that passes its check digit, with a name only near the
            # member's, is a twin's to the sibling rule.
            sibling_like = pl.col("__sibling_like").fill_null(False) if "__sibling_like" in joined.columns else pl.lit(False)
            cls = _unrecoverable_if((cls == "fuzzy") & sibling_like & ~pl.col("__name_variant").is_in(NAME_AGREES), cls)
            # So is the record's valid ID one digit from the member's mistyped roster ID,
            # with the roster's birth date and a name only near the member's.
            twin_of_roster = (pl.col("read") == "exact") & (pl.col("roster_id_kind") == "typo") & (pl.col("roster_birth_shift") == 0)
            cls = _unrecoverable_if((cls == "fuzzy") & twin_of_roster & ~pl.col("__name_variant").is_in(NAME_AGREES), cls)
            # The member's record under a changed name: a Q02, not a link.
            cls = _unrecoverable_if(pl.col("renamed").fill_null(False), cls)
            # An ID that may be an Excel-rounded number (ends in 000) links only on an equal name.
            cls = _unrecoverable_if((cls == "exact") & pl.col("__id_ends_000") & ~pl.col("__name_variant").is_in(NAME_AGREES), cls)
            # Linked, and the ID and name agree outright (what a stop warning needs).
            corroborated = (cls == "exact") & pl.col("__name_variant").is_in(NAME_AGREES) & ~pl.col("__id_ends_000")
            frames.append(
                joined.select(
                    pl.lit(str(self.quarters[q])).alias("quarter"),
                    pl.lit(source).alias("source"),
                    "record_key",
                    "member_id",
                    cls.alias("link_class"),
                    pl.col("__id_damage").alias("id_damage"),
                    pl.col("roster_id_kind"),
                    pl.col("__name_variant").alias("name_variant"),
                    corroborated.alias("corroborated"),
                )
            )
        return pl.concat(frames)

    # ---- standards ----------------------------------------------------------------------------
    def standards_at(self, q: int) -> pl.DataFrame:
        """Standard and disposable income in force on Q.end, per county and 城乡类别, from
        every standards delivery so far (a later delivery of the same row wins)."""
        delivered = [
            self.records[k]["standards"].with_columns(pl.lit(k).alias("k"))
            for k in range(q + 1)
            if "standards" in self.records[k]
        ]
        if not delivered:
            raise ValueError("no standards delivered")
        s = pl.concat(delivered).sort("k").unique(["county_code", "urban_rural", "effective_date"], keep="last")
        end = self.quarters[q].end
        return (
            s.filter(pl.col("effective_date") <= end)
            .sort("effective_date")
            .group_by(["county_code", "urban_rural"])
            .last()
            .select("county_code", "urban_rural", pl.col("monthly_standard_yuan").alias("S"), pl.col("disposable_income_yuan").alias("D"))
        )

    # ---- warnings ------------------------------------------------------------------------------
    def warnings(self, q: int) -> pl.DataFrame:
        """The warnings a linker finding every recoverable link must raise; plus, marked
        `requires = unrecoverable`, those that only a link no linker can be expected to
        find would raise (a pipeline that raises them is right, one that does not is not
        wrong)."""
        links = self.links(q)
        recoverable = self._warnings(q, links.filter(pl.col("link_class") != "unrecoverable"))
        beyond = self._warnings(q, links).join(
            recoverable.select("rule_code", "household_id", "member_id"), on=["rule_code", "household_id", "member_id"],
            how="anti", nulls_equal=True,
        )
        return pl.concat([recoverable, beyond.with_columns(pl.lit("unrecoverable").alias("requires"))])

    def _warnings(self, q: int, links: pl.DataFrame) -> pl.DataFrame:
        quarter = self.quarters[q]
        roster = self.roster(q)
        parts = [
            self._d01(q, quarter, roster, links),
            self._d02(q, quarter, roster, links),
            self._d03(q, quarter, roster),
            self._d04(q, quarter, roster),
        ]
        n01 = self._n01(q, quarter, roster, links)
        parts += [
            n01,
            self._n02(q, quarter, roster, links),
            self._n03(q, quarter, roster, links),
            self._n04(q, quarter, roster, links),
            self._n05(q, quarter, roster, links),
            self._n06(q, quarter, roster, links, n01),
            self._q01(q, quarter, roster),
            self._q02(q, quarter, roster),
        ]
        schema = {
            "quarter": pl.Utf8, "rule_code": pl.Utf8, "household_id": pl.Utf8, "member_id": pl.Utf8,
            "severity": pl.Utf8, "due_date": pl.Date, "requires": pl.Utf8,
        }
        return pl.concat([p.select(list(schema)).cast(schema) for p in parts]).with_columns(pl.lit(str(quarter)).alias("quarter"))

    @staticmethod
    def _member_warning(frame: pl.DataFrame, code: str, severity, due, requires="requires") -> pl.DataFrame:
        return frame.select(
            pl.lit(code).alias("rule_code"),
            "household_id",
            "member_id",
            (severity if isinstance(severity, pl.Expr) else pl.lit(severity)).alias("severity"),
            (due if isinstance(due, pl.Expr) else pl.lit(due)).alias("due_date"),
            (pl.col(requires) if isinstance(requires, str) else requires).alias("requires"),
        ).with_columns(pl.lit(None, dtype=pl.Utf8).alias("quarter"))

    def _linked(self, links: pl.DataFrame, source: str, records: pl.DataFrame, key: str) -> pl.DataFrame:
        return links.filter(pl.col("source") == source).join(records, left_on="record_key", right_on=key, how="inner")

    def _d01(self, q, quarter: Quarter, roster, links) -> pl.DataFrame:
        deaths = pl.concat([self.records[k]["death"] for k in range(q + 1)]).unique("record_id")
        linked = self._linked(links, "death", deaths, "record_id").filter(pl.col("death_date") <= quarter.end)
        per_member = linked.group_by("member_id").agg(
            pl.col("death_date").min(), (pl.col("link_class") == "fuzzy").all().alias("only_fuzzy"), pl.col("corroborated").any()
        )
        bene = roster.filter(pl.col("is_beneficiary"))
        hit = bene.filter(pl.col("category").is_in(PAYING)).join(per_member, on="member_id")
        living = bene.join(per_member, on="member_id", how="anti").group_by("household_id").len()
        hit = hit.join(living.rename({"len": "living"}), on="household_id", how="left")
        hit = hit.with_columns(pl.col("death_date").dt.offset_by("3mo").alias("due"))
        # red only on a death record whose ID and name agree outright (else verify first)
        stop = ((pl.col("due") < quarter.end) | pl.col("living").is_null()) & pl.col("corroborated")
        severity = pl.when(stop).then(pl.lit("red")).otherwise(pl.lit("orange"))
        return self._member_warning(hit, "D01", severity, pl.col("due"), requires=_requires("only_fuzzy"))

    def _d02(self, q, quarter, roster, links):
        rec = self.records[q]["detention"]
        linked = self._linked(links, "detention", rec, "record_id").filter(
            pl.col("detention_type").is_in(["看守所羁押", "监狱服刑", "强制隔离戒毒"])
            & (pl.col("admission_date") <= quarter.end)
            & (pl.col("release_date").is_null() | (pl.col("release_date") > quarter.end))
        )
        per = linked.group_by("member_id").agg((pl.col("link_class") == "fuzzy").all().alias("only_fuzzy"))
        hit = roster.filter(pl.col("is_beneficiary")).join(per, on="member_id")
        due = quarter.end + dt.timedelta(days=30)
        return self._member_warning(hit, "D02", "orange", due, requires=_requires("only_fuzzy"))

    def _d03(self, q, quarter, roster):
        bene = roster.filter(pl.col("is_beneficiary"))
        counts = bene.group_by("person_id").agg(
            pl.col("household_id").n_unique().alias("households"),
            pl.col("roster_id_kind").is_in(["typo", "empty"]).any().alias("damaged"),
        ).filter(pl.col("households") >= 2)
        hit = bene.join(counts, on="person_id")
        due = quarter.end + dt.timedelta(days=30)
        return self._member_warning(hit, "D03", "orange", due, requires=_requires("damaged", otherwise="roster"))

    def _d04(self, q, quarter, roster):
        h = self._households(roster).filter(pl.col("category") == "支出型低保")
        validity = pl.coalesce(pl.col("validity_end_written"), pl.col("approval_date").dt.offset_by("1y"))
        h = h.with_columns(validity.alias("validity"))
        next_end = quarter.next.end
        due = h.filter(pl.col("validity") <= next_end).with_columns(
            pl.when(pl.col("validity") <= quarter.end).then(pl.lit("orange")).otherwise(pl.lit("yellow")).alias("sev")
        )
        return due.select(
            pl.lit("D04").alias("rule_code"), "household_id", pl.lit(None, dtype=pl.Utf8).alias("member_id"),
            pl.col("sev").alias("severity"), pl.col("validity").alias("due_date"), pl.lit("roster").alias("requires"),
            pl.lit(None, dtype=pl.Utf8).alias("quarter"),
        )

    @staticmethod
    def _households(roster: pl.DataFrame) -> pl.DataFrame:
        return roster.group_by("household_id").agg(
            pl.col("category", "county_code", "urban_rural", "household_size", "annual_income_yuan", "financial_assets_yuan",
                   "approval_date", "validity_end_written").first()
        )

    def _medical_linked(self, q, links, start: dt.date, end: dt.date) -> pl.DataFrame:
        window = self._medical_window(q).filter((pl.col("settlement_date") >= start) & (pl.col("settlement_date") <= end))
        return self._linked(links, "medical", window, "settlement_id")

    def _rigid(self, q, quarter, roster, links) -> pl.DataFrame:
        med = self._medical_linked(q, links, add_months(quarter.end, -12) + dt.timedelta(days=1), quarter.end)
        med = med.join(roster.select("member_id", "household_id"), on="member_id")
        # each settlement once per household even if two member rows of it link to one person
        med_h = med.unique(["household_id", "record_key"]).group_by("household_id").agg(
            pl.col("out_of_pocket_yuan").sum().alias("R_med"), (pl.col("link_class") == "fuzzy").any().alias("fz_med")
        )
        edu = self._linked(links, "education", self.records[q]["education"], "student_no").filter(
            (pl.col("enrolment_status") == "在读") & (pl.col("study_mode") == "全日制")
            & pl.col("stage").is_in(STUDY_STAGES) & (pl.col("high_fee") == "否")
        )
        edu = edu.join(roster.select("member_id", "household_id"), on="member_id").unique(["household_id", "record_key"])
        cost = pl.col("tuition_yuan") + pl.col("boarding_yuan") + pl.col("childcare_yuan") - pl.col("aid_yuan").fill_null(0)
        cost = cost.clip(lower_bound=0)
        edu_h = edu.group_by("household_id").agg(cost.sum().alias("R_edu"), (pl.col("link_class") == "fuzzy").any().alias("fz_edu"))
        return med_h.join(edu_h, on="household_id", how="full", coalesce=True).with_columns(
            pl.col("R_med").fill_null(0.0), pl.col("R_edu").fill_null(0.0),
            (pl.col("fz_med").fill_null(False) | pl.col("fz_edu").fill_null(False)).alias("fuzzy"),
        )

    def _n01(self, q, quarter, roster, links):
        h = self._households(roster).filter(pl.col("category").is_in(MARGINAL))
        h = h.join(self.standards_at(q), on=["county_code", "urban_rural"], how="left")
        h = h.join(self._rigid(q, quarter, roster, links), on="household_id", how="left").with_columns(
            (pl.col("R_med").fill_null(0.0) + pl.col("R_edu").fill_null(0.0)).round(2).alias("R"),
            pl.col("fuzzy").fill_null(False),
        )
        n, I, A, S, R = (pl.col(c) for c in ("household_size", "annual_income_yuan", "financial_assets_yuan", "S", "R"))  # noqa: E741 (the policy's letters)
        hit = h.filter(((I - R) < S * n * 12) & (A <= 36 * S * n))
        return hit.select(
            pl.lit("N01").alias("rule_code"), "household_id", pl.lit(None, dtype=pl.Utf8).alias("member_id"),
            pl.when(R >= I).then(pl.lit("red")).otherwise(pl.lit("orange")).alias("severity"),
            pl.lit(quarter.end + dt.timedelta(days=30)).alias("due_date"),
            pl.when(pl.col("fuzzy")).then(pl.lit("fuzzy")).otherwise(pl.lit("exact")).alias("requires"),
            pl.lit(None, dtype=pl.Utf8).alias("quarter"),
        )

    def _valid_certs(self, q, links) -> pl.DataFrame:
        return self._linked(links, "disability", self.records[q]["disability"], "certificate_no").filter(pl.col("status") == "有效")

    def _n02(self, q, quarter, roster, links):
        certs = self._valid_certs(q, links).filter(
            pl.col("grade").is_in(["一级", "二级"]) | ((pl.col("grade") == "三级") & pl.col("category").is_in(["智力", "精神"]))
        )
        per = certs.group_by("member_id").agg((pl.col("link_class") == "fuzzy").all().alias("only_fuzzy"))
        hit = roster.filter(pl.col("category") == "低保边缘").join(per, on="member_id")
        return self._member_warning(hit, "N02", "orange", quarter.end + dt.timedelta(days=30), requires=_requires("only_fuzzy"))

    def _n03(self, q, quarter, roster, links):
        c, g = pl.col("category"), pl.col("grade")
        certs = self._valid_certs(q, links).filter(
            (c.is_in(["智力", "精神"]) & g.is_in(["一级", "二级", "三级"]))
            | ((c == "肢体") & g.is_in(["一级", "二级"]))
            | ((c == "视力") & (g == "一级"))
        )
        per = certs.group_by("member_id").agg((pl.col("link_class") == "fuzzy").all().alias("only_fuzzy"))
        hit = roster.filter((pl.col("household_size") == 1) & (pl.col("category") == "低保")).join(per, on="member_id")
        return self._member_warning(hit, "N03", "yellow", quarter.end + dt.timedelta(days=30), requires=_requires("only_fuzzy"))

    def _n04(self, q, quarter, roster, links):
        students = self._linked(links, "education", self.records[q]["education"], "student_no").filter(
            (pl.col("enrolment_status") == "在读") & (pl.col("aid_yuan").is_null() | (pl.col("aid_yuan") == 0))
        )
        per = students.group_by("member_id").agg((pl.col("link_class") == "fuzzy").all().alias("only_fuzzy"))
        hit = roster.join(per, on="member_id")
        return self._member_warning(hit, "N04", "yellow", quarter.end + dt.timedelta(days=30), requires=_requires("only_fuzzy"))

    def _n05(self, q, quarter, roster, links):
        med = self._medical_linked(q, links, quarter.start, quarter.end).filter(
            (pl.col("visit_type") == "住院") & (pl.col("medical_assistance_yuan") == 0) & (pl.col("out_of_pocket_yuan") > 0)
        )
        per = med.group_by("member_id").agg(
            pl.col("out_of_pocket_yuan").sum().alias("oop"), (pl.col("link_class") == "fuzzy").any().alias("fz")
        )
        hit = roster.filter(pl.col("is_beneficiary") & pl.col("category").is_in(PAYING)).join(per, on="member_id")
        rate = pl.col("category").replace_strict(ASSISTANCE_RATE, return_dtype=pl.Float64)
        hit = hit.with_columns((rate * pl.col("oop")).alias("expected"))
        severity = pl.when(pl.col("expected") >= 1000).then(pl.lit("orange")).otherwise(pl.lit("yellow"))
        return self._member_warning(hit, "N05", severity, quarter.end + dt.timedelta(days=30), requires=_requires("fz"))

    def _n06(self, q, quarter, roster, links, n01: pl.DataFrame):
        med = self._medical_linked(q, links, quarter.start, quarter.end).join(roster.select("member_id", "household_id"), on="member_id")
        per_h = med.unique(["household_id", "record_key"]).group_by("household_id").agg(
            pl.col("out_of_pocket_yuan").sum().alias("oop"), (pl.col("link_class") == "fuzzy").any().alias("fz")
        )
        h = self._households(roster).filter(pl.col("category") != "特困").join(n01.select("household_id"), on="household_id", how="anti")
        h = h.join(self.standards_at(q), on=["county_code", "urban_rural"], how="left").join(per_h, on="household_id")
        I, n = pl.col("annual_income_yuan"), pl.col("household_size")  # noqa: E741 (the policy's letters)
        hit = h.filter((pl.col("oop") > N06_SHARE * I) & (I / n < pl.col("D")))
        return hit.select(
            pl.lit("N06").alias("rule_code"), "household_id", pl.lit(None, dtype=pl.Utf8).alias("member_id"),
            pl.lit("yellow").alias("severity"), pl.lit(quarter.end + dt.timedelta(days=10)).alias("due_date"),
            pl.when(pl.col("fz")).then(pl.lit("fuzzy")).otherwise(pl.lit("exact")).alias("requires"),
            pl.lit(None, dtype=pl.Utf8).alias("quarter"),
        )

    def _in_view(self, q: int, source: str) -> pl.DataFrame:
        """Every copy of the records of `source` that quarter q reads (deaths delivered so
        far, settlements of the 12 months ending Q.end, the quarter's full stocks), not
        quarantined, with the name as written."""
        m = self.metas.filter((pl.col("source") == source) & pl.col("__expect_quarantine").is_null())
        m = m.filter(pl.col("q") <= q) if source in ("death", "medical") else m.filter(pl.col("q") == q)
        key = source_spec(source).key[0]
        written = pl.concat(
            [self.records[k][source].select(pl.col(key).alias("record_key"), "name", pl.lit(k).alias("q")) for k in range(q + 1)]
        ).unique(["record_key", "q"], keep="first")
        m = m.join(written, on=["record_key", "q"], how="left")
        if source == "medical":
            m = m.join(self._medical_window(q).select(pl.col("settlement_id").alias("record_key")), on="record_key", how="semi")
        return m

    def _q02(self, q, quarter, roster):
        """A record in view whose ID, as read, is a roster member's, under a name that is
        neither the member's nor a variant of it — unless another copy of the record,
        under a compatible name, links it to the member."""
        members = roster.filter(pl.col("roster_id_kind").is_in(ROSTER_READABLE)).select("member_id", "household_id", "person_id").join(
            self.world.persons.select("person_id", "id_number", pl.col("name").alias("roster_name")), on="person_id", how="left"
        ).filter(~pl.col("id_number").str.ends_with("000"))
        frames = []
        for source in ("medical", "disability", "education", "death", "detention"):
            m = self._in_view(q, source).with_columns(_read_class(pl.col("__id_damage")).alias("read"))
            readable = pl.col("read") == "exact"
            if source == "disability":
                readable = pl.lit(True)
            elif source == "education":
                readable = readable | pl.col("record_key").str.starts_with("G")
            # whose ID the record carries: a copied ID or a newborn's bill, the member's;
            # a twin's record carries its own (nobody on the roster)
            carried = (
                pl.when(pl.col("__hazard").is_in(["id_copied", "newborn"])).then(pl.col("__hazard_person"))
                .when(pl.col("__hazard") == "sibling").then(None)
                .otherwise(pl.col("__person_id"))
            )
            m = m.filter(readable).with_columns(carried.alias("carried")).filter(pl.col("carried").is_not_null())
            pairs = m.join(members, left_on="carried", right_on="person_id", how="inner")
            judge = pl.struct("name", "roster_name").map_elements(
                lambda r: names_compatible(r["name"], r["roster_name"]), return_dtype=pl.Boolean
            )
            pairs = pairs.with_columns(pl.when(pl.col("name") == pl.col("roster_name")).then(True).otherwise(judge).alias("compatible"))
            judged = pairs.group_by("record_key", "member_id", "household_id").agg(
                (~pl.col("compatible")).any().alias("conflict"), pl.col("compatible").any().alias("links")
            )
            frames.append(judged.filter(pl.col("conflict") & ~pl.col("links")))
        hit = pl.concat(frames).unique(["member_id", "household_id"])
        return self._member_warning(hit, "Q02", "yellow", quarter.end + dt.timedelta(days=30), requires=pl.lit("exact"))

    def hazards(self) -> pl.DataFrame:
        """The hazard records delivered: quarter, source, record_key, hazard, and the roster
        person whose ID the record carries (or whose twin's it is)."""
        h = self.metas.filter(pl.col("__hazard").is_not_null() & pl.col("__expect_quarantine").is_null())
        return h.select(
            pl.col("q").map_elements(lambda k: str(self.quarters[k]), return_dtype=pl.Utf8).alias("delivered_quarter"),
            "source", "record_key", pl.col("__hazard").alias("hazard"), pl.col("__hazard_person").cast(pl.Utf8).alias("person_id"),
        ).unique(["delivered_quarter", "source", "record_key"]).sort("delivered_quarter", "source", "record_key")

    def _q01(self, q, quarter, roster):
        bad = roster.filter(
            pl.col("roster_id_kind").is_in(["typo", "empty"]) | (pl.col("roster_birth_shift") != 0) | pl.col("roster_sex_flipped")
        )
        return self._member_warning(bad, "Q01", "yellow", quarter.end + dt.timedelta(days=30), requires=pl.lit("roster"))
