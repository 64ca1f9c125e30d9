"""`doudi bench`: time a quarter end to end through the Dagster assets, stage by stage.

The synthetic extracts are generated once per scale and seed and cached. Each repeat runs
the benchmark quarter on a fresh warehouse (after loading the quarters before it, untimed,
so history is there as in production); stage times come from Dagster's own step events,
peak memory from sampling the process's resident set while the stage runs. The table
reports medians over the repeats; the JSON keeps every repeat.

After each repeat's quarters, the policy replay (`doudi whatif`) of all of them is timed on
the same warehouse, with no change and with one change, beside the sum of those quarters'
rules stage: the ratio (replay ÷ rules stage) is the figure docs/policy.md promises.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCALES = {
    # name: (households, approximate roster members)
    "county": 8_000,
    "city": 100_000,
    "province": 1_000_000,
}
# Extract volumes at scale: medical settlements about 12x the roster per quarter.
BENCH_SYNTH = {"outside_per_member": 3.0, "medical_per_member": 3.0, "medical_per_outsider": 3.0}
STAGES = ["ingest", "checks", "link", "rules", "marts", "lists"]


def stage_of(step_key: str) -> str:
    if step_key.endswith(("_delivery_accepted", "_value_quality")):
        return "checks"
    if step_key.startswith("staging__"):
        return "ingest"
    if step_key.startswith("linked__"):
        return "link"
    if step_key.startswith("rules__"):
        return "rules"
    if step_key.startswith("published_marts"):
        return "marts"
    if step_key.startswith("exports__"):
        return "lists"
    return "other"


class MemorySampler:
    """Samples this process's resident set size (Linux /proc) every `interval` seconds."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_bytes() -> int:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.time(), self.rss_bytes()))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside) if inside else 0


@dataclass
class StageResult:
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    rows: int = 0


@dataclass
class RepeatResult:
    total_seconds: float
    peak_rss_bytes: int
    stages: dict[str, StageResult] = field(default_factory=dict)
    link_steps: dict[str, float] = field(default_factory=dict)  # the linker's own steps (asset metadata)
    floors: dict[str, dict] = field(default_factory=dict)  # devtools/floors.py, measured after the quarter
    rules_seconds_all_quarters: float = 0.0  # the rules stage of every quarter run, summed
    replays: dict[str, dict] = field(default_factory=dict)  # doudi whatif over the same quarters: seconds, gained, lost


def ensure_data(scale: str, seed: int, cache: Path, quarters: list) -> Path:
    """Generate (once) the synthetic inbox for a scale; return the inbox folder."""
    from devtools.synth.generate import generate
    from devtools.synth.writer import WriterOptions

    label = f"{scale}-{seed}-{quarters[0]}-{quarters[-1]}"
    root = cache / label
    done = root / ".complete"
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        started = time.time()
        generate(root / "inbox", quarters, households=SCALES[scale], seed=seed,
                 writer_options=WriterOptions(xlsx_share=0.05, xlsx_max_rows=20_000), **BENCH_SYNTH)
        done.write_text(json.dumps({"generated_seconds": round(time.time() - started, 1)}), encoding="utf-8")
    return root / "inbox"


def _stage_rows(con, quarter: str) -> dict[str, int]:
    from sources.registry import all_sources

    read = con.execute("SELECT coalesce(sum(rows_read), 0) FROM audit.ingest_log WHERE quarter = ? AND run_id = "
                       "(SELECT run_id FROM audit.ingest_log WHERE quarter = ? ORDER BY logged_at DESC LIMIT 1)", [quarter, quarter]).fetchone()[0]
    # The rosters and the linked departments (not the reference data and returned lists).
    checked = [spec for spec in all_sources() if spec.delivery == "roster" or spec.person is not None]
    staged = sum(con.execute(f"SELECT count(*) FROM {spec.staging_table} WHERE quarter = ?", [quarter]).fetchone()[0]
                 for spec in checked)
    linked = con.execute("SELECT count(*) FROM linked.matches WHERE quarter = ?", [quarter]).fetchone()[0]
    findings = con.execute("SELECT count(*) FROM rules.findings WHERE quarter = ?", [quarter]).fetchone()[0]
    warnings = con.execute("SELECT count(*) FROM marts.warnings WHERE quarter = ?", [quarter]).fetchone()[0]
    return {"ingest": int(read), "checks": int(staged), "link": int(linked), "rules": int(findings), "marts": int(warnings), "lists": int(warnings)}


