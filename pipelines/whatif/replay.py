"""Replaying published quarters' rules under changed parameters (`doudi whatif`).

A policy officer asks "how many households would N01 add if the asset limit were 48
months, and in which counties?". The replay answers it from the warehouse as published:
it re-runs the rules (not ingest, not linkage: the links and staging tables are as the
quarter published them) of each quarter with the changed parameters, and compares the
findings with the quarter's published ones (`rules.findings`, what the lists were made
from), per quarter × rule × county, with the money at stake where the rule has it
(`Rule.amount`).

The warehouse is opened read-only (DuckDB attaches it READ_ONLY, encrypted or not): the
replay's tables are temporary tables of an in-memory database that spills to a private
temporary folder, so `marts`, `linked` and every other table are the same byte for byte
afterwards. Every refusal (an unknown parameter, a value of the wrong type or unit, a
quarter not published) is raised before anything is read or written (`ReplayError`,
exit 2). The output folder is written whole or not at all.

    --set name=value              the value in force everywhere for the whole replay
    --set name@2025-07-01=value   a new dated value, from that day (regional values stay)
    --parameters DIR              a whole alternative parameter folder instead of the built-in
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from pipelines.policy.params import ParameterError, Parameters, ParameterValue, default_parameters, deployment_folders
from pipelines.policy.window import LOOKBACK_PARAMETER
from pipelines.quarters import Quarter
from pipelines.rules.catalog import KINDS, all_rules
from pipelines.rules.engine import evaluate_family
from pipelines.whatif.outputs import MARKER_FILE, write_outputs
from warehouse.connection import WarehouseError, connect
from warehouse.workdir import temp_dir
from warehouse.writes import insert_rows, insert_select

log = logging.getLogger(__name__)

REPLAY_REFERENCE = "政策模拟（doudi whatif --set）"
# The replay's findings of one family, then of every quarter and family.
FAMILY_FINDINGS = "__replay_family"
REPLAYED = "__replay_findings"
# Parameters a replay cannot change: they decide what the linker linked, which a replay
# does not re-run.
NOT_REPLAYABLE = {LOOKBACK_PARAMETER: "它决定比对（连接）哪些医保结算记录，而模拟不重跑比对；请调整参数后重新运行这些季度"}
# A value may carry its unit (`48个月`, `30天`, `0.3`, `25%`): the suffixes each unit accepts.
UNIT_SUFFIXES = {
    "month": ("个月", "月", "months", "month"),
    "day": ("天", "日", "days", "day"),
    "year": ("年", "years", "year"),
    "yuan": ("元", "yuan"),
    "share": ("%",),
}
UNIT_NAMES = {"month": "月", "day": "天", "year": "年", "yuan": "元", "share": "比例（0 到 1，或百分数）", "list": "列表", "mapping": "对照表"}


class ReplayError(ValueError):
    """The replay was refused: an unknown parameter, a bad value, a quarter not published."""


@dataclass(frozen=True)
class Change:
    """One `--set`: a parameter, its new value, and from when (None: the whole replay)."""

    text: str  # as given
    parameter: str  # the bare name
    value: object
    since: dt.date | None

    def describe(self, old: str) -> str:
        when = f"（自 {self.since.isoformat()}）" if self.since else "（整个模拟期间）"
        return f"{self.text.split('=', 1)[0].split('@', 1)[0]}：{old} → {_show(self.value)}{when}"


def _show(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# ---- reading --set -------------------------------------------------------------------------


_SET = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)(@(?P<since>\d{4}-\d{2}-\d{2}))?=(?P<value>.+)$", re.S)


def parse_change(text: str, parameters: Parameters) -> Change:
    """`name=value` or `name@YYYY-MM-DD=value`, checked against the parameter it names."""
    match = _SET.match(text.strip())
    if not match:
        raise ReplayError(f"--set {text}：应写作 参数名=值 或 参数名@YYYY-MM-DD=值")
    try:
        parameter = parameters.find(match["name"])
    except ParameterError as exc:
        raise ReplayError(f"--set {text}：{exc}") from None
    if parameter.name in NOT_REPLAYABLE:
        raise ReplayError(f"--set {text}：参数 {parameter.dotted_name} 不能模拟：{NOT_REPLAYABLE[parameter.name]}")
    since = None
    if match["since"]:
        try:
            since = dt.date.fromisoformat(match["since"])
        except ValueError:
            raise ReplayError(f"--set {text}：{match['since']} 不是有效日期") from None
    template = parameter.values[-1].value
    value = _typed_value(text, match["value"].strip(), template, parameter.unit)
    return Change(text, parameter.name, value, since)


def _strip_unit(text: str, raw: str, unit: str | None) -> tuple[str, float]:
    """The number part of `raw` and its scale (a percentage is a hundredth)."""
    number = re.match(r"^[-+]?\d+(\.\d+)?", raw)
    suffix = raw[number.end():].strip() if number else ""
    if not number or not suffix:
        return raw, 1.0
    if suffix in UNIT_SUFFIXES.get(unit or "", ()):
        return number.group(0), 0.01 if suffix == "%" else 1.0
    expected = UNIT_NAMES.get(unit or "", unit or "无单位")
    raise ReplayError(f"--set {text}：单位不对：{suffix!r}，此参数的单位是 {expected}")


def _typed_value(text: str, raw: str, template, unit: str | None):
    if isinstance(template, (dict, list)):
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ReplayError(f"--set {text}：值不是有效的列表或对照表（写作 [甲, 乙] 或 {{城市: 800, 农村: 650}}）") from None
        _check_shape(text, value, template, unit)
        return value
    number, scale = _strip_unit(text, raw, unit)
    return _number(text, number, scale, template, unit)


def _number(text: str, raw: str, scale: float, template, unit: str | None):
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReplayError(f"--set {text}：值应为数字（单位 {UNIT_NAMES.get(unit or '', unit or '无')}），不是 {raw!r}")
    value = value * scale if scale != 1.0 else value
    if isinstance(template, int) and not isinstance(template, bool):
        if float(value) != int(value):
            raise ReplayError(f"--set {text}：值应为整数（{UNIT_NAMES.get(unit or '', unit)}），不是 {raw}")
        value = int(value)
    if value < 0:
        raise ReplayError(f"--set {text}：值不能为负数")
    if unit == "share" and value > 1:
        raise ReplayError(f"--set {text}：比例应在 0 到 1 之间（或写作百分数，如 25%），不是 {raw}")
    return value


def _check_shape(text: str, value, template, unit: str | None) -> None:
    """A list stays a list of words; a mapping keeps its keys and the kind of its values."""
    if isinstance(template, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ReplayError(f"--set {text}：值应为列表，如 [{', '.join(map(str, template[:2]))}]")
        return
    if not isinstance(value, dict) or set(map(str, value)) != set(map(str, template)):
        raise ReplayError(f"--set {text}：值应为对照表，键为 {'、'.join(map(str, template))}")
    for key, old in template.items():
        new = value.get(key, value.get(str(key)))
        if isinstance(old, list):
            if not isinstance(new, list) or not all(isinstance(v, str) for v in new):
                raise ReplayError(f"--set {text}：{key} 的值应为列表")
        elif isinstance(new, bool) or not isinstance(new, (int, float)) or new < 0:
            raise ReplayError(f"--set {text}：{key} 的值应为非负数字")
        elif unit == "share" and new > 1:
            raise ReplayError(f"--set {text}：{key} 的比例应在 0 到 1 之间，不是 {new}")


def apply_changes(parameters: Parameters, changes: list[Change]) -> Parameters:
    """The parameters with each change applied, in order."""
    for change in changes:
        parameter = parameters.parameters[change.parameter]
        entry = ParameterValue(change.parameter, change.since or dt.date.min, change.value, REPLAY_REFERENCE, None,
                               parameter.unit, parameter.description)
        if change.since is None:  # in force everywhere, for the whole replay
            parameters = parameters.with_values(change.parameter, (entry,), regions={})
        else:
            kept = tuple(v for v in parameter.values if v.start != change.since)
            parameters = parameters.with_values(change.parameter, tuple(sorted((*kept, entry), key=lambda v: v.start)))
    return parameters


def base_parameters(parameters_dir: str | Path | None) -> Parameters:
    """The parameters the replay starts from: an alternative folder, or what a run uses."""
    if parameters_dir is None:
        try:
            return default_parameters()
        except ParameterError as exc:
            raise ReplayError(f"参数文件夹有误：{exc}") from None
    folder = Path(parameters_dir)
    try:
        return Parameters.load(folder, *deployment_folders())
    except ParameterError as exc:
        raise ReplayError(f"--parameters {folder}：{exc}") from None


# ---- the replay ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayRequest:
    warehouse: Path
    quarters: list[Quarter]
    changes: list[str]
    out: Path
    parameters_dir: Path | None = None
    full: bool = False


@dataclass(frozen=True)
class ReplayResult:
    out: Path
    files: dict[str, Path]
    gained: int
    lost: int
    seconds: float


def published_quarters(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Quarters whose latest run published: their `rules.findings` are what the lists were
    made from. A quarter whose latest run was refused, failed or is still running is not
    (its findings may be newer than what was published); a warehouse without run records
    (made before `audit.runs` existed) counts its publications."""
    rows = con.execute(
        """
        WITH latest AS (SELECT quarter, arg_max(run_id, started_at) AS run_id FROM audit.runs GROUP BY quarter)
        SELECT DISTINCT p.quarter
        FROM audit.publications AS p
        LEFT JOIN latest AS l USING (quarter)
        WHERE l.run_id IS NULL OR l.run_id IN (SELECT run_id FROM audit.publications AS q WHERE q.quarter = p.quarter)
        """
    ).fetchall()
    return {r[0] for r in rows}


