"""What `doudi run` tells the operator: a line per stage as it finishes, and a summary.

The progress comes from Dagster's own events: `progress_logger` is a Dagster logger that
the command line switches on for its runs (runs from the UI, the schedule or a sensor do
not print to a terminal). For every step it prints one line when the step ends: the
stage in Chinese, the rows it handled and its seconds; on a terminal a spinner names the
step under way. The summary is read back from the warehouse after the run, by run id:
per source the rows read, loaded and quarantined; links by method; warnings per rule new,
persisting and resolved; the data checks that failed. `RunSummary.as_json()` is the same
for scripts (`doudi run --json FILE`).

Counts, codes and file names only: no name or ID number is in any of it (the messages of
refused inputs name files, rows and columns; `pipelines.run.redact` masks anything that
looks like an ID number).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path

import dagster as dg

from checks.factory import CHECK_TITLES
from sources.registry import source_title

RULE_KIND_WORDS = {"ineligibility": "疑似不符合条件", "need": "救助需求", "data_quality": "数据质量"}
STAGE_WORDS = {"staging": "数据接收", "linked": "比对", "rules": "预警规则", "marts": "发布", "exports": "输出"}
EXPORT_WORDS = {"township_lists": "核查清单", "report": "季度报告"}
PROGRESS_LOGGER = "doudi_progress"


def _asset_words(path: list[str]) -> str:
    stage, name = path[0], path[-1]
    if stage == "staging":
        return f"{STAGE_WORDS[stage]} {source_title(name)}"
    if stage == "rules":
        return f"{STAGE_WORDS[stage]} {RULE_KIND_WORDS.get(name, name)}"
    if stage == "exports":
        return EXPORT_WORDS.get(name, name)
    return STAGE_WORDS.get(stage, stage)


def _metadata_number(metadata: dict, key: str) -> int:
    value = metadata.get(key)
    return int(getattr(value, "value", value) or 0)


def _rows_words(path: list[str], metadata: dict) -> str:
    """What a materialisation did, in a few words (counts only)."""
    stage, name = path[0], path[-1]
    if stage == "staging":
        read, quarantined = _metadata_number(metadata, "rows_read"), _metadata_number(metadata, "rows_quarantined")
        return f"读取 {read:,} 行" + (f"，隔离 {quarantined:,} 行" if quarantined else "")
    if stage == "linked":
        return f"比对成功 {sum(_metadata_number(metadata, k) for k in metadata if k.startswith('links_')):,} 条"
    if stage == "rules":
        return f"发现 {sum(_metadata_number(metadata, k) for k in metadata if k.endswith('_findings')):,} 条"
    if stage == "marts" and name == "warnings":
        return f"预警 {_metadata_number(metadata, 'rows'):,} 条"
    if stage == "exports" and name == "township_lists":
        return f"{_metadata_number(metadata, 'workbooks'):,} 个乡镇，{_metadata_number(metadata, 'rows'):,} 行"
    return ""


def _pad(text: str, width: int) -> str:
    """Pad to a display width (a Chinese character is two columns wide)."""
    from rich.cells import cell_len
    from rich.text import Text

    return text + " " * max(0, width - cell_len(Text.from_markup(text).plain))


class _ProgressHandler(logging.Handler):
    """Turns Dagster's step events into the operator's lines."""

    def __init__(self, total_steps: int, stream=None):
        super().__init__(logging.DEBUG)
        from rich.console import Console

        self.console = Console(file=stream or sys.stdout, highlight=False)
        self.total = total_steps
        self.done = 0
        self.started: dict[str, float] = {}
        self.assets: dict[str, list[tuple[list[str], dict]]] = {}
        self.checks: dict[str, list[tuple[list[str], str, bool]]] = {}
        self.status = None

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None:
            return
        step, kind = event.step_key, event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.time()
            self._show_status(step)
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            self.assets.setdefault(step, []).append((list(materialization.asset_key.path), dict(materialization.metadata)))
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            self.checks.setdefault(step, []).append((list(evaluation.asset_key.path), evaluation.check_name, evaluation.passed))
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self.done += 1
            self._line(step, kind == "STEP_SUCCESS")

    def _show_status(self, step: str) -> None:
        if not self.console.is_terminal:
            return
        text = f"[{self.done + 1}/{self.total}] 正在运行 {step} …"
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _line(self, step: str, succeeded: bool) -> None:
        seconds = time.time() - self.started.get(step, time.time())
        assets, checks = self.assets.get(step, []), self.checks.get(step, [])
        if assets:
            words = _asset_words(assets[0][0])
            what = "；".join(w for w in (_rows_words(p, m) for p, m in assets) if w)
        elif checks:
            path, name, _ = checks[0]
            words = f"检查 {source_title(path[-1])}"
            what = CHECK_TITLES.get(name, name) + ("：通过" if all(passed for *_, passed in checks) else "：[yellow]未通过[/yellow]")
        else:
            words, what = step, ""
        mark = "[green]✓[/green]" if succeeded else "[red]✗[/red]"
        tail = "" if succeeded else "  [red]失败[/red]"
        # soft_wrap: one line per step whatever the width of the terminal or log
        self.console.print(f"  {mark} [{self.done:>2}/{self.total}] {_pad(words, 16)} {_pad(what, 30)} {seconds:6.1f} 秒{tail}",
                           soft_wrap=True)
        if self.done >= self.total:
            self.close_status()

    def close_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


@dg.logger(
    config_schema={"total_steps": dg.Field(int, default_value=0)},
    description="doudi run 的进度：每个步骤结束时一行（阶段、行数、秒数）",
)
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger(PROGRESS_LOGGER, level=logging.DEBUG)
    logger.addHandler(_ProgressHandler(init_context.logger_config["total_steps"]))
    return logger


# ---- the summary -------------------------------------------------------------------------------


@dataclasses.dataclass
class RunSummary:
    quarter: str
    region: str
    exit_code: int
    seconds: float
    run_id: str | None
    published: bool
    messages: list[str]
    sources: list[dict]
    links: list[dict]
    warnings: list[dict]
    failed_checks: list[dict]

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


def read_summary(warehouse: Path, outcome) -> RunSummary:
    """The run's summary from the warehouse (by run id), for the terminal and --json."""
    from warehouse.connection import connect

    sources: list[dict] = []
    links: list[dict] = []
    warnings: list[dict] = []
    failed: list[dict] = []
    published = False
    if outcome.run_id and warehouse.exists():
        with connect(warehouse, read_only=True) as con:
            published = bool(con.execute(
                "SELECT count(*) FROM audit.publications WHERE run_id = ?", [outcome.run_id]).fetchone()[0])
            for source, files, read, loaded, quarantined, refused in con.execute(
                """SELECT source, count(*) FILTER (WHERE outcome <> 'ignored'), coalesce(sum(rows_read), 0),
                          coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0),
                          count(*) FILTER (WHERE outcome = 'refused')
                   FROM audit.ingest_log WHERE run_id = ? GROUP BY source ORDER BY source""",
                [outcome.run_id],
            ).fetchall():
                sources.append({"source": source, "title": source_title(source), "files": files, "rows_read": int(read),
                                "rows_loaded": int(loaded), "rows_quarantined": int(quarantined), "files_refused": refused})
            for asset, check, blocking, description in con.execute(
                """SELECT asset, check_name, blocking, description FROM audit.check_results
                   WHERE run_id = ? AND NOT passed ORDER BY NOT blocking, asset, check_name""",
                [outcome.run_id],
            ).fetchall():
                failed.append({"asset": asset, "check": check, "blocking": bool(blocking), "description": description})
            if published:
                for source, method, count in con.execute(
                    "SELECT source, match_method, count(*) FROM linked.matches WHERE quarter = ? GROUP BY ALL ORDER BY ALL",
                    [outcome.quarter],
                ).fetchall():
                    links.append({"source": source, "match_method": method, "records": count})
                for rule, title, now, new, persisting, resolved in con.execute(
                    """SELECT c.rule_code, any_value(w.rule_title), sum(c.count_this_quarter), sum(c.count_new),
                              sum(c.count_persisting), sum(c.count_resolved)
                       FROM marts.quarterly_comparison AS c
                       LEFT JOIN (SELECT DISTINCT rule_code, rule_title FROM marts.warnings) AS w USING (rule_code)
                       WHERE c.quarter = ? GROUP BY c.rule_code ORDER BY c.rule_code""",
                    [outcome.quarter],
                ).fetchall():
                    warnings.append({"rule_code": rule, "rule_title": title, "this_quarter": int(now), "new": int(new),
                                     "persisting": int(persisting), "resolved": int(resolved)})
    return RunSummary(outcome.quarter, outcome.region, outcome.exit_code, round(outcome.seconds, 1), outcome.run_id, published,
                      list(outcome.messages), sources, links, warnings, failed)