def _stage_times(instance, run_id: str, sampler: "MemorySampler | None" = None) -> tuple[dict[str, StageResult], dict[str, float]]:
    """Seconds (and peak memory) per stage of one run, from Dagster's step events; the
    linker's own steps from its asset metadata."""
    stages = {name: StageResult() for name in STAGES}
    starts: dict[str, float] = {}
    link_steps: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "ASSET_MATERIALIZATION" and event.step_key.startswith("linked__"):
            steps = event.event_specific_data.materialization.metadata.get("step_seconds")
            link_steps = dict(steps.value) if steps is not None else link_steps
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            stage = stages.setdefault(stage_of(event.step_key), StageResult())
            begin = starts[event.step_key]
            stage.seconds += record.timestamp - begin
            if sampler is not None:
                stage.peak_rss_bytes = max(stage.peak_rss_bytes, sampler.peak(begin, record.timestamp))
    return stages, link_steps


# The policy replay measured beside the rules stage it re-runs (issue: a replay of the
# bench's quarters costs no more than 1.3 x their rules stage): once with no change, once
# with the README's worked example.
REPLAY_CHANGES = {"no_change": [], "asset_limit_48": ["expenditure_poverty.financial_asset_limit_months=48"]}


def _time_replays(warehouse: Path, quarters: list[str], work: Path) -> dict[str, dict]:
    from pipelines.quarters import Quarter
    from pipelines.whatif.replay import ReplayRequest, run_replay

    replays = {}
    for name, changes in REPLAY_CHANGES.items():
        started = time.time()
        result = run_replay(ReplayRequest(warehouse, [Quarter.parse(q) for q in quarters], changes, work / f"whatif-{name}"))
        replays[name] = {"seconds": time.time() - started, "gained": result.gained, "lost": result.lost}
    return replays


def run_once(inbox: Path, quarters: list[str], work: Path, memory_limit: str | None) -> RepeatResult:
    import dagster as dg

    from pipelines.run import run_quarter
    from warehouse.connection import connect

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    warehouse, out = work / "warehouse.duckdb", work / "out"
    rules_seconds = {}
    with dg.instance_for_test() as instance:
        for earlier in quarters[:-1]:  # history, untimed (but its rules stage counts for the replay)
            outcome = run_quarter(inbox, earlier, warehouse, out, memory_limit=memory_limit, instance=instance)
            if outcome.exit_code:
                raise RuntimeError(f"{earlier}: {outcome.messages}")
            rules_seconds[earlier] = _stage_times(instance, outcome.run_id)[0]["rules"].seconds
        quarter = quarters[-1]
        with MemorySampler() as sampler:
            started = time.time()
            outcome = run_quarter(inbox, quarter, warehouse, out, memory_limit=memory_limit, instance=instance)
            total = time.time() - started
        if outcome.exit_code:
            raise RuntimeError(f"{quarter}: {outcome.messages}")
        stages, link_steps = _stage_times(instance, outcome.run_id, sampler)
        rules_seconds[quarter] = stages["rules"].seconds
    with connect(warehouse, read_only=True) as con:
        for name, rows in _stage_rows(con, quarter).items():
            stages[name].rows = rows
    replays = _time_replays(warehouse, quarters, work)
    floors = measure_floors(inbox, quarter, warehouse, work, memory_limit)
    return RepeatResult(total, sampler.peak(0, time.time()), stages, link_steps, floors, sum(rules_seconds.values()), replays)


# The floors beside the stages (devtools/floors.py): which stage each is the floor of.
FLOOR_OF = {"duckdb_read": "ingest", "polars_read": "ingest", "exact_join": "link", "plain_splink": "link"}


