"""What a policy replay writes: the summary CSV, the offline page, the households that change.

  OUT/summary.csv     quarter × rule × county: warnings now, under the change, gained, lost,
                      changed (same warning, another severity or amount), the money at stake
  OUT/households.csv  every warning gained, lost or changed, with its household's place;
                      names and ID numbers masked exactly as in marts.warnings_masked (the
                      same SQL), unless --full
  OUT/whatif.html     the page (pipelines/whatif/page.py): no names, no ID numbers

The folder is assembled in a private folder beside it (`.whatif-<pid>-*`, 0700) and moved
into place at the end, so a failed replay leaves no half-written output behind; a replay
killed before that leaves its private folder, which the next replay into the same parent
folder removes (its process is gone). The folder carries MARKER_FILE, so that a later replay
replaces only a folder that a replay wrote.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path

import duckdb

from pipelines.whatif.page import render_page
from sources.divisions import county_name
from warehouse.models import materialize
from warehouse.workdir import process_alive

SUMMARY_FILE = "summary.csv"
HOUSEHOLDS_FILE = "households.csv"
PAGE_FILE = "whatif.html"
MARKER_FILE = ".doudi-whatif"  # in every output folder of a replay: what may be replaced
STAGING_PREFIX = ".whatif-"
_STAGING_OWNER = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-")
SUMMARY_COLUMNS = ("quarter", "rule_code", "rule_title", "county_code", "county_name", "warnings_now", "warnings_after",
                   "gained", "lost", "changed", "amount_now", "amount_after", "amount_label")
CHANGE_WORDS = {"gained": "新增", "lost": "减少", "changed": "变化"}
SEVERITY_WORDS = {"red": "红色", "orange": "橙色", "yellow": "黄色"}

# The warnings that change, in the shape marts/warnings_masked.sql reads (`__warnings`): the
# person a warning names is the member, or for a household warning its head (as marts.warnings).
CHANGED_WARNINGS_SQL = """
with

changes as (
    select * from __replay_changes where change <> 'same'
),

members as (
    select member_id, household_id, name, coalesce(id_number, id_number_raw) as id_number, relation, quarter
    from staging.members where list_contains($quarters, quarter)
),

heads as (
    select quarter, household_id, name, id_number from members
    qualify row_number() over (partition by quarter, household_id order by relation = '户主' desc, member_id) = 1
),

final as (
    select
        c.quarter,
        c.quarter || '|' || c.rule_code || '|' || c.household_id || '|' || coalesce(c.member_id, '') as warning_id,
        c.rule_code, c.rule_title, null::varchar as rule_kind, coalesce(c.severity_after, c.severity_now) as severity,
        c.household_id, c.member_id, c.county_code, c.township, c.village,
        case when c.member_id is null then h.name else m.name end as name,
        case when c.member_id is null then h.id_number else m.id_number end as id_number,
        c.evidence, c.policy_ref, null::varchar as action, null::date as due_date, c.change as status,
        null::varchar as first_seen_quarter, null::varchar as verification_result, null::varchar as verified_quarter,
        c.severity_now, c.severity_after, c.amount_now, c.amount_after
    from changes as c
    left join members as m on m.member_id = c.member_id and m.quarter = c.quarter
    left join heads as h on h.household_id = c.household_id and h.quarter = c.quarter
)

select * from final
"""


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    # utf-8 with a BOM: Excel, which most bureaus open CSV files with, then reads the Chinese.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _households(con: duckdb.DuckDBPyConnection, quarters: list[str], full: bool) -> tuple[list[str], list[list]]:
    con.execute(f"CREATE OR REPLACE TEMP TABLE __warnings AS {CHANGED_WARNINGS_SQL}", {"quarters": quarters})
    person = "w.name, w.id_number" if full else "m.surname, m.id_number_masked"
    if not full:
        materialize(con, "marts/warnings_masked", {}, table="__replay_masked")
    masked_join = "" if full else "LEFT JOIN __replay_masked AS m USING (warning_id)"
    rows = con.execute(
        f"""
        SELECT w.quarter, w.rule_code, w.rule_title, w.status, w.county_code, w.township, w.village, w.household_id,
               w.member_id, {person}, w.severity_now, w.severity_after, round(w.amount_now, 2), round(w.amount_after, 2)
        FROM __warnings AS w {masked_join}
        ORDER BY w.quarter, w.rule_code, w.county_code NULLS LAST, w.household_id, w.member_id NULLS FIRST
        """
    ).fetchall()
    header = ["季度", "规则", "规则名称", "变化", "区县代码", "区县", "乡镇（街道）", "村（社区）", "家庭编号", "成员编号",
              "姓名" if full else "姓氏", "身份证号" if full else "身份证号（脱敏）", "现预警等级", "调整后预警等级",
              "现涉及金额（元）", "调整后涉及金额（元）"]
    out = []
    for r in rows:
        severities = [SEVERITY_WORDS.get(v, v) for v in r[11:13]]
        out.append([r[0], r[1], r[2], CHANGE_WORDS.get(r[3], r[3]), r[4], county_name(r[4]) if r[4] else "", *r[5:11], *severities, *r[13:]])
    return header, out


def _sweep_dead_staging(parent: Path) -> None:
    """Remove the private folders of replays whose process is gone (killed mid-way)."""
    for entry in parent.glob(f"{STAGING_PREFIX}*"):
        owner = _STAGING_OWNER.match(entry.name)
        if owner and not process_alive(int(owner.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def write_outputs(con: duckdb.DuckDBPyConnection, out: Path, summary: list[dict], meta: dict, full: bool) -> dict[str, Path]:
    """Write the replay's folder `out` (replacing it whole); return its files by name."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead_staging(out.parent)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out.parent))
    try:
        os.chmod(staging, 0o700)  # the household list holds personal data until it is in place
        rows = [[row.get(c) if c != "county_name" else (county_name(row["county_code"]) if row["county_code"] else "")
                 for c in SUMMARY_COLUMNS] for row in summary]
        _write_csv(staging / SUMMARY_FILE, list(SUMMARY_COLUMNS), rows)
        header, households = _households(con, meta["quarters"], full)
        _write_csv(staging / HOUSEHOLDS_FILE, header, households)
        page_meta = meta | {"generated_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "households_file": HOUSEHOLDS_FILE,
                            "masked": not full}
        (staging / PAGE_FILE).write_text(render_page(summary, page_meta), encoding="utf-8")
        (staging / MARKER_FILE).write_text("doudi whatif\n", encoding="utf-8")
        if out.exists():  # an earlier replay's (checked before the replay started)
            retired = out.with_name(f"{STAGING_PREFIX}{os.getpid()}-old-{out.name}")
            out.rename(retired)
            staging.rename(out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out)
        os.chmod(out, 0o750)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {name: out / name for name in (SUMMARY_FILE, HOUSEHOLDS_FILE, PAGE_FILE)}