def _check_published(con: duckdb.DuckDBPyConnection, quarters: list[Quarter]) -> None:
    published = published_quarters(con)
    missing = [str(q) for q in quarters if str(q) not in published]
    if missing:
        have = "、".join(sorted(published)) or "无"
        raise ReplayError(f"季度 {'、'.join(missing)} 在数据仓库中没有已发布的结果（已发布：{have}），不能模拟")


def replay_findings(con: duckdb.DuckDBPyConnection, quarters: list[Quarter], parameters: Parameters) -> None:
    """Every family's findings of `quarters` under `parameters`, into the temporary table
    REPLAYED (the shape of rules.findings); nothing of the warehouse is written."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REPLAYED} AS SELECT * FROM rules.findings LIMIT 0")
    for quarter in quarters:
        for kind in KINDS:
            evaluate_family(con, kind, quarter, parameters, FAMILY_FINDINGS)
            insert_select(con, REPLAYED, f"SELECT * FROM {FAMILY_FINDINGS}")


def compare(con: duckdb.DuckDBPyConnection, quarters: list[Quarter]) -> None:
    """`__replay_changes`: one row per warning that is in either the published findings or
    the replay's, with its place, both severities and amounts, and how it changed."""
    rules = all_rules()
    con.execute("CREATE OR REPLACE TEMP TABLE __replay_rules (rule_code VARCHAR, rule_title VARCHAR, amount_sql VARCHAR, amount_label VARCHAR)")
    insert_rows(con, "__replay_rules", [
        {"rule_code": r.code, "rule_title": r.title, "amount_sql": r.amount.sql if r.amount else None,
         "amount_label": r.amount.label if r.amount else None} for r in rules
    ])
    amount = "CASE rule_code " + " ".join(f"WHEN '{r.code}' THEN {r.amount.sql}" for r in rules if r.amount) + " END"
    labels = [str(q) for q in quarters]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __replay_changes AS
        WITH
        now AS (SELECT *, {amount} AS amount FROM rules.findings WHERE list_contains($quarters, quarter)),
        after AS (SELECT *, {amount} AS amount FROM {REPLAYED}),
        joined AS (
            SELECT coalesce(n.quarter, a.quarter) AS quarter, coalesce(n.rule_code, a.rule_code) AS rule_code,
                   coalesce(n.household_id, a.household_id) AS household_id, coalesce(n.member_id, a.member_id) AS member_id,
                   n.severity AS severity_now, a.severity AS severity_after, n.amount AS amount_now, a.amount AS amount_after,
                   n.rule_code IS NOT NULL AS in_now, a.rule_code IS NOT NULL AS in_after,
                   coalesce(a.evidence, n.evidence) AS evidence, coalesce(a.policy_ref, n.policy_ref) AS policy_ref
            FROM now AS n
            FULL OUTER JOIN after AS a
              ON a.quarter = n.quarter AND a.rule_code = n.rule_code AND a.household_id = n.household_id
             AND a.member_id IS NOT DISTINCT FROM n.member_id
        ),
        final AS (
            SELECT j.*, h.county_code, h.township, h.village, r.rule_title, r.amount_label,
                   CASE WHEN in_now AND NOT in_after THEN 'lost' WHEN in_after AND NOT in_now THEN 'gained'
                        WHEN severity_now IS DISTINCT FROM severity_after OR amount_now IS DISTINCT FROM amount_after THEN 'changed'
                        ELSE 'same' END AS change
            FROM joined AS j
            LEFT JOIN staging.households AS h ON h.household_id = j.household_id AND h.quarter = j.quarter
            LEFT JOIN __replay_rules AS r USING (rule_code)
        )
        SELECT * FROM final
        """,
        {"quarters": labels},
    )


def summary_rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per quarter × rule × county: warnings now, under the change, gained, lost, amounts."""
    cursor = con.execute(
        """
        SELECT quarter, rule_code, any_value(rule_title) AS rule_title, county_code,
               count(*) FILTER (WHERE in_now) AS warnings_now, count(*) FILTER (WHERE in_after) AS warnings_after,
               count(*) FILTER (WHERE change = 'gained') AS gained, count(*) FILTER (WHERE change = 'lost') AS lost,
               count(*) FILTER (WHERE change = 'changed') AS changed,
               round(sum(amount_now), 2) AS amount_now, round(sum(amount_after), 2) AS amount_after,
               any_value(amount_label) AS amount_label
        FROM __replay_changes
        GROUP BY quarter, rule_code, county_code
        ORDER BY quarter, rule_code, county_code NULLS LAST
        """
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def run_replay(request: ReplayRequest) -> ReplayResult:
    """Validate, replay, compare, write the output folder; raise ReplayError on a refusal."""
    started = time.perf_counter()
    parameters = base_parameters(request.parameters_dir)
    changes = [parse_change(text, parameters) for text in request.changes]
    old_values = {c.parameter: _show(parameters.parameters[c.parameter].values[-1].value) for c in changes}
    changed = apply_changes(parameters, changes)
    if not request.warehouse.exists():
        raise ReplayError(f"没有数据仓库 {request.warehouse}")
    if not request.quarters:
        raise ReplayError("--quarters 没有给出季度")
    check_out_folder(request.out, request.warehouse)
    try:
        with connect(request.warehouse, read_only=True) as con:
            _check_published(con, request.quarters)
            # What DuckDB spills holds personal data: into the warehouse's private work
            # folder (0700, swept by the next run if this process dies), not `<warehouse>.tmp`.
            with temp_dir(request.warehouse, "doudi-whatif-") as spill:
                con.execute(f"SET temp_directory = '{spill.replace(chr(39), chr(39) * 2)}'")
                replay_findings(con, request.quarters, changed)
                compare(con, request.quarters)
                meta = {
                    "changes": [c.describe(old_values[c.parameter]) for c in changes] or ["（无调整：按现行参数重放）"],
                    "quarters": [str(q) for q in request.quarters],
                    "warehouse": request.warehouse.name,
                    "parameters_dir": str(request.parameters_dir) if request.parameters_dir else None,
                }
                files = write_outputs(con, request.out, summary_rows(con), meta, full=request.full)
                gained, lost = con.execute(
                    "SELECT count(*) FILTER (WHERE change = 'gained'), count(*) FILTER (WHERE change = 'lost') FROM __replay_changes"
                ).fetchone()
    except WarehouseError as exc:
        raise ReplayError(str(exc)) from None
    return ReplayResult(request.out, files, int(gained), int(lost), time.perf_counter() - started)


def check_out_folder(out: Path, warehouse: Path) -> None:
    """The output folder is replaced whole: only an empty folder or an earlier replay's
    (it holds MARKER_FILE) may be, never one that holds the warehouse or anything else."""
    out, warehouse = Path(out).resolve(), Path(warehouse).resolve()
    if out == warehouse or out in warehouse.parents:
        raise ReplayError(f"--out {out} 包含数据仓库 {warehouse}：输出文件夹会被整体替换，请另选一个文件夹")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER_FILE).exists())):
        raise ReplayError(f"--out {out} 已存在且不是以前政策模拟的输出（其中没有 {MARKER_FILE}）：输出文件夹会被整体替换，请另选一个文件夹")