def measure_floors(inbox: Path, quarter: str, warehouse: Path, work: Path, memory_limit: str | None) -> dict[str, dict]:
    """The floors of the timed quarter, on the same files and the same warehouse."""
    from devtools.evaluate import load_truth
    from devtools.floors import exact_join_floor, plain_splink_floor, raw_read_floors

    _, truth_links = load_truth(inbox / "truth")
    read = raw_read_floors(inbox / quarter, work, memory_limit)
    exact = exact_join_floor(warehouse, quarter, truth_links)
    splink = plain_splink_floor(warehouse, quarter, truth_links, memory_limit)
    return {
        "duckdb_read": {"seconds": read["duckdb_seconds"], "files": read["files"], "rows": read["rows"], "xlsx_files": read["xlsx_files"],
                        "decoded_files": read["decoded_files"]},
        "polars_read": {"seconds": read["polars_seconds"], "files": read["files"], "rows": read["polars_rows"]},
        "exact_join": {"seconds": exact["seconds"], "sources": exact["sources"]},
        "plain_splink": {"seconds": splink["seconds"], "training_seconds": splink["training_seconds"], "sources": splink["sources"],
                         "settings": splink["settings"]},
    }


def link_quality(inbox: Path, work: Path, quarter: str) -> list[dict]:
    import polars as pl

    from devtools.evaluate import link_scores, load_found, load_truth

    _, truth_links = load_truth(inbox / "truth")
    _, found_links, _ = load_found(work / "warehouse.duckdb")
    scores = link_scores(found_links.filter(pl.col("quarter") == quarter), truth_links.filter(pl.col("quarter") == quarter))
    return scores.to_dicts()


def run_bench(scale: str, seed: int, cache: Path, repeats: int, quarters_spec: str, memory_limit: str | None, json_path: Path | None) -> dict:
    from pipelines.quarters import quarter_range

    quarters = quarter_range(quarters_spec)
    t = time.time()
    inbox = ensure_data(scale, seed, cache, quarters)
    generation = time.time() - t
    labels = [str(q) for q in quarters]
    work = cache / f"work-{scale}"
    results = [run_once(inbox, labels, work, memory_limit) for _ in range(repeats)]
    links = link_quality(inbox, work, labels[-1])
    summary = {
        "scale": scale,
        "households": SCALES[scale],
        "quarter": labels[-1],
        "repeats": repeats,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "generation_seconds_this_call": round(generation, 1),
        "total_seconds_median": round(statistics.median(r.total_seconds for r in results), 2),
        "peak_rss_gb_max": round(max(r.peak_rss_bytes for r in results) / 2**30, 2),
        "stages": {
            name: {
                "seconds_median": round(statistics.median(r.stages[name].seconds for r in results), 2),
                "rows": results[0].stages[name].rows,
                "rows_per_second": round(results[0].stages[name].rows / max(statistics.median(r.stages[name].seconds for r in results), 1e-9)),
                "peak_rss_gb": round(max(r.stages[name].peak_rss_bytes for r in results) / 2**30, 2),
            }
            for name in STAGES
        },
        "link_steps_seconds_median": {
            step: round(statistics.median(r.link_steps.get(step, 0.0) for r in results), 2) for step in results[0].link_steps
        },
        "repeats_detail": [
            {"total_seconds": round(r.total_seconds, 2), "stages": {n: round(s.seconds, 2) for n, s in r.stages.items()},
             "link_steps": r.link_steps} for r in results
        ],
        "link_quality": links,
        "floors": _floor_summary(results),
        "policy_replay": _replay_summary(results, labels),
    }
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def _floor_summary(results: list[RepeatResult]) -> dict:
    """Each floor's median seconds and the median of the per-repeat ratios stage ÷ floor
    (both measured in the same repeat), and the whole quarter ÷ DuckDB's raw read."""
    out = {}
    for name, stage in FLOOR_OF.items():
        first = results[0].floors[name]
        out[name] = {
            "stage": stage,
            "seconds_median": round(statistics.median(r.floors[name]["seconds"] for r in results), 2),
            "stage_over_floor_median": round(statistics.median(r.stages[stage].seconds / max(r.floors[name]["seconds"], 1e-9)
                                                               for r in results), 2),
            **{k: v for k, v in first.items() if k != "seconds"},
        }
    out["quarter_over_duckdb_read_median"] = round(
        statistics.median(r.total_seconds / max(r.floors["duckdb_read"]["seconds"], 1e-9) for r in results), 2)
    return out