def print_summary(summary: RunSummary, stream=None) -> None:
    """The summary as tables (rich), in Chinese."""
    from rich.console import Console
    from rich.table import Table

    from pipelines.exports.evidence import MATCH_METHOD_TEXT

    console = Console(file=stream or sys.stdout, highlight=False)
    if summary.sources:
        table = Table(title="数据接收", title_justify="left")
        for header in ("数据源", "文件", "读取行数", "入库行数", "隔离行数"):
            table.add_column(header, justify="left" if header == "数据源" else "right")
        for s in summary.sources:
            table.add_row(f"{s['title']}（{s['source']}）", f"{s['files']:,}", f"{s['rows_read']:,}", f"{s['rows_loaded']:,}",
                          f"{s['rows_quarantined']:,}")
        console.print(table)
    if summary.links:
        table = Table(title="比对", title_justify="left")
        for header in ("数据源", "比对方式", "记录数"):
            table.add_column(header, justify="right" if header == "记录数" else "left")
        for link in summary.links:
            table.add_row(source_title(link["source"]), MATCH_METHOD_TEXT.get(link["match_method"], link["match_method"]),
                          f"{link['records']:,}")
        console.print(table)
    if summary.warnings:
        table = Table(title="预警", title_justify="left")
        for header in ("规则", "本季度", "新增", "持续", "已解除"):
            table.add_column(header, justify="left" if header == "规则" else "right")
        for w in summary.warnings:
            table.add_row(f"{w['rule_code']} {w['rule_title'] or ''}".strip(), f"{w['this_quarter']:,}", f"{w['new']:,}",
                          f"{w['persisting']:,}", f"{w['resolved']:,}")
        console.print(table)
    if summary.failed_checks:
        table = Table(title="未通过的数据检查", title_justify="left")
        for header in ("数据", "检查", "性质", "说明"):
            table.add_column(header, overflow="fold")
        for c in summary.failed_checks:
            table.add_row(source_title(c["asset"].split("/")[-1]), CHECK_TITLES.get(c["check"], c["check"]),
                          "不通过则不发布" if c["blocking"] else "提示", c["description"] or "")
        console.print(table)
    elif summary.sources:
        console.print("数据检查：全部通过")