def _replay_summary(results: list[RepeatResult], quarters: list[str]) -> dict:
    """The replay of all the bench's quarters against their rules stage: medians of the
    per-repeat ratios (both measured in the same repeat, on the same warehouse)."""
    out = {"quarters": f"{quarters[0]}:{quarters[-1]}",
           "rules_stage_seconds_median": round(statistics.median(r.rules_seconds_all_quarters for r in results), 2)}
    for name in REPLAY_CHANGES:
        out[name] = {
            "seconds_median": round(statistics.median(r.replays[name]["seconds"] for r in results), 2),
            "ratio_to_rules_median": round(statistics.median(r.replays[name]["seconds"] / max(r.rules_seconds_all_quarters, 1e-9)
                                                             for r in results), 2),
            "gained": results[0].replays[name]["gained"],
            "lost": results[0].replays[name]["lost"],
        }
    return out


def print_summary(summary: dict) -> None:
    print(f"\ndoudi bench — scale {summary['scale']} ({summary['households']:,} households), quarter {summary['quarter']}, "
          f"median of {summary['repeats']} run(s), {summary['machine']['cpus']} CPUs")
    print(f"{'stage':<8}{'seconds':>10}{'rows':>14}{'rows/s':>14}{'peak RSS GB':>14}")
    for name, s in summary["stages"].items():
        print(f"{name:<8}{s['seconds_median']:>10.2f}{s['rows']:>14,}{s['rows_per_second']:>14,}{s['peak_rss_gb']:>14.2f}")
    print(f"{'total':<8}{summary['total_seconds_median']:>10.2f}{'':>28}{summary['peak_rss_gb_max']:>14.2f}")
    if summary.get("link_steps_seconds_median"):
        print("link steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summary["link_steps_seconds_median"].items()))
    floors = summary.get("floors")
    if floors:
        print("\nfloors, measured in the same run on the same data (devtools/floors.py):")
        print(f"{'floor':<15}{'seconds':>9}   stage ÷ floor")
        for name, stage in FLOOR_OF.items():
            f = floors[name]
            print(f"{name:<15}{f['seconds_median']:>9.2f}   {stage} {f['stage_over_floor_median']:.2f}")
        print(f"whole quarter ÷ duckdb_read: {floors['quarter_over_duckdb_read_median']:.2f}")
        read = floors["duckdb_read"]
        print(f"  (raw read: {read['files']} CSV files, {read['rows']:,} rows, {read['decoded_files']} decoded from GB18030/UTF-16 "
              f"in Python first; {read['xlsx_files']} xlsx files not in the floor)")
        for name in ("exact_join", "plain_splink"):
            scores = ", ".join(f"{src} P {v['precision']:.4f} R {v['recall']:.4f}" for src, v in floors[name]["sources"].items())
            print(f"  {name}: {scores}")
    replay = summary.get("policy_replay")
    if replay:
        print(f"\npolicy replay (doudi whatif) of {replay['quarters']} against their rules stage ({replay['rules_stage_seconds_median']:.2f} s):")
        for name in REPLAY_CHANGES:
            r = replay[name]
            print(f"  {name:<15}{r['seconds_median']:>8.2f} s   ratio {r['ratio_to_rules_median']:.2f}   gained {r['gained']:,}  lost {r['lost']:,}")
    print("\nlinkage against the generator's truth:")
    for row in summary["link_quality"]:
        print(f"  {row['source']:<11} precision {row['precision']:.4f}  recall {row['recall']:.4f}  "
              f"(exact-class {row['recall_exact_class']:.4f}, fuzzy-class {row['recall_fuzzy_class'] if row['recall_fuzzy_class'] is not None else '-'})")
